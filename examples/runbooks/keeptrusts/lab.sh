#!/usr/bin/env bash
# The Keeptrusts lab: the platform's four components as demo services on loopback (api,
# console, gateway1, gateway2), each in its own release folder, on 2.4.0, with a PostgreSQL
# database migrated to 2.4.0's schema; releases 2.5.0 (good) and 2.5.1 (never healthy)
# published with their SHA256SUMS.
#   DATABASE_URL=postgres://… lab.sh DIR    then: KEEPTRUSTS_CONF=DIR/upgrade.conf rolling-update.sh 2.5.0
#   stop it:  bash -c 'source examples/runbooks/lib.sh; lab_stop DIR'
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
lab_start "$1"
lab_database
lab_releases "$(dirname "$0")/../pg-migrations" 2.4.0 2.5.0 2.5.1

for c in api console gateway1 gateway2; do
  lab_service "$c" "$LAB/$c" --lb-flag "$LAB/$c/lb-drained"
  [ "$c" = api ] && export LAB_DB=$DATABASE_URL || unset LAB_DB
  lab_install "$LAB/$c" "$LAB/$c/restart" 2.4.0 --url "http://127.0.0.1:$PORT/health/ready"
done

cat >"$LAB/upgrade.conf" <<CONF
RELEASES=$RELEASES
STATE=$LAB/state
DATABASE_URL='$DATABASE_URL'
# The lab shares a small machine with its tests: latency jitters by tens of milliseconds.
LATENCY_FLOOR=100ms
# A balancer in front of the gateways checks /health/lb every 100 ms and needs 3 failures.
LB_GRACE=1s
GATEWAYS=(gateway1 gateway2)
root() { echo $(printf '%q' "$LAB")/\$1; }
url() { echo "http://127.0.0.1:\$(cat $(printf '%q' "$LAB")/\$1/port)"; }
restart() { echo $(printf '%q' "$LAB")/\$1/restart; }
lb_flag() { echo $(printf '%q' "$LAB")/\$1/lb-drained; }
CONF
