#!/usr/bin/env bash
# `make demo`: a real upgrade of the demo service, as an operator runs it. Three releases are
# packed and served on loopback; v1 is installed; v2 (which needs a new SQLite column) goes in
# with one pipeline; v3 fails its health check and the failure path puts v2 and its data back.
# Nothing is left running and the temp folder is removed, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
source examples/lib/bins.sh
bin=$(ugw_bin_dir)
export PATH="$bin:$PATH"
work=$(mktemp -d)
root=$work/srv/app          # releases/<version>/ and current -> releases/<version>
data=$work/data             # the service's database and files: what a backup keeps
db="sqlite://$data/app.db"
pidfile=$work/app.pid

say() { echo "== $*" >&2; }
source examples/lib/releases.sh
source examples/lib/artifacts.sh
stop_app() { stop_pidfile "$pidfile"; }

cleanup() {
  local status=$?
  stop_app
  if [ "$status" -ne 0 ] && [ -s "$work/app.log" ]; then
    say "the service's log:"
    tail -n 20 "$work/app.log" >&2
  fi
  if [ -n "${release_server_pid:-}" ]; then
    kill -TERM "$release_server_pid" 2>/dev/null || true
    wait "$release_server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  say "stopped everything; removed $work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- 1. the releases of the demo service, with their migrations, served on loopback ----

mkdir -p "$work/www" "$data/files"
echo "uploaded by v1" >"$data/files/report.txt"
demo_releases "$work/www" "$work/build" "$bin/ugw-demo-app"
serve_releases "$work/www" "$work/www"
base=$release_base
say "releases served at $base (artifact server pid $release_server_pid):"
ls "$work/www" >&2

# ---- 2. install v1 and start it ----

# The demo service has no service manager: ugw-swap is it (--start). At each swap it stops
# the process $pidfile names (TERM, then KILL after --stop-timeout) and starts the release
# now live with this command, run in the release's folder, detached in a session of its
# own, its output appended to --log, its pid written to $pidfile. /health/lb (the load
# balancer's check) fails while the drain flag file exists.
port=$(free_port)
app=http://127.0.0.1:$port
service=(--start "exec bin/app --listen 127.0.0.1:$port --db '$data/app.db' --lb-flag '$work/drain.flag'"
         --pidfile "$pidfile" --log "$work/app.log")

# Each wait below watches the pid --start wrote (--pidfile), so a release that dies at its
# start fails the wait at once (process_exited) instead of keeping the node drained until
# --timeout.

# Take the node out of traffic: the flag file turns the balancer's check red; after its
# detection time (--lb-grace), wait until the service's own in-flight gauge reads zero.
drain() {
  ugw-drain --flag-file "$work/drain.flag" --lb-grace 300ms \
    --inflight-metric "$app/metrics#http_requests_in_flight"
}

fetch() {
  ugw-fetch --url "$base/app-$1-linux-amd64.tar.gz" --sha256-url "$base/SHA256SUMS" \
    --dest "$work/staging" --extract --in none
}

say "install v1.0.0: ugw-fetch --extract | ugw-migrate up --create | ugw-swap --start | ugw-wait-healthy"
fetch v1.0.0 \
  | ugw-migrate up --create --db "$db" \
  | ugw-swap --root "$root" "${service[@]}" \
  | ugw-wait-healthy --url "$app/health/ready" --pidfile "$pidfile" --expect-version --timeout 30s \
  >"$work/v1.json"
say "v1.0.0 runs (pid $(head -n 1 "$pidfile")) at $app"
python3 -m json.tool "$work/v1.json"

# ---- 3. upgrade to v2: one pipeline, then the post-deploy migrations ----

# The checks that prove an upgrade worked, and what "no worse than before" is measured on:
# ready, an item created, read back and deleted (always, even when the read fails), 100
# requests of real work (p95 latency and errors), and the service's own memory. The demo
# shares its CPU with whatever else runs here: a p95 growth under 25 ms is noise.
cat >"$work/smoke.json" <<EOF
{"checks": [
  {"name": "ready", "type": "http", "url": "$app/health/ready", "expect": [".status == \"ok\""]},
  {"name": "create", "type": "http", "method": "POST", "url": "$app/items", "body": {"name": "smoke"},
   "status": 201, "capture": {"item": ".id"}},
  {"name": "read", "type": "http", "url": "$app/items/\${capture:item}", "expect": [".name == \"smoke\""]},
  {"name": "delete", "type": "http", "method": "DELETE", "url": "$app/items/\${capture:item}",
   "status": "2xx", "after": ["read"], "always": true},
  {"name": "work", "type": "http", "url": "$app/work?ms=10", "samples": 100, "p95": "250ms"},
  {"name": "memory", "type": "metrics", "url": "$app/metrics", "after": ["work"], "measure": ["memory"],
   "assert": ["process_resident_memory_bytes <= 256MiB"]}
]}
EOF

say "upgrade to v2.0.0: ugw-verify baseline | ugw-backup create | ugw-backup verify | ugw-fetch --extract | ugw-migrate up | ugw-drain | ugw-swap --start | ugw-wait-healthy --expect-version | ugw-drain --undo | ugw-verify --compare"
# A client's slow request, in flight while the upgrade runs: the drain waits for it, so the
# restart cannot cut it off.
python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=60).status)' \
  "$app/work?ms=3000" >"$work/slow-request.out" 2>&1 &
