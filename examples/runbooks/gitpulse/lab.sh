#!/usr/bin/env bash
# The GitPulse lab: api and worker (two demo services, one release folder, one SQLite database
# and an uploads folder) running the calendar-versioned release 2026.5.15, and releases
# 2026.5.17.post4 (good; it needs a new column, shipped as a migration) and 2026.5.17.post5
# (never healthy) published with their SHA256SUMS.
#   lab.sh DIR    then: GITPULSE_ENV=DIR/gitpulse.env update.sh 2026.5.17.post4
#   stop it:      bash -c 'source examples/runbooks/lib.sh; lab_stop DIR'
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
lab_start "$1"

lab_releases "$(dirname "$0")/../../demo-migrations" 2026.5.15 2026.5.17.post4 2026.5.17.post5 \
  --require-column items.note

app=$LAB/gitpulse
data=$LAB/data
mkdir -p "$data/uploads"
echo "an avatar" >"$data/uploads/avatar.png"
lab_service api "$app" --db "$data/gitpulse.db" --lb-flag "$LAB/maintenance"
api=http://127.0.0.1:$PORT
lab_service worker "$app" --db "$data/gitpulse.db"
worker=http://127.0.0.1:$PORT
cat >"$LAB/gitpulse.env" <<ENV
RELEASES=$RELEASES
APP=$app
STATE=$LAB/state
DB=sqlite://$data/gitpulse.db
UPLOADS=$data/uploads
API_URL=$api
WORKER_URL=$worker
MAINTENANCE_FLAG=$LAB/maintenance
COMPOSE_RESTART='$LAB/api/restart && $LAB/worker/restart'
ENV

source "$LAB/gitpulse.env"
LAB_DB=$DB lab_install "$app" "$COMPOSE_RESTART" 2026.5.15 \
  --url "$api/health/ready" --url "$worker/health/ready"
