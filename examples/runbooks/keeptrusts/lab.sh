#!/usr/bin/env bash
# The Keeptrusts lab: the platform's four components (api, console, gateway1, gateway2), each
# its own Compose project of compose.yml, running image 2.4.0 from a registry on loopback,
# with a PostgreSQL database migrated to 2.4.0's schema; images 2.5.0 (good) and 2.5.1 (never
# healthy) pushed with their IMAGES.sha256 list served beside them; HAProxy on the host in
# front of the gateways (its admin socket for ugw-drain, its frontend's port in LAB/lb/port).
#   DATABASE_URL=postgres://… lab.sh DIR    then: KEEPTRUSTS_CONF=DIR/upgrade.conf rolling-update.sh 2.5.0
#   stop it:  bash -c 'source examples/runbooks/lib.sh; lab_stop DIR'
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"
lab_start "$1"
lab_database
lab_registry
lab_images keeptrusts "$here/../pg-migrations" 2.4.0 2.5.0 2.5.1
lab_serve

# The platform's folder (the operator's compose.yml; ugw-swap keeps its pins in .ugw/ beside
# it) and its env file.
stack=$LAB/stack
mkdir -p "$stack" "$LAB/lb"
cp "$here/compose.yml" "$stack/compose.yml"
{
  echo "KEEPTRUSTS_IMAGE=$IMAGE"
  echo "KEEPTRUSTS_VERSION=2.4.0"
  echo "DATABASE_URL=$DATABASE_URL"
} >"$stack/keeptrusts.env"
chmod 600 "$stack/keeptrusts.env"
for c in api console gateway1 gateway2; do
  mkdir -p "$LAB/$c"
  free_port >"$LAB/$c/port"
  # API_PORT, CONSOLE_PORT, GATEWAY1_PORT, GATEWAY2_PORT for compose.yml's ${…}.
  printf '%s_PORT=%s\n' "${c^^}" "$(cat "$LAB/$c/port")" >>"$stack/keeptrusts.env"
done
for c in api console gateway1 gateway2; do
  [ "$c" = api ] && export LAB_DB=$DATABASE_URL || unset LAB_DB
  LAB_ENV_FILE=$stack/keeptrusts.env lab_compose_install "$stack/compose.yml" \
    "$(lab_docker_name "keeptrusts-$c")" "$c" 2.4.0 \
    --url "http://127.0.0.1:$(cat "$LAB/$c/port")/health/ready"
done

# HAProxy in front of the gateways: checks /health/ready every 100 ms (3 failures take one
# out), no retry that could hide a request sent to a gateway going away.
lb_port=$(free_port)
echo "$lb_port" >"$LAB/lb/port"
cat >"$LAB/lb/haproxy.cfg" <<CFG
global
  stats socket $LAB/lb/admin.sock level admin
defaults
  mode http
  timeout connect 1s
  timeout client 60s
  timeout server 60s
frontend gateways
  bind 127.0.0.1:$lb_port
  default_backend gateways
backend gateways
  balance roundrobin
  option httpchk GET /health/ready
  option http-server-close
  retries 0
  default-server inter 100ms fall 3 rise 2
  server gateway1 127.0.0.1:$(cat "$LAB/gateway1/port") check
  server gateway2 127.0.0.1:$(cat "$LAB/gateway2/port") check
CFG
haproxy -D -p "$LAB/lb/haproxy.pid" -f "$LAB/lb/haproxy.cfg" >"$LAB/lb/haproxy.log" 2>&1
ugw-wait-healthy --in none --output none --quiet --timeout 20s --successes 3 \
  --url "http://127.0.0.1:$lb_port/health/ready" --expect '.version == "2.4.0"'
lab_say "HAProxy in front of the gateways on 127.0.0.1:$lb_port"

cat >"$LAB/upgrade.conf" <<CONF
IMAGE=$IMAGE
IMAGE_SUMS_URL=$RELEASES/IMAGES.sha256
STATE=$LAB/state
DATABASE_URL='$DATABASE_URL'
COMPOSE_FILE=$stack/compose.yml
ENV_FILE=$stack/keeptrusts.env
HAPROXY_SOCKET=$LAB/lb/admin.sock
# The lab shares a small machine with its tests: latency jitters by tens of milliseconds.
LATENCY_FLOOR=100ms
GATEWAYS=(gateway1 gateway2)
project() { echo "$(lab_docker_name keeptrusts)-\$1"; }
url() { echo "http://127.0.0.1:\$(cat $(printf '%q' "$LAB")/\$1/port)"; }
server() { echo "gateways/\$1"; }
CONF
