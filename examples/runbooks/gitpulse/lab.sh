#!/usr/bin/env bash
# The GitPulse lab: its Compose stack (compose.yml: api and worker, one SQLite database in a
# bind-mounted data folder, an uploads volume holding one upload) running the
# calendar-versioned image 2026.5.15 from a registry on loopback, and images 2026.5.17.post4
# (good; it needs a new column, shipped as a migration) and 2026.5.17.post5 (never healthy)
# pushed with their IMAGES.sha256 list served beside them.
#   lab.sh DIR    then: GITPULSE_ENV=DIR/gitpulse.env update.sh 2026.5.17.post4
#   stop it:      bash -c 'source examples/runbooks/lib.sh; lab_stop DIR'
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"
lab_start "$1"
lab_registry
lab_images gitpulse "$here/../../demo-migrations" 2026.5.15 2026.5.17.post4 2026.5.17.post5 \
  --require-column items.note
lab_serve

app=$LAB/gitpulse
data=$LAB/data
mkdir -p "$app" "$data"
cp "$here/compose.yml" "$app/compose.yml"
project=$(lab_docker_name gitpulse)
api_port=$(free_port)
worker_port=$(free_port)
cat >"$LAB/gitpulse.env" <<ENV
COMPOSE_PROJECT_NAME=$project
APP=$app
STATE=$LAB/state
GITPULSE_IMAGE=$IMAGE
GITPULSE_VERSION=2026.5.15
IMAGE_SUMS_URL=$RELEASES/IMAGES.sha256
DATA_DIR=$data
DB=sqlite://$data/gitpulse.db
UPLOADS_VOLUME=${project}_uploads
API_PORT=$api_port
WORKER_PORT=$worker_port
API_URL=http://127.0.0.1:$api_port
WORKER_URL=http://127.0.0.1:$worker_port
MAINTENANCE_FLAG=$data/maintenance
ENV
mkdir -p "$LAB/api" "$LAB/worker"
echo "$api_port" >"$LAB/api/port"
echo "$worker_port" >"$LAB/worker/port"

source "$LAB/gitpulse.env"
LAB_DB=$DB LAB_ENV_FILE=$LAB/gitpulse.env lab_compose_install "$app/compose.yml" "$project" \
  "api worker" 2026.5.15 --url "$API_URL/health/ready" --url "$WORKER_URL/health/ready"
# One upload in the volume, as users would have left it.
uploads=$(docker volume inspect --format '{{.Mountpoint}}' "$UPLOADS_VOLUME")
echo "an avatar" >"$uploads/avatar.png"
