#!/usr/bin/env bash
# Keeptrusts (database, API, console, gateways) updated with ugw in its dependency order:
# a verified pg_dump backup and a baseline of the running platform; the migrations, once; the
# API; the console (it needs the API of its own version); then the gateways one at a time,
# each taken out of the load balancer and drained before its swap, checked before it goes
# back, and checked again before the next one. The contract migrations run last, and the
# platform is compared with its baseline. A component that fails takes the whole platform
# back: every component already switched returns to the release before, and the database to
# the backup (its migrations are forward-only).
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
running=$(basename "$(readlink "$(root api)/current")")
say() { echo "rolling-update: $*" >&2; }
say "$running -> $version"
components=(api console "${GATEWAYS[@]}")

# Every step of this run goes to one record, whichever component it acts for.
step() { "$@" --record "$record" --output none; }

# One component: fetch its release, switch to it and restart, and wait until it answers
# the new version.
deploy() {
  local -x UGW_HOST_ID=$1
  step ugw-fetch --url "$RELEASES/app-$version-linux-amd64.tar.gz" \
    --sha256-url "$RELEASES/SHA256SUMS" --dest "$(root "$1")/staging" --extract
  step ugw-swap --root "$(root "$1")" --restart "$(restart "$1")"
  step ugw-wait-healthy --url "$(url "$1")/health/ready" --expect-version --fail-status 500 \
    --timeout 60s
}

# A gateway: out of the balancer and drained first (the flag file makes /health/lb answer
# 503; in-flight requests are waited out on the gateway's own gauge), back in once its new
# release answers and its checks pass.
gateway() {
  local -x UGW_HOST_ID=$1
  GATEWAY_URL=$(url "$1")
  step ugw-drain --flag-file "$(lb_flag "$1")" --lb-grace "$LB_GRACE" \
    --inflight-metric "$GATEWAY_URL/metrics#http_requests_in_flight" --timeout 2m
  deploy "$1"
  step ugw-verify --checks "$here/gateway-checks.json"
  step ugw-drain --undo --flag-file "$(lb_flag "$1")"
}

# The rollback plan, once a component went live on the new release: each one that did back to
# the release before (newest first), the database restored, and every component healthy on the
# old release again. A run that failed before any switch changed nothing to take back. A
# gateway drained when it failed stays out of the balancer until someone has looked at it
# (then `ugw-drain --undo --always --flag-file …`).
roll_back() {
  local c switched=()
  for c in "${components[@]}"; do
    [ "$(readlink "$(root "$c")/current")" = "releases/$version" ] && switched=("$c" "${switched[@]}")
  done
  [ ${#switched[@]} -gt 0 ] || return 0
  for c in "${switched[@]}"; do
    say "$c: back to $running"
    UGW_HOST_ID=$c step ugw-swap --root "$(root "$c")" --rollback --restart "$(restart "$c")"
  done
  step ugw-backup restore --in-place --expect-app-version "$running"
  for c in "${components[@]}"; do
    UGW_HOST_ID=$c step ugw-wait-healthy --url "$(url "$c")/health/ready" \
      --expect-version "$running" --timeout 60s --always
  done
}

upgrade() {
  # Pre-upgrade: a backup proved readable, and how the platform does now.
  step ugw-backup create --new --db-env DATABASE_URL --out "$STATE/backups" \
    --name "keeptrusts-$running-before-$version" --app-version "$running" --keep 5
  step ugw-backup verify
  step ugw-verify baseline --checks "$here/platform-checks.json"
  # Database, API, console, then the gateways one at a time.
  UGW_HOST_ID=api step ugw-fetch --url "$RELEASES/app-$version-linux-amd64.tar.gz" \
    --sha256-url "$RELEASES/SHA256SUMS" --dest "$(root api)/staging" --extract
  UGW_HOST_ID=api step ugw-migrate up --db-env DATABASE_URL
  deploy api
  deploy console
  for g in "${GATEWAYS[@]}"; do gateway "$g"; done
  # Every component on the new release: the contract half, nothing left pending, every
  # component answering the new version, and the platform compared with its baseline.
  local dir versions=()
  dir=$(root api)/current/migrations
  step ugw-migrate up --phase post --db-env DATABASE_URL --dir "$dir"
  step ugw-migrate status --check --db-env DATABASE_URL --dir "$dir"
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
