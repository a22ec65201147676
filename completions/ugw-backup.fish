# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_ugw_backup_global_optspecs
    string join \n record= new in= output= pretty q/quiet always dry-run timeout= lock-timeout= host-id= h/help V/version
end

function __fish_ugw_backup_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_ugw_backup_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_ugw_backup_using_subcommand
    set -l cmd (__fish_ugw_backup_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c ugw-backup -n "__fish_ugw_backup_needs_command" -l record -d 'Keep the record in FILE (read, append this step, write back atomically under FILE.lock)' -r -F
complete -c ugw-backup -n "__fish_ugw_backup_needs_command" -l in -d '\'-\' reads the record from stdin whatever it is; \'none\' never touches stdin' -r -f -a "-\t''
none\t''"
complete -c ugw-backup -n "__fish_ugw_backup_needs_command" -l output -d 'The record on stdout: json (one line; indented on a terminal), pretty, or none (keep it with --record)' -r -f -a "json\t''
pretty\t''
none\t''"
complete -c ugw-backup -n "__fish_ugw_backup_needs_command" -l timeout -d 'Hard deadline for the whole step (e.g. 90s, 5m)' -r
complete -c ugw-backup -n "__fish_ugw_backup_needs_command" -l lock-timeout -d 'How long to wait for a lock another run holds before giving up (exit 4)' -r
complete -c ugw-backup -n "__fish_ugw_backup_needs_command" -l host-id -d 'The host name in the record, where several nodes share one machine' -r
complete -c ugw-backup -n "__fish_ugw_backup_needs_command" -l new -d 'Start a new run in --record FILE (an old FILE is kept as FILE.prev)'
complete -c ugw-backup -n "__fish_ugw_backup_needs_command" -l pretty -d 'Same as --output pretty (the record file is indented too)'
complete -c ugw-backup -n "__fish_ugw_backup_needs_command" -s q -l quiet -d 'Print only errors on stderr'
complete -c ugw-backup -n "__fish_ugw_backup_needs_command" -l always -d 'Run even when the incoming record has failed (instead of skipping)'
complete -c ugw-backup -n "__fish_ugw_backup_needs_command" -l dry-run -d 'Say in the record what would be done; change nothing'
complete -c ugw-backup -n "__fish_ugw_backup_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ugw-backup -n "__fish_ugw_backup_needs_command" -s V -l version -d 'Print version'
complete -c ugw-backup -n "__fish_ugw_backup_needs_command" -f -a "create" -d 'Back up paths and SQLite databases into one verified archive'
complete -c ugw-backup -n "__fish_ugw_backup_needs_command" -f -a "verify" -d 'Re-hash an archive against its sidecar and every entry against its manifest'
complete -c ugw-backup -n "__fish_ugw_backup_needs_command" -f -a "restore" -d 'Verify, then restore strictly into a folder (--to) or back in place (--in-place)'
complete -c ugw-backup -n "__fish_ugw_backup_needs_command" -f -a "list" -d 'The backups in a folder: size, date, app version, state'
complete -c ugw-backup -n "__fish_ugw_backup_needs_command" -f -a "prune" -d 'Remove all but the newest N backups of this host (never the one the record refers to, never a file that is not a ugw backup)'
complete -c ugw-backup -n "__fish_ugw_backup_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l path -d 'A file or folder to back up (repeatable)' -r -F
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l volume -d 'A Docker named volume to back up, read from its mount point as a --path is; restore --in-place stops the containers using it and starts them again (repeatable)' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l exclude -d 'Leave out matching names (\'*.log\'), or paths with a / (\'cache/**\') (repeatable)' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l db -d 'A database: sqlite:///path/app.db (a snapshot) or postgres://user@host/db (pg_dump; the password from PGPASSWORD or the URL, never argv) (repeatable)' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l db-env -d 'Read a --db URL from this environment variable (repeatable)' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l out -d 'The backup folder' -r -F
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l name -d 'The archive\'s name, a template of {version}, {time} (UTC, 20261130T044100Z), {run} and {host} [default: ugw-backup-{host}-{time}]; a retry of this run finds its own archive under the same name and reuses it' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l app-version -d 'The app version to record [default with --root: the version of ROOT\'s current release]' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l root -d 'Record the version of ROOT\'s current release (ROOT/current -> releases/V, as ugw-swap --root lays them out) as --app-version' -r -F
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l keep -d 'Prune to the newest N backups after success' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l compress -d 'gzip (.tar.gz), zstd (.tar.zst) or none (.tar)' -r -f -a "gzip\t''
zstd\t''
none\t''"
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l level -d 'Compression level [default: 1 for gzip (0 to 12), 3 for zstd (1 to 19)]' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l threads -d 'Compression threads [default: the number of CPUs]' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l record -d 'Keep the record in FILE (read, append this step, write back atomically under FILE.lock)' -r -F
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l in -d '\'-\' reads the record from stdin whatever it is; \'none\' never touches stdin' -r -f -a "-\t''
none\t''"
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l output -d 'The record on stdout: json (one line; indented on a terminal), pretty, or none (keep it with --record)' -r -f -a "json\t''
pretty\t''
none\t''"
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l timeout -d 'Hard deadline for the whole step (e.g. 90s, 5m)' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l lock-timeout -d 'How long to wait for a lock another run holds before giving up (exit 4)' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l host-id -d 'The host name in the record, where several nodes share one machine' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l pg-globals -d 'Add the PostgreSQL server\'s roles and tablespaces (pg_dumpall --globals-only)'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l strict -d 'Fail when a file changed while it was read'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l no-space-check -d 'Skip the free-space check before writing'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l new -d 'Start a new run in --record FILE (an old FILE is kept as FILE.prev)'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l pretty -d 'Same as --output pretty (the record file is indented too)'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -s q -l quiet -d 'Print only errors on stderr'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l always -d 'Run even when the incoming record has failed (instead of skipping)'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -l dry-run -d 'Say in the record what would be done; change nothing'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand create" -s V -l version -d 'Print version'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand verify" -l record -d 'Keep the record in FILE (read, append this step, write back atomically under FILE.lock)' -r -F
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand verify" -l in -d '\'-\' reads the record from stdin whatever it is; \'none\' never touches stdin' -r -f -a "-\t''
none\t''"
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand verify" -l output -d 'The record on stdout: json (one line; indented on a terminal), pretty, or none (keep it with --record)' -r -f -a "json\t''
pretty\t''
none\t''"
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand verify" -l timeout -d 'Hard deadline for the whole step (e.g. 90s, 5m)' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand verify" -l lock-timeout -d 'How long to wait for a lock another run holds before giving up (exit 4)' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand verify" -l host-id -d 'The host name in the record, where several nodes share one machine' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand verify" -l new -d 'Start a new run in --record FILE (an old FILE is kept as FILE.prev)'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand verify" -l pretty -d 'Same as --output pretty (the record file is indented too)'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand verify" -s q -l quiet -d 'Print only errors on stderr'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand verify" -l always -d 'Run even when the incoming record has failed (instead of skipping)'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand verify" -l dry-run -d 'Say in the record what would be done; change nothing'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand verify" -s h -l help -d 'Print help'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand verify" -s V -l version -d 'Print version'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand restore" -l to -d 'Restore into this folder (absent or empty, or any with --force)' -r -F
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand restore" -l pg -d 'Restore the PostgreSQL dump into this database [default with --in-place: the one backed up]' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand restore" -l expect-app-version -d 'Refuse a backup made by another app version (unless --force)' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand restore" -l record -d 'Keep the record in FILE (read, append this step, write back atomically under FILE.lock)' -r -F
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand restore" -l in -d '\'-\' reads the record from stdin whatever it is; \'none\' never touches stdin' -r -f -a "-\t''
none\t''"
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand restore" -l output -d 'The record on stdout: json (one line; indented on a terminal), pretty, or none (keep it with --record)' -r -f -a "json\t''
pretty\t''
none\t''"
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand restore" -l timeout -d 'Hard deadline for the whole step (e.g. 90s, 5m)' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand restore" -l lock-timeout -d 'How long to wait for a lock another run holds before giving up (exit 4)' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand restore" -l host-id -d 'The host name in the record, where several nodes share one machine' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand restore" -l in-place -d 'Put every path back where it was (the old one kept as <path>.ugw-before-restore until success)'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand restore" -l force -d 'Replace a non-empty --to folder; restore a backup of another app version; restore again what this run restored in place already'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand restore" -l new -d 'Start a new run in --record FILE (an old FILE is kept as FILE.prev)'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand restore" -l pretty -d 'Same as --output pretty (the record file is indented too)'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand restore" -s q -l quiet -d 'Print only errors on stderr'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand restore" -l always -d 'Run even when the incoming record has failed (instead of skipping)'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand restore" -l dry-run -d 'Say in the record what would be done; change nothing'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand restore" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand restore" -s V -l version -d 'Print version'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand list" -l out -d 'The backup folder' -r -F
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand list" -l record -d 'Keep the record in FILE (read, append this step, write back atomically under FILE.lock)' -r -F
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand list" -l in -d '\'-\' reads the record from stdin whatever it is; \'none\' never touches stdin' -r -f -a "-\t''
none\t''"
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand list" -l output -d 'The record on stdout: json (one line; indented on a terminal), pretty, or none (keep it with --record)' -r -f -a "json\t''
pretty\t''
none\t''"
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand list" -l timeout -d 'Hard deadline for the whole step (e.g. 90s, 5m)' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand list" -l lock-timeout -d 'How long to wait for a lock another run holds before giving up (exit 4)' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand list" -l host-id -d 'The host name in the record, where several nodes share one machine' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand list" -l new -d 'Start a new run in --record FILE (an old FILE is kept as FILE.prev)'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand list" -l pretty -d 'Same as --output pretty (the record file is indented too)'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand list" -s q -l quiet -d 'Print only errors on stderr'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand list" -l always -d 'Run even when the incoming record has failed (instead of skipping)'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand list" -l dry-run -d 'Say in the record what would be done; change nothing'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand list" -s h -l help -d 'Print help'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand list" -s V -l version -d 'Print version'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand prune" -l out -d 'The backup folder' -r -F
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand prune" -l keep -d 'Keep the newest N backups' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand prune" -l prefix -d 'Only backups whose --name starts with this (one backup set in a shared folder)' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand prune" -l record -d 'Keep the record in FILE (read, append this step, write back atomically under FILE.lock)' -r -F
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand prune" -l in -d '\'-\' reads the record from stdin whatever it is; \'none\' never touches stdin' -r -f -a "-\t''
none\t''"
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand prune" -l output -d 'The record on stdout: json (one line; indented on a terminal), pretty, or none (keep it with --record)' -r -f -a "json\t''
pretty\t''
none\t''"
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand prune" -l timeout -d 'Hard deadline for the whole step (e.g. 90s, 5m)' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand prune" -l lock-timeout -d 'How long to wait for a lock another run holds before giving up (exit 4)' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand prune" -l host-id -d 'The host name in the record, where several nodes share one machine' -r
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand prune" -l new -d 'Start a new run in --record FILE (an old FILE is kept as FILE.prev)'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand prune" -l pretty -d 'Same as --output pretty (the record file is indented too)'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand prune" -s q -l quiet -d 'Print only errors on stderr'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand prune" -l always -d 'Run even when the incoming record has failed (instead of skipping)'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand prune" -l dry-run -d 'Say in the record what would be done; change nothing'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand prune" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand prune" -s V -l version -d 'Print version'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand help; and not __fish_seen_subcommand_from create verify restore list prune help" -f -a "create" -d 'Back up paths and SQLite databases into one verified archive'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand help; and not __fish_seen_subcommand_from create verify restore list prune help" -f -a "verify" -d 'Re-hash an archive against its sidecar and every entry against its manifest'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand help; and not __fish_seen_subcommand_from create verify restore list prune help" -f -a "restore" -d 'Verify, then restore strictly into a folder (--to) or back in place (--in-place)'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand help; and not __fish_seen_subcommand_from create verify restore list prune help" -f -a "list" -d 'The backups in a folder: size, date, app version, state'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand help; and not __fish_seen_subcommand_from create verify restore list prune help" -f -a "prune" -d 'Remove all but the newest N backups of this host (never the one the record refers to, never a file that is not a ugw backup)'
complete -c ugw-backup -n "__fish_ugw_backup_using_subcommand help; and not __fish_seen_subcommand_from create verify restore list prune help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
