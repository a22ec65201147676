#!/usr/bin/env bash
# The GitLab lab: three Rails nodes on loopback (rails1 the deploy node), each a demo service
# ("puma") behind its own nginx, on GitLab 16.1.0, sharing one PostgreSQL database migrated to
# 16.1.0's schema; releases 16.2.0 (good), 16.2.1 (never healthy) and 16.2.2 (its puma dies
# soon after it starts) published with their SHA256SUMS; an Ansible inventory for them (local
# connection). The nodes have no gitlab-ctl running puma, so ugw-swap --start is puma's
# service manager (NODE/puma.pid); the lab's gitlab-ctl only starts nginx.
#   DATABASE_URL=postgres://… lab.sh DIR
#   then: ansible-playbook -i DIR/inventory.yml zero-downtime-upgrade.yml -e gitlab_version=16.2.0
#   stop it:  bash -c 'source examples/runbooks/lib.sh; lab_stop DIR'
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
lab_start "$1"
lab_database
# 16.2.2: 16.2.0's migrations, but its puma dies 5 s after it starts (after ugw-swap's
# --alive-for, before it is ever ready): only a wait that watches puma's process tells at once.
cat >"$LAB/build/dies-after-start" <<SCRIPT
#!/bin/sh
$(printf %q "$BIN/ugw-demo-app") "\$@" &
sleep 5
kill \$!
exit 1
SCRIPT
chmod 755 "$LAB/build/dies-after-start"
pack_release "$LAB/www" "$LAB/build" "$LAB/build/dies-after-start" 16.2.2 \
  "$(dirname "$0")/../pg-migrations/v1" "$(dirname "$0")/../pg-migrations/v2" -- --ready-after 1h
lab_releases "$(dirname "$0")/../pg-migrations" 16.1.0 16.2.0 16.2.1

# gitlab-ctl of a node, its nginx part: `start nginx`. nginx daemonizes (it leaves our
# session) and writes NODE/nginx.pid, what the drain signals.
write_gitlab_ctl() {
  local node=$1 nginx_port=$2 app_port=$3
  mkdir -p "$node/nginx"
  cat >"$node/nginx.conf" <<CONF
user root;
worker_processes 1;
pid $node/nginx.pid;
error_log $node/nginx/error.log info;
events { worker_connections 64; }
http {
  access_log $node/nginx/access.log;
  client_body_temp_path $node/nginx/body;
  proxy_temp_path $node/nginx/proxy;
  fastcgi_temp_path $node/nginx/fastcgi;
  uwsgi_temp_path $node/nginx/uwsgi;
  scgi_temp_path $node/nginx/scgi;
  server {
    listen 127.0.0.1:$nginx_port;
    location = /-/readiness { proxy_pass http://127.0.0.1:$app_port/health/ready; }
    location / { proxy_pass http://127.0.0.1:$app_port; }
  }
}
CONF
  cat >"$node/gitlab-ctl" <<SCRIPT
#!/usr/bin/env bash
set -euo pipefail
$(declare -f running stop_pidfile)
start_nginx() {
  stop_pidfile $node/nginx.pid
  setsid nginx -p $node/nginx -c $node/nginx.conf -e $node/nginx/error.log
  until [ -s $node/nginx.pid ]; do sleep 0.01; done
}
case "\$*" in
  "start nginx") start_nginx ;;
  *) echo "usage: gitlab-ctl start nginx" >&2; exit 2 ;;
esac
SCRIPT
  chmod 755 "$node/gitlab-ctl"
}

# puma_install NODE NGINX_PORT VERSION PUMA_FLAGS...: VERSION installed on NODE and puma started
# on it the way the play restarts it (ugw-swap PUMA_FLAGS, the inventory's puma_restart), with
# nginx in front, until ready through nginx while puma keeps running (the record in
# NODE/install.json). It migrates when LAB_DB names a database.
puma_install() {
  local node=$1 nginx_port=$2 version=$3
  shift 3
  local migrate=(cat)
  local -x UGW_HOST_ID
  UGW_HOST_ID=$(basename "$node")
  [ -n "${LAB_DB:-}" ] && migrate=(ugw-migrate up --create --db-env LAB_DB --quiet)
  "$node/gitlab-ctl" start nginx
  ugw-fetch --in none --url "$RELEASES/app-$version-linux-amd64.tar.gz" \
      --sha256-url "$RELEASES/SHA256SUMS" --dest "$node/staging" --extract --quiet \
    | "${migrate[@]}" \
    | ugw-swap --root "$node" "$@" --quiet \
    | ugw-wait-healthy --url "http://127.0.0.1:$nginx_port/-/readiness" \
        --pidfile "$node/puma.pid" --expect-version --timeout 30s --quiet \
    >"$node/install.json"
  lab_say "$(basename "$node") runs $version"
}

inventory="all:
  vars:
    ansible_connection: local
    ansible_python_interpreter: \"{{ ansible_playbook_python }}\"
    gitlab_releases: $RELEASES
    gitlab_database_url: \"$DATABASE_URL\"
  children:
    deploy:
      hosts:
        rails1:
    rails:
      vars:
        puma_restart: [--start, \"exec bin/app --listen 127.0.0.1:{{ app_port }}\",
                       --pidfile, \"{{ node_dir }}/puma.pid\"]
        puma_watch: [--pidfile, \"{{ node_dir }}/puma.pid\"]
      hosts:"
for n in rails1 rails2 rails3; do
  node=$LAB/$n
  mkdir -p "$node"
  app_port=$(free_port)
  nginx_port=$(free_port)
  echo "$app_port" >"$node/port"
  echo "$nginx_port" >"$node/nginx_port"
  write_gitlab_ctl "$node" "$nginx_port" "$app_port"
  inventory+="
        $n: {node_dir: $node, app_port: $app_port, nginx_port: $nginx_port}"
  [ "$n" = rails1 ] && export LAB_DB=$DATABASE_URL || unset LAB_DB
  puma_install "$node" "$nginx_port" 16.1.0 \
    --start "exec bin/app --listen 127.0.0.1:$app_port" --pidfile "$node/puma.pid"
done
echo "$inventory" >"$LAB/inventory.yml"
