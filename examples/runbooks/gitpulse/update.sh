#!/usr/bin/env bash
# GitPulse (Compose: api and worker, Alembic-style migrations, calendar versions such as
# 2026.5.17.post4) updated with ugw, in the order of its update guide: back up and verify,
# pull the image by digest, maintenance mode on, migrate, recreate api and worker on the image
# (stop-first, inside the maintenance window), health check, smoke test, maintenance mode off.
# Rollback is a restore: the image before comes back and the database and the uploads volume
# are put back from the backup taken at the start of this run.
#
#   update.sh VERSION        settings: $GITPULSE_ENV (Compose's .env too; see env.example)
#
# Exit codes are ugw's: 0 GitPulse runs VERSION; otherwise the failed step's code.
set -euo pipefail
version=${1:?usage: update.sh VERSION}
env_file=${GITPULSE_ENV:-/home/gitpulse/gitpulse/.env}
set -a
# shellcheck source=env.example
source "$env_file"
set +a
mkdir -p "$STATE"
record=$STATE/update-$version.json
here=$(dirname "$0")
say() { echo "update: $*" >&2; }

# The version the api's container runs: its image's version label.
app_version() {
  local id
  id=$(docker ps -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" \
    --filter label=com.docker.compose.service=api | head -n 1)
  [ -n "$id" ] || return 0
  docker inspect --format '{{index .Config.Labels "org.opencontainers.image.version"}}' "$id"
}
running=$(app_version)
say "$running -> $version"

# ugw-swap on the project: both services, the .env for Compose's ${…}.
swap=(ugw-swap --compose "$APP/compose.yml" --project "$COMPOSE_PROJECT_NAME"
  --env-file "$env_file" --service api --service worker)
health() {
  ugw-wait-healthy "$@" --url "$API_URL/health/ready" --url "$WORKER_URL/health/ready"
}

status=0
ugw-backup create --in none --volume "$UPLOADS_VOLUME" --db "$DB" --out "$STATE/backups" \
    --name "gitpulse-$running-before-$version" --app-version "$running" --keep 5 \
  | ugw-backup verify \
  | ugw-fetch --image "$GITPULSE_IMAGE:$version" --sha256-url "$IMAGE_SUMS_URL" \
  | ugw-drain --flag-file "$MAINTENANCE_FLAG" --lb-grace 200ms \
      --inflight-metric "$API_URL/metrics#http_requests_in_flight" --timeout 60s \
  | ugw-migrate up --from-image --db "$DB" \
  | "${swap[@]}" --strategy stop-first \
  | health --expect-version --fail-status 500 --timeout 60s \
  | ugw-verify --checks "$here/smoke.json" \
  | ugw-migrate up --phase post --from-image --db "$DB" \
  | ugw-drain --undo \
  >"$record" || status=$?

if [ "$status" -eq 0 ]; then
  say "GitPulse runs $version"
  exit 0
fi

# Quick rollback, once the new image went live: the image before, the database and uploads
# of the backup (the restore stops the containers using the volume and starts them again),
# healthy again. Then (whatever failed) out of maintenance mode, with --always since the
# record has failed on purpose.
say "$version failed (exit $status)"
if [ "$(app_version)" = "$version" ]; then
  say "restoring $running and its data"
  "${swap[@]}" --rollback --record "$record" --output none
  ugw-backup restore --in-place --expect-app-version "$running" --record "$record" --output none
  health --expect-version "$running" --timeout 60s --always --record "$record" --output none
fi
ugw-drain --undo --always --flag-file "$MAINTENANCE_FLAG" --record "$record" --output none
exit "$status"
