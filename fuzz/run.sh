#!/usr/bin/env bash
# Run fuzz targets for a set time each (make fuzz): FUZZ_SECONDS per target (default 600),
# FUZZ_TARGETS to choose (default: all), FUZZ_PARALLEL targets at a time (default 1), each
# one libFuzzer process (no -jobs: that would fork and move the output to fuzz-N.log), under nice so a shared machine stays usable. The corpus grows in
# fuzz/corpus/TARGET (seeded from fuzz/seeds/TARGET); a crash lands in
# fuzz/artifacts/TARGET/ and makes the run fail. Each target's log is fuzz/logs/TARGET.log;
# its last line says how many inputs it ran.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-600}"
parallel="${FUZZ_PARALLEL:-1}"
read -r -a targets <<< "${FUZZ_TARGETS:-$(cargo fuzz list 2>/dev/null | tr '\n' ' ')}"
# cargo-fuzz passes -Z flags: a stable toolchain accepts them with RUSTC_BOOTSTRAP=1.
export RUSTC_BOOTSTRAP=1
# Extraction ends with a syncfs; on tmpfs that costs nothing.
[ -d /dev/shm ] && export TMPDIR=/dev/shm
cargo fuzz build -O
mkdir -p logs
run_one() {
  local target="$1"
  mkdir -p "corpus/$target"
  nice -n 19 cargo fuzz run -O "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 \
    -max_len=65536 -print_final_stats=1 >"logs/$target.log" 2>&1
}
status=0
running=0
for target in "${targets[@]}"; do
  run_one "$target" &
  running=$((running + 1))
  if [ "$running" -ge "$parallel" ]; then
    wait -n || status=1
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do
  wait -n || status=1
  running=$((running - 1))
done
for target in "${targets[@]}"; do
  runs=$(grep -ho 'stat::number_of_executed_units: *[0-9]*' "logs/$target.log" | grep -o '[0-9]*$' || echo '?')
  crashes=$(find "artifacts/$target" -type f 2>/dev/null | wc -l)
  echo "$target: ${seconds}s, $runs inputs, $crashes crash files"
done
exit "$status"
