#!/usr/bin/env bash
# A demo fleet on loopback for the Ansible and GitLab CI examples: the three demo releases
# served over HTTP, N demo nodes installed on v1.0.0 (each with its own releases root, port and
# SQLite database; ugw-swap --start is their service manager), and HAProxy in front of them
# with its admin socket.
#   examples/lib/fleet.sh up DIR N    start it all under DIR; DIR/fleet.env says where things are
#   examples/lib/fleet.sh down DIR    stop everything it started under DIR
# DIR/nodeK/ holds node K: srv/ (releases/, current), data/ (app.db, files/), port, and the
# service's app.pid and app.log (written by ugw-swap --start).
# The ugw binaries and ugw-demo-app are taken from UGW_BIN_DIR (default: the debug build in
# cargo's target folder, which honours CARGO_TARGET_DIR).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/releases.sh"
source "$here/artifacts.sh"
source "$here/bins.sh"
bin=$(ugw_bin_dir)
export PATH="$bin:$PATH"

# haproxy_cmd SOCKET COMMAND: one command on HAProxy's runtime API; its answer on stdout.
haproxy_cmd() {
  python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
print(b"".join(iter(lambda: s.recv(65536), b"")).decode(), end="")
PY
}

# haproxy_status SOCKET BACKEND/SERVER: UP, DOWN, DRAIN, MAINT... as HAProxy's stats say.
haproxy_status() {
  local backend=${2%/*} server=${2#*/}
  haproxy_cmd "$1" "show stat" | awk -F, -v b="$backend" -v s="$server" '$1 == b && $2 == s { print $18 }'
}

up() {
  local dir=$1 nodes=$2
  mkdir -p "$dir/www" "$dir/haproxy"
  dir=$(cd "$dir" && pwd)
  demo_releases "$dir/www" "$dir/build" "$bin/ugw-demo-app"
  serve_releases "$dir/www" "$dir/releases"
  echo "$release_server_pid" >"$dir/releases.pid"

  local servers="" k
  for k in $(seq 1 "$nodes"); do
    install_node "$dir/node$k" "node$k"
    servers+="  server node$k 127.0.0.1:$(cat "$dir/node$k/port") check"$'\n'
  done

  local lb_port
  lb_port=$(free_port)
  cat >"$dir/haproxy/haproxy.cfg" <<CFG
global
  stats socket $dir/haproxy/admin.sock mode 600 level admin
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  timeout check 1s
  # No second try on another node: a request sent to a node that is going away fails, so
  # only draining it first keeps every request whole.
  retries 0
frontend www
  bind 127.0.0.1:$lb_port
  default_backend app
backend app
  option httpchk GET /health/ready
  http-check expect status 200
  default-server inter 200ms rise 2 fall 2
$servers
CFG
  haproxy -f "$dir/haproxy/haproxy.cfg" -D -p "$dir/haproxy/haproxy.pid"
  for k in $(seq 1 "$nodes"); do
    wait_for "HAProxy to see node$k UP" 10 \
      bash -c "[ \"\$(haproxy_status '$dir/haproxy/admin.sock' app/node$k)\" = UP ]"
  done
  {
    echo "RELEASES_URL=$release_base"
    echo "LB_URL=http://127.0.0.1:$lb_port"
    echo "HAPROXY_SOCKET=$dir/haproxy/admin.sock"
    for k in $(seq 1 "$nodes"); do
      echo "NODE${k}_URL=http://127.0.0.1:$(cat "$dir/node$k/port")"
    done
  } >"$dir/fleet.env"
  echo "fleet: $nodes nodes on v1.0.0 behind http://127.0.0.1:$lb_port (HAProxy pid $(cat "$dir/haproxy/haproxy.pid")); releases at $release_base" >&2
}

# install_node DIR HOST: a demo node in DIR, on a free port, running v1.0.0.
install_node() {
  local node=$1 host=$2 port
  port=$(free_port)
  mkdir -p "$node/data/files"
  echo "$port" >"$node/port"
  echo "uploaded to $host by v1" >"$node/data/files/report.txt"
  # The node has no service manager: ugw-swap is it (--start), here and in the examples that
  # upgrade it (they pass the same command, pidfile and log): it stops the process the pidfile
  # names and starts the release now live with this command, in the release's folder,
  # detached, its output appended to the log.
  local start
  start="exec bin/app --listen 127.0.0.1:$port --db $(printf '%q' "$node/data/app.db")"
  UGW_HOST_ID=$host ugw-fetch --in none --url "$release_base/app-v1.0.0-linux-amd64.tar.gz" \
      --sha256-url "$release_base/SHA256SUMS" --dest "$node/staging" --extract --quiet \
    | UGW_HOST_ID=$host ugw-migrate up --create --db "sqlite://$node/data/app.db" --quiet \
    | UGW_HOST_ID=$host ugw-swap --root "$node/srv" --quiet \
        --start "$start" --pidfile "$node/app.pid" --log "$node/app.log" \
    | UGW_HOST_ID=$host ugw-wait-healthy --url "http://127.0.0.1:$port/health/ready" \
        --pidfile "$node/app.pid" \
        --expect-version --timeout 30s --quiet \
    >"$node/install.json"
}

# wait_for WHAT SECONDS COMMAND...: run COMMAND until it succeeds, at most SECONDS.
wait_for() {
  local what=$1 limit=$2
  shift 2
  local until=$((SECONDS + limit))
  until "$@"; do
    [ "$SECONDS" -lt "$until" ] || { echo "fleet: gave up waiting for $what" >&2; return 1; }
    sleep 0.1
  done
}

down() {
  local dir=$1 pidfile
  for pidfile in "$dir"/node*/app.pid "$dir/haproxy/haproxy.pid" "$dir/releases.pid"; do
    stop_pidfile "$pidfile"
  done
}

export -f haproxy_cmd haproxy_status
case "${1:-}" in
  up) up "$2" "${3:-3}" ;;
  down) down "$2" ;;
  *) echo "usage: $0 up DIR [N] | down DIR" >&2; exit 2 ;;
esac
