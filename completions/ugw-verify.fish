# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_ugw_verify_global_optspecs
    string join \n record= new in= output= pretty q/quiet always dry-run lock-timeout= host-id= checks= http= status= expect= max-latency= cmd= parallel= junit= header= header-env= cacert= insecure compare baseline= baseline-any-host latency-tolerance= latency-floor= error-tolerance= memory-tolerance= memory-floor= timeout= h/help V/version
end

function __fish_ugw_verify_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_ugw_verify_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_ugw_verify_using_subcommand
    set -l cmd (__fish_ugw_verify_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l record -d 'Keep the record in FILE (read, append this step, write back atomically under FILE.lock)' -r -F
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l in -d '\'-\' reads the record from stdin whatever it is; \'none\' never touches stdin' -r -f -a "-\t''
none\t''"
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l output -d 'The record on stdout: json (one line; indented on a terminal), pretty, or none (keep it with --record)' -r -f -a "json\t''
pretty\t''
none\t''"
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l lock-timeout -d 'How long to wait for a lock another run holds before giving up (exit 4)' -r
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l host-id -d 'The host name in the record, where several nodes share one machine' -r
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l checks -d 'Run the checks of this file ({"checks": [...]}; see below)' -r -F
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l http -d 'Check that a GET of URL answers (the flags after it apply to it)' -r
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l status -d 'The status the --http before it must answer: 200, 2xx, 200-299 [default: 2xx]' -r
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l expect -d 'A jq expression on the JSON body of the --http before it that must be true (repeatable)' -r
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l max-latency -d 'The --http before it must answer within this' -r
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l cmd -d 'Check that a command (sh -c, its own process group) exits 0' -r
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l parallel -d 'Run up to N checks at once (a latency check always runs alone)' -r
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l junit -d 'Also write a JUnit XML report (one testcase per check), e.g. for GitLab\'s artifacts:reports:junit' -r -F
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l header -d 'Send this header with every request (repeatable); not for secrets, see --header-env' -r
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l header-env -d 'Send header NAME with the value of environment variable ENVVAR (repeatable); the value is never shown' -r
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l cacert -d 'Trust the certificates in this PEM file (CAs, or the server\'s own self-signed one) instead of the system\'s' -r -F
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l baseline -d 'Read the baseline from FILE (written by `ugw-verify baseline --save FILE`)' -r -F
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l latency-tolerance -d 'Fail when p95 latency grew by more than this' -r
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l latency-floor -d 'A p95 growth smaller than this is noise, never a failure' -r
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l error-tolerance -d 'Fail when the error ratio (5xx over all) rose by more than this many percentage points' -r
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l memory-tolerance -d 'Fail when resident memory grew by more than this' -r
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l memory-floor -d 'A memory growth smaller than this is allocator noise, never a failure' -r
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l timeout -d 'Deadline for every check together' -r
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l new -d 'Start a new run in --record FILE (an old FILE is kept as FILE.prev)'
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l pretty -d 'Same as --output pretty (the record file is indented too)'
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -s q -l quiet -d 'Print only errors on stderr'
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l always -d 'Run even when the incoming record has failed (instead of skipping)'
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l dry-run -d 'Say in the record what would be done; change nothing'
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l insecure -d 'Do not verify TLS certificates (self-signed test set-ups only)'
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l compare -d 'Compare what the measuring checks measure with the baseline (the last ok `ugw-verify baseline` step of the record, or --baseline FILE)'
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -l baseline-any-host -d 'Compare with a baseline taken on another host (refused by default: other hardware, other figures)'
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -s V -l version -d 'Print version'
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -f -a "baseline" -d 'Measure before an upgrade: run the measuring checks and keep what they saw in the record (or --save FILE)'
complete -c ugw-verify -n "__fish_ugw_verify_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand baseline" -l checks -d 'Run the checks of this file ({"checks": [...]}; see below)' -r -F
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand baseline" -l http -d 'Check that a GET of URL answers (the flags after it apply to it)' -r
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand baseline" -l status -d 'The status the --http before it must answer: 200, 2xx, 200-299 [default: 2xx]' -r
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand baseline" -l expect -d 'A jq expression on the JSON body of the --http before it that must be true (repeatable)' -r
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand baseline" -l max-latency -d 'The --http before it must answer within this' -r
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand baseline" -l cmd -d 'Check that a command (sh -c, its own process group) exits 0' -r
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand baseline" -l parallel -d 'Run up to N checks at once (a latency check always runs alone)' -r
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand baseline" -l junit -d 'Also write a JUnit XML report (one testcase per check), e.g. for GitLab\'s artifacts:reports:junit' -r -F
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand baseline" -l header -d 'Send this header with every request (repeatable); not for secrets, see --header-env' -r
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand baseline" -l header-env -d 'Send header NAME with the value of environment variable ENVVAR (repeatable); the value is never shown' -r
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand baseline" -l cacert -d 'Trust the certificates in this PEM file (CAs, or the server\'s own self-signed one) instead of the system\'s' -r -F
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand baseline" -l save -d 'Also write the baseline to FILE (atomically), for --compare --baseline FILE' -r -F
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand baseline" -l record -d 'Keep the record in FILE (read, append this step, write back atomically under FILE.lock)' -r -F
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand baseline" -l in -d '\'-\' reads the record from stdin whatever it is; \'none\' never touches stdin' -r -f -a "-\t''
none\t''"
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand baseline" -l output -d 'The record on stdout: json (one line; indented on a terminal), pretty, or none (keep it with --record)' -r -f -a "json\t''
pretty\t''
none\t''"
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand baseline" -l lock-timeout -d 'How long to wait for a lock another run holds before giving up (exit 4)' -r
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand baseline" -l host-id -d 'The host name in the record, where several nodes share one machine' -r
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand baseline" -l timeout -d 'Deadline for every check together' -r
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand baseline" -l insecure -d 'Do not verify TLS certificates (self-signed test set-ups only)'
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand baseline" -l new -d 'Start a new run in --record FILE (an old FILE is kept as FILE.prev)'
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand baseline" -l pretty -d 'Same as --output pretty (the record file is indented too)'
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand baseline" -s q -l quiet -d 'Print only errors on stderr'
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand baseline" -l always -d 'Run even when the incoming record has failed (instead of skipping)'
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand baseline" -l dry-run -d 'Say in the record what would be done; change nothing'
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand baseline" -s h -l help -d 'Print help'
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand help; and not __fish_seen_subcommand_from baseline help" -f -a "baseline" -d 'Measure before an upgrade: run the measuring checks and keep what they saw in the record (or --save FILE)'
complete -c ugw-verify -n "__fish_ugw_verify_using_subcommand help; and not __fish_seen_subcommand_from baseline help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
