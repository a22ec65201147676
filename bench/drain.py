#!/usr/bin/env python3
"""ugw-drain against the `sleep 30  # Allow in-flight requests to drain` runbooks use: two demo
backends behind HAProxy (the configuration is published beside the results; retries,
redispatch and retry-on are off, so nothing hides a failed request), a constant request rate
from a generator of our own (wrk holds a concurrency, not a rate), and one backend drained and
undone N times in a row. Reports failed and non-2xx requests (the target is 0) and how long a
drain took, next to the fixed 30 s.
Usage: drain.py [--rounds 20] [--rate 200] [--work-ms 50] [--bin target/release]
Writes bench/results/drain.md and bench/results/drain-haproxy.cfg."""
import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import haproxy  # noqa: E402  (bench/haproxy.py: the HAProxy in front of the two backends)
import summary  # noqa: E402  (bench/summary.py: this benchmark's table in RESULTS.md)

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")



def haproxy_config(run_dir, port, s1, s2):
    """Two servers s1 and s2 (HOST:PORT each), their liveness checked every 100 ms."""
    return haproxy.config(os.path.join(run_dir, "a.sock"), port, [("s1", s1), ("s2", s2)],
                          health="/health/live", inter_ms=100, fall=3, rise=2)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_demo(binary):
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on http://"):
        sys.exit(f"the demo service did not start: {line!r}")
    return proc, line.removeprefix("listening on http://")


class Load:
    """`rate` GETs a second to `path` on 127.0.0.1:`port`, each on a new connection, on their
    schedule whatever the answers take; counts 2xx, other answers and failures."""

    def __init__(self, port, path, rate):
        self.port, self.path, self.interval = port, path, 1.0 / rate
        self.counts = {"sent": 0, "ok": 0, "non_2xx": 0, "failed": 0, "late": 0}
        self.failures = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=256)
        self.thread = threading.Thread(target=self.schedule, daemon=True)

    def schedule(self):
        start = time.perf_counter()
        n = 0
        while not self.stop.is_set():
            due = start + n * self.interval
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.05:
                with self.lock:
                    self.counts["late"] += 1  # the generator itself fell behind
            with self.lock:
                self.counts["sent"] += 1
            self.pool.submit(self.one)
            n += 1

    def one(self):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            conn.request("GET", self.path, headers={"Connection": "close"})
            status = conn.getresponse().status
            conn.close()
            key = "ok" if 200 <= status < 300 else "non_2xx"
            note = f"status {status}"
        except OSError as e:
            key, note = "failed", repr(e)
        with self.lock:
            self.counts[key] += 1
            if key != "ok" and len(self.failures) < 20:
                self.failures.append(note)

    def finish(self):
        self.stop.set()
        self.thread.join()
        self.pool.shutdown(wait=True)
        return dict(self.counts)


