complete -c ugw-fetch -l record -d 'Keep the record in FILE (read, append this step, write back atomically under FILE.lock)' -r -F
complete -c ugw-fetch -l in -d '\'-\' reads the record from stdin whatever it is; \'none\' never touches stdin' -r -f -a "-\t''
none\t''"
complete -c ugw-fetch -l output -d 'The record on stdout: json (one line; indented on a terminal), pretty, or none (keep it with --record)' -r -f -a "json\t''
pretty\t''
none\t''"
complete -c ugw-fetch -l lock-timeout -d 'How long to wait for a lock another run holds before giving up (exit 4)' -r
complete -c ugw-fetch -l host-id -d 'The host name in the record, where several nodes share one machine' -r
complete -c ugw-fetch -l url -d 'The artifact: http://, https:// or file://' -r
complete -c ugw-fetch -l dest -d 'The staging folder (created if missing)' -r -F
complete -c ugw-fetch -l name -d 'The staged file\'s name [default: the URL\'s file name]' -r
complete -c ugw-fetch -l release -d 'The version label [default: parsed from the file name, e.g. v1.2.3, 2026.5.17.post4]' -r
complete -c ugw-fetch -l sha256 -d 'The artifact\'s SHA-256' -r
complete -c ugw-fetch -l sha256-url -d 'A SHA256SUMS file (sha256sum or BSD format, or a lone .sha256 hash) to take the digest from' -r
complete -c ugw-fetch -l sha256-file -d 'The same, from a local file' -r -F
complete -c ugw-fetch -l minisign-pubkey -d 'A minisign public key (base64, or a .pub file) the signature must verify with' -r
complete -c ugw-fetch -l minisign-sig-url -d 'The .minisig of the checksum file when one is given, else of the artifact. Both algorithms minisign 0.11 verifies are accepted: prehashed (its default) is checked as the file streams; legacy (minisign -S -l) signs the whole file, which is checked from the staged temp file, mapped, never read into memory. The trusted comment must verify too' -r
complete -c ugw-fetch -l strip-components -d 'Drop N leading path components of every archive entry' -r
complete -c ugw-fetch -l mode -d 'The staged file\'s mode (e.g. 755) [default: 644]' -r
complete -c ugw-fetch -l smoke -d 'Run CMD (sh -c; {} is the new file or folder) before the final rename; failing it removes the artifact' -r
complete -c ugw-fetch -l smoke-timeout -d 'How long the smoke test may take' -r
complete -c ugw-fetch -l max-bytes -d 'Refuse an artifact larger than N bytes' -r
complete -c ugw-fetch -l keep -d 'After a successful fetch, remove the folders ugw-fetch extracted into --dest beyond the N newest (never this one, one a ugw-fetch step of this run staged, a downloaded file, or anything ugw-fetch did not make)' -r
complete -c ugw-fetch -l image -d 'Pull this image (repo:tag or repo@sha256:…) through the docker CLI instead of --url; it must have --digest, REF\'s digest or the one --sha256-url/--sha256-file lists' -r
complete -c ugw-fetch -l digest -d 'The digest the --image must have (its manifest\'s, as docker pull prints it)' -r
complete -c ugw-fetch -l registry-login-env -d 'Log in to REF\'s registry as USER with the password in ENVVAR (docker login --password-stdin into a private DOCKER_CONFIG removed afterwards; never shown)' -r
complete -c ugw-fetch -l header -d 'Send this header with every request (repeatable); not for secrets, see --header-env' -r
complete -c ugw-fetch -l header-env -d 'Send header NAME with the value of environment variable ENVVAR (repeatable); the value is never shown' -r
complete -c ugw-fetch -l cacert -d 'Trust the certificates in this PEM file (CAs, or the server\'s own self-signed one) instead of the system\'s' -r -F
complete -c ugw-fetch -l sums-header -d 'A header for the --sha256-url and --minisign-sig-url requests (repeatable); --header goes to --url\'s origin only' -r
complete -c ugw-fetch -l sums-header-env -d 'The same, its value read from ENVVAR and never shown (repeatable)' -r
complete -c ugw-fetch -l timeout -d 'Hard deadline for the whole step (e.g. 90s, 5m)' -r
complete -c ugw-fetch -l new -d 'Start a new run in --record FILE (an old FILE is kept as FILE.prev)'
complete -c ugw-fetch -l pretty -d 'Same as --output pretty (the record file is indented too)'
complete -c ugw-fetch -s q -l quiet -d 'Print only errors on stderr'
complete -c ugw-fetch -l always -d 'Run even when the incoming record has failed (instead of skipping)'
complete -c ugw-fetch -l dry-run -d 'Say in the record what would be done; change nothing'
complete -c ugw-fetch -l no-verify -d 'Stage without any check (recorded as "verified": false)'
complete -c ugw-fetch -l extract -d 'Unpack a .tar.gz, .tgz, .tar, .tar.zst, .tar.xz or .tar.bz2 into DIR/<name>/, strictly (nothing escapes it)'
complete -c ugw-fetch -l allow-absolute-symlinks -d 'Let the release hold symlinks to absolute paths (a venv\'s bin/python3); nothing is ever written through a link, and relative links must still stay inside'
complete -c ugw-fetch -l insecure -d 'Do not verify TLS certificates (self-signed test set-ups only)'
complete -c ugw-fetch -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ugw-fetch -s V -l version -d 'Print version'
