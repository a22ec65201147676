#!/usr/bin/env bash
# Terragnos Core (a Docker Compose stack: api, worker, a db-setup job for migrations)
# upgraded with ugw: back up the database and prove the backup, pull the release, run its
# migrations, restart api and worker on it, and wait until the api's bearer-token health
# check answers the new version. A release that does not come up is rolled back: the old
# release restarted and the database restored from the backup (migrations cannot be undone).
#
#   upgrade.sh VERSION        settings: $TERRAGNOS_ENV (the stack's .env; see env.example)
#
# Exit codes are ugw's: 0 the stack runs VERSION; otherwise the failed step's code.
set -euo pipefail
version=${1:?usage: upgrade.sh VERSION}
set -a
# shellcheck source=env.example
source "${TERRAGNOS_ENV:-.env}"
set +a
# The health check's header, from the environment: ugw never shows its value.
export HEALTH_AUTH="Bearer $TERRAGNOS_API_TOKEN"
mkdir -p "$STATE"
record=$STATE/upgrade-$version.json
say() { echo "upgrade: $*" >&2; }
running=$(basename "$(readlink "$STACK/current")")
say "$running -> $version"

wait_healthy() {
  ugw-wait-healthy "$@" --url "$API_URL/health/ready" --header-env Authorization=HEALTH_AUTH \
    --url "$WORKER_URL/health/ready"
}

status=0
ugw-backup create --in none --db-env DATABASE_URL --out "$STATE/backups" \
    --name "terragnos-before-$version" --app-version "$running" --keep 5 \
  | ugw-backup verify \
  | ugw-fetch --url "$RELEASES/app-$version-linux-amd64.tar.gz" \
      --sha256-url "$RELEASES/SHA256SUMS" --dest "$STACK/staging" --extract \
  | ugw-migrate up --db-env DATABASE_URL \
  | ugw-swap --root "$STACK" --restart "$COMPOSE_RESTART" \
  | wait_healthy --expect-version --fail-status 500 --timeout 60s \
  | ugw-verify --checks "$(dirname "$0")/checks.json" \
  | ugw-migrate up --phase post --db-env DATABASE_URL --dir "$STACK/current/migrations" \
  >"$record" || status=$?

if [ "$status" -eq 0 ]; then
  say "the stack runs $version"
  exit 0
fi

# The failure path, once the new release went live: the old one back, the database as the
# backup has it (migrations cannot be undone), and healthy again. A run that failed before the
# swap changed no release: the stack still runs the old one and only the record says more.
say "$version failed (exit $status)"
if [ "$(readlink "$STACK/current")" = "releases/$version" ]; then
  say "back to $running, database restored"
  ugw-swap --root "$STACK" --rollback --restart "$COMPOSE_RESTART" --record "$record" --output none
  ugw-backup restore --in-place --expect-app-version "$running" --record "$record" --output none
  wait_healthy --expect-version "$running" --timeout 60s --always --record "$record" --output none
fi
exit "$status"
