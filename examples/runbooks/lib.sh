# The lab the five runbooks run in: demo releases built and served the way examples/demo.sh
# does it, demo nodes standing in for each system's components (installed on the old release
# and started), and one call that stops it all. Each runbook's lab.sh sources this; the
# runbooks themselves never do (they take their settings as an operator's config file).
#   source examples/runbooks/lib.sh

# shellcheck source=../lib/releases.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/releases.sh"

lab_say() { echo "lab: $*" >&2; }

# lab_start LAB: the lab's folder (created) and the ugw binaries on PATH (UGW_BIN_DIR, else
# the debug build in cargo's target folder of this checkout). Sets LAB and BIN.
lab_start() {
  LAB=$1
  mkdir -p "$LAB/www" "$LAB/build"
  # shellcheck source=../lib/bins.sh
  source "$(dirname "${BASH_SOURCE[0]}")/../lib/bins.sh"
  BIN=$(ugw_bin_dir)
  export PATH="$BIN:$PATH"
}

# lab_database: the PostgreSQL database a lab may change, from DATABASE_URL.
lab_database() {
  : "${DATABASE_URL:?this lab needs a PostgreSQL database it may change, in DATABASE_URL}"
}

# lab_release VERSION MIGRATION_FOLDER... -- APP_FLAGS...: app-VERSION-linux-amd64.tar.gz (bin/app
# and migrations/) in LAB/www, as a CI job would pack it.
lab_release() {
  pack_release "$LAB/www" "$LAB/build" "$BIN/ugw-demo-app" "$@"
}

# lab_releases MIGRATIONS OLD NEW BAD NEW_APP_FLAGS...: the three releases of a lab, served
# (lab_serve): OLD with the migrations of MIGRATIONS/v1, NEW with v1 and v2 (NEW_APP_FLAGS: what
# the new release needs, e.g. --require-column), and BAD with v1 to v3 and a health check that
# answers 500 (the failure path's release).
lab_releases() {
  local migrations old=$2 new=$3 bad=$4
  migrations=$(cd "$1" && pwd)
  shift 4
  lab_release "$old" "$migrations/v1" --
  lab_release "$new" "$migrations/v1" "$migrations/v2" -- "$@"
  lab_release "$bad" "$migrations/v1" "$migrations/v2" "$migrations/v3" -- "$@" \
    --fail-status 500 --status-field broken
  lab_serve
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

# lab_service NAME ROOT APP_FLAGS...: a demo service LAB/NAME running the release ROOT/current
# points at, on a free port (LAB/NAME/port), started and stopped by its service script
# LAB/NAME/restart (its pid in LAB/NAME/app.pid). Sets PORT.
lab_service() {
  local dir=$LAB/$1 root=$2
  shift 2
  mkdir -p "$dir"
  PORT=$(free_port)
  echo "$PORT" >"$dir/port"
  write_restart_script "$dir/restart" "$dir/app.pid" "$root" "$dir/app.log" \
    --listen "127.0.0.1:$PORT" "$@"
}

# lab_install ROOT RESTART VERSION WAIT_FLAGS...: install VERSION under ROOT and start it the
# way the runbooks upgrade (fetch, migrate when LAB_DB names a database, swap with RESTART,
# ugw-wait-healthy WAIT_FLAGS --expect-version), the record in ROOT/install.json.
lab_install() {
  local root=$1 restart=$2 version=$3
  shift 3
  local migrate=(cat)
  mkdir -p "$root"
  [ -n "${LAB_DB:-}" ] && migrate=(ugw-migrate up --create --db-env LAB_DB --quiet)
  ugw-fetch --in none --url "$RELEASES/app-$version-linux-amd64.tar.gz" \
      --sha256-url "$RELEASES/SHA256SUMS" --dest "$root/staging" --extract --quiet \
    | "${migrate[@]}" \
    | ugw-swap --root "$root" --restart "$restart" --quiet \
    | ugw-wait-healthy --expect-version --timeout 30s --quiet "$@" \
    >"$root/install.json"
  lab_say "$(basename "$root") runs $version"
}

# lab_stop LAB: stop every process the lab started (each *.pid file below LAB), whatever
# state a runbook left it in. Safe to call twice.
lab_stop() {
  local pidfile
  while IFS= read -r pidfile; do
    stop_pidfile "$pidfile"
  done < <(find "$1" -name '*.pid' -type f 2>/dev/null)
}
