#!/usr/bin/env bash
# The failure path of ugw(7) (UPGRADE AND ROLLBACK), run as written on records that failed at
# each step of the upgrade pipeline: a demo node on v1.0.0 with its data, an upgrade that fails
# at step STEP, then the four lines of the failure path, twice, with a write by the service
# between the two. After each, the node must be where it began: v1.0.0 live and answering, in
# traffic, its files and its schema as before, and the write made between the two runs kept.
# tests/it/failure_path.rs runs it; it prints one "ok STEP" line per scenario and exits non-zero
# on the first one that does not hold.
#   failure_path.sh REPO BIN_DIR WORK STEP...
set -euo pipefail
repo=$1 bin=$2 work=$3
shift 3
export PATH="$bin:$PATH"
source "$repo/examples/lib/releases.sh"
source "$repo/examples/lib/artifacts.sh"

ROOT=$work/srv/app
DATA=$work/data
BACKUPS=$work/backups
STAGING=$work/staging
DRAIN_FLAG=$work/drain.flag
RESTART=$work/restart
OLD=v1.0.0
pidfile=$work/app.pid
db="sqlite://$DATA/app.db"

cleanup() {
  stop_pidfile "$pidfile"
  [ -n "${release_server_pid:-}" ] && kill -TERM "$release_server_pid" 2>/dev/null
  wait 2>/dev/null || true
}
trap cleanup EXIT
# A test that gives up on us sends TERM: stop what we started (its sessions are their own).
trap 'exit 143' TERM

fail() { echo "FAILED $step: $*" >&2; [ -s "$work/app.log" ] && tail -n 5 "$work/app.log" >&2; exit 1; }

# ---- the releases, and one more whose migration fails ----
mkdir -p "$work/www" "$DATA/files" "$work/bad-migration"
echo "uploaded by v1" >"$DATA/files/report.txt"
printf -- '-- a migration that fails halfway\nALTER TABLE items ADD COLUMN broken TEXT;\nSELECT * FROM no_such_table;\n' \
  >"$work/bad-migration/0005_broken.sql"
demo_releases "$work/www" "$work/build" "$bin/ugw-demo-app"
pack_release "$work/www" "$work/build" "$bin/ugw-demo-app" v2.9.0 \
  "$repo/examples/demo-migrations/v1" "$repo/examples/demo-migrations/v2" "$work/bad-migration" -- \
  --require-column items.note
sign_releases "$work/www"
serve_releases "$work/www" "$work/www"
BASE=$release_base

port=$(free_port)
APP=http://127.0.0.1:$port
# The node's restart command, as its init script would have it: the system's
# start-stop-daemon stops the process the pidfile names (TERM, then KILL) and starts the
# release `current` points at now, detached (a session of its own), its pid in the pidfile.
# ugw(7)'s failure path takes a --restart command; this one needs no service script of ours.
{
  echo '#!/usr/bin/env bash'
  echo 'set -e'
  echo "start-stop-daemon --stop --quiet --oknodo --pidfile $(printf %q "$pidfile") --name ugw-demo-app \\"
  echo '  --retry TERM/10/KILL/5 --remove-pidfile'
  echo "exec start-stop-daemon --start --quiet --background --make-pidfile --pidfile $(printf %q "$pidfile") \\"
  echo "  --output $(printf %q "$work/app.log") --startas $(printf %q "$ROOT/current/bin/app") -- \\"
  echo "  --listen 127.0.0.1:$port --db $(printf %q "$DATA/app.db") --lb-flag $(printf %q "$DRAIN_FLAG")"
} >"$RESTART"
chmod 755 "$RESTART"

ugw-fetch --url "$BASE/app-$OLD-linux-amd64.tar.gz" --sha256-url "$BASE/SHA256SUMS" \
    --dest "$STAGING" --extract --in none \
  | ugw-migrate up --create --db "$db" \
  | ugw-swap --root "$ROOT" --restart "$RESTART" \
  | ugw-wait-healthy --url "$APP/health/ready" --pidfile "$pidfile" --expect-version --timeout 30s \
  >"$work/v1.json"

cat >"$work/smoke.json" <<EOF
{"checks": [
  {"name": "ready", "type": "http", "url": "$APP/health/ready", "expect": [".status == \"ok\""]},
  {"name": "work", "type": "http", "url": "$APP/work?ms=1", "samples": 20, "p95": "2s"}
]}
EOF

schema() { sqlite3 "$DATA/app.db" "SELECT group_concat(name, ',') FROM pragma_table_info('items')"; }
items() { sqlite3 "$DATA/app.db" "SELECT group_concat(name, ',') FROM (SELECT name FROM items ORDER BY id)"; }
files() { (cd "$DATA/files" && ls | tr '\n' ' '); }
schema_before=$(schema)

