#!/usr/bin/env bash
# `make demo-compose`: the Compose stack of examples/compose/ upgraded as an operator runs it,
# on loopback, offline. A registry on 127.0.0.1 gets three images of the demo service (v1.0.0;
# v2.0.0, not ready until its new column items.note exists; v3.0.0, healthy, but every other
# unit of work fails); HAProxy on the host balances web's two slots; v1.0.0 is installed;
# upgrade.sh upgrades to v2.0.0 (web start-first with a slow request in flight through
# HAProxy, worker stop-first) and then tries v3.0.0: it goes live, fails the checks after the
# swap, and the failure path swaps v2.0.0 back in (start-first too) and restores the data (v3's
# migration goes again). Everything it started is removed on exit, whatever happens: the
# Compose projects (containers, volumes, networks), the data volume, HAProxy, the registry and
# its images, the temp folder.
#
# Environment (all optional): UGW_BIN_DIR (the ugw binaries), COMPOSE_DEMO_PROJECT (the name
# prefix of everything made in Docker; default ugwdemo-PID), COMPOSE_DEMO_RECORDS (a folder to
# copy the run records into before the cleanup).
set -euo pipefail
cd "$(dirname "$0")/../.."
source examples/lib/bins.sh
bin=$(ugw_bin_dir)
export PATH="$bin:$PATH"
source examples/lib/releases.sh
source examples/lib/images.sh
say() { echo "== $*" >&2; }

work=$(mktemp -d)
PROJECT=${COMPOSE_DEMO_PROJECT:-ugwdemo-$$}
STACK=$work/stack          # compose.yml, .env, checks.json (and ugw-swap's .ugw/)
BACKUPS=$work/backups
SUMS=$work/image-sums.txt  # what the release process publishes: DIGEST  REPO:TAG
VOLUME=$PROJECT-data
SLOT_A=$(free_port) SLOT_B=$(free_port) WORKER_PORT=$(free_port) LB_PORT=$(free_port)
SLOTS=$SLOT_A,$SLOT_B
LB=http://127.0.0.1:$LB_PORT
ADMIN=$work/haproxy.sock
export REPO SUMS STACK PROJECT VOLUME SLOTS WORKER_PORT LB ADMIN BACKUPS

# Compose v2 (`docker compose`) when it answers, else v1 (`docker-compose`), as ugw-swap does.
compose() {
  if docker compose version >/dev/null 2>&1; then docker compose "$@"; else docker-compose "$@"; fi
}

cleanup() {
  local status=$? project
  if [ -n "${COMPOSE_DEMO_RECORDS:-}" ]; then
    mkdir -p "$COMPOSE_DEMO_RECORDS"
    cp "$work"/v*.json "$COMPOSE_DEMO_RECORDS/" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -s "$work/haproxy.log" ]; then
    say "HAProxy's log:"
    tail -n 20 "$work/haproxy.log" >&2
  fi
  if [ -f "$STACK/compose.yml" ]; then
    for project in "$PROJECT-web-$SLOT_A" "$PROJECT-web-$SLOT_B" "$PROJECT-worker"; do
      WEB_PORT=0 compose --project-name "$project" --file "$STACK/compose.yml" down -v \
        --remove-orphans >/dev/null 2>&1 || true
    done
  fi
  docker volume rm -f "$VOLUME" >/dev/null 2>&1 || true
  if [ -n "${haproxy_pid:-}" ]; then
    kill -TERM "$haproxy_pid" 2>/dev/null || true
    wait "$haproxy_pid" 2>/dev/null || true
  fi
  stop_registry
  rm -rf "$work"
  say "removed the Compose projects $PROJECT-*, the volume $VOLUME, HAProxy, the registry and $work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- 1. three images of the demo service, pushed to a registry on loopback ----

start_registry "$work/registry"
migrations=examples/demo-migrations
mkdir -p "$work/migrations/v1" "$work/migrations/v2" "$work/migrations/v3"
cp -R "$migrations/v1/." "$work/migrations/v1/"
cp -R "$migrations/v1/." "$migrations/v2/." "$work/migrations/v2/"
cp -R "$migrations/v1/." "$migrations/v2/." "$migrations/v3/." "$work/migrations/v3/"
build_demo_image "$bin" "$PROJECT/app" v1.0.0 "$work/migrations/v1" --
image_sums "$SUMS" v1.0.0
build_demo_image "$bin" "$PROJECT/app" v2.0.0 "$work/migrations/v2" -- --require-column items.note
image_sums "$SUMS" v2.0.0
build_demo_image "$bin" "$PROJECT/app" v3.0.0 "$work/migrations/v3" -- \
  --require-column items.note --error-every 2
image_sums "$SUMS" v3.0.0
REPO=$image_repository
say "images pushed to $REGISTRY (and removed here, so ugw-fetch really pulls them):"
cat "$SUMS" >&2

# ---- 2. the stack: its files, its data volume, HAProxy on the host ----

