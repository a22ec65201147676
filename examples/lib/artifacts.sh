# The three releases of the demo service every ugw example upgrades through, packed and signed
# as a CI would publish them. Source it after examples/lib/releases.sh.
#   source examples/lib/releases.sh; source examples/lib/artifacts.sh

# demo_releases OUT_DIR BUILD_DIR APP_BIN: OUT_DIR gets app-vX-linux-amd64.tar.gz for
#   v1.0.0  the first release (creates items),
#   v2.0.0  not ready until items.note exists; ships the migration that adds it, and a
#           post-deploy one dropping what only v1 used,
#   v2.1.0  healthy, but every other unit of work (/work) fails: a bug only the checks after
#           the upgrade find,
#   v3.0.0  a bad release: never healthy (its /health/ready answers 500 "broken"),
# and their SHA256SUMS. APP_BIN is the built ugw-demo-app the releases launch.
demo_releases() {
  local out=$1 build=$2 app_bin=$3
  local migrations
  migrations=$(cd "$(dirname "${BASH_SOURCE[0]}")/../demo-migrations" && pwd)
  pack_release "$out" "$build" "$app_bin" v1.0.0 "$migrations/v1" --
  pack_release "$out" "$build" "$app_bin" v2.0.0 "$migrations/v1" "$migrations/v2" -- \
    --require-column items.note
  pack_release "$out" "$build" "$app_bin" v2.1.0 "$migrations/v1" "$migrations/v2" -- \
    --require-column items.note --error-every 2
  pack_release "$out" "$build" "$app_bin" v3.0.0 \
    "$migrations/v1" "$migrations/v2" "$migrations/v3" -- \
    --require-column items.note --fail-status 500 --status-field broken
  sign_releases "$out"
}
