# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_ugw_migrate_global_optspecs
    string join \n record= new in= output= pretty q/quiet always dry-run timeout= host-id= lock-timeout= db= db-env= dir= allow-pooler ledger-schema= ledger-table= ddl-lock-timeout= ddl-retries= max-xact-age= statement-timeout= heartbeat= h/help V/version
end

function __fish_ugw_migrate_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_ugw_migrate_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_ugw_migrate_using_subcommand
    set -l cmd (__fish_ugw_migrate_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -l record -d 'Keep the record in FILE (read, append this step, write back atomically under FILE.lock)' -r -F
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -l in -d '\'-\' reads the record from stdin whatever it is; \'none\' never touches stdin' -r -f -a "-\t''
none\t''"
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -l output -d 'The record on stdout: json (one line; indented on a terminal), pretty, or none (keep it with --record)' -r -f -a "json\t''
pretty\t''
none\t''"
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -l timeout -d 'Hard deadline for the whole step (e.g. 90s, 5m)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -l host-id -d 'The host name in the record, where several nodes share one machine' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -l lock-timeout -d 'How long to wait for the migration lock another run holds (exit 4, naming the holder)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -l db -d 'The database: sqlite:///abs/path.db, sqlite://rel/path.db (the rest is the file\'s path: `#` and `?` are part of it, %XX is decoded), postgres://user@host:port/db?sslmode=… (a password here is visible in `ps`: prefer --db-env)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -l db-env -d 'Read the database URL from this environment variable [default: DATABASE_URL]' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -l dir -d 'The migrations folder [default: migrations/ of the last ugw-fetch step\'s artifact]' -r -F
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -l ledger-schema -d 'PostgreSQL: the schema of the ledger table, created when missing [default: ugw, a schema of its own; a ledger an older ugw-migrate made in the schema its session started in (usually public) is found there and kept]; every statement names it, so neither a migration\'s SET search_path nor the session\'s search_path ever moves or hides the ledger' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -l ledger-table -d 'SQLite: the ledger table\'s name [default: ugw_migrations], for an application that lists every table of its database (give the same name to every run: a ledger under another name is not looked for)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -l ddl-lock-timeout -d 'SET lock_timeout for each migration\'s transaction, so DDL never queues in front of every query' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -l ddl-retries -d 'Retries (with backoff) of a migration that hit --ddl-lock-timeout' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -l max-xact-age -d 'Refuse to start while another transaction is older than this' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -l statement-timeout -d 'SET statement_timeout for the whole run' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -l heartbeat -d 'How often a long migration says it is still running' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -l new -d 'Start a new run in --record FILE (an old FILE is kept as FILE.prev)'
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -l pretty -d 'Same as --output pretty (the record file is indented too)'
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -s q -l quiet -d 'Print only errors on stderr'
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -l always -d 'Run even when the incoming record has failed (instead of skipping)'
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -l dry-run -d 'Say in the record what would be done; change nothing'
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -l allow-pooler -d 'Connect through a connection pooler anyway (PgBouncer in session mode only)'
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -s V -l version -d 'Print version'
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -f -a "up" -d 'Apply the pending migrations of a phase, in version order'
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -f -a "status" -d 'Applied, pending (by phase), failed and changed migrations'
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -f -a "plan" -d 'Exactly what `up` would run, in order, with checksums; takes no lock, writes nothing'
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -f -a "lint" -d 'Refuse pre-deploy DDL that breaks the old release or locks a busy table'
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -f -a "resolve" -d 'After a failed no-transaction migration: list it, mark it applied or forget it; drop INVALID indexes'
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -f -a "baseline" -d 'Adopt an existing schema: record every migration up to VERSION as applied without running it'
complete -c ugw-migrate -n "__fish_ugw_migrate_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l phase -d 'pre: DIR/*.sql (before the switch); post: DIR/post/*.sql (after every node runs the new release); all' -r -f -a "pre\t''
post\t''
all\t''"
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l target -d 'Stop after this version' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l image-path -d 'With --from-image: the migrations folder inside the image' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l record -d 'Keep the record in FILE (read, append this step, write back atomically under FILE.lock)' -r -F
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l in -d '\'-\' reads the record from stdin whatever it is; \'none\' never touches stdin' -r -f -a "-\t''
none\t''"
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l output -d 'The record on stdout: json (one line; indented on a terminal), pretty, or none (keep it with --record)' -r -f -a "json\t''
pretty\t''
none\t''"
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l timeout -d 'Hard deadline for the whole step (e.g. 90s, 5m)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l host-id -d 'The host name in the record, where several nodes share one machine' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l lock-timeout -d 'How long to wait for the migration lock another run holds (exit 4, naming the holder)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l db -d 'The database: sqlite:///abs/path.db, sqlite://rel/path.db (the rest is the file\'s path: `#` and `?` are part of it, %XX is decoded), postgres://user@host:port/db?sslmode=… (a password here is visible in `ps`: prefer --db-env)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l db-env -d 'Read the database URL from this environment variable [default: DATABASE_URL]' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l dir -d 'The migrations folder [default: migrations/ of the last ugw-fetch step\'s artifact]' -r -F
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l ledger-schema -d 'PostgreSQL: the schema of the ledger table, created when missing [default: ugw, a schema of its own; a ledger an older ugw-migrate made in the schema its session started in (usually public) is found there and kept]; every statement names it, so neither a migration\'s SET search_path nor the session\'s search_path ever moves or hides the ledger' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l ledger-table -d 'SQLite: the ledger table\'s name [default: ugw_migrations], for an application that lists every table of its database (give the same name to every run: a ledger under another name is not looked for)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l ddl-lock-timeout -d 'SET lock_timeout for each migration\'s transaction, so DDL never queues in front of every query' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l ddl-retries -d 'Retries (with backoff) of a migration that hit --ddl-lock-timeout' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l max-xact-age -d 'Refuse to start while another transaction is older than this' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l statement-timeout -d 'SET statement_timeout for the whole run' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l heartbeat -d 'How often a long migration says it is still running' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l allow-changed -d 'Proceed although an applied migration\'s file changed'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l allow-out-of-order -d 'Apply a pending version older than the newest applied one of its phase'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l allow-unsafe -d 'Apply pre-deploy migrations the linter refuses'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l create -d 'SQLite: create the database file when it does not exist (a first install); without it a missing file is refused (exit 2), so a mistyped --db never starts an empty database'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l from-image -d 'Take the migrations from the image this run\'s ugw-fetch --image step verified (docker create, then docker cp of --image-path; the container is always removed)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l new -d 'Start a new run in --record FILE (an old FILE is kept as FILE.prev)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l pretty -d 'Same as --output pretty (the record file is indented too)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -s q -l quiet -d 'Print only errors on stderr'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l always -d 'Run even when the incoming record has failed (instead of skipping)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l dry-run -d 'Say in the record what would be done; change nothing'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -l allow-pooler -d 'Connect through a connection pooler anyway (PgBouncer in session mode only)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand up" -s h -l help -d 'Print help'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand status" -l record -d 'Keep the record in FILE (read, append this step, write back atomically under FILE.lock)' -r -F
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand status" -l in -d '\'-\' reads the record from stdin whatever it is; \'none\' never touches stdin' -r -f -a "-\t''
none\t''"
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand status" -l output -d 'The record on stdout: json (one line; indented on a terminal), pretty, or none (keep it with --record)' -r -f -a "json\t''
pretty\t''
none\t''"
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand status" -l timeout -d 'Hard deadline for the whole step (e.g. 90s, 5m)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand status" -l host-id -d 'The host name in the record, where several nodes share one machine' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand status" -l lock-timeout -d 'How long to wait for the migration lock another run holds (exit 4, naming the holder)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand status" -l db -d 'The database: sqlite:///abs/path.db, sqlite://rel/path.db (the rest is the file\'s path: `#` and `?` are part of it, %XX is decoded), postgres://user@host:port/db?sslmode=… (a password here is visible in `ps`: prefer --db-env)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand status" -l db-env -d 'Read the database URL from this environment variable [default: DATABASE_URL]' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand status" -l dir -d 'The migrations folder [default: migrations/ of the last ugw-fetch step\'s artifact]' -r -F
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand status" -l ledger-schema -d 'PostgreSQL: the schema of the ledger table, created when missing [default: ugw, a schema of its own; a ledger an older ugw-migrate made in the schema its session started in (usually public) is found there and kept]; every statement names it, so neither a migration\'s SET search_path nor the session\'s search_path ever moves or hides the ledger' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand status" -l ledger-table -d 'SQLite: the ledger table\'s name [default: ugw_migrations], for an application that lists every table of its database (give the same name to every run: a ledger under another name is not looked for)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand status" -l ddl-lock-timeout -d 'SET lock_timeout for each migration\'s transaction, so DDL never queues in front of every query' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand status" -l ddl-retries -d 'Retries (with backoff) of a migration that hit --ddl-lock-timeout' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand status" -l max-xact-age -d 'Refuse to start while another transaction is older than this' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand status" -l statement-timeout -d 'SET statement_timeout for the whole run' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand status" -l heartbeat -d 'How often a long migration says it is still running' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand status" -l check -d 'Exit 1 when anything is pending, failed or changed'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand status" -l new -d 'Start a new run in --record FILE (an old FILE is kept as FILE.prev)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand status" -l pretty -d 'Same as --output pretty (the record file is indented too)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand status" -s q -l quiet -d 'Print only errors on stderr'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand status" -l always -d 'Run even when the incoming record has failed (instead of skipping)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand status" -l dry-run -d 'Say in the record what would be done; change nothing'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand status" -l allow-pooler -d 'Connect through a connection pooler anyway (PgBouncer in session mode only)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand status" -s h -l help -d 'Print help'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand plan" -l phase -d 'pre: DIR/*.sql (before the switch); post: DIR/post/*.sql (after every node runs the new release); all' -r -f -a "pre\t''
post\t''
all\t''"
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand plan" -l target -d 'Stop after this version' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand plan" -l record -d 'Keep the record in FILE (read, append this step, write back atomically under FILE.lock)' -r -F
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand plan" -l in -d '\'-\' reads the record from stdin whatever it is; \'none\' never touches stdin' -r -f -a "-\t''
none\t''"
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand plan" -l output -d 'The record on stdout: json (one line; indented on a terminal), pretty, or none (keep it with --record)' -r -f -a "json\t''
pretty\t''
none\t''"
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand plan" -l timeout -d 'Hard deadline for the whole step (e.g. 90s, 5m)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand plan" -l host-id -d 'The host name in the record, where several nodes share one machine' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand plan" -l lock-timeout -d 'How long to wait for the migration lock another run holds (exit 4, naming the holder)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand plan" -l db -d 'The database: sqlite:///abs/path.db, sqlite://rel/path.db (the rest is the file\'s path: `#` and `?` are part of it, %XX is decoded), postgres://user@host:port/db?sslmode=… (a password here is visible in `ps`: prefer --db-env)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand plan" -l db-env -d 'Read the database URL from this environment variable [default: DATABASE_URL]' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand plan" -l dir -d 'The migrations folder [default: migrations/ of the last ugw-fetch step\'s artifact]' -r -F
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand plan" -l ledger-schema -d 'PostgreSQL: the schema of the ledger table, created when missing [default: ugw, a schema of its own; a ledger an older ugw-migrate made in the schema its session started in (usually public) is found there and kept]; every statement names it, so neither a migration\'s SET search_path nor the session\'s search_path ever moves or hides the ledger' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand plan" -l ledger-table -d 'SQLite: the ledger table\'s name [default: ugw_migrations], for an application that lists every table of its database (give the same name to every run: a ledger under another name is not looked for)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand plan" -l ddl-lock-timeout -d 'SET lock_timeout for each migration\'s transaction, so DDL never queues in front of every query' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand plan" -l ddl-retries -d 'Retries (with backoff) of a migration that hit --ddl-lock-timeout' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand plan" -l max-xact-age -d 'Refuse to start while another transaction is older than this' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand plan" -l statement-timeout -d 'SET statement_timeout for the whole run' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand plan" -l heartbeat -d 'How often a long migration says it is still running' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand plan" -l new -d 'Start a new run in --record FILE (an old FILE is kept as FILE.prev)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand plan" -l pretty -d 'Same as --output pretty (the record file is indented too)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand plan" -s q -l quiet -d 'Print only errors on stderr'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand plan" -l always -d 'Run even when the incoming record has failed (instead of skipping)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand plan" -l dry-run -d 'Say in the record what would be done; change nothing'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand plan" -l allow-pooler -d 'Connect through a connection pooler anyway (PgBouncer in session mode only)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand plan" -s h -l help -d 'Print help'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand lint" -l record -d 'Keep the record in FILE (read, append this step, write back atomically under FILE.lock)' -r -F
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand lint" -l in -d '\'-\' reads the record from stdin whatever it is; \'none\' never touches stdin' -r -f -a "-\t''
none\t''"
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand lint" -l output -d 'The record on stdout: json (one line; indented on a terminal), pretty, or none (keep it with --record)' -r -f -a "json\t''
pretty\t''
none\t''"
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand lint" -l timeout -d 'Hard deadline for the whole step (e.g. 90s, 5m)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand lint" -l host-id -d 'The host name in the record, where several nodes share one machine' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand lint" -l lock-timeout -d 'How long to wait for the migration lock another run holds (exit 4, naming the holder)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand lint" -l db -d 'The database: sqlite:///abs/path.db, sqlite://rel/path.db (the rest is the file\'s path: `#` and `?` are part of it, %XX is decoded), postgres://user@host:port/db?sslmode=… (a password here is visible in `ps`: prefer --db-env)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand lint" -l db-env -d 'Read the database URL from this environment variable [default: DATABASE_URL]' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand lint" -l dir -d 'The migrations folder [default: migrations/ of the last ugw-fetch step\'s artifact]' -r -F
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand lint" -l ledger-schema -d 'PostgreSQL: the schema of the ledger table, created when missing [default: ugw, a schema of its own; a ledger an older ugw-migrate made in the schema its session started in (usually public) is found there and kept]; every statement names it, so neither a migration\'s SET search_path nor the session\'s search_path ever moves or hides the ledger' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand lint" -l ledger-table -d 'SQLite: the ledger table\'s name [default: ugw_migrations], for an application that lists every table of its database (give the same name to every run: a ledger under another name is not looked for)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand lint" -l ddl-lock-timeout -d 'SET lock_timeout for each migration\'s transaction, so DDL never queues in front of every query' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand lint" -l ddl-retries -d 'Retries (with backoff) of a migration that hit --ddl-lock-timeout' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand lint" -l max-xact-age -d 'Refuse to start while another transaction is older than this' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand lint" -l statement-timeout -d 'SET statement_timeout for the whole run' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand lint" -l heartbeat -d 'How often a long migration says it is still running' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand lint" -l new -d 'Start a new run in --record FILE (an old FILE is kept as FILE.prev)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand lint" -l pretty -d 'Same as --output pretty (the record file is indented too)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand lint" -s q -l quiet -d 'Print only errors on stderr'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand lint" -l always -d 'Run even when the incoming record has failed (instead of skipping)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand lint" -l dry-run -d 'Say in the record what would be done; change nothing'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand lint" -l allow-pooler -d 'Connect through a connection pooler anyway (PgBouncer in session mode only)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand lint" -s h -l help -d 'Print help'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -l record -d 'Keep the record in FILE (read, append this step, write back atomically under FILE.lock)' -r -F
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -l in -d '\'-\' reads the record from stdin whatever it is; \'none\' never touches stdin' -r -f -a "-\t''
none\t''"
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -l output -d 'The record on stdout: json (one line; indented on a terminal), pretty, or none (keep it with --record)' -r -f -a "json\t''
pretty\t''
none\t''"
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -l timeout -d 'Hard deadline for the whole step (e.g. 90s, 5m)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -l host-id -d 'The host name in the record, where several nodes share one machine' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -l lock-timeout -d 'How long to wait for the migration lock another run holds (exit 4, naming the holder)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -l db -d 'The database: sqlite:///abs/path.db, sqlite://rel/path.db (the rest is the file\'s path: `#` and `?` are part of it, %XX is decoded), postgres://user@host:port/db?sslmode=… (a password here is visible in `ps`: prefer --db-env)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -l db-env -d 'Read the database URL from this environment variable [default: DATABASE_URL]' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -l dir -d 'The migrations folder [default: migrations/ of the last ugw-fetch step\'s artifact]' -r -F
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -l ledger-schema -d 'PostgreSQL: the schema of the ledger table, created when missing [default: ugw, a schema of its own; a ledger an older ugw-migrate made in the schema its session started in (usually public) is found there and kept]; every statement names it, so neither a migration\'s SET search_path nor the session\'s search_path ever moves or hides the ledger' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -l ledger-table -d 'SQLite: the ledger table\'s name [default: ugw_migrations], for an application that lists every table of its database (give the same name to every run: a ledger under another name is not looked for)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -l ddl-lock-timeout -d 'SET lock_timeout for each migration\'s transaction, so DDL never queues in front of every query' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -l ddl-retries -d 'Retries (with backoff) of a migration that hit --ddl-lock-timeout' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -l max-xact-age -d 'Refuse to start while another transaction is older than this' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -l statement-timeout -d 'SET statement_timeout for the whole run' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -l heartbeat -d 'How often a long migration says it is still running' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -l applied -d 'The database was fixed by hand: record VERSION as applied'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -l forget -d 'Drop VERSION\'s ledger row so that the next `up` runs it again'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -l force -d 'With --forget: drop the row of a migration that succeeded (the next `up` runs it again)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -l drop-invalid-indexes -d 'Drop the INVALID indexes a failed CREATE INDEX CONCURRENTLY left behind'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -l new -d 'Start a new run in --record FILE (an old FILE is kept as FILE.prev)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -l pretty -d 'Same as --output pretty (the record file is indented too)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -s q -l quiet -d 'Print only errors on stderr'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -l always -d 'Run even when the incoming record has failed (instead of skipping)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -l dry-run -d 'Say in the record what would be done; change nothing'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -l allow-pooler -d 'Connect through a connection pooler anyway (PgBouncer in session mode only)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand resolve" -s h -l help -d 'Print help'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand baseline" -l record -d 'Keep the record in FILE (read, append this step, write back atomically under FILE.lock)' -r -F
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand baseline" -l in -d '\'-\' reads the record from stdin whatever it is; \'none\' never touches stdin' -r -f -a "-\t''
none\t''"
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand baseline" -l output -d 'The record on stdout: json (one line; indented on a terminal), pretty, or none (keep it with --record)' -r -f -a "json\t''
pretty\t''
none\t''"
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand baseline" -l timeout -d 'Hard deadline for the whole step (e.g. 90s, 5m)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand baseline" -l host-id -d 'The host name in the record, where several nodes share one machine' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand baseline" -l lock-timeout -d 'How long to wait for the migration lock another run holds (exit 4, naming the holder)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand baseline" -l db -d 'The database: sqlite:///abs/path.db, sqlite://rel/path.db (the rest is the file\'s path: `#` and `?` are part of it, %XX is decoded), postgres://user@host:port/db?sslmode=… (a password here is visible in `ps`: prefer --db-env)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand baseline" -l db-env -d 'Read the database URL from this environment variable [default: DATABASE_URL]' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand baseline" -l dir -d 'The migrations folder [default: migrations/ of the last ugw-fetch step\'s artifact]' -r -F
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand baseline" -l ledger-schema -d 'PostgreSQL: the schema of the ledger table, created when missing [default: ugw, a schema of its own; a ledger an older ugw-migrate made in the schema its session started in (usually public) is found there and kept]; every statement names it, so neither a migration\'s SET search_path nor the session\'s search_path ever moves or hides the ledger' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand baseline" -l ledger-table -d 'SQLite: the ledger table\'s name [default: ugw_migrations], for an application that lists every table of its database (give the same name to every run: a ledger under another name is not looked for)' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand baseline" -l ddl-lock-timeout -d 'SET lock_timeout for each migration\'s transaction, so DDL never queues in front of every query' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand baseline" -l ddl-retries -d 'Retries (with backoff) of a migration that hit --ddl-lock-timeout' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand baseline" -l max-xact-age -d 'Refuse to start while another transaction is older than this' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand baseline" -l statement-timeout -d 'SET statement_timeout for the whole run' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand baseline" -l heartbeat -d 'How often a long migration says it is still running' -r
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand baseline" -l create -d 'SQLite: create the database file when it does not exist (a first install); without it a missing file is refused (exit 2), so a mistyped --db never starts an empty database'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand baseline" -l new -d 'Start a new run in --record FILE (an old FILE is kept as FILE.prev)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand baseline" -l pretty -d 'Same as --output pretty (the record file is indented too)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand baseline" -s q -l quiet -d 'Print only errors on stderr'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand baseline" -l always -d 'Run even when the incoming record has failed (instead of skipping)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand baseline" -l dry-run -d 'Say in the record what would be done; change nothing'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand baseline" -l allow-pooler -d 'Connect through a connection pooler anyway (PgBouncer in session mode only)'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand baseline" -s h -l help -d 'Print help'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand help; and not __fish_seen_subcommand_from up status plan lint resolve baseline help" -f -a "up" -d 'Apply the pending migrations of a phase, in version order'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand help; and not __fish_seen_subcommand_from up status plan lint resolve baseline help" -f -a "status" -d 'Applied, pending (by phase), failed and changed migrations'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand help; and not __fish_seen_subcommand_from up status plan lint resolve baseline help" -f -a "plan" -d 'Exactly what `up` would run, in order, with checksums; takes no lock, writes nothing'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand help; and not __fish_seen_subcommand_from up status plan lint resolve baseline help" -f -a "lint" -d 'Refuse pre-deploy DDL that breaks the old release or locks a busy table'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand help; and not __fish_seen_subcommand_from up status plan lint resolve baseline help" -f -a "resolve" -d 'After a failed no-transaction migration: list it, mark it applied or forget it; drop INVALID indexes'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand help; and not __fish_seen_subcommand_from up status plan lint resolve baseline help" -f -a "baseline" -d 'Adopt an existing schema: record every migration up to VERSION as applied without running it'
complete -c ugw-migrate -n "__fish_ugw_migrate_using_subcommand help; and not __fish_seen_subcommand_from up status plan lint resolve baseline help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
