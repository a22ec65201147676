#!/usr/bin/env bash
# GitPulse (Compose: api and worker, Alembic-style migrations, calendar versions such as
# 2026.5.17.post4) updated with ugw, in the order of its update guide: back up and verify,
# pull, maintenance mode on, migrate, restart, health check, smoke test, maintenance mode off.
# Rollback is a restore: the release before comes back and the database and uploads are put
# back from the backup taken at the start of this run.
#
#   update.sh VERSION        settings: $GITPULSE_ENV (see env.example)
#
# Exit codes are ugw's: 0 GitPulse runs VERSION; otherwise the failed step's code.
set -euo pipefail
version=${1:?usage: update.sh VERSION}
# shellcheck source=env.example
source "${GITPULSE_ENV:-/home/gitpulse/gitpulse.env}"
export API_URL WORKER_URL
mkdir -p "$STATE"
record=$STATE/update-$version.json
here=$(dirname "$0")
running=$(basename "$(readlink "$APP/current")")
say() { echo "update: $*" >&2; }
say "$running -> $version"

health() {
  ugw-wait-healthy "$@" --url "$API_URL/health/ready" --url "$WORKER_URL/health/ready"
}

status=0
ugw-backup create --in none --path "$UPLOADS" --db "$DB" --out "$STATE/backups" \
    --name "gitpulse-$running-before-$version" --app-version "$running" --keep 5 \
  | ugw-backup verify \
  | ugw-fetch --url "$RELEASES/app-$version-linux-amd64.tar.gz" \
      --sha256-url "$RELEASES/SHA256SUMS" --dest "$APP/staging" --extract \
  | ugw-drain --flag-file "$MAINTENANCE_FLAG" --lb-grace 200ms \
      --inflight-metric "$API_URL/metrics#http_requests_in_flight" --timeout 60s \
  | ugw-migrate up --db "$DB" \
  | ugw-swap --root "$APP" --restart "$COMPOSE_RESTART" \
  | health --expect-version --fail-status 500 --timeout 60s \
  | ugw-verify --checks "$here/smoke.json" \
  | ugw-migrate up --phase post --db "$DB" --dir "$APP/current/migrations" \
  | ugw-drain --undo \
  >"$record" || status=$?

if [ "$status" -eq 0 ]; then
  say "GitPulse runs $version"
  exit 0
fi

# Quick rollback, once the new release went live: the release before, the database and
# uploads of the backup, healthy again. Then (whatever failed) out of maintenance mode, with
# --always since the record has failed on purpose.
say "$version failed (exit $status)"
if [ "$(readlink "$APP/current")" = "releases/$version" ]; then
  say "restoring $running and its data"
  ugw-swap --root "$APP" --rollback --restart "$COMPOSE_RESTART" --record "$record" --output none
  ugw-backup restore --in-place --expect-app-version "$running" --record "$record" --output none
  health --expect-version "$running" --timeout 60s --always --record "$record" --output none
fi
ugw-drain --undo --always --flag-file "$MAINTENANCE_FLAG" --record "$record" --output none
exit "$status"
