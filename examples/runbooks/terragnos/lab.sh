#!/usr/bin/env bash
# The Terragnos Core lab: its Compose stack (compose.yml: api, whose health wants a bearer
# token, and worker) running image v1.4.0 from a registry on loopback, a PostgreSQL database
# migrated to v1.4.0's schema, and images v1.5.0 (good) and v1.6.0 (never healthy) pushed with
# their IMAGES.sha256 list served beside them.
#   DATABASE_URL=postgres://… lab.sh DIR    then: TERRAGNOS_ENV=DIR/.env upgrade.sh v1.5.0
#   stop it:  bash -c 'source examples/runbooks/lib.sh; lab_stop DIR'
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"
lab_start "$1"
lab_database
lab_registry
# The db-setup job of compose.yml runs ugw-migrate from the image.
IMAGE_BINARIES=ugw-migrate lab_images terragnos "$here/../pg-migrations" v1.4.0 v1.5.0 v1.6.0
lab_serve

# The stack's folder (the operator's compose.yml; ugw-swap keeps its pins in .ugw/ beside it)
# and its .env: the token lives there and reaches the api through its environment, never its
# command line.
stack=$LAB/stack
mkdir -p "$stack"
cp "$here/compose.yml" "$stack/compose.yml"
token=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
api_port=$(free_port)
worker_port=$(free_port)
cat >"$LAB/.env" <<ENV
COMPOSE_PROJECT_NAME=$(lab_docker_name terragnos)
STACK=$stack
STATE=$LAB/state
TERRAGNOS_IMAGE=$IMAGE
TERRAGNOS_VERSION=v1.4.0
IMAGE_SUMS_URL=$RELEASES/IMAGES.sha256
DATABASE_URL=$DATABASE_URL
API_PORT=$api_port
WORKER_PORT=$worker_port
API_URL=http://127.0.0.1:$api_port
WORKER_URL=http://127.0.0.1:$worker_port
TERRAGNOS_API_TOKEN=$token
ENV
chmod 600 "$LAB/.env"
mkdir -p "$LAB/api" "$LAB/worker"
echo "$api_port" >"$LAB/api/port"
echo "$worker_port" >"$LAB/worker/port"

set -a; source "$LAB/.env"; set +a
export HEALTH_AUTH="Bearer $token"
LAB_DB=$DATABASE_URL LAB_ENV_FILE=$LAB/.env lab_compose_install "$stack/compose.yml" \
  "$COMPOSE_PROJECT_NAME" "api worker" v1.4.0 \
  --url "$API_URL/health/ready" --header-env Authorization=HEALTH_AUTH --url "$WORKER_URL/health/ready"
