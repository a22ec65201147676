#!/usr/bin/env bash
# Guts validators (a node binary under systemd), upgraded with ugw: one validator at a time,
# the leader last, each one synced and stable before the next. A validator whose new binary
# does not come up gets its old binary back and the rollout stops there: at most one
# validator is ever in transition, and the ones after it are left as they were.
#
#   validator-upgrade.sh VERSION        settings: $GUTS_UPGRADE_CONF (see upgrade.conf.example)
#
# Exit codes are ugw's: 0 every validator runs VERSION; otherwise the failed step's code.
set -euo pipefail
version=${1:?usage: validator-upgrade.sh VERSION}
# shellcheck source=upgrade.conf.example
source "${GUTS_UPGRADE_CONF:-/etc/guts/upgrade.conf}"
mkdir -p "$STATE/records"
say() { echo "validator-upgrade: $*" >&2; }

# The order: every validator but the leader, then the leader. It is decided once: should the
# leadership move during the rollout, the old leader still goes last and none goes twice.
leader=$(leader)
order=()
for v in "${VALIDATORS[@]}"; do [ "$v" = "$leader" ] || order+=("$v"); done
order+=("$leader")
say "order: ${order[*]} (leader $leader last)"

# One validator: back up its data, fetch the binary and run it once (--version) before it
# gets its name, swap it in with a restart (the old one kept as BINARY.ugw-prev), then wait
# until it answers the new version and keeps answering (the "synced" and "stabilisation"
# waits of the hand-written script, with a deadline instead of an endless loop). How the
# node restarts is the settings' `service` (systemctl, or ugw-swap --start as the lab has it).
upgrade() {
  local v=$1 record=$STATE/records/$1.json restart watch
  local -x UGW_HOST_ID=$v
  service "$v"
  ugw-backup create --in none --path "$(data "$v")" --out "$STATE/backups/$v" \
      --name "$v-before-$version" --app-version "$2" --keep 3 \
    | ugw-fetch --url "$RELEASES/guts-node-$version-linux-amd64" \
        --sha256-url "$RELEASES/SHA256SUMS" --dest "$STATE/staging" --mode 755 \
        --smoke '{} --version' \
    | ugw-swap --target "$(binary "$v")" "${restart[@]}" \
    | ugw-wait-healthy --url "$(url "$v")/health/ready" "${watch[@]}" --expect-version \
        --fail-status 500 --stable-for "$STABLE_FOR" --timeout "$SYNC_TIMEOUT" \
    >"$record"
}

# The failure path of one validator whose new binary went in: the old binary back (the new
# one kept as BINARY.ugw-failed), restarted, and healthy again on the version it ran before.
roll_back() {
  local v=$1 record=$STATE/records/$1.json restart watch
  local -x UGW_HOST_ID=$v
  service "$v"
  ugw-swap --target "$(binary "$v")" --rollback "${restart[@]}" \
    --record "$record" --output none
  ugw-wait-healthy --url "$(url "$v")/health/ready" "${watch[@]}" --expect-version "$2" \
    --timeout 60s --always --record "$record" --output none
}

# The version of the binary installed (what `guts-node --version` says).
version_of() { "$(binary "$1")" --version | awk '{print $NF}'; }

for v in "${order[@]}"; do
  before=$(version_of "$v")
  say "$v: $before -> $version"
  status=0
  upgrade "$v" "$before" || status=$?
  if [ "$status" -ne 0 ]; then
    say "$v: the upgrade failed (exit $status); stopping here"
    if [ "$(version_of "$v")" != "$before" ]; then
      say "$v: rolling back to $before"
      roll_back "$v" "$before"
    fi
    exit "$status"
  fi
  say "$v: runs $version"
done

# Every validator on the same release: what the consensus needs before anything else.
checks=()
for v in "${VALIDATORS[@]}"; do
  checks+=(--http "$(url "$v")/health/ready" --expect ".version == \"$version\"")
done
ugw-verify "${checks[@]}" --record "$STATE/records/fleet.json" --new --output none
say "all validators run $version"
