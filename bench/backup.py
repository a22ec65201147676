#!/usr/bin/env python3
"""ugw-backup against the shell pipelines it replaces, on our own deterministic data set
(bench/backup_dataset.py, ~570 MiB, 39k files). Every variant runs once per round, rounds
interleaved, and the table gives medians with their spread (min-max) and peak memory.
Usage: backup.py [--runs N] [--scale MiB] [--data DIR] [--bin target/release]
Writes bench/results/backup.md."""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import summary  # noqa: E402  (bench/summary.py: this benchmark's table in RESULTS.md)

HERE = os.path.dirname(os.path.abspath(__file__))


def timed(argv, shell=False):
    """(wall seconds, peak RSS in KiB) of one command, which must succeed."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, shell=shell, executable="/bin/bash" if shell else None,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {argv}\n{proc.stderr.read().decode()}")
    return wall, usage.ru_maxrss


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scale", type=int, default=512)
    parser.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "ugw-bench-backup-data"))
    parser.add_argument("--bin", default=os.path.join(HERE, "..", "target", "release"))
    args = parser.parse_args()
    table = summary.Summary("backup", "Backing up a data folder (bench/backup.py)")
    for tool in ["pigz", "zstd", "tar", "sha256sum"]:
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed (apt-get install -y {tool})")
    ugw = os.path.join(os.path.abspath(args.bin), "ugw-backup")
    data = os.path.join(args.data, f"scale-{args.scale}")
    if not os.path.isdir(data):
        subprocess.run([sys.executable, os.path.join(HERE, "backup_dataset.py"), data, str(args.scale)], check=True)
    out = tempfile.mkdtemp(prefix="ugw-bench-backup-")
    try:
        rows = run_all(ugw, data, out, args.runs)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    report(rows, args, data, table)


def create(ugw, paths, out, name, extra=()):
    argv = [ugw, "create", "--out", out, "--name", name, "--in", "none", "--output", "none", "--quiet", *extra]
    for path in paths:
        argv += ["--path", path]
    return argv


def pipeline(paths, archive, compressor):
    files = " ".join(f"'{p}'" for p in paths)
    return f"tar -cf - {files} 2>/dev/null | {compressor} | tee >(sha256sum > '{archive}.sha256') > '{archive}' && sync"


def run_all(ugw, data, out, runs):
    parts = {
        "all": [data],
        "compressible": [os.path.join(data, "logs"), os.path.join(data, "repos")],
        "incompressible": [os.path.join(data, "objects")],
    }
    results = {}

    def record(key, wall, rss, size=None):
        entry = results.setdefault(key, {"wall": [], "rss": [], "size": []})
        entry["wall"].append(wall)
        entry["rss"].append(rss)
        if size is not None:
            entry["size"].append(size)

    for round_ in range(runs):
        for part, paths in parts.items():
            name = f"r{round_}-{part}"
            wall, rss = timed(create(ugw, paths, out, name + "-gz"))
            archive = os.path.join(out, name + "-gz.tar.gz")
            record(f"{part}/ugw create", wall, rss, os.path.getsize(archive))
            target = os.path.join(out, name + "-pigz.tar.gz")
            wall, rss = timed(pipeline(paths, target, "pigz -1 -p 2"), shell=True)
            record(f"{part}/tar | pigz -1 -p 2", wall, rss, os.path.getsize(target))
            os.remove(target)
            if part == "all":
                wall, rss = timed(create(ugw, paths, out, name + "-zst", ["--compress", "zstd"]))
                zst = os.path.join(out, name + "-zst.tar.zst")
                record("all/ugw create --compress zstd", wall, rss, os.path.getsize(zst))
                target = os.path.join(out, name + "-zstd.tar.zst")
                wall, rss = timed(pipeline(paths, target, "zstd -q -T0 -3"), shell=True)
                record("all/tar | zstd -T0 -3", wall, rss, os.path.getsize(target))
                os.remove(target)
                for path in [zst, zst + ".sha256", os.path.join(out, name + "-zst.manifest.json")]:
                    os.remove(path)
                wall, rss = timed([ugw, "verify", archive, "--in", "none", "--output", "none", "--quiet"])
                record("all/ugw verify", wall, rss)
                wall, rss = timed(["tar", "-xzOf", archive], shell=False)
                record("all/tar -xzOf >/dev/null", wall, rss)
            for path in [archive, archive + ".sha256", os.path.join(out, name + "-gz.manifest.json")]:
                os.remove(path)
            print(f"round {round_ + 1}/{runs}: {part} done", file=sys.stderr)
    return results


def report(results, args, data, table):
    input_bytes = {part: dir_bytes(paths) for part, paths in {
        "all": [data], "compressible": [f"{data}/logs", f"{data}/repos"], "incompressible": [f"{data}/objects"]}.items()}
    lines = [
        "# ugw-backup against tar pipelines",
        "",
        f"`python3 bench/backup.py --runs {args.runs} --scale {args.scale}` on {os.cpu_count()} CPUs; "
        f"data set `bench/backup_dataset.py` ({input_bytes['all'] / 2**20:.0f} MiB). Medians of {args.runs} "
        "interleaved runs, spread min-max; page cache warm for every variant alike.",
        "",
        "| part | command | wall s (spread) | MB/s | size MB | peak RSS MiB |",
        "|---|---|---|---|---|---|",
    ]
    for key, entry in results.items():
        part, command = key.split("/", 1)
        wall = statistics.median(entry["wall"])
        size = f"{statistics.median(entry['size']) / 1e6:.0f}" if entry["size"] else ""
        lines.append(
            f"| {part} | `{command}` | {wall:.2f} ({min(entry['wall']):.2f}-{max(entry['wall']):.2f}) | "
            f"{input_bytes[part] / 1e6 / wall:.0f} | {size} | {max(entry['rss']) / 1024:.0f} |")
    med = {k: statistics.median(v["wall"]) for k, v in results.items()}
    size = {k: statistics.median(v["size"]) for k, v in results.items() if v["size"]}
    lines += [
        "",
        "Ratios (targets in brackets):",
        "",
        f"- create gzip / pigz pipeline, wall: {med['all/ugw create'] / med['all/tar | pigz -1 -p 2']:.2f} (<= 0.6); "
        f"size: {size['all/ugw create'] / size['all/tar | pigz -1 -p 2']:.2f} (<= 1.05)",
        f"- create zstd / zstd pipeline, wall: {med['all/ugw create --compress zstd'] / med['all/tar | zstd -T0 -3']:.2f} (<= 1.1)",
        f"- verify / tar -xzOf, wall: {med['all/ugw verify'] / med['all/tar -xzOf >/dev/null']:.2f} (<= 1.0)",
        f"- peak RSS of ugw-backup: {max(max(v['rss']) for k, v in results.items() if 'ugw' in k) / 1024:.0f} MiB (<= 64)",
    ]
    rows = [("create gzip, wall", "all/ugw create", "all/tar | pigz -1 -p 2", "tar | pigz -1 -p 2 | tee sha256sum; sync", 0.6),
            ("create zstd, wall", "all/ugw create --compress zstd", "all/tar | zstd -T0 -3", "tar | zstd -T0 -3 | tee sha256sum; sync", 1.1),
            ("verify, wall", "all/ugw verify", "all/tar -xzOf >/dev/null", "tar -xzOf ARCHIVE >/dev/null", 1.0)]
    for metric, ours, theirs, label, target in rows:
        ratio = med[ours] / med[theirs]
        table.row(metric, f"{med[ours]:.2f} s", f"{med[theirs]:.2f} s ({label})", ratio, f"<= {target}x", ratio <= target)
    ratio = size["all/ugw create"] / size["all/tar | pigz -1 -p 2"]
    table.row("gzip archive size", f"{size['all/ugw create'] / 1e6:.0f} MB", f"{size['all/tar | pigz -1 -p 2'] / 1e6:.0f} MB (pigz -1)",
              ratio, "<= 1.05x", ratio <= 1.05)
    peak = max(max(v["rss"]) for k, v in results.items() if "ugw" in k) / 1024
    table.row("peak RSS of ugw-backup", f"{peak:.0f} MiB", None, None, "<= 64 MiB", peak <= 64)
    table.write()
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", "backup.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def dir_bytes(paths):
    total = 0
    for path in paths:
        for folder, _, files in os.walk(path):
            total += sum(os.lstat(os.path.join(folder, name)).st_size for name in files)
    return total


main()
