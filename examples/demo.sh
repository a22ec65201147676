#!/usr/bin/env bash
# `make demo`: start the demo service with a ready-after delay, wait for it with
# ugw-wait-healthy and a jq expectation, print the record, stop the service. Nothing is
# left running, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${UGW_BIN_DIR:-target/debug}
work=$(mktemp -d)
app_pid=
cleanup() {
  if [ -n "$app_pid" ] && kill -0 "$app_pid" 2>/dev/null; then
    kill -TERM "$app_pid" 2>/dev/null || true
    wait "$app_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "== starting the demo service (v1.1.0, ready after 1.5 s)" >&2
"$bin/ugw-demo-app" --listen 127.0.0.1:0 --version-label v1.1.0 --ready-after 1500ms \
  >"$work/app.out" 2>"$work/app.err" &
app_pid=$!
for _ in $(seq 100); do
  grep -q '^listening on ' "$work/app.out" 2>/dev/null && break
  sleep 0.05
done
url=$(sed -n 's/^listening on //p' "$work/app.out")
[ -n "$url" ] || { echo "the demo service did not start:" >&2; cat "$work/app.err" >&2; exit 1; }
echo "== the service listens on $url" >&2

echo "== ugw-wait-healthy --url $url/health/ready --expect '.status == \"ok\"' --expect-version v1.1.0 --timeout 30s --pretty" >&2
set +e
"$bin/ugw-wait-healthy" --url "$url/health/ready" --expect '.status == "ok"' \
  --expect-version v1.1.0 --timeout 30s --pretty --in none
status=$?
set -e
echo "== ugw-wait-healthy exited $status; stopping the service" >&2
kill -TERM "$app_pid"
wait "$app_pid" || true
app_pid=
cat "$work/app.err" | grep -v ready_at_unix_ms >&2 || true
exit "$status"
