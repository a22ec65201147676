#!/usr/bin/env bash
# The Guts lab: four demo validators on loopback running guts-node v1.0.0 (a single binary
# each, started by a service script as systemd would), validator3 the leader, and releases
# v1.1.0 (good) and v1.2.0 (never healthy) published with their SHA256SUMS.
#   lab.sh DIR    then: GUTS_UPGRADE_CONF=DIR/upgrade.conf validator-upgrade.sh v1.1.0
#   stop it:      bash -c 'source examples/runbooks/lib.sh; lab_stop DIR'
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
lab_start "$1"

for v in v1.0.0 v1.1.0; do lab_binary_release guts-node "$v"; done
lab_binary_release guts-node v1.2.0 --fail-status 500 --status-field broken
lab_serve

validators=(validator1 validator2 validator3 validator4)
echo validator3 >"$LAB/leader"
for v in "${validators[@]}"; do
  node=$LAB/$v
  mkdir -p "$node/bin" "$node/data"
  echo "blocks of $v" >"$node/data/chain.db"
  port=$(free_port)
  echo "$port" >"$node/port"
  write_service_script "$node/guts-node.service" "$node/app.pid" "$node/bin/guts-node" \
    "$node/app.log" --listen "127.0.0.1:$port"
  install -m 755 "$LAB/www/guts-node-v1.0.0-linux-amd64" "$node/bin/guts-node"
  "$node/guts-node.service" >/dev/null
done

cat >"$LAB/upgrade.conf" <<CONF
RELEASES=$RELEASES
STATE=$LAB/state
VALIDATORS=(${validators[*]})
STABLE_FOR=300ms
SYNC_TIMEOUT=20s
leader() { cat $(printf '%q' "$LAB/leader"); }
url() { echo "http://127.0.0.1:\$(cat $(printf '%q' "$LAB")/\$1/port)"; }
binary() { echo $(printf '%q' "$LAB")/\$1/bin/guts-node; }
service() { echo $(printf '%q' "$LAB")/\$1/guts-node.service; }
data() { echo $(printf '%q' "$LAB")/\$1/data; }
CONF
for v in "${validators[@]}"; do
  ugw-wait-healthy --in none --url "http://127.0.0.1:$(cat "$LAB/$v/port")/health/ready" \
    --expect-version v1.0.0 --timeout 20s --output none --quiet
done
lab_say "four validators run guts-node v1.0.0; releases at $RELEASES"
