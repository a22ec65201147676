# The lab the five runbooks run in: demo releases built and served the way examples/demo.sh
# does it, demo nodes standing in for each system's components (installed on the old release
# and started), and one call that stops it all. Each runbook's lab.sh sources this; the
# runbooks themselves never do (they take their settings as an operator's config file).
#   source examples/runbooks/lib.sh

# shellcheck source=../lib/releases.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/releases.sh"

lab_say() { echo "lab: $*" >&2; }

# lab_start LAB: the lab's folder (created) and the ugw binaries on PATH (UGW_BIN_DIR, else
# target/debug of this checkout). Sets LAB and BIN.
lab_start() {
  LAB=$1
  mkdir -p "$LAB/www" "$LAB/build"
  BIN=$(cd "${UGW_BIN_DIR:-$(dirname "${BASH_SOURCE[0]}")/../../target/debug}" && pwd)
  export PATH="$BIN:$PATH"
}

# lab_release VERSION MIGRATION_FOLDER... -- APP_FLAGS...: app-VERSION-linux-amd64.tar.gz (bin/app
# and migrations/) in LAB/www, as a CI job would pack it.
lab_release() {
  pack_release "$LAB/www" "$LAB/build" "$BIN/ugw-demo-app" "$@"
}

# lab_binary_release NAME VERSION APP_FLAGS...: NAME-VERSION-linux-amd64 in LAB/www, a single
# executable that answers --version like a real node binary and otherwise runs the demo service.
lab_binary_release() {
  local name=$1 version=$2
  shift 2
  local file=$LAB/www/$name-$version-linux-amd64 flags=""
  [ $# -gt 0 ] && flags=$(printf ' %q' "$@")
  printf '#!/bin/sh\n[ "$1" = --version ] && { echo "%s %s"; exit 0; }\nexec %q --version-label %s%s "$@"\n' \
    "$name" "$version" "$BIN/ugw-demo-app" "$version" "$flags" >"$file"
  chmod 755 "$file"
}

# lab_serve: SHA256SUMS over every artifact, and LAB/www served on loopback. Sets RELEASES
# (the base URL); the server's pid goes to LAB/releases.pid for lab_stop.
lab_serve() {
  (cd "$LAB/www" && sha256sum -- * >SHA256SUMS)
  serve_releases "$LAB/www" "$LAB/releases"
  echo "$release_server_pid" >"$LAB/releases.pid"
  RELEASES=$release_base
}

# lab_node NODE APP_FLAGS...: a demo node in release-folder mode under LAB/NODE (releases/,
# current, staging/, a service script LAB/NODE/restart, its pid in LAB/NODE/app.pid), listening
# on a free port (LAB/NODE/port). Sets PORT.
lab_node() {
  local node=$LAB/$1
  shift
  mkdir -p "$node"
  PORT=$(free_port)
  echo "$PORT" >"$node/port"
  write_restart_script "$node/restart" "$node/app.pid" "$node" "$node/app.log" \
    --listen "127.0.0.1:$PORT" "$@"
}

# lab_install NODE VERSION [HEALTH_URL]: install and start VERSION on a lab_node the way the
# runbooks upgrade it (fetch, swap with restart, wait), the record in LAB/NODE/install.json.
lab_install() {
  local node=$LAB/$1 version=$2
  local url=${3:-http://127.0.0.1:$(cat "$node/port")/health/ready}
  ugw-fetch --in none --url "$RELEASES/app-$version-linux-amd64.tar.gz" \
      --sha256-url "$RELEASES/SHA256SUMS" --dest "$node/staging" --extract --quiet \
    | ugw-swap --root "$node" --restart "$node/restart" --quiet \
    | ugw-wait-healthy --url "$url" --expect-version --timeout 30s --quiet \
    >"$node/install.json"
  lab_say "$1 runs $version (pid $(cat "$node/app.pid")) on port $(cat "$node/port")"
}

# lab_stop LAB: stop every process the lab started (each *.pid file below LAB), whatever
# state a runbook left it in. Safe to call twice.
lab_stop() {
  local pidfile
  while IFS= read -r pidfile; do
    stop_pidfile "$pidfile"
  done < <(find "$1" -name '*.pid' -type f 2>/dev/null)
}
