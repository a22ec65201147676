#!/usr/bin/env bash
# The Terragnos Core lab: a Compose-like stack of two demo services (api, whose health wants a
# bearer token, and worker) running v1.4.0 from one release folder, a PostgreSQL database
# migrated to v1.4.0's schema, and releases v1.5.0 (good) and v1.6.0 (never healthy) published
# with their SHA256SUMS.
#   DATABASE_URL=postgres://… lab.sh DIR    then: TERRAGNOS_ENV=DIR/.env upgrade.sh v1.5.0
#   stop it:  bash -c 'source examples/runbooks/lib.sh; lab_stop DIR'
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
lab_start "$1"
lab_database
lab_releases "$(dirname "$0")/../pg-migrations" v1.4.0 v1.5.0 v1.6.0

# The settings file of the stack (Compose's .env): the token lives here and reaches the api
# through its environment, never its command line.
token=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
stack=$LAB/stack
lab_service api "$stack"
api=http://127.0.0.1:$PORT
lab_service worker "$stack"
worker=http://127.0.0.1:$PORT
cat >"$LAB/.env" <<ENV
RELEASES=$RELEASES
STACK=$stack
STATE=$LAB/state
DATABASE_URL=$DATABASE_URL
API_URL=$api
WORKER_URL=$worker
TERRAGNOS_API_TOKEN=$token
# \`docker compose up -d api worker\` of the lab: both services restarted on what current
# points at, the api given its token through its environment.
COMPOSE_RESTART='UGW_DEMO_HEALTH_TOKEN=\$TERRAGNOS_API_TOKEN $LAB/api/restart && $LAB/worker/restart'
ENV
chmod 600 "$LAB/.env"

set -a; source "$LAB/.env"; set +a
export HEALTH_AUTH="Bearer $token"
LAB_DB=$DATABASE_URL lab_install "$stack" "$COMPOSE_RESTART" v1.4.0 \
  --url "$api/health/ready" --header-env Authorization=HEALTH_AUTH --url "$worker/health/ready"
