complete -c ugw-wait-healthy -l record -d 'Keep the record in FILE (read, append this step, write back atomically under FILE.lock)' -r -F
complete -c ugw-wait-healthy -l in -d '\'-\' reads the record from stdin whatever it is; \'none\' never touches stdin' -r -f -a "-\t''
none\t''"
complete -c ugw-wait-healthy -l output -d 'The record on stdout: json (one line; indented on a terminal), pretty, or none (keep it with --record)' -r -f -a "json\t''
pretty\t''
none\t''"
complete -c ugw-wait-healthy -l lock-timeout -d 'How long to wait for a lock another run holds before giving up (exit 4)' -r
complete -c ugw-wait-healthy -l host-id -d 'The host name in the record, where several nodes share one machine' -r
complete -c ugw-wait-healthy -l url -d 'An HTTP or HTTPS URL to GET' -r
complete -c ugw-wait-healthy -l tcp -d 'A TCP port that must accept a connection (IPv6 as [::1]:8080)' -r
complete -c ugw-wait-healthy -l cmd -d 'A command (run by sh -c, in its own process group) that must exit 0' -r
complete -c ugw-wait-healthy -l status -d 'Acceptable status codes: 200, 200,204, 2xx, 200-299 [default: 2xx]' -r
complete -c ugw-wait-healthy -l expect -d 'A jq expression on the JSON body that must yield true (repeatable)' -r
complete -c ugw-wait-healthy -l body-regex -d 'A regular expression the body must match; multi-line: ^ and $ match at every line (repeatable)' -r
complete -c ugw-wait-healthy -l expect-version -d 'The body\'s version must equal V (v1.1.0 = 1.1.0); without V, the version this run\'s ugw-swap --rollback went back to, else the version of the last ugw-fetch step' -r
complete -c ugw-wait-healthy -l version-path -d 'Where the version is in the body [default: .version]' -r
complete -c ugw-wait-healthy -l max-latency -d 'A response slower than this fails the attempt' -r
complete -c ugw-wait-healthy -l method -d 'The HTTP method [default: GET]' -r
complete -c ugw-wait-healthy -l data -d 'Send this body with every attempt (with --method POST for a POST; the method is kept)' -r
complete -c ugw-wait-healthy -l data-file -d 'Send this file\'s content (read once, at most 8 MiB) as the body of every attempt' -r -F
complete -c ugw-wait-healthy -l header -d 'Send this header with every request (repeatable); not for secrets, see --header-env' -r
complete -c ugw-wait-healthy -l header-env -d 'Send header NAME with the value of environment variable ENVVAR (repeatable); the value is never shown' -r
complete -c ugw-wait-healthy -l cacert -d 'Trust the certificates in this PEM file (CAs, or the server\'s own self-signed one) instead of the system\'s' -r -F
complete -c ugw-wait-healthy -l fail-if -d 'Stop at once when this jq expression on the body yields true (e.g. \'.status == "failed"\')' -r
complete -c ugw-wait-healthy -l fail-status -d 'Stop at once on these status codes (e.g. 500,501)' -r
complete -c ugw-wait-healthy -l fail-if-version-differs -d 'Stop when a --url answers the same other version than --expect-version N rounds in a row (another release runs)' -r
complete -c ugw-wait-healthy -l pid -d 'The process just started: when it exits, the wait fails at once, with its exit status when known' -r
complete -c ugw-wait-healthy -l pidfile -d 'As --pid, the pid read from FILE (read each round until it names one; then that process is watched)' -r -F
complete -c ugw-wait-healthy -l attempt-timeout -d 'Longest one attempt may take (clipped to the time left)' -r
complete -c ugw-wait-healthy -l interval -d 'Time between the starts of two rounds, at least 10ms [default: 100ms, or 1s with a --cmd target]' -r
complete -c ugw-wait-healthy -l max-interval -d 'Back off exponentially (with jitter) while failing, up to this, from the first failure [default: keep --interval for 10s, then back off up to 1s]' -r
complete -c ugw-wait-healthy -l successes -d 'Passing rounds needed in a row' -r
complete -c ugw-wait-healthy -l stable-for -d 'Targets must keep passing for this long' -r
complete -c ugw-wait-healthy -l max-failures -d 'With --stable-for: forgive up to N failed rounds within the window instead of starting it over' -r
complete -c ugw-wait-healthy -l timeout -d 'Overall deadline (never overrun by more than 50 ms)' -r
complete -c ugw-wait-healthy -l new -d 'Start a new run in --record FILE (an old FILE is kept as FILE.prev)'
complete -c ugw-wait-healthy -l pretty -d 'Same as --output pretty (the record file is indented too)'
complete -c ugw-wait-healthy -s q -l quiet -d 'Print only errors on stderr'
complete -c ugw-wait-healthy -l always -d 'Run even when the incoming record has failed (instead of skipping)'
complete -c ugw-wait-healthy -l dry-run -d 'Say in the record what would be done; change nothing'
complete -c ugw-wait-healthy -l insecure -d 'Do not verify TLS certificates (self-signed test set-ups only)'
complete -c ugw-wait-healthy -l once -d 'One round, no polling: exit 0 when the targets pass, 1 when not'
complete -c ugw-wait-healthy -l any -d 'One passing target is enough (e.g. the leader among N)'
complete -c ugw-wait-healthy -l until-down -d 'Wait until every target fails (e.g. for the old process to stop)'
complete -c ugw-wait-healthy -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ugw-wait-healthy -s V -l version -d 'Print version'
