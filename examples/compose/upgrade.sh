#!/usr/bin/env bash
# The operator's upgrade of the Compose stack in examples/compose/ (compose.yml: web behind
# HAProxy on two slots, worker) to image version V, with its failure path:
#   upgrade.sh V OLD RUN     V the version to install, OLD the one running, RUN the record
# One pipeline: back the data volume up; pull the image and check its digest against the
# published list; migrate the database in the volume with the image's own migrations; swap web
# start-first (the new image on the idle slot; once it is healthy, HAProxy puts that slot in
# and drains the old one, which then stops), then worker stop-first; wait until HAProxy serves
# V; verify through HAProxy. When a step fails the rest skip, and the failure path runs on the
# record: each swap rolled back (only what this run switched), the volume restored (the
# containers using it are stopped for that and started again), and HAProxy serving OLD again.
# Exit 0 when V serves, 1 when the failure path ran (the record says why).
#
# What it works on, from the environment (demo.sh sets it; on a host, a file you source):
#   REPO         the image repository (REGISTRY/NAME); SUMS the published `DIGEST  REPO:TAG` list
#   STACK        the folder of compose.yml and .env (ugw-swap keeps its pins in STACK/.ugw/)
#   PROJECT      the Compose project prefix: web is PROJECT-web (slots PROJECT-web-PORT),
#                worker PROJECT-worker
#   VOLUME       the named volume of the data (app.db); BACKUPS where backups go
#   SLOTS        web's two ports (A,B); WORKER_PORT worker's
#   LB           HAProxy's URL; ADMIN its admin socket (the drain command reads it, exported)
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: upgrade.sh V OLD RUN" >&2; exit 2; }
V=$1 OLD=$2 RUN=$3
export LB ADMIN
# The database inside the volume, as the host sees it (ugw-migrate runs on the host).
DB=sqlite://$(docker volume inspect --format '{{.Mountpoint}}' "$VOLUME")/app.db

upgrade() {
  set -o pipefail
  ugw-backup create --in none --volume "$VOLUME" --out "$BACKUPS" --name "app-before-$V" --app-version "$OLD" \
    | ugw-fetch --image "$REPO:$V" --sha256-file "$SUMS" \
    | ugw-migrate up --from-image --db "$DB" \
    | ugw-swap --compose "$STACK/compose.yml" --project "$PROJECT-web" --service web \
        --strategy start-first --port-env WEB_PORT --slots "$SLOTS" \
        --restart-check 'http://127.0.0.1:{port}/health/ready' --restart-timeout 15s \
        --drain-cmd 'ugw-drain --undo --in none --output none --haproxy "$ADMIN" --server "web/p$UGW_LIVE_PORT" && ugw-drain --in none --output none --haproxy "$ADMIN" --server "web/p$UGW_DRAIN_PORT"' \
    | ugw-swap --compose "$STACK/compose.yml" --project "$PROJECT-worker" --service worker \
        --restart-check "http://127.0.0.1:$WORKER_PORT/health/ready" \
    | ugw-wait-healthy --url "$LB/health/ready" --expect-version --successes 3 --timeout 1m \
    | ugw-verify --checks "$STACK/checks.json" \
    > "$RUN"
}

failure_path() {
  ugw-swap --compose "$STACK/compose.yml" --project "$PROJECT-web" --service web --rollback \
    --strategy start-first --port-env WEB_PORT --slots "$SLOTS" \
    --restart-check 'http://127.0.0.1:{port}/health/ready' --restart-timeout 15s \
    --drain-cmd 'ugw-drain --undo --in none --output none --haproxy "$ADMIN" --server "web/p$UGW_LIVE_PORT" && ugw-drain --in none --output none --haproxy "$ADMIN" --server "web/p$UGW_DRAIN_PORT"' \
    --record "$RUN" --output none
  ugw-swap --compose "$STACK/compose.yml" --project "$PROJECT-worker" --service worker --rollback \
    --restart-check "http://127.0.0.1:$WORKER_PORT/health/ready" --record "$RUN" --output none
  ugw-backup restore --in-place --expect-app-version "$OLD" --record "$RUN" --output none
  ugw-wait-healthy --url "$LB/health/ready" --expect-version "$OLD" --successes 3 --timeout 1m --always \
    --record "$RUN" --output none
}

if upgrade; then
  echo "upgrade.sh: $V serves through $LB" >&2
  exit 0
fi
echo "upgrade.sh: the upgrade to $V failed (the record says where); the failure path runs" >&2
failure_path
echo "upgrade.sh: $OLD serves through $LB again" >&2
exit 1
