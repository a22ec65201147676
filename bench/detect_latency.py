#!/usr/bin/env python3
"""Detection latency: how long after a service turns ready does the waiter notice?

For each trial a fresh `ugw-demo-app --ready-after D` is started, a waiter is
started right after the demo's `listening on` line, and the bench records:

  latency   = t_exit - ready_at      (waiter process exit minus the instant
                                      /health/ready flips to 200, both wall clock)
  requests  = requests the server answered during the trial (from /metrics)
  req/s     = requests / (t_exit - t_start_waiter)

Three waiters run interleaved trial by trial (ugw, curl1, curl5, ugw, ...):

  ugw    ugw-wait-healthy --url URL --in none --quiet   (defaults: 100 ms +-10 %, 2 min)
  curl1  bash -c 'until curl -sf URL >/dev/null; do sleep 1; done'
  curl5  bash -c 'until curl -sf URL >/dev/null; do sleep 5; done'

D = 1 s + an offset spread uniformly over the period of that waiter's loop, so
the waiter is surely running before the service turns ready and the ready instant
falls uniformly over the waiter's polling phase. The offsets are stratified: trial
k of n draws its offset from the k-th n-th of the period (in shuffled order), so
20 trials cover the period evenly instead of clumping by chance; the 1 s base
makes the request rate that of a real wait rather than of its first instant.

Then one failed wait: ugw-wait-healthy with its defaults against a service that
never turns ready, for the whole 2-minute deadline (30 s with --quick, its count
then scaled to 2 minutes and marked so); the server counts the requests. Target:
at most 300 (the fast beat for 10 s, then backing off to 1 s).

Exit status: 0 when ugw meets every target, 1 when it misses one (or a ugw
trial failed), 2 for set-up problems (missing curl or binaries), 130 on Ctrl-C.

Standard library only (Python 3.11). All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import re
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import summary  # noqa: E402  (bench/summary.py: this benchmark's table in RESULTS.md)

REPO_ROOT = Path(__file__).resolve().parent.parent

# Targets for ugw-wait-healthy with its defaults.
TARGET_P50_MS = 60.0
TARGET_P99_MS = 150.0
TARGET_REQ_PER_S = 12.0
# A wait on a service that never comes up, with the default 2-minute deadline.
FAILED_WAIT_S = 120
TARGET_FAILED_WAIT_REQUESTS = 300

BASE_DELAY_S = 1.0  # the waiter surely runs before the service turns ready
WAITER_TIMEOUT_S = 60.0  # a waiter still running after this is killed: failed trial
STARTUP_TIMEOUT_S = 10.0  # for the demo's `listening on` and `ready_at` lines

# Proxy variables would send curl (and maybe ureq) somewhere other than 127.0.0.1.
PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


@dataclass
class Waiter:
    key: str
    label: str
    period_s: float  # the loop period the ready instant is spread over

    def argv(self, bin_dir: Path, url: str) -> list[str]:
        if self.key == "ugw":
            return [str(bin_dir / "ugw-wait-healthy"), "--url", url, "--in", "none", "--quiet"]
        sleep = int(self.period_s)
        return ["bash", "-c", f"until curl -sf {shlex.quote(url)} >/dev/null; do sleep {sleep}; done"]


WAITERS = [
    Waiter("ugw", "ugw-wait-healthy (defaults)", 0.1),
    Waiter("curl1", "until curl -sf; sleep 1", 1.0),
    Waiter("curl5", "until curl -sf; sleep 5", 5.0),
]


@dataclass
class Trial:
    ok: bool
    latency_ms: float = math.nan
    requests: int = 0
    req_per_s: float = math.nan
    codes: dict[int, int] = field(default_factory=dict)
    note: str = ""


# --------------------------------------------------------------------------- processes

# Every child is started in its own session (process group); all live ones are
# killed by group on the way out, whatever the way out is.
_LIVE: set[subprocess.Popen] = set()


def spawn(argv: list[str], **kw) -> subprocess.Popen:
    proc = subprocess.Popen(argv, start_new_session=True, **kw)
    _LIVE.add(proc)
    return proc


def kill_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def reap(proc: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM the group, wait up to grace_s, then SIGKILL it.

    Only a leader not yet reaped is signalled: until it is reaped its pid (and so
    its group id) cannot be reused, so the signal never reaches a stranger."""
    if proc.returncode is None and proc.poll() is None:
        kill_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            kill_group(proc, signal.SIGKILL)
            proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()
    _LIVE.discard(proc)


