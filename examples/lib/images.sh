# Shell pieces the container examples share (examples/compose/, the Compose runbook labs, the
# Compose benchmark): a distribution registry on loopback, and the demo service built into an
# image offline (its binary and the libraries ldd names, `docker import`ed: no base image, no
# network), pushed there and removed locally, so ugw-fetch --image really pulls it by digest.
# Source it after releases.sh (free_port, running); it defines functions and changes nothing
# else. Every container these images run uses the host network: dockerd here has no bridge.
#   source examples/lib/releases.sh; source examples/lib/images.sh

# start_registry DIR: `docker-registry serve` on a free 127.0.0.1 port, its storage, config
# and log under DIR. Sets REGISTRY (127.0.0.1:PORT) and registry_pid; waits until /v2/ answers.
start_registry() {
  local dir=$1 port tries
  mkdir -p "$dir/storage"
  port=$(free_port)
  cat >"$dir/config.yml" <<YAML
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YAML
  docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
  registry_pid=$!
  for tries in $(seq 200); do
    if python3 - "$port" <<'PY' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v2/", timeout=1)
PY
      REGISTRY=127.0.0.1:$port
      return 0
    fi
    running "$registry_pid" || break
    sleep 0.05
  done
  echo "the registry did not come up (try $tries):" >&2
  cat "$dir/registry.log" >&2
  return 1
}

# stop_registry: stop the registry start_registry started, and remove every local image of
# its repositories (they name a registry that is gone). Safe to call twice or without one.
stop_registry() {
  [ -n "${registry_pid:-}" ] || return 0
  kill -TERM "$registry_pid" 2>/dev/null || true
  wait "$registry_pid" 2>/dev/null || true
  registry_pid=
  local ids
  ids=$(docker images --format '{{.Repository}} {{.ID}}' 2>/dev/null \
    | awk -v r="$REGISTRY/" 'index($1, r) == 1 {print $2}' | sort -u)
  # shellcheck disable=SC2086 # one word per image id
  [ -z "$ids" ] || docker rmi -f $ids >/dev/null 2>&1 || true
}

# image_add_binary ROOT BINARY: BINARY into ROOT/app/, and every library ldd names (the
# dynamic loader too) at its own path under ROOT, so it runs in an image with nothing else.
image_add_binary() {
  local root=$1 binary=$2 lib
  mkdir -p "$root/app"
  cp "$binary" "$root/app/"
  while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done < <(ldd "$binary" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\).*/\1/p')
}

# build_demo_image BIN_DIR REPO VERSION MIGRATIONS -- APP_FLAGS...: the demo service of BIN_DIR
# as REGISTRY/REPO:VERSION (label org.opencontainers.image.version=VERSION), its migrations
# folder MIGRATIONS (or "" for none) at /migrations, pushed and removed locally. The entrypoint
# is `/app/ugw-demo-app --log-requests --version-label VERSION APP_FLAGS`, the command
# `--listen 127.0.0.1:8080`: give the service its port as its command (Compose's `command:`),
# there is no shell in the image. IMAGE_BINARIES (names in BIN_DIR) go to /app too, e.g.
# ugw-wait-healthy for a Docker healthcheck. Sets image_repository and image_digest.
build_demo_image() {
  local bin=$1 repo=$2 version=$3 migrations=$4 work name tagged entry
  shift 4
  [ "${1:-}" = -- ] && shift
  work=$(mktemp -d)
  image_add_binary "$work/root" "$bin/ugw-demo-app"
  for name in ${IMAGE_BINARIES:-}; do image_add_binary "$work/root" "$bin/$name"; done
  if [ -n "$migrations" ]; then
    mkdir -p "$work/root/migrations"
    cp -R "$migrations/." "$work/root/migrations/"
  fi
  tar --owner=0 --group=0 --numeric-owner -C "$work/root" -cf "$work/rootfs.tar" .
  entry=$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' \
    /app/ugw-demo-app --log-requests --version-label "$version" "$@")
  image_repository=$REGISTRY/$repo
  tagged=$image_repository:$version
  docker import --change "ENTRYPOINT $entry" --change 'CMD ["--listen", "127.0.0.1:8080"]' \
    --change "LABEL org.opencontainers.image.version=$version" \
    "$work/rootfs.tar" "$tagged" >/dev/null
  rm -rf "$work"
  docker push "$tagged" >/dev/null
  image_digest=$(docker inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$tagged" \
    | sed -n "s|^$image_repository@||p" | head -n 1)
  docker rmi -f "$tagged" >/dev/null
  [ -n "$image_digest" ] || { echo "no digest for $tagged after its push" >&2; return 1; }
}

# image_sums FILE: append `DIGEST  REPOSITORY:VERSION` for the image build_demo_image just
# pushed, the list ugw-fetch --image --sha256-file checks a tag against (as SHA256SUMS does a
# file). Uses image_repository, image_digest and the VERSION given.
image_sums() {
  printf '%s  %s:%s\n' "$image_digest" "$image_repository" "$2" >>"$1"
}
