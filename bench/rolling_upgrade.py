#!/usr/bin/env python3
"""A rolling upgrade under load (issue 23 part 1): three demo nodes behind HAProxy on loopback
(retries 0, no redispatch, retry-on none: nothing hides a failed request), a constant request
rate from the bench's own generator (bench/loadgen.py, pinned with `taskset -c 1`; the nodes,
HAProxy and the upgrade run on core 0), and the same cluster upgraded from v1.0.0 to v2.0.0 two
ways, one after the other in one run, each on a fresh cluster:

  runbook  per node, as the seed runbooks write it: `sleep 30` where they drain (HAProxy is told
           nothing), stop (SIGTERM, wait until gone), copy the release and switch `current`,
           start, `until curl -sf …/health/ready; do sleep 5; done`; the pre-deploy migration
           with sqlite3 before the first node, the post-deploy one after the last;
  ugw      per node: ugw-migrate up (pre) -> ugw-drain --haproxy -> ugw-swap --start (the
           built-in service start) -> ugw-wait-healthy -> ugw-drain --undo -> ugw-verify (the
           node answers v2.0.0); ugw-migrate up --phase post once at the end. One SQLite database.

Reported for each way: requests sent, failed (socket errors and non-2xx), p50/p99 latency before
and during the upgrade, total wall time, each node's out-of-service window (ugw: drain to undrain,
from the records' step times; runbook: stop to ready, from its own timestamps), and the floor: the
service's own restart-to-ready time (measured in the same run on a spare node) plus HAProxy's
inter x rise. Targets, PASS/FAIL: ugw 0 failed at 300 req/s in 5 runs of 5; 0 failed at the
highest rate this machine holds (--find-max raises the rate until the generator falls behind or
HAProxy saturates); p99 during <= 2x p99 before; ugw's time per node <= floor + 1 s.

Writes bench/results/rolling-upgrade.md, rolling-upgrade-haproxy.cfg, rolling-upgrade-runbook.svg,
rolling-upgrade-ugw.svg and rolling-upgrade.summary.json (for bench/collect.py). Exit 1 when a
target is missed, 2 for a set-up problem.
Usage: rolling_upgrade.py [--quick] [--rate 300] [--runs 5] [--find-max] [--runbook-drain-sleep 30]"""

import argparse
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
sys.path.insert(0, HERE)
import haproxy  # noqa: E402  (beside this file)
import summary  # noqa: E402
import svg  # noqa: E402

INTER_MS, RISE, FALL = 200, 2, 2
NODES = 3
V1, V2 = "v1.0.0", "v2.0.0"


