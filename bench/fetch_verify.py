#!/usr/bin/env python3
"""Fetch and verify: ugw-fetch against what runbooks do, on a 512 MiB artifact served by
nginx on 127.0.0.1.

Four commands run interleaved, round by round (median of at least 5 rounds each):

  ugw        ugw-fetch --url URL --sha256 HEX --dest D --quiet   (download, hash while
             streaming, fsync, verify, rename)
  runbook    curl -sfo F URL && sha256sum F                      (what runbooks do)
  curl+sync  curl -sfo F URL && sync F                           (download, durable)
  openssl    openssl sha256 F                                    (hashing alone, F cached)

The floor is the larger of curl+sync and openssl: on two cores the download and the
hashing can overlap, so nothing can beat the slower of the two. Targets: ugw's wall time
<= 1.15 x the floor and <= 0.5 x the runbook's; ugw's peak memory (max RSS) <= 16 MiB.

Exit status: 0 when ugw meets every target, 1 when it misses one, 2 for set-up problems
(no nginx, curl or openssl, or no release binary). Standard library only; all traffic
goes to 127.0.0.1. nginx runs in its own process group and is killed on the way out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import summary  # noqa: E402  (bench/summary.py: this benchmark's table in RESULTS.md)

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET_FLOOR_RATIO = 1.15
TARGET_RUNBOOK_RATIO = 0.5
TARGET_RSS_MIB = 16.0
PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_artifact(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    chunk = 4 * 1024 * 1024
    with open(path, "wb") as out:
        written = 0
        while written < size:
            block = os.urandom(min(chunk, size - written))
            out.write(block)
            digest.update(block)
            written += len(block)
    return digest.hexdigest()


def start_nginx(root: Path, work: Path, port: int) -> subprocess.Popen:
    conf = work / "nginx.conf"
    # Started as root, nginx's worker would otherwise drop to `nobody`, who cannot read here.
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(
        f"""
{user}
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""
    )
    proc = subprocess.Popen(
        ["nginx", "-p", str(work), "-c", str(conf), "-g", "daemon off;"],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    until = time.monotonic() + 10
    while time.monotonic() < until:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"nginx did not start: {proc.stderr.read().decode() if proc.stderr else ''}")


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one command; a failure stops the bench.

    The peak is the process's own VmHWM, read from /proc while it runs: `ru_maxrss` from
    wait4 would include the RSS of this Python process, which the child inherits at fork.
    """
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_kib = 0
    while True:
        pid, status = os.waitpid(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak_kib = max(peak_kib, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.002)
    took = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{argv[0]} failed: {err}")
    return took, peak_kib / 1024.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--bin-dir", type=Path, default=REPO_ROOT / "target" / "release")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "fetch-verify.md")
    args = parser.parse_args()
    table = summary.Summary("fetch-verify", "Fetching and verifying an artifact (bench/fetch_verify.py)")
    for tool in ("nginx", "curl", "openssl", "sha256sum", "sync"):
        if not shutil.which(tool):
            print(f"fetch_verify: {tool} is not installed", file=sys.stderr)
            return 2
    ugw = args.bin_dir / "ugw-fetch"
    if not ugw.exists():
        print(f"fetch_verify: {ugw} is missing (make release)", file=sys.stderr)
        return 2
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    work = Path(tempfile.mkdtemp(prefix="ugw-bench-fetch-", dir=REPO_ROOT / "target"))
    nginx = None
    try:
        root = work / "www"
        root.mkdir()
        (work / "logs").mkdir()
        size = args.size_mib * 1024 * 1024
        digest = make_artifact(root / "app.bin", size)
        port = free_port()
        nginx = start_nginx(root, work, port)
        url = f"http://127.0.0.1:{port}/app.bin"
        dest = work / "dest"
        runbook_file = work / "runbook.bin"
        commands = {
            "ugw": [str(ugw), "--url", url, "--sha256", digest, "--dest", str(dest), "--quiet", "--in", "none", "--output", "none"],
            "runbook": ["bash", "-c", f"curl -sfo {runbook_file} {url} && sha256sum {runbook_file} >/dev/null"],
            "curl+sync": ["bash", "-c", f"curl -sfo {runbook_file} {url} && sync {runbook_file}"],
            "openssl": ["openssl", "sha256", str(runbook_file)],
        }
        times: dict[str, list[float]] = {k: [] for k in commands}
        rss: list[float] = []
        # A warm-up round, not counted: the artifact into the page cache, nginx warm.
        timed(commands["curl+sync"], env)
        for round_no in range(args.rounds):
            for key, argv in commands.items():
                if key == "ugw":
                    shutil.rmtree(dest, ignore_errors=True)
                took, peak = timed(argv, env)
                times[key].append(took)
                if key == "ugw":
                    rss.append(peak)
                    staged = dest / "app.bin"
                    if staged.stat().st_size != size:
                        raise SystemExit("ugw-fetch staged a file of the wrong size")
            print(f"round {round_no + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()), file=sys.stderr)
        med = {k: statistics.median(v) for k, v in times.items()}
        floor = max(med["curl+sync"], med["openssl"])
        floor_ratio = med["ugw"] / floor
        runbook_ratio = med["ugw"] / med["runbook"]
        peak = max(rss)
        ok = floor_ratio <= TARGET_FLOOR_RATIO and runbook_ratio <= TARGET_RUNBOOK_RATIO and peak <= TARGET_RSS_MIB
        lines = [
            "# fetch and verify: ugw-fetch vs curl + sha256sum",
            "",
            f"- artifact: {args.size_mib} MiB of random bytes served by nginx on 127.0.0.1 (sendfile on)",
            f"- machine: {platform.platform()}, {os.cpu_count()} CPUs; rounds: {args.rounds}, interleaved, after a warm-up",
            f"- command: `python3 bench/fetch_verify.py --rounds {args.rounds} --size-mib {args.size_mib}`",
            "",
            "| command | median wall (s) | all runs (s) |",
            "|---|---|---|",
        ]
        for key, values in times.items():
            lines.append(f"| {key} | {med[key]:.3f} | {' '.join(f'{v:.2f}' for v in values)} |")
        lines += [
            "",
            f"- floor = max(curl+sync, openssl) = {floor:.3f} s",
            f"- ugw / floor = {floor_ratio:.2f} (target <= {TARGET_FLOOR_RATIO})",
            f"- ugw / runbook = {runbook_ratio:.2f} (target <= {TARGET_RUNBOOK_RATIO})",
            f"- ugw peak RSS (VmHWM, sampled every 2 ms) = {peak:.1f} MiB (target <= {TARGET_RSS_MIB})",
            f"- result: {'all targets met' if ok else 'a target was missed'}",
            "",
        ]
        text = "\n".join(lines)
        table.row(f"fetch + verify {args.size_mib} MiB, wall (against the runbook)", f"{med['ugw']:.2f} s",
                  f"{med['runbook']:.2f} s (curl -sfo F && sha256sum F)", runbook_ratio, f"<= {TARGET_RUNBOOK_RATIO}x",
                  runbook_ratio <= TARGET_RUNBOOK_RATIO)
        table.row("wall, against the floor", f"{med['ugw']:.2f} s", f"{floor:.2f} s (max of curl+sync, openssl sha256)",
                  floor_ratio, f"<= {TARGET_FLOOR_RATIO}x", floor_ratio <= TARGET_FLOOR_RATIO)
        table.row("peak RSS", f"{peak:.1f} MiB", None, None, f"<= {TARGET_RSS_MIB:.0f} MiB", peak <= TARGET_RSS_MIB)
        table.write()
        print(text)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        (args.out.with_suffix(".json")).write_text(
            json.dumps({"median_s": med, "runs_s": times, "floor_ratio": floor_ratio,
                        "runbook_ratio": runbook_ratio, "peak_rss_mib": peak, "ok": ok}, indent=2) + "\n"
        )
        return 0 if ok else 1
    finally:
        if nginx is not None:
            try:
                os.killpg(nginx.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            nginx.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