slow_request=$!
set -o pipefail
ugw-verify baseline --in none --checks "$work/smoke.json" \
  | ugw-backup create --path "$data/files" --db "$db" --out "$work/backups" \
    --name app-before-v2.0.0 --app-version v1.0.0 \
  | ugw-backup verify \
  | ugw-fetch --url "$base/app-v2.0.0-linux-amd64.tar.gz" --sha256-url "$base/SHA256SUMS" \
      --dest "$work/staging" --extract \
  | ugw-migrate up --db "$db" \
  | drain \
  | ugw-swap --root "$root" "${service[@]}" \
  | ugw-wait-healthy --url "$app/health/ready" --pidfile "$pidfile" --expect-version --timeout 30s \
  | ugw-drain --undo \
  | ugw-verify --checks "$work/smoke.json" --compare --latency-floor 25ms --junit "$work/verify-junit.xml" \
  >"$work/v2.json"
wait "$slow_request"
say "v2.0.0 runs (pid $(head -n 1 "$pidfile")); the request in flight during the drain got $(cat "$work/slow-request.out")"
say "v2.0.0 is healthy; the post-deploy migrations (what only v1 used goes)"
ugw-migrate up --phase post --db "$db" --dir "$root/current/migrations" \
  --record "$work/v2.json" --output pretty

# ---- 4. try v3: it never becomes healthy, so the failure path runs ----

say "try v3.0.0 (never healthy): the same pipeline"
v3_status=0
ugw-backup create --in none --path "$data/files" --db "$db" --out "$work/backups" \
    --name app-before-v3.0.0 --app-version v2.0.0 \
  | ugw-backup verify \
  | ugw-fetch --url "$base/app-v3.0.0-linux-amd64.tar.gz" --sha256-url "$base/SHA256SUMS" \
      --dest "$work/staging" --extract \
  | ugw-migrate up --db "$db" \
  | drain \
  | ugw-swap --root "$root" "${service[@]}" \
  | ugw-wait-healthy --url "$app/health/ready" --pidfile "$pidfile" --expect-version --timeout 5s \
  | ugw-drain --undo \
  >"$work/v3.json" || v3_status=$?
say "the v3.0.0 pipeline exited $v3_status (the node stays out of traffic); the failure path: ugw-swap --rollback, ugw-backup restore --in-place, ugw-wait-healthy, ugw-drain --undo --always"
ugw-swap --root "$root" --rollback "${service[@]}" --record "$work/v3.json" --output none
ugw-backup restore --in-place --expect-app-version v2.0.0 --record "$work/v3.json" --output none
ugw-wait-healthy --url "$app/health/ready" --pidfile "$pidfile" --expect-version v2.0.0 --timeout 30s --always \
  --record "$work/v3.json" --output none
