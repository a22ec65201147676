#!/usr/bin/env bash
# Keeptrusts (database, API, console, gateways; Docker Compose) updated with ugw in its
# dependency order: a verified pg_dump backup and a baseline of the running platform; the
# release's image pulled once, by digest, checked against the published list; its migrations,
# once; the API; the console (it needs the API of its own version); then the gateways one at
# a time, each drained in HAProxy before its container is recreated, checked before it goes
# back, and back in the balancer before the next one. The contract migrations run last, and
# the platform is compared with its baseline. A component that fails takes the whole
# platform back: every component already switched returns to the image before, and the
# database to the backup (its migrations are forward-only).
#
#   rolling-update.sh VERSION        settings: $KEEPTRUSTS_CONF (see upgrade.conf.example)
#
# Exit codes are ugw's: 0 the platform runs VERSION; otherwise the failed step's code.
set -euo pipefail
version=${1:?usage: rolling-update.sh VERSION}
# shellcheck source=upgrade.conf.example
source "${KEEPTRUSTS_CONF:-/etc/keeptrusts/upgrade.conf}"
# The checks files read these through ${env:…}; ugw-migrate and ugw-backup read DATABASE_URL.
export DATABASE_URL API_URL GATEWAY_URL
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$STATE"
record=$STATE/rolling-update-$version.json
API_URL=$(url api)
say() { echo "rolling-update: $*" >&2; }
components=(api console "${GATEWAYS[@]}")

# The version a component's container runs: its image's version label ("" when none runs).
running_version() {
  local id
  id=$(docker ps -q --filter "label=com.docker.compose.project=$(project "$1")" | head -n 1)
  [ -n "$id" ] || return 0
  docker inspect --format '{{index .Config.Labels "org.opencontainers.image.version"}}' "$id"
}
running=$(running_version api)
say "$running -> $version"

# Every step of this run goes to one record, whichever component it acts for.
step() { "$@" --record "$record" --output none; }
# ugw-swap --compose on one component's project (up -d --no-deps of its service).
swap() {
  local c=$1
  shift
  step ugw-swap --compose "$COMPOSE_FILE" --env-file "$ENV_FILE" --project "$(project "$c")" \
    --service "$c" "$@"
}

# One component: its container recreated on the fetched image, then waited for until it
# answers the new version (the published `until curl …; sleep 5`, with a deadline).
deploy() {
  swap "$1"
  step ugw-wait-healthy --url "$(url "$1")/health/ready" --expect-version \
    --fail-status 500 --timeout 60s
}

# A gateway: drained in HAProxy first (no new requests; the ones in flight waited out), back
# in once its new container answers and its checks pass (waited until HAProxy sees it UP).
gateway() {
  GATEWAY_URL=$(url "$1")
  step ugw-drain --haproxy "$HAPROXY_SOCKET" --server "$(server "$1")" --timeout 2m
  deploy "$1"
  step ugw-verify --checks "$here/gateway-checks.json"
  step ugw-drain --undo --haproxy "$HAPROXY_SOCKET" --server "$(server "$1")" --timeout 1m
}

# The rollback plan, once a component runs the new image: each one that does back to the
# image before (newest first), the database restored, and every component healthy on the old
# version again. A run that failed before any switch changed nothing to take back. A gateway
# drained when it failed stays out of the balancer until someone has looked at it (then
# `ugw-drain --undo --always --haproxy … --server …`).
roll_back() {
  local c switched=()
  for c in "${components[@]}"; do
    [ "$(running_version "$c")" = "$version" ] && switched=("$c" "${switched[@]}")
  done
  [ ${#switched[@]} -gt 0 ] || return 0
  for c in "${switched[@]}"; do
    say "$c: back to $running"
    swap "$c" --rollback
  done
  step ugw-backup restore --in-place --expect-app-version "$running"
  for c in "${components[@]}"; do
    step ugw-wait-healthy --url "$(url "$c")/health/ready" --expect-version "$running" \
      --timeout 60s --always
  done
}

upgrade() {
  # Pre-upgrade: a backup proved readable, and how the platform does now.
  step ugw-backup create --new --db-env DATABASE_URL --out "$STATE/backups" \
    --name "keeptrusts-$running-before-$version" --app-version "$running" --keep 5
  step ugw-backup verify
  step ugw-verify baseline --checks "$here/platform-checks.json"
  # The image, the database, the API, the console, then the gateways one at a time.
  step ugw-fetch --image "$IMAGE:$version" --sha256-url "$IMAGE_SUMS_URL"
  step ugw-migrate up --from-image --db-env DATABASE_URL
  deploy api
  deploy console
  for g in "${GATEWAYS[@]}"; do gateway "$g"; done
  # Every component on the new release: the contract half, every component answering the
  # new version, and the platform compared with its baseline.
  local c versions=()
  step ugw-migrate up --phase post --from-image --db-env DATABASE_URL
  for c in "${components[@]}"; do
    versions+=(--http "$(url "$c")/health/ready" --expect ".version == \"$version\"")
  done
  step ugw-verify "${versions[@]}"
  step ugw-verify --compare --checks "$here/platform-checks.json" \
    --latency-floor "${LATENCY_FLOOR:-5ms}"
}

# In a subshell of its own, so that `set -e` stops it at the first failed step (in a
# `upgrade || …` list, bash would ignore it).
set +e
(set -e; upgrade)
status=$?
set -e
if [ "$status" -ne 0 ]; then
  say "$version failed (exit $status): the rollback plan"
  roll_back
  exit "$status"
fi
say "the platform runs $version"