def cleanup_all() -> None:
    for proc in list(_LIVE):
        reap(proc, grace_s=2.0)


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def read_line(fd: int, deadline: float) -> str:
    """One line from a raw pipe fd (unbuffered, so later reads see the rest)."""
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"timed out reading from the demo app (got {data!r})")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 1)
        if not chunk:
            raise RuntimeError(f"the demo app closed its output early (got {data!r})")
        data += chunk
    return data.decode(errors="replace").rstrip("\n")


# --------------------------------------------------------------------------- demo app

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class DemoApp:
    def __init__(self, bin_dir: Path, ready_after_ms: int):
        self.proc = spawn(
            [str(bin_dir / "ugw-demo-app"), "--listen", "127.0.0.1:0", "--ready-after", f"{ready_after_ms}ms"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(),
        )
        self.ready_at_ms: float | None = None
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        line = read_line(self.proc.stdout.fileno(), deadline)
        m = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if not m:
            raise RuntimeError(f"unexpected first stdout line from ugw-demo-app: {line!r}")
        self.base = m.group(1)
        self.ready_url = self.base + "/health/ready"

    def read_ready_at(self) -> float:
        """The demo prints `ready_at_unix_ms=` on stderr before `listening on`."""
        if self.ready_at_ms is None:
            line = read_line(self.proc.stderr.fileno(), time.monotonic() + STARTUP_TIMEOUT_S)
            m = re.search(r"ready_at_unix_ms=(\d+)", line)
            if not m:
                raise RuntimeError(f"unexpected stderr line from ugw-demo-app: {line!r}")
            self.ready_at_ms = float(m.group(1))
        return self.ready_at_ms

    def get(self, path: str) -> tuple[int, str]:
        try:
            with _DIRECT.open(self.base + path, timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def answered(self) -> dict[int, int]:
        """http_requests_total by code, from one /metrics scrape."""
        status, text = self.get("/metrics")
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}")
        codes: dict[int, int] = {}
        for m in re.finditer(r'^http_requests_total\{code="(\d+)"\}\s+(\d+)\s*$', text, re.M):
            codes[int(m.group(1))] = int(m.group(2))
        return codes

    def stop(self) -> None:
        reap(self.proc, grace_s=10.0)


# --------------------------------------------------------------------------- trials


def wait_with_guard(proc: subprocess.Popen, timeout_s: float) -> tuple[int, float, bool]:
    """Block in waitpid (prompt wake-up; Popen.wait(timeout=) polls with sleeps of up
    to 50 ms, which would blur the measurement) while a timer kills the group if it
    runs past timeout_s. Returns (exit status, t_exit wall clock, timed out)."""
    fired = threading.Event()

    def guard() -> None:
        fired.set()
        kill_group(proc, signal.SIGKILL)

    timer = threading.Timer(timeout_s, guard)
    timer.daemon = True
    timer.start()
    try:
        rc = proc.wait()
        t_exit = time.time()
    finally:
        timer.cancel()
    return rc, t_exit, fired.is_set()


def run_trial(waiter: Waiter, bin_dir: Path, phase: float, own_scrape_counted: int) -> Trial:
    """One trial; `phase` in [0, 1) places the ready instant within the waiter's period."""
    ready_after_ms = round((BASE_DELAY_S + phase * waiter.period_s) * 1000)
    app = DemoApp(bin_dir, ready_after_ms)
    waiter_proc = None
    try:
        with tempfile.TemporaryFile() as err:
            t_start = time.time()
            waiter_proc = spawn(
                waiter.argv(bin_dir, app.ready_url),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=child_env(),
            )
            ready_at_ms = app.read_ready_at()
            rc, t_exit, timed_out = wait_with_guard(waiter_proc, WAITER_TIMEOUT_S)
            reap(waiter_proc, grace_s=1.0)
            err.seek(0)
            stderr = err.read().decode(errors="replace").strip()
        codes = app.answered()
        requests = sum(codes.values()) - own_scrape_counted
        if timed_out:
            return Trial(False, requests=requests, codes=codes, note=f"killed after {WAITER_TIMEOUT_S:.0f} s")
        if rc != 0:
            return Trial(False, requests=requests, codes=codes, note=f"exit {rc}: {stderr[-300:]}")
        elapsed = t_exit - t_start
        note = "" if codes.get(200, 0) == 1 else f"expected exactly one 200, server counted {codes}"
        return Trial(
            True,
            latency_ms=t_exit * 1000.0 - ready_at_ms,
            requests=requests,
            req_per_s=requests / elapsed if elapsed > 0 else math.nan,
            codes=codes,
            note=note,
        )
    finally:
        if waiter_proc is not None and waiter_proc in _LIVE:
            reap(waiter_proc, grace_s=1.0)
        app.stop()


def failed_wait(bin_dir: Path, timeout_s: int) -> tuple[int, float, str]:
    """ugw-wait-healthy (defaults but the deadline) against a service that never turns
    ready: (requests the server answered, seconds the waiter ran, its last stderr line)."""
    app = DemoApp(bin_dir, 3_600_000)
    try:
        argv = [str(bin_dir / "ugw-wait-healthy"), "--url", app.ready_url, "--in", "none", "--quiet"]
        argv += ["--timeout", f"{timeout_s}s"]
        with tempfile.TemporaryFile() as err:
            t_start = time.time()
            proc = spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=child_env())
            rc, t_exit, timed_out = wait_with_guard(proc, timeout_s + 30.0)
            reap(proc, grace_s=1.0)
            err.seek(0)
            stderr = err.read().decode(errors="replace").strip()
        if timed_out or rc != 1:
            raise RuntimeError(f"the failed wait ended with exit {rc} (killed: {timed_out}): {stderr[-300:]}")
        return sum(app.answered().values()), t_exit - t_start, stderr.splitlines()[-1] if stderr else ""
    finally:
        app.stop()