def haproxy_config(admin_socket, port, addresses):
    """node1, node2, ... at `addresses` (HOST:PORT each), ready when /health/ready answers 200."""
    return haproxy.config(admin_socket, port,
                          [(f"node{k}", a) for k, a in enumerate(addresses, start=1)],
                          health="/health/ready", expect_status=200, inter_ms=INTER_MS,
                          fall=FALL, rise=RISE, timeouts=("http-keep-alive 30s", "check 1s"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready(url, timeout=0.5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status == 200
    except OSError:
        return False


def wait_until(what, condition, seconds=20, step=0.01):
    until = time.time() + seconds
    while time.time() < until:
        if condition():
            return
        time.sleep(step)
    raise RuntimeError(f"gave up waiting for {what} after {seconds} s")


class Cluster:
    """One cluster under DIR: releases v1 and v2 (a launcher for ugw-demo-app and the demo
    migrations), NODES nodes on free ports sharing one SQLite database, HAProxy in front."""

    def __init__(self, base, bins, start_delay):
        self.dir = tempfile.mkdtemp(prefix="ugwru", dir=base)
        self.bins, self.start_delay = bins, start_delay
        self.db = os.path.join(self.dir, "app.db")
        self.releases = {V1: self.release(V1, ["v1"], []), V2: self.release(V2, ["v1", "v2"], ["--require-column", "items.note"])}
        self.ports = [free_port() for _ in range(NODES)]
        self.port = free_port()
        self.sock = os.path.join(self.dir, "admin.sock")
        self.haproxy = None
        self.config = haproxy_config(self.sock, self.port,
                                     [f"127.0.0.1:{p}" for p in self.ports])

    def release(self, version, migration_sets, flags):
        root = os.path.join(self.dir, "build", version)
        os.makedirs(os.path.join(root, "bin"))
        migrations = os.path.join(root, "migrations")
        for name in migration_sets:
            shutil.copytree(os.path.join(HERE, "..", "examples", "demo-migrations", name), migrations, dirs_exist_ok=True)
        launcher = os.path.join(root, "bin", "app")
        with open(launcher, "w") as f:
            f.write(f"#!/bin/sh\nexec {self.bins['ugw-demo-app']} --version-label {version} "
                    f"--ready-after {self.start_delay}s {' '.join(flags)} \"$@\"\n")
        os.chmod(launcher, 0o755)
        return root

    def node_dir(self, k):
        return os.path.join(self.dir, f"node{k + 1}")

    def node_flags(self, k):
        return f"--listen 127.0.0.1:{self.ports[k]} --db {self.db}"

    def ready_url(self, k):
        return f"http://127.0.0.1:{self.ports[k]}/health/ready"

    def start_haproxy(self):
        path = os.path.join(self.dir, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(self.config)
        self.haproxy = subprocess.Popen(["haproxy", "-db", "-f", path], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until("HAProxy to see every node UP", lambda: all(s == "UP" for s in self.states().values()))

    def states(self):
        return haproxy.states(self.sock)

    def pids(self):
        out = []
        for k in range(NODES):
            pidfile = os.path.join(self.node_dir(k), "app.pid")
            try:
                with open(pidfile) as f:
                    out.append(int(f.readline()))
            except (OSError, ValueError):
                pass
        return out

    def stop(self):
        for pid in self.pids():
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        if self.haproxy:
            os.killpg(self.haproxy.pid, signal.SIGKILL)
            self.haproxy.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def tool(bins, name, *args, record=None, stdin=None):
    """Run a ugw tool; fail the bench with its stderr when it fails."""
    argv = [bins[name], *args] + (["--record", record] if record else [])
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=stdin or subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


# ---------------------------------------------------------------- the ugw way

def ugw_install(cluster, bins):
    """v1 on every node, started by ugw-swap --start (so its pidfile is one ugw-swap wrote)."""
    tool(bins, "ugw-migrate", "up", "--create", "--db", f"sqlite://{cluster.db}",
         "--dir", os.path.join(cluster.releases[V1], "migrations"), "--in", "none", "--quiet")
    for k in range(NODES):
        node = cluster.node_dir(k)
        os.makedirs(os.path.join(node, "srv"))
        tool(bins, "ugw-swap", *swap_args(cluster, k, V1), "--new", "--quiet", "--output", "none",
             record=os.path.join(node, "install.json"))
    for k in range(NODES):
        wait_until(f"node{k + 1} ready", lambda k=k: ready(cluster.ready_url(k)))


def swap_args(cluster, k, version):
    node = cluster.node_dir(k)
    return ["--root", os.path.join(node, "srv"), "--from", cluster.releases[version], "--release", version,
            "--start", f"exec bin/app {cluster.node_flags(k)}", "--pidfile", os.path.join(node, "app.pid")]


def ugw_upgrade(cluster, bins):
    """Every node in turn, then the post-deploy migrations; each node's record path."""
    migrations = os.path.join(cluster.releases[V2], "migrations")
    db = f"sqlite://{cluster.db}"
    records = []
    for k in range(NODES):
        node = cluster.node_dir(k)
        record = os.path.join(node, "upgrade.json")
        checks = os.path.join(node, "checks.json")
        with open(checks, "w") as f:
            json.dump({"checks": [{"name": "version", "type": "versions", "urls": [cluster.ready_url(k)],
                                   "path": ".version", "expect": V2}]}, f)
        quiet = ["--quiet", "--output", "none"]
        tool(bins, "ugw-migrate", "up", "--db", db, "--dir", migrations, "--new", *quiet, record=record)
        tool(bins, "ugw-drain", "--haproxy", cluster.sock, "--server", f"app/node{k + 1}", *quiet, record=record)
        tool(bins, "ugw-swap", *swap_args(cluster, k, V2), *quiet, record=record)
        tool(bins, "ugw-wait-healthy", "--url", cluster.ready_url(k), "--pidfile", os.path.join(node, "app.pid"),
             "--timeout", "30s", *quiet, record=record)
        tool(bins, "ugw-drain", "--undo", *quiet, record=record)
        tool(bins, "ugw-verify", "--checks", checks, *quiet, record=record)
        records.append(record)
    post = os.path.join(cluster.dir, "post.json")
    tool(bins, "ugw-migrate", "up", "--phase", "post", "--db", db, "--dir", migrations, "--new",
         "--quiet", "--output", "none", record=post)
    return records, post


STEP_KINDS = {"ugw-migrate": "migrate", "ugw-swap": "swap", "ugw-wait-healthy": "wait", "ugw-verify": "verify"}


def record_steps(path):
    """[(start, end, kind)] of a record's steps, in Unix seconds (from `started` and `elapsed_ms`)."""
    with open(path) as f:
        steps = json.load(f)["steps"]
    out = []
    for step in steps:
        start = datetime.fromisoformat(step["started"].replace("Z", "+00:00")).timestamp()
        kind = STEP_KINDS.get(step["tool"], step["tool"])
        if step["tool"] == "ugw-drain":
            kind = "undrain" if any(s[2] == "drain" for s in out) else "drain"
        out.append((start, start + step["elapsed_ms"] / 1000, kind))
    return out


# ---------------------------------------------------------------- the runbook way

RUNBOOK = r"""#!/usr/bin/env bash
# The runbook way, as the seed runbooks write it. MARK lines are the bench's timestamps.
set -euo pipefail
mark() { echo "MARK $1 $2 $(date +%s.%N)" >>"$MARKS"; }
mark all migrate-pre
sqlite3 "$DB" <"$V2_DIR/migrations/0002_add_items_note.sql"
for k in $(seq 1 $NODES); do
  node="$CLUSTER/node$k"; port_var="PORT$k"; port=${!port_var}
  mark "node$k" "sleep 30"
  sleep "$DRAIN_SLEEP"                               # "Allow in-flight requests to drain"
  mark "node$k" stop
  pid=$(cat "$node/app.pid"); kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done   # systemctl stop waits like this
  mark "node$k" copy
  cp -R "$V2_DIR" "$node/srv/releases/v2.0.0"
  ln -sfn releases/v2.0.0 "$node/srv/current.tmp" && mv -T "$node/srv/current.tmp" "$node/srv/current"
  mark "node$k" start
  cd "$node/srv/current"   # started in a session of its own; the shell writes its pid, then becomes the app
  setsid -f sh -c 'echo $$ >"$0"; exec bin/app "$@"' "$node/app.pid" --listen "127.0.0.1:$port" --db "$DB" >>"$node/app.log" 2>&1 </dev/null
  cd - >/dev/null
  mark "node$k" "until curl"
  until curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null; do sleep 5; done
  mark "node$k" done
done
mark all migrate-post
sqlite3 "$DB" <"$V2_DIR/migrations/post/0003_drop_legacy_sessions.sql"
mark all done
"""


def runbook_install(cluster):
    subprocess.run(["sqlite3", cluster.db], input=open(os.path.join(cluster.releases[V1], "migrations",
                   "0001_create_items.sql")).read(), text=True, check=True)
    for k in range(NODES):
        node = cluster.node_dir(k)
        os.makedirs(os.path.join(node, "srv", "releases"))
        shutil.copytree(cluster.releases[V1], os.path.join(node, "srv", "releases", V1))
        os.symlink(f"releases/{V1}", os.path.join(node, "srv", "current"))
        with open(os.path.join(node, "app.log"), "ab") as log:
            subprocess.run(["setsid", "-f", "sh", "-c", 'echo $$ >"$0"; exec bin/app "$@"', os.path.join(node, "app.pid"),
                            *cluster.node_flags(k).split()], cwd=os.path.join(node, "srv", "current"), check=True,
                           stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    for k in range(NODES):
        wait_until(f"node{k + 1} ready", lambda k=k: ready(cluster.ready_url(k)))


def runbook_upgrade(cluster, drain_sleep):
    """Run the runbook script; its MARK lines as [(node, step, unix time)]."""
    marks = os.path.join(cluster.dir, "marks")
    script = os.path.join(cluster.dir, "runbook.sh")
    with open(script, "w") as f:
        f.write(RUNBOOK)
    env = dict(os.environ, MARKS=marks, DB=cluster.db, V2_DIR=cluster.releases[V2], CLUSTER=cluster.dir,
               NODES=str(NODES), DRAIN_SLEEP=str(drain_sleep),
               **{f"PORT{k + 1}": str(p) for k, p in enumerate(cluster.ports)})
    env.pop("http_proxy", None)
    env.pop("HTTP_PROXY", None)
    subprocess.run(["bash", script], env=env, check=True, stdout=subprocess.DEVNULL)
    with open(marks) as f:
        rows = [line.split() for line in f]
    return [(r[1], " ".join(r[2:-1]), float(r[-1])) for r in rows]


def runbook_lanes(marks):
    """Each node's steps as bars, from one MARK to the next of the same node."""
    lanes = {}
    for node, step, at in marks:
        if node == "all":
            continue
        lanes.setdefault(node, []).append((step, at))
    return {node: [(at, steps[i + 1][1], step) for i, (step, at) in enumerate(steps[:-1])]
            for node, steps in lanes.items()}


# ---------------------------------------------------------------- load and its figures

class Load:
    """bench/loadgen.py in a process of its own, pinned to core 1."""

    def __init__(self, port, rate, work_ms, out, max_seconds):
        self.out = out
        argv = [sys.executable, os.path.join(HERE, "loadgen.py"), "--port", str(port), "--rate", str(rate),
                "--path", f"/slow?ms={work_ms}", "--out", out, "--max-seconds", str(max_seconds)]
        if shutil.which("taskset") and os.cpu_count() > 1:
            argv = ["taskset", "-c", "1", *argv]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     start_new_session=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the load generator did not start")

    def finish(self):
        """Stop it; its requests as [(due, sent, latency, status, error)]."""
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=60)
        with open(self.out) as f:
            rows = [line.rstrip("\n").split("\t") for line in f]
        return [(float(d), float(s), float(lat), int(st), err) for d, s, lat, st, err in rows]

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def nearest_rank(values, p):
    """The ceil(p/100*n)-th smallest value (nearest-rank percentile); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def figures(rows, start, end):
    """Sent, failed, late, and latency percentiles before [start] and during [start, end]."""
    before = [r for r in rows if r[0] < start]
    during = [r for r in rows if start <= r[0] <= end]
    ok_latency = lambda rs: [r[2] for r in rs if 200 <= r[3] < 300]  # noqa: E731
    failed = [r for r in rows if not 200 <= r[3] < 300]
    return {
        "sent": len(rows), "failed": len(failed),
        "socket_errors": sum(1 for r in failed if r[3] == 0), "non_2xx": sum(1 for r in failed if r[3] != 0),
        "failed_during": sum(1 for r in during if not 200 <= r[3] < 300),
        "late": sum(1 for r in rows if r[1] - r[0] > 0.05),
        "p50_before": nearest_rank(ok_latency(before), 50), "p99_before": nearest_rank(ok_latency(before), 99),
        "p50_during": nearest_rank(ok_latency(during), 50), "p99_during": nearest_rank(ok_latency(during), 99),
        "kinds": sorted({(r[3], r[4]) for r in failed}),
    }


def per_second(rows, t0, t1):
    """[(t, requests/s, p99 ms, failed/s)] for each whole second from t0, by due time."""
    buckets = {}
    for r in rows:
        buckets.setdefault(int(r[0] - t0), []).append(r)
    out = []
    for second in range(int(t1 - t0) + 1):
        rs = buckets.get(second, [])
        lat = [r[2] * 1000 for r in rs if 200 <= r[3] < 300]
        out.append((t0 + second + 0.5, len(rs), nearest_rank(lat, 99) or 0,
                    sum(1 for r in rs if not 200 <= r[3] < 300)))
    return out


def picture(title, lanes, rows, t0, t1):
    series = per_second(rows, t0, t1)
    charts = [("requests/s", "/s", "#333333", [(t, n) for t, n, _, _ in series]),
              ("p99 latency", "ms", "#4080d0", [(t, p) for t, _, p, _ in series]),
              ("failed/s", "/s", "#d04040", [(t, f) for t, _, _, f in series])]
    return svg.timeline(title, lanes, charts, t0, t1)


# ---------------------------------------------------------------- one way, the floor, the max rate

def one_way(way, args, bins, rate, base, settle=3.0):
    """A fresh cluster, load at `rate`, `settle` s before, the upgrade, 2 s after: the figures."""
    cluster = Cluster(base, bins, args.start_delay)
    load = None
    try:
        if way == "ugw":
            ugw_install(cluster, bins)
        else:
            runbook_install(cluster)
        cluster.start_haproxy()
        bound = settle + 2 + (NODES * (args.runbook_drain_sleep + 15) if way == "runbook" else 120)
        load = Load(cluster.port, rate, args.work_ms, os.path.join(cluster.dir, "requests.tsv"), bound)
        load_started = time.time()
        time.sleep(settle)
        start = time.time()
        if way == "ugw":
            records, post = ugw_upgrade(cluster, bins)
            end = time.time()
            lanes = [(f"node{k + 1}", record_steps(r)) for k, r in enumerate(records)]
            windows = [next(e for s, e, kind in bars if kind == "undrain") - next(s for s, e, kind in bars if kind == "drain")
                       for _, bars in lanes]
            lanes.append(("post", record_steps(post)))
        else:
            marks = runbook_upgrade(cluster, args.runbook_drain_sleep)
            end = time.time()
            by_node = runbook_lanes(marks)
            lanes = [(node, by_node[node]) for node in sorted(by_node)]
            windows = [next(e for s, e, kind in bars if kind == "until curl") - next(s for s, e, kind in bars if kind == "stop")
                       for _, bars in lanes]
        versions = [node_version(cluster, k) for k in range(NODES)]
        time.sleep(2)
        rows = load.finish()
        load = None
        result = figures(rows, start, end)
        result.update(way=way, rate=rate, wall=end - start, windows=windows, config=cluster.config, versions=versions)
        result["svg"] = picture(f"{way}: v1.0.0 -> v2.0.0 of {NODES} nodes at {rate:g} req/s", lanes, rows,
                                load_started, time.time())
        return result
    finally:
        if load:
            load.kill()
        cluster.stop()


def node_version(cluster, k):
    """The version node k answers on /health/ready once the upgrade is over ("-" when none)."""
    try:
        with urllib.request.urlopen(cluster.ready_url(k), timeout=2) as answer:
            return json.load(answer).get("version", "-")
    except (OSError, ValueError):
        return "-"


def measure_floor(args, bins, base, times=5):
    """The service's own restart-to-ready time on a spare node (SIGTERM, wait until gone, start,
    poll /health/ready every 10 ms until 200), median of `times`; plus HAProxy's inter x rise."""
    cluster = Cluster(base, bins, args.start_delay)
    proc = None
    try:
        app = os.path.join(cluster.releases[V2], "bin", "app")
        subprocess.run(["sqlite3", cluster.db], input="CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, note TEXT);",
                       text=True, check=True)
        argv = [app, *cluster.node_flags(0).split()]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until("the spare node ready", lambda: ready(cluster.ready_url(0)))
        samples = []
        for _ in range(times):
            began = time.time()
            proc.send_signal(signal.SIGTERM)
            proc.wait()
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            wait_until("the spare node ready", lambda: ready(cluster.ready_url(0), 0.2), step=0.01)
            samples.append(time.time() - began)
        restart = statistics.median(samples)
        return {"restart_to_ready": restart, "inter_rise": INTER_MS * RISE / 1000,
                "floor": restart + INTER_MS * RISE / 1000}
    finally:
        if proc and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        cluster.stop()


def find_max(args, bins, base, step_seconds=5):
    """Raise the rate (x1.5 from --rate) against a steady cluster until the generator falls
    behind (> 1 % of requests late) or HAProxy saturates (a failure, or p99 above 10x that of
    the first rate); [(rate, figures)] and the highest rate held."""
    cluster = Cluster(base, bins, args.start_delay)
    steps, held, first_p99 = [], None, None
    try:
        ugw_install(cluster, bins)
        cluster.start_haproxy()
        rate = args.rate
        while rate <= args.max_rate:
            load = Load(cluster.port, rate, args.work_ms, os.path.join(cluster.dir, f"max-{rate}.tsv"), step_seconds + 5)
            try:
                time.sleep(step_seconds)
                rows = load.finish()
            finally:
                load.kill()
            start = rows[0][0] + 1 if rows else 0
            f = figures(rows, start, float("inf"))
            first_p99 = first_p99 or f["p99_during"]
            why = None
            if f["late"] > 0.01 * f["sent"]:
                why = f"the generator fell behind ({f['late']} of {f['sent']} requests sent > 50 ms late)"
            elif f["failed"]:
                why = f"HAProxy saturated ({f['failed']} failed)"
            elif f["p99_during"] is None or f["p99_during"] > 10 * first_p99:
                why = f"HAProxy saturated (p99 {ms(f['p99_during'])} against {ms(first_p99)} at {args.rate:g}/s)"
            steps.append((rate, f, why))
            print(f"find-max: {rate:g} req/s: sent {f['sent']}, late {f['late']}, failed {f['failed']}, "
                  f"p99 {ms(f['p99_during'])}{'; ' + why if why else ''}", file=sys.stderr)
            if why:
                break
            held = rate
            rate = round(rate * 1.5)
        return steps, held
    finally:
        cluster.stop()


def ms(seconds):
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


# ---------------------------------------------------------------- the report

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run at 100 req/s, the runbook's drain sleep 5 s")
    parser.add_argument("--rate", type=float, help="requests a second (default 300; 100 with --quick)")
    parser.add_argument("--runs", type=int, help="ugw upgrades at --rate (default 5; 1 with --quick)")
    parser.add_argument("--find-max", action="store_true", help="also find the highest rate held, and upgrade at it")
    parser.add_argument("--max-rate", type=float, default=20000, help="where --find-max stops raising")
    parser.add_argument("--runbook-drain-sleep", type=float,
                        help="the runbook's `sleep 30` (default 30; 5 with --quick)")
    parser.add_argument("--start-delay", type=float, default=1.0,
                        help="seconds the demo service takes to turn ready (its --ready-after)")
    parser.add_argument("--work-ms", type=int, default=20, help="each request is GET /slow?ms=N")
    parser.add_argument("--bin", default=os.path.join(HERE, "..", "target", "release"))
    args = parser.parse_args()
    args.rate = args.rate or (100 if args.quick else 300)
    args.runs = args.runs or (1 if args.quick else 5)
    if args.runbook_drain_sleep is None:
        args.runbook_drain_sleep = 5 if args.quick else 30
    # SIGTERM and Ctrl-C unwind through `finally`, which kills every child's group.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    names = ["ugw-migrate", "ugw-drain", "ugw-swap", "ugw-wait-healthy", "ugw-verify", "ugw-demo-app"]
    bins = {n: os.path.join(os.path.abspath(args.bin), n) for n in names}
    missing = [p for p in bins.values() if not os.access(p, os.X_OK)] + \
              [c for c in ("haproxy", "sqlite3", "curl") if not shutil.which(c)]
    if missing:
        print(f"rolling_upgrade: missing {', '.join(missing)} (make release; apt-get install haproxy sqlite3 curl)",
              file=sys.stderr)
        return 2
    result = summary.Summary("rolling-upgrade", "Rolling upgrade of 3 nodes under load (bench/rolling_upgrade.py)")
    if os.cpu_count() > 1:
        os.sched_setaffinity(0, {0})  # HAProxy, the nodes and the upgrade on core 0; the generator on 1
    base = tempfile.mkdtemp(prefix="ugw-bench-rolling-", dir="/tmp")
    try:
        floor = measure_floor(args, bins, base)
        print(f"floor: restart-to-ready {floor['restart_to_ready']:.3f} s + inter x rise {floor['inter_rise']:.1f} s",
              file=sys.stderr)
        runbook = one_way("runbook", args, bins, args.rate, base)
        print(f"runbook: {runbook['failed']} failed of {runbook['sent']}, {runbook['wall']:.1f} s", file=sys.stderr)
        ugw_runs = []
        for n in range(args.runs):
            ugw_runs.append(one_way("ugw", args, bins, args.rate, base))
            print(f"ugw run {n + 1}: {ugw_runs[-1]['failed']} failed of {ugw_runs[-1]['sent']}, "
                  f"{ugw_runs[-1]['wall']:.1f} s", file=sys.stderr)
        steps, held, at_max = [], None, None
        if args.find_max:
            steps, held = find_max(args, bins, base)
            if held:
                at_max = one_way("ugw", args, bins, held, base)
                print(f"ugw at {held:g}/s: {at_max['failed']} failed of {at_max['sent']}", file=sys.stderr)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return report(args, result, floor, runbook, ugw_runs, steps, held, at_max)


def report(args, result, floor, runbook, ugw_runs, steps, held, at_max):
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "rolling-upgrade-haproxy.cfg"), "w") as f:
        f.write("# bench/rolling_upgrade.py's HAProxy (its folder and ports are picked per run)\n")
        f.write(published(runbook["config"]))
    for way, run in (("runbook", runbook), ("ugw", ugw_runs[0])):
        with open(os.path.join(RESULTS, f"rolling-upgrade-{way}.svg"), "w") as f:
            f.write(run["svg"])
    limit = floor["floor"] + 1
    worst_window = max(w for run in ugw_runs for w in run["windows"])
    p99_ratios = [run["p99_during"] / run["p99_before"] for run in ugw_runs if run["p99_before"] and run["p99_during"]]
    zero_runs = sum(1 for run in ugw_runs if run["failed"] == 0)
    targets = [
        (f"ugw: 0 failed requests at {args.rate:g} req/s in {args.runs} runs of {args.runs}"
         + ("" if (args.rate, args.runs) == (300, 5) else " (the target is 300 req/s, 5 of 5)"),
         f"{zero_runs} of {len(ugw_runs)} runs with 0 failed", zero_runs == len(ugw_runs)),
        ("ugw: p99 during the upgrade <= 2x p99 before it (worst run)",
         f"{max(p99_ratios):.2f}x" if p99_ratios else "no samples", bool(p99_ratios) and max(p99_ratios) <= 2),
        ("ugw: time per node (drain to undrain) <= floor + 1 s (worst node of every run)",
         f"{worst_window:.2f} s against {limit:.2f} s", worst_window <= limit),
    ]
    if args.find_max:
        if at_max:
            targets.append((f"ugw: 0 failed requests at the highest rate held ({held:g} req/s)",
                            f"{at_max['failed']} failed of {at_max['sent']}", at_max["failed"] == 0))
        else:
            targets.append(("ugw: 0 failed at the highest rate held", "no rate held", False))
    lines = [
        "# Rolling upgrade under load",
        "",
        f"- command: `{result.command}`",
        f"- machine: {summary.machine()}; load average at the start {result.load_start[0]:.2f}",
        f"- {NODES} `ugw-demo-app` nodes (`--ready-after {args.start_delay:g}s`, one SQLite database) behind HAProxy "
        f"(`rolling-upgrade-haproxy.cfg`: retries 0, no redispatch, retry-on none; checks `/health/ready` every "
        f"{INTER_MS} ms, rise {RISE}, fall {FALL}); GET `/slow?ms={args.work_ms}` at a constant rate from "
        "`bench/loadgen.py` (keep-alive, `taskset -c 1`; everything else on core 0)",
        f"- the runbook's `sleep 30` slept {args.runbook_drain_sleep:g} s"
        + ("" if args.runbook_drain_sleep == 30 else " (shortened with --runbook-drain-sleep or --quick)"),
        "- latency percentiles are nearest-rank over the 2xx answers; `before` is the 3 s of load before the "
        "first step, `during` from the first step to the last",
        f"- floor: the demo service's restart-to-ready time, median of 5 on a spare node "
        f"({floor['restart_to_ready']:.3f} s), plus HAProxy's inter x rise ({floor['inter_rise']:.1f} s) = "
        f"{floor['floor']:.2f} s",
        "",
        "| way | rate req/s | sent | failed | of which socket errors | non-2xx | generator late | p50 before | p99 before "
        "| p50 during | p99 during | wall time | per node (out of service) | versions after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    runs = [("runbook", runbook)] + [(f"ugw run {i + 1}", r) for i, r in enumerate(ugw_runs)]
    if at_max:
        runs.append((f"ugw at the max rate", at_max))
    for name, run in runs:
        lines.append(
            f"| {name} | {run['rate']:g} | {run['sent']} | {run['failed']} | {run['socket_errors']} | {run['non_2xx']} "
            f"| {run['late']} | {ms(run['p50_before'])} | {ms(run['p99_before'])} | {ms(run['p50_during'])} "
            f"| {ms(run['p99_during'])} | {run['wall']:.1f} s | {', '.join(f'{w:.2f}' for w in run['windows'])} s | {' '.join(run['versions'])} |")
    lines += ["", "Per node: ugw from the drain step's start to the undrain step's end (the records' `started` and "
              "`elapsed_ms`); the runbook from its stop to the end of its `until curl` loop (its own timestamps).", ""]
    if runbook["kinds"]:
        lines.append("Runbook failures: " + ", ".join(f"{'HTTP ' + str(s) if s else e}" for s, e in runbook["kinds"]))
        lines.append("")
    if steps:
        lines += ["## Highest rate held (--find-max)", "",
                  "A steady cluster, no upgrade, 5 s per rate, the rate raised 1.5x until the generator falls behind "
                  "(more than 1 % of requests sent over 50 ms late) or HAProxy saturates (a failure, or p99 over 10x "
                  "that of the first rate).", "",
                  "| rate req/s | sent | late | failed | p50 | p99 | verdict |", "|---:|---:|---:|---:|---:|---:|---|"]
        for rate, f, why in steps:
            lines.append(f"| {rate:g} | {f['sent']} | {f['late']} | {f['failed']} | {ms(f['p50_during'])} "
                         f"| {ms(f['p99_during'])} | {why or 'held'} |")
        lines += ["", f"Highest rate held: {held:g} req/s." if held else "No rate held.", ""]
    lines += ["## Targets", ""] + [f"- {name}: {seen}: **{'PASS' if ok else 'FAIL'}**" for name, seen, ok in targets]
    lines += ["", "Timelines (the first ugw run): [runbook](rolling-upgrade-runbook.svg), [ugw](rolling-upgrade-ugw.svg).", ""]
    text = "\n".join(lines)
    with open(os.path.join(RESULTS, "rolling-upgrade.md"), "w") as f:
        f.write(text)
    print(text)
    summarise(result, args, floor, runbook, ugw_runs, targets, held, limit, worst_window)
    return 0 if all(ok for _, _, ok in targets) else 1


def summarise(result, args, floor, runbook, ugw_runs, targets, held, limit, worst_window):
    ugw_failed = sum(r["failed"] for r in ugw_runs)
    ugw_sent = sum(r["sent"] for r in ugw_runs)
    ugw_wall = statistics.median(r["wall"] for r in ugw_runs)
    ugw_node = statistics.median(w for r in ugw_runs for w in r["windows"])
    verdict = {name: ok for name, _, ok in targets}
    first = targets[0]
    result.row(f"failed requests at {args.rate:g} req/s", f"{ugw_failed} of {ugw_sent} ({len(ugw_runs)} runs)",
               f"{runbook['failed']} of {runbook['sent']}", None, "ugw 0 in 5 runs of 5 at 300/s", first[2])
    result.row("p99 during / p99 before", f"{max(r['p99_during'] / r['p99_before'] for r in ugw_runs):.2f}x (worst run)",
               f"{runbook['p99_during'] / runbook['p99_before']:.2f}x", None, "<= 2x", targets[1][2])
    result.row("total wall time (median)", f"{ugw_wall:.1f} s", f"{runbook['wall']:.1f} s",
               ugw_wall / runbook["wall"], "", None)
    result.row("time per node (median; worst)", f"{ugw_node:.2f} s; {worst_window:.2f} s",
               f"{statistics.median(runbook['windows']):.2f} s (stop to ready; its {args.runbook_drain_sleep:g} s sleep before each stop on top)",
               ugw_node / statistics.median(runbook["windows"]), f"<= floor + 1 s = {limit:.2f} s", targets[2][2])
    if held is not None or args.find_max:
        result.row("highest rate held; failed during an upgrade at it", f"{held:g} req/s; " + targets[3][1] if held else "none",
                   None, None, "0 failed", targets[3][2])
    result.note(f"floor {floor['floor']:.2f} s = restart-to-ready {floor['restart_to_ready']:.3f} s + "
                f"inter x rise {floor['inter_rise']:.1f} s; runbook sleep {args.runbook_drain_sleep:g} s; "
                "details and timelines in results/rolling-upgrade.md")
    result.write()


def published(config):
    """The configuration as run, with this run's folder and ports named generically."""
    return haproxy_config("RUNDIR/admin.sock", "FRONTEND_PORT",
                          [f"127.0.0.1:NODE{k}_PORT" for k in range(1, NODES + 1)])


if __name__ == "__main__":
    sys.exit(main())
