#!/usr/bin/env bash
# Where the ugw binaries (and ugw-demo-app) of this checkout are, for the demo, the demo fleet
# and the runbooks' labs: UGW_BIN_DIR when set, else the debug build in the folder cargo
# builds into, as cargo itself says (CARGO_TARGET_DIR, a .cargo/config.toml's
# build.target-dir, or ./target): a guess of "target/debug" breaks on CI and shared machines.
#   source examples/lib/bins.sh; bin=$(ugw_bin_dir)

# ugw_bin_dir: that folder, made absolute; fails, saying why, when it does not exist.
ugw_bin_dir() {
  local dir=${UGW_BIN_DIR:-} checkout
  if [ -z "$dir" ]; then
    checkout=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    dir=$(cd "$checkout" && "${CARGO:-cargo}" metadata --format-version 1 --no-deps 2>/dev/null \
      | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])') \
      || { echo "cannot ask cargo where it builds; set UGW_BIN_DIR to the folder of the ugw binaries" >&2; return 1; }
    dir=$dir/debug
  fi
  if [ ! -x "$dir/ugw-wait-healthy" ]; then
    echo "no ugw binaries in $dir: run \`cargo build --workspace\` (or \`make build\`) first, or set UGW_BIN_DIR" >&2
    return 1
  fi
  (cd "$dir" && pwd)
}