def preflight(bin_dir: Path) -> int:
    """Learn how the demo counts /metrics scrapes, and check both waiters work.

    Returns how many requests one scrape adds to its own figures (0 or 1), to be
    subtracted from each trial's single scrape."""
    app = DemoApp(bin_dir, 0)
    try:
        first = sum(app.answered().values())  # nothing else has reached it yet
        if first not in (0, 1):
            raise RuntimeError(f"a fresh demo app reported {first} requests on its first scrape")
        status, _ = app.get("/health/ready")
        if status != 200:
            raise RuntimeError(f"/health/ready with --ready-after 0ms answered {status}")
        second = sum(app.answered().values())
        # second = first scrape + the probe (+ this scrape, if scrapes count themselves)
        if second - 2 != first:
            raise RuntimeError(f"inconsistent counters: first scrape {first}, after one probe {second}")
        for waiter in WAITERS[:2]:
            out = subprocess.run(
                waiter.argv(bin_dir, app.ready_url),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env=child_env(),
                timeout=30,
                start_new_session=True,
            )
            if out.returncode != 0:
                raise RuntimeError(
                    f"{waiter.label} failed against a ready service (exit {out.returncode}): "
                    f"{out.stderr.decode(errors='replace').strip()}"
                )
        return first
    finally:
        app.stop()


# --------------------------------------------------------------------------- report


