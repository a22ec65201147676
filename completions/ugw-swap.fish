# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_ugw_swap_global_optspecs
    string join \n record= new in= output= pretty q/quiet always dry-run timeout= lock-timeout= host-id= root= target= compose= service= project= env-file= image= strategy= port-env= slots= restart-check= drain-cmd= drain-grace= from= release= link= mode= force restart= force-restart restart-timeout= start= pidfile= log= stop-timeout= alive-for= rollback keep= h/help V/version
end

function __fish_ugw_swap_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_ugw_swap_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_ugw_swap_using_subcommand
    set -l cmd (__fish_ugw_swap_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l record -d 'Keep the record in FILE (read, append this step, write back atomically under FILE.lock)' -r -F
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l in -d '\'-\' reads the record from stdin whatever it is; \'none\' never touches stdin' -r -f -a "-\t''
none\t''"
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l output -d 'The record on stdout: json (one line; indented on a terminal), pretty, or none (keep it with --record)' -r -f -a "json\t''
pretty\t''
none\t''"
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l timeout -d 'Hard deadline for the whole step (e.g. 90s, 5m)' -r
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l lock-timeout -d 'How long to wait for a lock another run holds before giving up (exit 4)' -r
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l host-id -d 'The host name in the record, where several nodes share one machine' -r
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l root -d 'Release-folder mode: DIR/releases/<version>/ and DIR/current -> releases/<version>' -r -F
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l target -d 'Binary mode: replace the file PATH (its owner, mode and extended attributes are kept)' -r -F
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l compose -d 'Compose mode: pin the --service images of the Compose file FILE by digest (in FILE\'s folder\'s .ugw/PROJECT.override.yml) and bring them up' -r -F
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l service -d 'With --compose: the service to switch (repeatable: every one gets the same image; the set is one unit, with its own pins and rollback)' -r
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l project -d 'With --compose: the Compose project name [default: the name of FILE\'s folder, as Compose gives it]' -r
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l env-file -d 'With --compose: passed to Compose as --env-file (ugw never writes it)' -r -F
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l image -d 'With --compose: the image to pin [default: the reference of this run\'s ugw-fetch --image step]' -r
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l strategy -d 'With --compose: stop-first (the old container stops, then the new one starts) or start-first (the new one starts on the idle --slots port, and the old one stops once it is healthy)' -r -f -a "stop-first\t''
start-first\t''"
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l port-env -d 'With --strategy start-first: the variable the service reads its port from (set for Compose, so ${NAME} in FILE reads it, and in the container)' -r
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l slots -d 'With --strategy start-first: the two ports the service alternates between (each slot is the Compose project PROJECT-PORT)' -r
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l restart-check -d 'With --compose, for a service without a Docker healthcheck: healthy when URL answers 2xx ({port} is replaced by the slot\'s port)' -r
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l drain-cmd -d 'With --strategy start-first: run CMD (sh -c) before the old slot stops, with $UGW_DRAIN_PORT (the old slot) and $UGW_LIVE_PORT (e.g. ugw-drain on the balancer); if CMD fails, the new slot is removed and the old one keeps serving (exit 1)' -r
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l drain-grace -d 'With --strategy start-first: how long the old slot keeps serving after the new one is healthy (and after --drain-cmd), so the balancer\'s health check sees the new one up before the old one stops' -r
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l from -d 'The new release: a folder or a single file [default: the path of the last ugw-fetch step]' -r -F
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l release -d 'The release\'s name under releases/ [default: the version of the last ugw-fetch step]' -r
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l link -d 'Link SHARED (relative to --root) to TARGET inside the release, e.g. shared/.env:.env (repeatable)' -r
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l mode -d 'The new binary\'s mode in binary mode (e.g. 755) [default: the old binary\'s]' -r
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l restart -d 'Run CMD (sh -c) after the switch; if it fails, switch back, run it again, exit 1' -r
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l restart-timeout -d 'How long CMD may take' -r
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l start -d 'Be the service manager: stop the process --pidfile names, start CMD detached for the release now live; if it exits at once, switch back and start the one before' -r
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l pidfile -d 'With --start: where the pid of the process started is kept (ugw-wait-healthy --pidfile FILE watches it)' -r -F
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l log -d 'With --start: the file the service\'s stdout and stderr are appended to [default: the --pidfile with .log for its extension]' -r -F
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l stop-timeout -d 'With --start: how long the process stopped has after SIGTERM before SIGKILL' -r
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l alive-for -d 'With --start: how long the process started must keep running for the start to count' -r
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l keep -d 'Keep this many releases; older ones are removed (never current, previous, or a newer failed one)' -r
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l new -d 'Start a new run in --record FILE (an old FILE is kept as FILE.prev)'
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l pretty -d 'Same as --output pretty (the record file is indented too)'
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -s q -l quiet -d 'Print only errors on stderr'
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l always -d 'Run even when the incoming record has failed (instead of skipping)'
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l dry-run -d 'Say in the record what would be done; change nothing'
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l force -d 'Replace a staged release of the same version whose content differs'
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l force-restart -d 'Run --restart (or --start) even when nothing was switched (the release is current already): to restart again after a failed start'
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -l rollback -d 'Switch back to the previous release and mark the one left failed (runs on a failed record, where it takes back only the switch that run made)'
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -s V -l version -d 'Print version'
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -f -a "status" -d 'Print the current release, the previous one and every release kept'
complete -c ugw-swap -n "__fish_ugw_swap_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ugw-swap -n "__fish_ugw_swap_using_subcommand status" -l record -d 'Keep the record in FILE (read, append this step, write back atomically under FILE.lock)' -r -F
complete -c ugw-swap -n "__fish_ugw_swap_using_subcommand status" -l in -d '\'-\' reads the record from stdin whatever it is; \'none\' never touches stdin' -r -f -a "-\t''
none\t''"
complete -c ugw-swap -n "__fish_ugw_swap_using_subcommand status" -l output -d 'The record on stdout: json (one line; indented on a terminal), pretty, or none (keep it with --record)' -r -f -a "json\t''
pretty\t''
none\t''"
complete -c ugw-swap -n "__fish_ugw_swap_using_subcommand status" -l timeout -d 'Hard deadline for the whole step (e.g. 90s, 5m)' -r
complete -c ugw-swap -n "__fish_ugw_swap_using_subcommand status" -l lock-timeout -d 'How long to wait for a lock another run holds before giving up (exit 4)' -r
complete -c ugw-swap -n "__fish_ugw_swap_using_subcommand status" -l host-id -d 'The host name in the record, where several nodes share one machine' -r
complete -c ugw-swap -n "__fish_ugw_swap_using_subcommand status" -l root -d 'Release-folder mode: DIR/releases/<version>/ and DIR/current -> releases/<version>' -r -F
complete -c ugw-swap -n "__fish_ugw_swap_using_subcommand status" -l target -d 'Binary mode: replace the file PATH (its owner, mode and extended attributes are kept)' -r -F
complete -c ugw-swap -n "__fish_ugw_swap_using_subcommand status" -l compose -d 'Compose mode: pin the --service images of the Compose file FILE by digest (in FILE\'s folder\'s .ugw/PROJECT.override.yml) and bring them up' -r -F
complete -c ugw-swap -n "__fish_ugw_swap_using_subcommand status" -l service -d 'With --compose: the service to switch (repeatable: every one gets the same image; the set is one unit, with its own pins and rollback)' -r
complete -c ugw-swap -n "__fish_ugw_swap_using_subcommand status" -l project -d 'With --compose: the Compose project name [default: the name of FILE\'s folder, as Compose gives it]' -r
complete -c ugw-swap -n "__fish_ugw_swap_using_subcommand status" -l env-file -d 'With --compose: passed to Compose as --env-file (ugw never writes it)' -r -F
complete -c ugw-swap -n "__fish_ugw_swap_using_subcommand status" -l strategy -d 'With --compose: stop-first (the old container stops, then the new one starts) or start-first (the new one starts on the idle --slots port, and the old one stops once it is healthy)' -r -f -a "stop-first\t''
start-first\t''"
complete -c ugw-swap -n "__fish_ugw_swap_using_subcommand status" -l port-env -d 'With --strategy start-first: the variable the service reads its port from (set for Compose, so ${NAME} in FILE reads it, and in the container)' -r
complete -c ugw-swap -n "__fish_ugw_swap_using_subcommand status" -l slots -d 'With --strategy start-first: the two ports the service alternates between (each slot is the Compose project PROJECT-PORT)' -r
complete -c ugw-swap -n "__fish_ugw_swap_using_subcommand status" -l new -d 'Start a new run in --record FILE (an old FILE is kept as FILE.prev)'
complete -c ugw-swap -n "__fish_ugw_swap_using_subcommand status" -l pretty -d 'Same as --output pretty (the record file is indented too)'
complete -c ugw-swap -n "__fish_ugw_swap_using_subcommand status" -s q -l quiet -d 'Print only errors on stderr'
complete -c ugw-swap -n "__fish_ugw_swap_using_subcommand status" -l always -d 'Run even when the incoming record has failed (instead of skipping)'
complete -c ugw-swap -n "__fish_ugw_swap_using_subcommand status" -l dry-run -d 'Say in the record what would be done; change nothing'
complete -c ugw-swap -n "__fish_ugw_swap_using_subcommand status" -s h -l help -d 'Print help'
complete -c ugw-swap -n "__fish_ugw_swap_using_subcommand help; and not __fish_seen_subcommand_from status help" -f -a "status" -d 'Print the current release, the previous one and every release kept'
complete -c ugw-swap -n "__fish_ugw_swap_using_subcommand help; and not __fish_seen_subcommand_from status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
