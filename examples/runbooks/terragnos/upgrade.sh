#!/usr/bin/env bash
# Terragnos Core (a Docker Compose stack: api, worker, a db-setup job for migrations)
# upgraded with ugw: back up the database and prove the backup, pull the release's image by
# digest, run its migrations, recreate api and worker on it (stop-first, as the published
# procedure stops them), and wait until the api's bearer-token health check answers the new
# version. A release that does not come up is rolled back: the image before pinned again and
# the database restored from the backup (migrations cannot be undone).
#
#   upgrade.sh VERSION        settings: $TERRAGNOS_ENV (the stack's .env; see env.example)
#
# Exit codes are ugw's: 0 the stack runs VERSION; otherwise the failed step's code.
set -euo pipefail
version=${1:?usage: upgrade.sh VERSION}
env_file=${TERRAGNOS_ENV:-.env}
set -a
# shellcheck source=env.example
source "$env_file"
set +a
# The health check's header, from the environment: ugw never shows its value.
export HEALTH_AUTH="Bearer $TERRAGNOS_API_TOKEN"
mkdir -p "$STATE"
record=$STATE/upgrade-$version.json
say() { echo "upgrade: $*" >&2; }

# The version the api's container runs: its image's version label.
stack_version() {
  local id
  id=$(docker ps -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" \
    --filter label=com.docker.compose.service=api | head -n 1)
  [ -n "$id" ] || return 0
  docker inspect --format '{{index .Config.Labels "org.opencontainers.image.version"}}' "$id"
}
running=$(stack_version)
say "$running -> $version"

# ugw-swap on the stack: both services, the .env for Compose's ${…}.
swap=(ugw-swap --compose "$STACK/compose.yml" --project "$COMPOSE_PROJECT_NAME"
  --env-file "$env_file" --service api --service worker)
wait_healthy() {
  ugw-wait-healthy "$@" --url "$API_URL/health/ready" --header-env Authorization=HEALTH_AUTH \
    --url "$WORKER_URL/health/ready"
}

status=0
ugw-backup create --in none --db-env DATABASE_URL --out "$STATE/backups" \
    --name "terragnos-before-$version" --app-version "$running" --keep 5 \
  | ugw-backup verify \
  | ugw-fetch --image "$TERRAGNOS_IMAGE:$version" --sha256-url "$IMAGE_SUMS_URL" \
  | ugw-migrate up --from-image --db-env DATABASE_URL \
  | "${swap[@]}" --strategy stop-first \
  | wait_healthy --expect-version --fail-status 500 --timeout 60s \
  | ugw-verify --checks "$(dirname "$0")/checks.json" \
  | ugw-migrate up --phase post --from-image --db-env DATABASE_URL \
  >"$record" || status=$?

if [ "$status" -eq 0 ]; then
  say "the stack runs $version"
  exit 0
fi

# The failure path, once the new image went live: the one before pinned again, the database as
# the backup has it (migrations cannot be undone), and healthy again. A run that failed before
# the swap changed no container (a swap whose restart failed pinned the old image back itself):
# the stack still runs the old version and only the record says more.
say "$version failed (exit $status)"
if [ "$(stack_version)" = "$version" ]; then
  say "back to $running, database restored"
  "${swap[@]}" --rollback --record "$record" --output none
  ugw-backup restore --in-place --expect-app-version "$running" --record "$record" --output none
  wait_healthy --expect-version "$running" --timeout 60s --always --record "$record" --output none
fi
exit "$status"
