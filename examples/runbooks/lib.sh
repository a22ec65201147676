# The lab the five runbooks run in: demo releases built and served the way examples/demo.sh
# does it, demo nodes standing in for each system's components (installed on the old release
# and started), or for the Compose runbooks a loopback registry of demo images and the stack
# brought up on the old one, and one call that stops it all. Each runbook's lab.sh sources this; the
# runbooks themselves never do (they take their settings as an operator's config file).
#   source examples/runbooks/lib.sh

# shellcheck source=../lib/releases.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/releases.sh"
# shellcheck source=../lib/images.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/images.sh"

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

# ---- Compose labs ----

# lab_docker_name WHAT: a Docker name of this lab (lower case, as Docker and Compose want it):
# LAB_DOCKER_PREFIX (a test gives its own, so its cleanup finds everything), else one made
# from the lab's folder, then -WHAT. Parallel labs never share a project, volume or image.
lab_docker_name() {
  local prefix=${LAB_DOCKER_PREFIX:-ugwlab-$(basename "$LAB")}
  printf '%s-%s\n' "$prefix" "$1" | tr '[:upper:]' '[:lower:]' | tr -c 'a-z0-9\n-' '-'
}

# lab_registry: a distribution registry on loopback for the lab's images (start_registry),
# its pid in LAB/registry.pid and its address in LAB/registry.addr for lab_stop. Sets REGISTRY.
lab_registry() {
  start_registry "$LAB/registry"
  echo "$registry_pid" >"$LAB/registry.pid"
  echo "$REGISTRY" >"$LAB/registry.addr"
}

# lab_images REPO MIGRATIONS OLD NEW BAD NEW_APP_FLAGS...: the three images of a lab, pushed to
# the lab's registry (lab_registry first) as REGISTRY/<lab name>-REPO:VERSION, and the list
# LAB/www/IMAGES.sha256 (`DIGEST  REPOSITORY:VERSION`) ugw-fetch --image checks a tag against,
# as lab_releases does for tarballs: OLD with the migrations of MIGRATIONS/v1 at /migrations,
# NEW with v1 and v2 (NEW_APP_FLAGS: what the new release needs), BAD with v1 to v3 and a health
# check that answers 500. IMAGE_BINARIES as for build_demo_image. Sets IMAGE (the repository)
# and IMAGE_SUMS.
lab_images() {
  local repo=$1 migrations old=$3 new=$4 bad=$5
  migrations=$(cd "$2" && pwd)
  shift 5
  IMAGE_SUMS=$LAB/www/IMAGES.sha256
  : >"$IMAGE_SUMS"
  lab_image "$repo" "$old" "$migrations/v1" --
  lab_image "$repo" "$new" "$migrations/v1" "$migrations/v2" -- "$@"
  lab_image "$repo" "$bad" "$migrations/v1" "$migrations/v2" "$migrations/v3" -- "$@" \
    --fail-status 500 --status-field broken
  IMAGE=$image_repository
}

# lab_image REPO VERSION MIGRATION_FOLDER... -- APP_FLAGS...: one image of lab_images, its
# migrations the folders given merged (as pack_release merges them), its line in IMAGE_SUMS.
lab_image() {
  local repo=$1 version=$2 merged
  shift 2
  merged=$LAB/build/migrations-$version
  mkdir -p "$merged"
  while [ "$1" != -- ]; do cp -R "$1/." "$merged/"; shift; done
  shift
  build_demo_image "$BIN" "$(lab_docker_name "$repo")" "$version" "$merged" -- "$@"
  image_sums "$IMAGE_SUMS" "$version"
  lab_say "image $image_repository:$version is $image_digest"
}

# lab_compose_install FILE PROJECT SERVICES VERSION WAIT_FLAGS...: the stack of Compose file
# FILE brought up as PROJECT on image IMAGE:VERSION the way the runbooks upgrade it (ugw-fetch
# --image checked against IMAGE_SUMS, the image's migrations when LAB_DB names a database,
# ugw-swap --compose of each of SERVICES (a space-separated list), with --env-file
# LAB_ENV_FILE when set, then ugw-wait-healthy WAIT_FLAGS --expect-version), the record in
# LAB/install-PROJECT.json. The project goes to LAB/compose-projects first, so lab_stop takes
# it down whatever happens next.
lab_compose_install() {
  local file=$1 project=$2 services=$3 version=$4 service
  shift 4
  local migrate=(cat) swap=(ugw-swap --compose "$file" --project "$project" --quiet)
  printf '%s\t%s\t%s\n' "$project" "$file" "${LAB_ENV_FILE:-}" >>"$LAB/compose-projects"
  [ -n "${LAB_DB:-}" ] && migrate=(ugw-migrate up --create --from-image --db-env LAB_DB --quiet)
  for service in $services; do swap+=(--service "$service"); done
  [ -n "${LAB_ENV_FILE:-}" ] && swap+=(--env-file "$LAB_ENV_FILE")
  ugw-fetch --in none --image "$IMAGE:$version" --sha256-file "$IMAGE_SUMS" --quiet \
    | "${migrate[@]}" \
    | "${swap[@]}" \
    | ugw-wait-healthy --expect-version --timeout 60s --quiet "$@" \
    >"$LAB/install-$project.json"
  lab_say "$project runs $version"
}

# lab_compose_down LAB: every Compose project lab_compose_install recorded, and any start-first
# slot of one (project PROJECT-PORT), taken down with its containers and volumes.
lab_compose_down() {
  local project file env_file compose ids volumes
  [ -s "$1/compose-projects" ] || return 0
  compose=(docker-compose)
  docker compose version >/dev/null 2>&1 && compose=(docker compose)
  while IFS=$'\t' read -r project file env_file; do
    local flags=(-p "$project" -f "$file")
    [ -n "$env_file" ] && [ -f "$env_file" ] && flags+=(--env-file "$env_file")
    "${compose[@]}" "${flags[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
    ids=$(docker ps -a --filter "label=com.docker.compose.project" \
      --format '{{.ID}} {{.Label "com.docker.compose.project"}}' 2>/dev/null \
      | awk -v p="$project" '$2 == p || (index($2, p "-") == 1 && substr($2, length(p) + 2) ~ /^[0-9]+$/) {print $1}')
    # shellcheck disable=SC2086 # one word per container id
    [ -z "$ids" ] || docker rm -f -v $ids >/dev/null 2>&1 || true
    volumes=$(docker volume ls -q 2>/dev/null | awk -v p="$project" 'index($1, p "_") == 1')
    # shellcheck disable=SC2086 # one word per volume
    [ -z "$volumes" ] || docker volume rm -f $volumes >/dev/null 2>&1 || true
  done <"$1/compose-projects"
}

# lab_stop LAB: stop every process the lab started (each *.pid file below LAB, the registry's
# too), take down its Compose projects and remove its local images, whatever state a runbook
# left it in. Safe to call twice.
lab_stop() {
  local pidfile
  lab_compose_down "$1"
  while IFS= read -r pidfile; do
    stop_pidfile "$pidfile"
  done < <(find "$1" -name '*.pid' -type f 2>/dev/null)
  if [ -s "$1/registry.addr" ]; then
    # The registry is stopped above; stop_registry removes the images that name it.
    REGISTRY=$(cat "$1/registry.addr") registry_pid=stopped stop_registry
    rm -f "$1/registry.addr"
  fi
}