ugw-drain --undo --always --record "$work/v3.json" --output pretty
say "v2.0.0 runs again (pid $(head -n 1 "$pidfile")) and is back in traffic"

# ---- 5. what happened ----

# One line per step: what it did, how long it took, and what it changed.
summary() {
  python3 - "$@" <<'EOF'
import json, sys
from datetime import datetime, timedelta

def figure(measure, value):
    if value is None:
        return "n/a"
    if measure.endswith("_ms"):
        return f"{value:.1f} ms"
    if measure.endswith("_bytes"):
        return f"{value / 1048576:.1f} MiB"
    if measure.endswith("_ratio"):
        return f"{value * 100:.2f}%"
    return f"{value:.4g}"

def what(step):
    r, tool = step.get("result") or {}, step["tool"]
    if step["status"] == "skipped":
        return "skipped: the run had already failed"
    if step.get("error"):
        return f"{step['error']['kind']}: {step['error']['message']}"
    if tool == "ugw-backup":
        name = r["archive"].rsplit("/", 1)[-1]
        return f"restored {name} in place" if "in_place" in r else f"verified {name}" if "verified" in r else f"backed up to {name}"
    if tool == "ugw-fetch":
        return f"staged {r['version']} (sha256 verified: {str(r['verified']).lower()})"
    if tool == "ugw-migrate":
        names = ", ".join(f"{m['version']}_{m['name']}" for m in r["applied"]) or "nothing"
        return f"applied ({r['phase']}): {names}"
    if tool == "ugw-swap":
        failed = f"; {r['marked_failed']} marked failed" if r.get("marked_failed") else ""
        return f"current -> {r['current']}, restarted{failed}"
    if tool == "ugw-wait-healthy":
        return f"healthy: {r['targets'][0]['body_excerpt']}"
    if tool == "ugw-drain":
        if r["undo"]:
            return f"back in traffic ({r['method']}: {r['state_before']} -> {r['state_after']})"
        return f"out of traffic ({r['method']}), in flight {r['inflight_start']} -> {r['inflight_end']} in {r['waited_ms']} ms"
    if tool == "ugw-verify":
        rows = ", ".join(f"{c['check']} {c['measure']} {figure(c['measure'], c['baseline'])} -> {figure(c['measure'], c['current'])}" for c in r.get("comparison", []))
        compared = f"; compared with the baseline: {rows}" if rows else ""
        return f"{r['mode']}: {r['passed']} checks passed{compared}"
    return ""

for path in sys.argv[1:]:
    record = json.load(open(path))
    steps = record["steps"]
    begin = [datetime.fromisoformat(s["started"]) for s in steps]
    end = max(b + timedelta(milliseconds=s["elapsed_ms"]) for b, s in zip(begin, steps))
    took = (end - min(begin)).total_seconds()
    print(f"{path.rsplit('/', 1)[-1]}: {'ok' if record['ok'] else 'FAILED'}, {len(steps)} steps in {took:.1f} s")
    for s in steps:
        print(f"  {s['tool']:<17} {s['status']:<7} {s['elapsed_ms'] / 1000:5.2f} s  {what(s)}")
EOF
}
say "summary"
summary "$work/v1.json" "$work/v2.json" "$work/v3.json" >&2
python3 - "$data/app.db" >&2 <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'ugw%' AND name NOT LIKE 'sqlite%' ORDER BY name")]
for table in tables:
    columns = [c[1] for c in db.execute(f"PRAGMA table_info({table})")]
    print(f"schema now: {table}({', '.join(columns)})")
EOF
say "live: $(readlink "$root/current") answers $(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' "$app/health/ready")"
[ "$v3_status" -ne 0 ]
