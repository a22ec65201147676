#!/usr/bin/env python3
"""Stage and switch a release: ugw-fetch --extract | ugw-swap against what runbooks do, on a
release archive of many small files and a few large ones (our own data, made here).

Commands run interleaved, round by round (median of --rounds each, fresh folders every round):

  ugw        ugw-fetch --url file://A --sha256 HEX --dest S --extract | ugw-swap --root R
             (verify, extract with the escape checks, flush, record a manifest; then re-hash
             the staged tree against it, copy it into releases/, switch `current` by rename)
  runbook    sha256sum -c && mkdir R/releases/V && tar -xzf A -C R/releases/V &&
             ln -sfn releases/V R/current.tmp && mv -T R/current.tmp R/current
             (what runbooks do: nothing flushed, nothing re-checked)
  ugw-before the same ugw pipe with the binaries given by --before-bin (a build of an earlier
             commit), when given: what the trust rule and the flushes cost

Reported: each command's median wall time and the ratios ugw/runbook and ugw/ugw-before.
Standard library only; nothing leaves this machine (file:// URLs). Exit status 0, or 2 for
set-up problems (no release binaries, no tar or sha256sum).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import summary  # noqa: E402  (bench/summary.py: this benchmark's table in RESULTS.md)

REPO_ROOT = Path(__file__).resolve().parent.parent


def make_release(folder: Path, small: int, large_mib: int) -> Path:
    """A release tree: `small` source-like files in nested folders and two large binaries."""
    tree = folder / "tree"
    for i in range(small):
        path = tree / "lib" / f"pkg{i % 40}" / f"mod{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# module {i}\n" + "def f(x):\n    return x + %d\n" % i * 20)
    (tree / "bin").mkdir(parents=True, exist_ok=True)
    for name in ("app", "worker"):
        with open(tree / "bin" / name, "wb") as out:
            out.write(os.urandom(large_mib * 1024 * 1024 // 2))
        os.chmod(tree / "bin" / name, 0o755)
    archive = folder / "app-v2.0.0-linux-amd64.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        for entry in sorted(tree.iterdir()):
            tar.add(entry, arcname=entry.name)
    return archive


def timed(command: str, cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["bash", "-c", "set -euo pipefail\n" + command], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def ugw_pipe(bin_dir: Path, archive: Path, digest: str, work: Path) -> str:
    fetch, swap = bin_dir / "ugw-fetch", bin_dir / "ugw-swap"
    return (f"{fetch} --in none --quiet --url file://{archive} --sha256 {digest} "
            f"--dest {work}/staging --extract | {swap} --quiet --root {work}/root")


def runbook(archive: Path, digest: str, work: Path) -> str:
    return (f"echo '{digest}  {archive}' | sha256sum -c --quiet && "
            f"mkdir -p {work}/root/releases/v2.0.0 && "
            f"tar -xzf {archive} -C {work}/root/releases/v2.0.0 && "
            f"ln -sfn releases/v2.0.0 {work}/root/current.tmp && "
            f"mv -T {work}/root/current.tmp {work}/root/current")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", type=Path, default=REPO_ROOT / "target/release")
    parser.add_argument("--before-bin", type=Path, help="ugw binaries of an earlier build")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--small-files", type=int, default=3000)
    parser.add_argument("--large-mib", type=int, default=64)
    args = parser.parse_args()
    table = summary.Summary("stage-swap", "Staging and switching a release (bench/stage_swap.py)")
    for needed in ("tar", "sha256sum"):
        if shutil.which(needed) is None:
            print(f"stage_swap: {needed} is not installed", file=sys.stderr)
            return 2
    bins = {"ugw": args.bin}
    if args.before_bin:
        bins["ugw-before"] = args.before_bin
    for name, folder in bins.items():
        if not (folder / "ugw-fetch").exists() or not (folder / "ugw-swap").exists():
            print(f"stage_swap: no ugw-fetch/ugw-swap in {folder} ({name}): build them first",
                  file=sys.stderr)
            return 2

    with tempfile.TemporaryDirectory(prefix="ugw-bench-stage-") as tmp:
        tmp = Path(tmp)
        archive = make_release(tmp, args.small_files, args.large_mib)
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        size = archive.stat().st_size
        times: dict[str, list[float]] = {name: [] for name in ["runbook", *bins]}
        for round_no in range(args.rounds):
            for name in times:
                work = tmp / f"{name}-{round_no}"
                work.mkdir()
                if name == "runbook":
                    command = runbook(archive, digest, work)
                else:
                    command = ugw_pipe(bins[name], archive, digest, work)
                times[name].append(timed(command, tmp))
                shutil.rmtree(work)

    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"stage_swap: {args.small_files} small files + 2 x {args.large_mib // 2} MiB, "
          f"archive {size / 1048576:.1f} MiB, median of {args.rounds} rounds")
    for name, value in median.items():
        spread = f"{min(times[name]):.3f}-{max(times[name]):.3f}"
        print(f"  {name:<11} {value:7.3f} s  (range {spread} s)")
    print(f"  ugw / runbook    = {median['ugw'] / median['runbook']:.2f}")
    if "ugw-before" in median:
        print(f"  ugw / ugw-before = {median['ugw'] / median['ugw-before']:.2f}")
    table.row(f"stage + switch ({args.small_files} files + 2 x {args.large_mib // 2} MiB), median wall", f"{median['ugw']:.3f} s",
              f"{median['runbook']:.3f} s (sha256sum -c; tar -xzf; ln -sfn; mv -T)", median["ugw"] / median["runbook"],
              "none (the cost of the flushes and checks)")
    table.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
