#!/usr/bin/env bash
# The lab of the Guts node's blue-green method (blue-green.sh): the node as an image in a
# loopback registry, v1.0.0 (running), v1.1.0 (good), v1.2.0 (never healthy: its health check
# answers 500) and v1.3.0 (healthy, but every other request of real work fails: what only
# the check after the switch sees), with their digests in IMAGES.sha256; two colours, blue
# and green, each a Compose project of blue-green.compose.yml on its own port, both on
# v1.0.0; HAProxy on the host in front of them, blue serving and green idle (maint).
#   blue-green-lab.sh DIR    then: GUTS_BLUE_GREEN_CONF=DIR/blue-green.conf blue-green.sh v1.1.0
#   stop it:  bash -c 'source examples/runbooks/lib.sh; lab_stop DIR'
# LAB_DOCKER_PREFIX names what the lab makes in Docker (a test gives its own).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"
lab_start "$1"
lab_registry
IMAGE_SUMS=$LAB/www/IMAGES.sha256
: >"$IMAGE_SUMS"
lab_image guts-node v1.0.0 --
lab_image guts-node v1.1.0 --
lab_image guts-node v1.2.0 -- --fail-status 500 --status-field broken
lab_image guts-node v1.3.0 -- --error-every 2
IMAGE=$image_repository

# install COLOUR PORT: the colour's project on v1.0.0 the way blue-green.sh upgrades it
# (fetch by digest, ugw-swap --compose, healthy on the version), the record in
# LAB/install-COLOUR.json; the project listed in LAB/compose-projects first, so lab_stop takes
# it down whatever happens next.
install() {
  local project
  project=$(lab_docker_name "guts-$1")
  printf '%s\t%s\t%s\n' "$project" "$stack/compose.yml" "$stack/$1.env" >>"$LAB/compose-projects"
  ugw-fetch --in none --image "$IMAGE:v1.0.0" --sha256-file "$IMAGE_SUMS" --quiet \
    | ugw-swap --compose "$stack/compose.yml" --project "$project" --service guts-node \
      --env-file "$stack/$1.env" --restart-check "http://127.0.0.1:$2/health/ready" --quiet \
    | ugw-wait-healthy --url "http://127.0.0.1:$2/health/ready" --expect-version v1.0.0 \
      --timeout 60s --quiet >"$LAB/install-$1.json"
  lab_say "$1 runs v1.0.0 on 127.0.0.1:$2"
}

# The stack's folder: the operator's Compose file and one env file per colour (ugw-swap keeps
# its override and pins in .ugw/ beside them).
stack=$LAB/stack
mkdir -p "$stack" "$LAB/state" "$LAB/haproxy"
cp "$here/blue-green.compose.yml" "$stack/compose.yml"
for colour in blue green; do
  port=$(free_port)
  printf 'GUTS_IMAGE=%s\nGUTS_PORT=%s\n' "$IMAGE" "$port" >"$stack/$colour.env"
  mkdir -p "$LAB/$colour"
  echo "$port" >"$LAB/$colour/port"
  install "$colour" "$port"
done

# HAProxy in front: checks /health/ready every 100 ms (3 failures take a colour out), no
# retry that could hide a request sent to a colour going away.
front=$(free_port)
echo "$front" >"$LAB/haproxy/port"
cat >"$LAB/haproxy/haproxy.cfg" <<CFG
global
  stats socket $LAB/haproxy/admin.sock level admin
defaults
  mode http
  timeout connect 1s
  timeout client 60s
  timeout server 60s
frontend guts
  bind 127.0.0.1:$front
  default_backend guts
backend guts
  balance roundrobin
  option httpchk GET /health/ready
  option http-server-close
  retries 0
  default-server inter 100ms fall 3 rise 2
  server blue 127.0.0.1:$(cat "$LAB/blue/port") check
  server green 127.0.0.1:$(cat "$LAB/green/port") check
CFG
haproxy -D -p "$LAB/haproxy/haproxy.pid" -f "$LAB/haproxy/haproxy.cfg" \
  >"$LAB/haproxy/haproxy.log" 2>&1
ugw-wait-healthy --in none --output none --quiet --timeout 20s \
  --url "http://127.0.0.1:$front/health/ready" --expect '.version == "v1.0.0"' --successes 3
# Green idle: out of the backend (maint), set the way blue-green.sh sets it.
ugw-drain --in none --output none --quiet --haproxy "$LAB/haproxy/admin.sock" \
  --server guts/green --state maint --timeout 20s
echo blue >"$LAB/state/live"
lab_say "blue serves v1.0.0 behind HAProxy on 127.0.0.1:$front; green is idle"

cat >"$LAB/blue-green.conf" <<CONF
IMAGE=$IMAGE
IMAGE_SUMS=$IMAGE_SUMS
STATE=$LAB/state
COMPOSE_FILE=$stack/compose.yml
HAPROXY_SOCKET=$LAB/haproxy/admin.sock
BACKEND=guts
LB_URL=http://127.0.0.1:$front
# A bad image on this small machine: 15 s is plenty to tell.
RESTART_TIMEOUT=15s
project() { echo "$(lab_docker_name guts)-\$1"; }
env_file() { echo $(printf '%q' "$stack")/\$1.env; }
url() { echo "http://127.0.0.1:\$(cat $(printf '%q' "$LAB")/\$1/port)"; }
CONF
