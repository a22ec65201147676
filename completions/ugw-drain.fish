complete -c ugw-drain -l record -d 'Keep the record in FILE (read, append this step, write back atomically under FILE.lock)' -r -F
complete -c ugw-drain -l in -d '\'-\' reads the record from stdin whatever it is; \'none\' never touches stdin' -r -f -a "-\t''
none\t''"
complete -c ugw-drain -l output -d 'The record on stdout: json (one line; indented on a terminal), pretty, or none (keep it with --record)' -r -f -a "json\t''
pretty\t''
none\t''"
complete -c ugw-drain -l lock-timeout -d 'How long to wait for a lock another run holds before giving up (exit 4)' -r
complete -c ugw-drain -l host-id -d 'The host name in the record, where several nodes share one machine' -r
complete -c ugw-drain -l haproxy -d 'HAProxy\'s admin-level stats socket: a unix socket path or tcp:HOST:PORT (repeatable: every instance is set, their counts summed)' -r
complete -c ugw-drain -l server -d 'The server to drain, as haproxy.cfg names it' -r
complete -c ugw-drain -l state -d 'drain: no new sessions but sticky ones; maint: none at all' -r -f -a "drain\t''
maint\t''"
complete -c ugw-drain -l zero-readings -d 'Done when N readings in a row see nothing in flight' -r
complete -c ugw-drain -l maint-after -d 'Escalate from drain to maint when work is still in flight after DURATION (sticky clients keep a drained server busy)' -r
complete -c ugw-drain -l signal -d 'Send SIG (QUIT for nginx\'s graceful stop) and wait for the process to exit; a stop, for after the balancer removed the node' -r
complete -c ugw-drain -l pid -d 'The process to signal' -r
complete -c ugw-drain -l pidfile -d 'Read the process id from FILE' -r -F
complete -c ugw-drain -l container -d 'Signal the main process of Docker container NAME (docker kill --signal) and wait until the container has exited; the result names its id and exit code' -r
complete -c ugw-drain -l grace -d 'With --on-timeout escalate: how long TERM has before KILL' -r
complete -c ugw-drain -l flag-file -d 'Create PATH atomically: the balancer\'s health check (e.g. /health/lb, never the readiness check) fails on it; --undo removes it' -r -F
complete -c ugw-drain -l http-post -d 'POST to the application\'s own drain endpoint (with --undo: the endpoint that puts it back)' -r
complete -c ugw-drain -l lb-grace -d 'How long the balancer takes to notice (its check interval times fall) before in-flight work is counted' -r
complete -c ugw-drain -l inflight-metric -d 'A Prometheus gauge of requests in flight, summed over its label sets (NAME may carry matchers: name{path!="/metrics"})' -r
complete -c ugw-drain -l inflight-floor -d 'What the gauge reads when idle (1 for an application that counts the scrape itself)' -r
complete -c ugw-drain -l port -d 'Count ESTABLISHED TCP connections to local port N instead (idle keep-alive connections from a balancer count too)' -r
complete -c ugw-drain -l header -d 'Send this header with every request (repeatable); not for secrets, see --header-env' -r
complete -c ugw-drain -l header-env -d 'Send header NAME with the value of environment variable ENVVAR (repeatable); the value is never shown' -r
complete -c ugw-drain -l cacert -d 'Trust the certificates in this PEM file (CAs, or the server\'s own self-signed one) instead of the system\'s' -r -F
complete -c ugw-drain -l on-timeout -d 'At the deadline: fail (exit 1, node left drained), proceed (exit 0, "forced": true), escalate (--signal: TERM, then KILL after --grace)' -r -f -a "fail\t''
proceed\t''
escalate\t''"
complete -c ugw-drain -l interval -d 'Time between two in-flight readings (at least 10ms)' -r
complete -c ugw-drain -l timeout -d 'Hard deadline for the whole step (e.g. 90s, 5m)' -r
complete -c ugw-drain -l new -d 'Start a new run in --record FILE (an old FILE is kept as FILE.prev)'
complete -c ugw-drain -l pretty -d 'Same as --output pretty (the record file is indented too)'
complete -c ugw-drain -s q -l quiet -d 'Print only errors on stderr'
complete -c ugw-drain -l always -d 'Run even when the incoming record has failed (instead of skipping)'
complete -c ugw-drain -l dry-run -d 'Say in the record what would be done; change nothing'
complete -c ugw-drain -l insecure -d 'Do not verify TLS certificates (self-signed test set-ups only)'
complete -c ugw-drain -l undo -d 'Put the node back: the HAProxy state from before the drain (then wait until UP), or remove the flag file; without method flags, undo the record\'s last drain'
complete -c ugw-drain -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ugw-drain -s V -l version -d 'Print version'