# where_it_began ITEMS FILES: v1.0.0 live and answering, in traffic, its schema as it was, and
# exactly these rows of items and these files.
where_it_began() {
  [ "$(readlink "$ROOT/current")" = "releases/$OLD" ] || fail "current -> $(readlink "$ROOT/current")"
  curl -sf "$APP/health/ready" | grep -q "\"version\":\"$OLD\"" || fail "the service does not answer $OLD"
  [ ! -e "$DRAIN_FLAG" ] || fail "the node is still out of traffic"
  curl -sf "$APP/health/lb" >/dev/null || fail "the balancer's check fails"
  [ "$(cat "$DATA/files/report.txt")" = "uploaded by v1" ] || fail "report.txt changed"
  [ "$(schema)" = "$schema_before" ] || fail "schema $(schema), was $schema_before"
  [ "$(items)" = "$1" ] || fail "items '$(items)', expected '$1'"
  [ "$(files)" = "$2" ] || fail "files '$(files)', expected '$2'"
}

# The failure path, verbatim from ugw(7), on run.json, as a script of its own: bash stops at
# the first line that fails.
export ROOT RESTART OLD APP
cat >"$work/failure-path" <<'LINES'
set -euo pipefail
ugw-swap --root "$ROOT" --rollback --restart "$RESTART" --record run.json --output none
ugw-backup restore --in-place --expect-app-version "$OLD" --record run.json --output none
ugw-wait-healthy --url "$APP/health/ready" --expect-version "$OLD" --always \
  --record run.json --output none
ugw-drain --undo --always --record run.json --output pretty
LINES
failure_path() { bash "$work/failure-path"; }

cd "$work"
n=0
for step in "$@"; do
  n=$((n + 1))
  V=v2.0.0 path=$DATA/files swap_restart=$RESTART drain_timeout=30s slow=""
  case $step in
    baseline) smoke=$work/missing-smoke.json ;;
    backup) path=$DATA/no-such-folder ;;
    fetch) V=v9.9.9 ;;
    migrate) V=v2.9.0 ;;
    drain) drain_timeout=1s slow=3000 ;;
    swap) swap_restart=false ;;
    wait-healthy) V=v3.0.0 ;;
    verify) V=v2.1.0 ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
  [ "$step" = baseline ] || smoke=$work/smoke.json
  slow_pid=""
  if [ -n "$slow" ]; then curl -s "$APP/work?ms=$slow" >/dev/null & slow_pid=$!; fi
  status=0
  ugw-verify baseline --in none --checks "$smoke" \
    | ugw-backup create --path "$path" --db "$db" \
        --out "$BACKUPS" --name "app-before-$V-$n" --app-version "$OLD" \
    | ugw-backup verify \
    | ugw-fetch --url "$BASE/app-$V-linux-amd64.tar.gz" --sha256-url "$BASE/SHA256SUMS" \
        --dest "$STAGING" --extract \
    | ugw-migrate up --db "$db" \
    | ugw-drain --flag-file "$DRAIN_FLAG" --lb-grace 100ms --timeout "$drain_timeout" \
        --inflight-metric "$APP/metrics#http_requests_in_flight" \
    | ugw-swap --root "$ROOT" --restart "$swap_restart" \
    | ugw-wait-healthy --url "$APP/health/ready" --pidfile "$pidfile" --expect-version --timeout 3s \
    | ugw-drain --undo \
    | ugw-verify --checks "$smoke" --compare --error-tolerance 0 \
    >run.json || status=$?
  [ "$status" -ne 0 ] || fail "the upgrade did not fail"
  failed_at=$(python3 -c 'import json,sys; r=json.load(open("run.json")); print(next(s["tool"] for s in r["steps"] if s["status"] in ("failed","interrupted")))')
  echo "-- $step: the upgrade failed at $failed_at (exit $status)" >&2
  [ -z "$slow_pid" ] || wait "$slow_pid" || true

  failure_path >first.json || fail "the failure path failed (exit $?)"
  where_it_began "first,second" "report.txt "
  # The node takes writes again; the failure path run a second time must keep them, and
  # change nothing.
  sqlite3 "$DATA/app.db" "INSERT INTO items (name) VALUES ('after-$step')"
  echo "written after the failure path" >"$DATA/files/after-$step.txt"
  failure_path >second.json || fail "the second failure path failed (exit $?)"
  where_it_began "first,second,after-$step" "after-$step.txt report.txt "
  python3 - <<'EOF' || fail "the second failure path changed something"
import json
steps = json.load(open("second.json"))["steps"][-4:]
changed = [s["tool"] for s in steps if s["changed"]]
assert not changed, changed
EOF
  sqlite3 "$DATA/app.db" "DELETE FROM items WHERE name = 'after-$step'"
  rm "$DATA/files/after-$step.txt"
  echo "ok $step"
done