def nearest_rank(values: list[float], p: float) -> float:
    """Nearest-rank percentile: the ceil(p/100 * n)-th smallest value."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


def fmt(x: float, digits: int = 0) -> str:
    return "n/a" if math.isnan(x) else f"{x:.{digits}f}"


def summarise(results: dict[str, list[Trial]]) -> dict[str, dict[str, float]]:
    out = {}
    for w in WAITERS:
        ok = [t for t in results[w.key] if t.ok]
        lat = [t.latency_ms for t in ok]
        out[w.key] = {
            "p50": nearest_rank(lat, 50),
            "p99": nearest_rank(lat, 99),
            "max": max(lat) if lat else math.nan,
            "rps": statistics.fmean(t.req_per_s for t in ok) if ok else math.nan,
            "req": statistics.fmean(t.requests for t in ok) if ok else math.nan,
            "ok": len(ok),
            "n": len(results[w.key]),
        }
    return out


def render(
    cmdline: str,
    machine: str,
    trials: int,
    seed: int,
    stats: dict,
    own_scrape_counted: int,
    failed: tuple[int, float, int],
) -> tuple[str, bool]:
    ugw = stats["ugw"]
    lines = [
        f"- command: `{cmdline}`",
        f"- machine: {machine}",
        f"- trials: {trials} per waiter, interleaved; ready instant = start + {BASE_DELAY_S:.1f} s + a stratified uniform offset over the loop period"
        f" (seed {seed})",
        "- percentiles: nearest-rank (the ceil(p/100*n)-th smallest sample"
        + (f"; with n = {trials}, p99 is the maximum" if math.ceil(0.99 * trials) == trials else "")
        + ")",
        "- requests: as counted by the server's /metrics, one scrape per trial after the waiter exited; "
        + ("that scrape counts itself, 1 subtracted" if own_scrape_counted else "the scrape does not count itself (checked at start-up)"),
        "",
        "| waiter | p50 ms | p99 ms | max ms | mean req/s | requests per trial (mean) | p50 ratio vs ugw | ok trials |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for w in WAITERS:
        s = stats[w.key]
        ratio = s["p50"] / ugw["p50"] if ugw["p50"] and not math.isnan(ugw["p50"]) else math.nan
        lines.append(
            f"| {w.label} | {fmt(s['p50'])} | {fmt(s['p99'])} | {fmt(s['max'])} | {fmt(s['rps'], 1)} "
            f"| {fmt(s['req'], 1)} | {'n/a' if math.isnan(ratio) else f'{ratio:.1f}x'} | {s['ok']}/{s['n']} |"
        )
    checks = [
        (f"p50 <= {TARGET_P50_MS:.0f} ms", ugw["p50"] <= TARGET_P50_MS, f"{fmt(ugw['p50'])} ms"),
        (f"p99 <= {TARGET_P99_MS:.0f} ms", ugw["p99"] <= TARGET_P99_MS, f"{fmt(ugw['p99'])} ms"),
        (f"mean <= {TARGET_REQ_PER_S:.0f} req/s", ugw["rps"] <= TARGET_REQ_PER_S, f"{fmt(ugw['rps'], 1)} req/s"),
    ]
    requests, ran_s, timeout_s = failed
    # A shorter run (--quick) is scaled to the 2-minute figure: past the first 10 s the
    # beat is steady at about 0.75 s, so the rest grows linearly.
    at_two_minutes = requests if timeout_s == FAILED_WAIT_S else round(
        requests + (FAILED_WAIT_S - timeout_s) / 0.75
    )
    lines += [
        "",
        f"Failed wait: ugw-wait-healthy (defaults, `--timeout {timeout_s}s`) against a service that never turns ready: "
        f"{requests} requests in {ran_s:.1f} s"
        + ("" if timeout_s == FAILED_WAIT_S else f"; about {at_two_minutes} over the default 2 minutes (scaled)"),
    ]
    checks.append(
        (
            f"2-minute failed wait <= {TARGET_FAILED_WAIT_REQUESTS} requests",
            at_two_minutes <= TARGET_FAILED_WAIT_REQUESTS,
            f"{at_two_minutes} requests",
        )
    )
    all_ok = ugw["ok"] == ugw["n"] and all(passed for _, passed, _ in checks)
    lines.append("")
    lines.append(
        "- targets (ugw): "
        + "; ".join(f"{name}: {'PASS' if passed else 'FAIL'} ({got})" for name, passed, got in checks)
    )
    if ugw["ok"] != ugw["n"]:
        lines.append(f"- FAIL: {ugw['n'] - ugw['ok']} ugw trial(s) failed")
    lines.append(f"- overall: {'PASS' if all_ok else 'FAIL'}")
    return "\n".join(lines) + "\n", all_ok


# --------------------------------------------------------------------------- main


def machine_info() -> str:
    try:
        ncpu = len(os.sched_getaffinity(0))
    except AttributeError:
        ncpu = os.cpu_count() or 0
    return f"nproc {ncpu}, uname -r {platform.release()}, {platform.machine()}, Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=None, help="trials per waiter (default 20)")
    parser.add_argument("--quick", action="store_true", help="5 trials per waiter (unless --trials is given)")
    parser.add_argument(
        "--bin-dir",
        type=Path,
        default=REPO_ROOT / "target" / "release",
        help="where ugw-wait-healthy and ugw-demo-app are (default: target/release of this repo)",
    )
    parser.add_argument("--out", type=Path, help="also write the report (Markdown) to this file")
    parser.add_argument("--seed", type=int, help="seed for the ready-after draws (default: random)")
    args = parser.parse_args()
    table = summary.Summary("detect-latency", "Noticing that a service is ready (bench/detect_latency.py)")
    trials = args.trials if args.trials is not None else (5 if args.quick else 20)
    if trials < 1:
        parser.error("--trials must be at least 1")

    if shutil.which("curl") is None:
        print("error: curl is not installed; install it with: apt-get install -y curl", file=sys.stderr)
        return 2
    if shutil.which("bash") is None:
        print("error: bash is not installed", file=sys.stderr)
        return 2
    bin_dir = args.bin_dir.resolve()
    missing = [b for b in ("ugw-wait-healthy", "ugw-demo-app") if not os.access(bin_dir / b, os.X_OK)]
    if missing:
        print(
            f"error: {', '.join(missing)} not found in {bin_dir}; build with: "
            f"cd {REPO_ROOT} && cargo build --release --workspace (or: make release)",
            file=sys.stderr,
        )
        return 2

    cmdline = shlex.join(sys.orig_argv)
    machine = machine_info()
    print(f"command: {cmdline}")
    print(f"machine: {machine}")
    print(f"binaries: {bin_dir}")
    sys.stdout.flush()

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    results: dict[str, list[Trial]] = {w.key: [] for w in WAITERS}
    # Stratified phases: one draw from each n-th of the period, in shuffled order per waiter.
    phases: dict[str, list[float]] = {}
    for w in WAITERS:
        strata = list(range(trials))
        rng.shuffle(strata)
        phases[w.key] = [(k + rng.random()) / trials for k in strata]

    # SIGTERM to the bench unwinds like Ctrl-C, so the finally below cleans up.
    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        try:
            own_scrape_counted = preflight(bin_dir)
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
            print(f"error: preflight failed: {e}", file=sys.stderr)
            return 2
        print(f"seed: {seed}; /metrics scrape counts itself: {'yes' if own_scrape_counted else 'no'}")
        print(f"running {trials} trials x {len(WAITERS)} waiters (interleaved)...", flush=True)
        for i in range(trials):
            parts = []
            for w in WAITERS:
                trial = run_trial(w, bin_dir, phases[w.key][i], own_scrape_counted)
                results[w.key].append(trial)
                if trial.ok:
                    parts.append(f"{w.key} {trial.latency_ms:6.0f} ms {trial.requests:3d} req")
                else:
                    parts.append(f"{w.key} FAILED")
                if trial.note:
                    print(f"  note ({w.key}, trial {i + 1}): {trial.note}", file=sys.stderr)
            print(f"trial {i + 1:>3}/{trials}: " + " | ".join(parts), file=sys.stderr, flush=True)
        failed_timeout_s = 30 if args.quick else FAILED_WAIT_S
        print(f"failed wait: {failed_timeout_s} s against a service that never turns ready...", flush=True)
        requests, ran_s, _ = failed_wait(bin_dir, failed_timeout_s)
        failed = (requests - own_scrape_counted, ran_s)
        print(f"failed wait: {failed[0]} requests in {ran_s:.1f} s", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        cleanup_all()

    stats = summarise(results)
    report, ok = render(
        cmdline, machine, trials, seed, stats, own_scrape_counted, (failed[0], failed[1], failed_timeout_s)
    )
    ugw = stats["ugw"]
    for key, label in (("curl5", "`until curl -sf; sleep 5`"), ("curl1", "`until curl -sf; sleep 1`")):
        other = stats[key]
        table.row(f"p50 latency to notice ready, against {label}", f"{fmt(ugw['p50'])} ms", f"{fmt(other['p50'])} ms",
                  ugw["p50"] / other["p50"] if other["p50"] else None, f"ugw <= {TARGET_P50_MS:.0f} ms",
                  ugw["p50"] <= TARGET_P50_MS)
    table.row("p99 latency to notice ready (against sleep 5)", f"{fmt(ugw['p99'])} ms", f"{fmt(stats['curl5']['p99'])} ms",
              ugw["p99"] / stats["curl5"]["p99"] if stats["curl5"]["p99"] else None, f"ugw <= {TARGET_P99_MS:.0f} ms",
              ugw["p99"] <= TARGET_P99_MS)
    table.row("health requests a second while waiting (against sleep 1)", f"{fmt(ugw['rps'], 1)}",
              f"{fmt(stats['curl1']['rps'], 1)}", None, f"ugw <= {TARGET_REQ_PER_S:.0f}", ugw["rps"] <= TARGET_REQ_PER_S)
    table.note("overall " + ("PASS" if ok else "FAIL") + "; details in results/detect-latency.md")
    table.write()
    print()
    print(report, end="")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(f"# Detection latency\n\n{report}")
        print(f"written: {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
