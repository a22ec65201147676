# Shell pieces every ugw example shares (make demo, the Ansible and GitLab CI examples, the
# runbooks): pack demo releases as a CI would, serve them on loopback, and stop a service by
# its pidfile. None of them starts a service: `ugw-swap --start` (or the host's own service
# manager) does. Source it; it defines functions and changes nothing else.
#   source examples/lib/releases.sh

# running PID: whether the process still runs (a zombie nobody reaped yet has stopped).
running() {
  kill -0 "$1" 2>/dev/null && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# free_port: a TCP port on 127.0.0.1 nobody listens on right now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# pack_release OUT_DIR BUILD_DIR APP_BIN VERSION MIGRATION_FOLDER... -- APP_FLAGS...
# Writes OUT_DIR/app-VERSION-linux-amd64.tar.gz holding bin/app (a launcher for APP_BIN, the
# built ugw-demo-app, with --version-label VERSION and APP_FLAGS) and migrations/ (every
# folder given, copied in order).
pack_release() {
  local out=$1 build=$2 app_bin=$3 version=$4
  shift 4
  local dir=$build/$version
  mkdir -p "$dir/bin" "$dir/migrations" "$out"
  while [ "$1" != -- ]; do cp -R "$1/." "$dir/migrations/"; shift; done
  shift
  local flags=""
  [ $# -gt 0 ] && flags=$(printf ' %q' "$@")
  printf '#!/bin/sh\nexec %q --version-label %s%s "$@"\n' "$app_bin" "$version" "$flags" >"$dir/bin/app"
  chmod 755 "$dir/bin/app"
  tar -czf "$out/app-$version-linux-amd64.tar.gz" -C "$dir" bin migrations
}

# sign_releases OUT_DIR: the SHA256SUMS file ugw-fetch checks against.
sign_releases() {
  (cd "$1" && sha256sum -- *.tar.gz >SHA256SUMS)
}

# serve_releases DIR LOG_PREFIX: serve DIR on a free loopback port in the background; sets
# release_server_pid and release_base (http://127.0.0.1:PORT).
serve_releases() {
  local dir=$1 log=$2
  python3 -u -m http.server --bind 127.0.0.1 --directory "$dir" 0 >"$log.out" 2>"$log.err" &
  release_server_pid=$!
  until grep -q 'port [0-9]' "$log.out" 2>/dev/null; do
    running "$release_server_pid" || { cat "$log.err" >&2; return 1; }
    sleep 0.05
  done
  release_base=http://127.0.0.1:$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$log.out")
}

# stop_pidfile PIDFILE: TERM the process it names (its first line: the pid; `ugw-swap --start`
# writes which process it is on the second) and wait until it is gone.
stop_pidfile() {
  [ -s "$1" ] || return 0
  local pid
  pid=$(head -n 1 "$1")
  kill -TERM "$pid" 2>/dev/null || true
  while running "$pid"; do sleep 0.05; done
  rm -f "$1"
}
