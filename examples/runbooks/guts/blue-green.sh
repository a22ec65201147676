#!/usr/bin/env bash
# The Guts node's blue-green upgrade with ugw: two colours of the node, each its own Compose
# project, behind one HAProxy; one serves, the other is idle. The idle colour gets the new
# image (pulled by digest, checked against the published list), must answer the new version,
# and only then is switched in, with ugw-drain on HAProxy's runtime API: the new colour
# back into the backend (waited until UP), the old one drained until nothing is in flight.
# The balancer is checked, and the old colour is stopped gracefully. A new colour that never
# becomes healthy is never switched in; a check that fails after the switch switches back.
#
#   blue-green.sh VERSION        settings: $GUTS_BLUE_GREEN_CONF (see blue-green.conf.example)
#
# Exit codes are ugw's: 0 the new colour serves VERSION; otherwise the failed step's code.
set -euo pipefail
version=${1:?usage: blue-green.sh VERSION}
# shellcheck source=blue-green.conf.example
source "${GUTS_BLUE_GREEN_CONF:-/etc/guts/blue-green.conf}"
# The checks file reads it through ${env:…}.
export LB_URL
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$STATE"
record=$STATE/blue-green-$version.json
say() { echo "blue-green: $*" >&2; }
# Which colour serves is the script's own state (HAProxy's is runtime state a reload forgets).
live=$(cat "$STATE/live")
case $live in
  blue) idle=green ;;
  green) idle=blue ;;
  *) say "$STATE/live names no colour: $live"; exit 2 ;;
esac
say "$live serves; $idle gets $version"
# How far the run got, for the failure path: the idle colour swapped, the switch begun.
marks=$STATE/blue-green-$version.progress
rm -f "$marks"
mark() { echo "$1" >>"$marks"; }
reached() { grep -qx "$1" "$marks" 2>/dev/null; }

# Every step of this run goes to one record.
step() { "$@" --record "$record" --output none; }
# ugw-swap --compose on one colour's project.
swap() {
  local colour=$1
  shift
  step ugw-swap --compose "$COMPOSE_FILE" --project "$(project "$colour")" \
    --service guts-node --env-file "$(env_file "$colour")" \
    --restart-check "$(url "$colour")/health/ready" --restart-timeout "${RESTART_TIMEOUT:-60s}" "$@"
}
# ugw-drain on one colour's server in HAProxy's runtime API.
balancer() {
  local colour=$1
  shift
  step ugw-drain --haproxy "$HAPROXY_SOCKET" --server "$BACKEND/$colour" "$@"
}

upgrade() {
  step ugw-fetch --new --image "$IMAGE:$version" --sha256-file "$IMAGE_SUMS"
  # The idle colour on the new image; nothing serves from it yet.
  mark swapped
  swap "$idle"
  step ugw-wait-healthy --url "$(url "$idle")/health/ready" --expect-version \
    --fail-status 500 --successes 3 --timeout 60s
  # The switch: the new colour into the backend first (UP before anything leaves), then the
  # old one drained until its in-flight requests are done.
  mark switched
  balancer "$idle" --undo --timeout 30s
  balancer "$live" --state maint --timeout 2m
  step ugw-verify --checks "$here/blue-green-checks.json"
  echo "$idle" >"$STATE/live"
  # The old colour stopped gracefully (the next upgrade brings it up on the next release).
  step ugw-drain --signal TERM --container "$(docker ps -q \
    --filter "label=com.docker.compose.project=$(project "$live")")" --timeout 60s
}

# After the switch: the old colour back into the backend (the state it had before its drain,
# waited until UP), the new one out again, and the new colour's image taken back. Before it:
# only the idle colour's image taken back (ugw-swap already did when its restart failed).
switch_back() {
  if reached switched; then
    say "switching back to $live"
    balancer "$live" --undo --always --timeout 30s
    balancer "$idle" --state maint --always --timeout 2m
  fi
  if reached swapped && [ "$(step_status ugw-swap)" = ok ]; then
    swap "$idle" --rollback --always
  fi
}

# The status of the last step of TOOL in the record ("" when it has none).
step_status() {
  python3 - "$record" "$1" <<'PY'
import json, sys
steps = [s for s in json.load(open(sys.argv[1]))["steps"] if s["tool"] == sys.argv[2]]
print(steps[-1]["status"] if steps else "")
PY
}

# In a subshell of its own, so that `set -e` stops it at the first failed step (in a
# `upgrade || …` list, bash would ignore it).
set +e
(set -e; upgrade)
status=$?
set -e
if [ "$status" -ne 0 ]; then
  say "$version failed (exit $status): $live keeps serving"
  switch_back
  exit "$status"
fi
say "$idle serves $version"
