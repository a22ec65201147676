#!/usr/bin/env bash
# The Guts lab: four demo validators on loopback running guts-node v1.0.0 (a single binary
# each; the lab has no systemd, so ugw-swap --start runs each node, which is what the
# settings' `service` says), validator3 the leader, and releases v1.1.0 (good), v1.2.0 (never
# healthy) and v1.3.0 (dies soon after its start) published with their SHA256SUMS.
#   lab.sh DIR    then: GUTS_UPGRADE_CONF=DIR/upgrade.conf validator-upgrade.sh v1.1.0
#   stop it:      bash -c 'source examples/runbooks/lib.sh; lab_stop DIR'
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
lab_start "$1"

for v in v1.0.0 v1.1.0; do lab_binary_release guts-node "$v"; done
lab_binary_release guts-node v1.2.0 --fail-status 500 --status-field broken
# v1.3.0 starts, then dies before it is ever ready (5 s in: after ugw-swap's --alive-for, long
# before the sync timeout), as a node that crashes on the chain's data would; only a wait that
# watches its process tells at once.
printf '#!/bin/sh\n[ "$1" = --version ] && { echo "guts-node v1.3.0"; exit 0; }\n%q --version-label v1.3.0 --ready-after 1h "$@" &\nsleep 5\nkill $!\nexit 1\n' \
  "$BIN/ugw-demo-app" >"$LAB/www/guts-node-v1.3.0-linux-amd64"
chmod 755 "$LAB/www/guts-node-v1.3.0-linux-amd64"
lab_serve

validators=(validator1 validator2 validator3 validator4)
echo validator3 >"$LAB/leader"
cat >"$LAB/upgrade.conf" <<CONF
RELEASES=$RELEASES
STATE=$LAB/state
VALIDATORS=(${validators[*]})
STABLE_FOR=300ms
SYNC_TIMEOUT=20s
leader() { cat $(printf '%q' "$LAB/leader"); }
url() { echo "http://127.0.0.1:\$(cat $(printf '%q' "$LAB")/\$1/port)"; }
binary() { echo $(printf '%q' "$LAB")/\$1/bin/guts-node; }
service() {
  local node=$(printf '%q' "$LAB")/\$1
  restart=(--start "exec \$(printf '%q' "\$node/bin/guts-node") --listen 127.0.0.1:\$(cat "\$node/port")"
    --pidfile "\$node/app.pid")
  watch=(--pidfile "\$node/app.pid")
}
data() { echo $(printf '%q' "$LAB")/\$1/data; }
CONF

# Each validator's node: v1.0.0 put in place and started the way the upgrade restarts it.
source "$LAB/upgrade.conf"
for v in "${validators[@]}"; do
  node=$LAB/$v
  mkdir -p "$node/bin" "$node/data"
  echo "blocks of $v" >"$node/data/chain.db"
  free_port >"$node/port"
  service "$v"
  UGW_HOST_ID=$v ugw-swap --in none --target "$node/bin/guts-node" \
      --from "$LAB/www/guts-node-v1.0.0-linux-amd64" "${restart[@]}" --quiet \
    | UGW_HOST_ID=$v ugw-wait-healthy --url "$(url "$v")/health/ready" "${watch[@]}" \
      --expect-version v1.0.0 --timeout 20s --output none --quiet
done
lab_say "four validators run guts-node v1.0.0; releases at $RELEASES"