def ugw_drain(binary, args, record=None):
    """Run ugw-drain; (wall seconds, its record)."""
    start = time.perf_counter()
    proc = subprocess.run([binary, *args], input=record, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"ugw-drain {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return wall, proc.stdout


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--work-ms", type=int, default=50)
    parser.add_argument("--bin", default=os.path.join(HERE, "..", "target", "release"))
    args = parser.parse_args()
    table = summary.Summary("drain", "Draining a node under load (bench/drain.py)")
    # SIGTERM and Ctrl-C unwind through `finally`, which kills every child's group.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not shutil.which("haproxy"):
        sys.exit("haproxy is needed (apt-get install -y haproxy)")
    bin_dir = os.path.abspath(args.bin)
    drain_bin, demo_bin = (os.path.join(bin_dir, n) for n in ("ugw-drain", "ugw-demo-app"))
    tmp = tempfile.mkdtemp(prefix="ugwd", dir="/tmp")
    procs = []
    try:
        (p1, s1), (p2, s2) = start_demo(demo_bin), start_demo(demo_bin)
        procs += [p1, p2]
        port = free_port()
        config = haproxy_config(tmp, port, s1, s2)
        with open(os.path.join(tmp, "h.cfg"), "w") as f:
            f.write(config)
        balancer = subprocess.Popen(["haproxy", "-db", "-f", os.path.join(tmp, "h.cfg")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
        procs.append(balancer)
        sock = os.path.join(tmp, "a.sock")
        wait_up(sock)
        load = Load(port, f"/slow?ms={args.work_ms}", args.rate)
        load.thread.start()
        time.sleep(1)
        drains, undos, waited, inflight = [], [], [], []
        target = ["--haproxy", sock, "--server", "app/s1", "--in", "none", "--quiet"]
        for _ in range(args.rounds):
            wall, record = ugw_drain(drain_bin, target)
            result = json.loads(record)["steps"][-1]["result"]
            drains.append(wall)
            waited.append(result["waited_ms"] / 1000)
            inflight.append(result["inflight_start"])
            wall, _ = ugw_drain(drain_bin, ["--undo", "--in", "-", "--quiet"], record)
            undos.append(wall)
            time.sleep(0.2)  # traffic reaches s1 again before the next drain
        time.sleep(1)
        counts = load.finish()
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    report(args, config, counts, load.failures, drains, waited, inflight, undos)
    failed = counts["non_2xx"] + counts["failed"]
    table.row(f"drain wall time (mean of {args.rounds})", f"{statistics.mean(drains):.3f} s", "30 s (`sleep 30`)",
              statistics.mean(drains) / 30)
    table.row(f"failed or non-2xx requests at {args.rate}/s", f"{failed} of {counts['sent']}", None, None, "0", failed == 0)
    table.write()


def wait_up(sock):
    """Until HAProxy answers on its socket and both servers are UP (10 s at most)."""
    until = time.time() + 10
    while time.time() < until:
        if haproxy.states(sock) == {"s1": "UP", "s2": "UP"}:
            return
        time.sleep(0.05)
    sys.exit("HAProxy did not come up with both servers UP")


def report(args, config, counts, failures, drains, waited, inflight, undos):
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "drain-haproxy.cfg"), "w") as f:
        f.write(published(config))
    commit = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    load_avg = os.getloadavg()[0]
    mean = statistics.mean(drains)
    lines = [
        "# ugw-drain under load, through HAProxy",
        "",
        f"`python3 bench/drain.py --rounds {args.rounds} --rate {args.rate} --work-ms {args.work_ms}` "
        f"(binary {commit}, load average {load_avg:.1f} at the end, {os.cpu_count()} cores).",
        "Two demo backends behind HAProxy 2.6 (`drain-haproxy.cfg`: retries 0, no redispatch, "
        "retry-on none), a constant rate of GET `/slow?ms=N` from the bench's own generator, "
        f"backend s1 drained (`--haproxy … --server app/s1`) and undone {args.rounds} times in a row.",
        "",
        "| requests sent | 2xx | non-2xx | failed | generator late |",
        "|---|---|---|---|---|",
        f"| {counts['sent']} | {counts['ok']} | {counts['non_2xx']} | {counts['failed']} | {counts['late']} |",
        "",
        "| | mean | median | min | max |",
        "|---|---|---|---|---|",
        row("drain (ugw-drain, wall)", drains),
        row("of which waiting for zero", waited),
        row("undo, back UP (wall)", undos),
        row("`sleep 30` runbooks use", [30.0]),
        "",
        f"In flight on s1 when each drain began: mean {statistics.mean(inflight):.1f}, max {max(inflight)}.",
        f"A drain took {mean:.2f} s on average: {30 / mean:.0f}x less than the fixed sleep, "
        "and it ended only when s1 had nothing in flight (three readings in a row).",
    ]
    if failures:
        lines += ["", "First failures: " + "; ".join(failures)]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(RESULTS, "drain.md"), "w") as f:
        f.write(text)
    print(text)


def published(config):
    """The configuration as run, with this run's temp folder and ports named generically."""
    return "# bench/drain.py's HAProxy (its folder and ports are picked per run)\n" + haproxy_config(
        "RUNDIR", "FRONTEND_PORT", "127.0.0.1:S1_PORT", "127.0.0.1:S2_PORT")


def row(name, values):
    return (f"| {name} | {statistics.mean(values):.3f} s | {statistics.median(values):.3f} s "
            f"| {min(values):.3f} s | {max(values):.3f} s |")


if __name__ == "__main__":
    main()