mkdir -p "$STACK" "$BACKUPS"
cp examples/compose/compose.yml examples/compose/checks.json "$STACK/"
cat >"$STACK/.env" <<ENV
APP_IMAGE=$REPO:latest
APP_VOLUME=$VOLUME
WORKER_PORT=$WORKER_PORT
ENV
docker volume create "$VOLUME" >/dev/null
export SLOT_A SLOT_B LB_PORT
envsubst '${ADMIN} ${LB_PORT} ${SLOT_A} ${SLOT_B}' <examples/compose/haproxy.cfg.in >"$work/haproxy.cfg"
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
haproxy_pid=$!
until [ -S "$ADMIN" ]; do
  running "$haproxy_pid" || { cat "$work/haproxy.log" >&2; exit 1; }
  sleep 0.05
done
say "HAProxy listens at $LB (web's slots: $SLOT_A, $SLOT_B; admin socket $ADMIN)"

# ---- 3. install v1.0.0 ----

say "install v1.0.0: ugw-fetch --image | ugw-migrate up --from-image --create | ugw-swap --compose (web, start-first) | ugw-swap --compose (worker) | ugw-wait-healthy"
set -o pipefail
ugw-fetch --in none --image "$REPO:v1.0.0" --sha256-file "$SUMS" \
  | ugw-migrate up --from-image --create \
      --db "sqlite://$(docker volume inspect --format '{{.Mountpoint}}' "$VOLUME")/app.db" \
  | ugw-swap --compose "$STACK/compose.yml" --project "$PROJECT-web" --service web \
      --strategy start-first --port-env WEB_PORT --slots "$SLOTS" \
      --restart-check 'http://127.0.0.1:{port}/health/ready' --restart-timeout 15s \
  | ugw-swap --compose "$STACK/compose.yml" --project "$PROJECT-worker" --service worker \
      --restart-check "http://127.0.0.1:$WORKER_PORT/health/ready" \
  | ugw-wait-healthy --url "$LB/health/ready" --expect-version --successes 3 --timeout 1m \
  >"$work/v1.json"
say "v1.0.0 serves through HAProxy at $LB"

# ---- 4. upgrade to v2.0.0, a client's slow request in flight through HAProxy ----

python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=60).status)' \
  "$LB/work?ms=4000" >"$work/slow-request.out" 2>&1 &
slow_request=$!
say "upgrade to v2.0.0: examples/compose/upgrade.sh v2.0.0 v1.0.0"
examples/compose/upgrade.sh v2.0.0 v1.0.0 "$work/v2.json"
wait "$slow_request"
say "v2.0.0 serves through HAProxy; the request in flight during the swap got $(cat "$work/slow-request.out")"

# ---- 5. try v3.0.0: healthy, but ugw-verify finds its failing work, so the failure path runs ----

say "try v3.0.0 (every other /work fails): examples/compose/upgrade.sh v3.0.0 v2.0.0"
v3_status=0
examples/compose/upgrade.sh v3.0.0 v2.0.0 "$work/v3.json" || v3_status=$?
say "upgrade.sh v3.0.0 exited $v3_status"

# ---- 6. what happened ----

summary() {
  python3 - "$@" <<'PY'
import json, sys
for path in sys.argv[1:]:
    record = json.load(open(path))
    print(f"{path.rsplit('/', 1)[-1]}: {'ok' if record['ok'] else 'FAILED'}, {len(record['steps'])} steps")
    for s in record["steps"]:
        r = s.get("result") or {}
        if s["status"] == "skipped":
            what = "skipped: the run had already failed"
        elif s.get("error"):
            what = f"{s['error']['kind']}: {s['error']['message']}"
        elif s["tool"] == "ugw-fetch":
            what = f"pulled {r.get('reference')} ({r.get('version')})"
        elif s["tool"] == "ugw-swap":
            slot = (r.get("compose") or {}).get("slot")
            what = f"{'rollback, ' if r.get('rollback') else ''}{'changed' if r.get('changed') else 'unchanged'}: {r.get('current')}" + (f" on slot {slot}" if slot else "")
        elif s["tool"] == "ugw-migrate":
            what = "applied: " + (", ".join(f"{m['version']}_{m['name']}" for m in r.get("applied", [])) or "nothing")
        elif s["tool"] == "ugw-backup":
            stopped = len((r.get("containers") or {}).get("stopped", []))
            what = f"restored {', '.join(r.get('volumes', []))} in place ({stopped} containers stopped and started again)" if "in_place" in r else f"backed up {', '.join(r.get('volumes', []))}"
        elif s["tool"] == "ugw-wait-healthy":
            what = f"healthy: {r['targets'][0].get('body_excerpt')}" if r.get("targets") else ""
        elif s["tool"] == "ugw-verify":
            what = f"{r.get('passed')} checks passed"
        else:
            what = ""
        print(f"  {s['tool']:<17} {s['status']:<8} {s['elapsed_ms'] / 1000:5.2f} s  {what}")
PY
}
say "summary"
summary "$work/v1.json" "$work/v2.json" "$work/v3.json" >&2
python3 - "$(docker volume inspect --format '{{.Mountpoint}}' "$VOLUME")/app.db" >&2 <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
columns = [c[1] for c in db.execute("PRAGMA table_info(items)")]
count = db.execute("SELECT count(*) FROM items").fetchone()[0]
print(f"schema now: items({', '.join(columns)}), {count} rows")
PY
say "live: $LB answers $(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' "$LB/health/ready")"
[ "$v3_status" -eq 1 ]
