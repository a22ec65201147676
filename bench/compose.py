#!/usr/bin/env python3
"""A Compose service upgraded under load (issue 24's benchmark): the demo service's image v1.0.0
to v2.0.0, one service of a Compose project, behind HAProxy on the host (retries 0, no
redispatch, retry-on none: nothing hides a failed request), a constant rate from the bench's own
generator (bench/loadgen.py, `taskset -c 1`), every container on the host network. Three ways,
one after the other in one run, each on a fresh project:

  compose   what the runbooks do: `docker-compose pull api`, `docker-compose up -d --no-deps api`
            (the old container stops, the new one starts on the same port), then
            `until curl -sf …/health/ready; do sleep 5; done`;
  rollout   `docker rollout`'s method as its README and script describe it: `up -d --scale api=2
            --no-recreate api`, wait until the new container's Docker healthcheck says healthy
            (else stop and remove it: its rollback), then stop and remove the old one. On the host
            network two containers of one service cannot bind one port: measured as it happens;
  ugw       `ugw-fetch --image REF@DIGEST | ugw-swap --compose … --strategy start-first
            --port-env PORT --slots A,B --drain-cmd …`: the new container on the idle slot, healthy,
            HAProxy sees it UP, the old slot drained with ugw-drain, then stopped.

Images are built offline by examples/lib/images.sh (the release build's ugw-demo-app, which turns
ready --start-delay after it starts) and served by a loopback registry. Reported for each way:
requests sent and failed, the upgrade's wall time, whether it ended on v2.0.0; and the image's own
start-to-healthy time (`docker run` to /health/ready 200, measured in the same run), against which
ugw's swap step is held. Targets: ugw 0 failed; ugw's swap within 1 s of start-to-healthy.
Writes bench/results/compose.md and compose.summary.json. Exit 1 when a target is missed, 2 for a
set-up problem.
Usage: compose.py [--rate 200] [--start-delay 1.0]"""

import argparse
import json
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

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
sys.path.insert(0, HERE)
import summary  # noqa: E402  (beside this file)
from rolling_upgrade import Load, figures, free_port, wait_until  # noqa: E402

V1, V2 = "1.0.0", "2.0.0"
INTER_MS, RISE, FALL = 200, 1, 2
CONFIG = """global
  stats socket {dir}/admin.sock level admin
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  retries 0
  no option redispatch
  retry-on none
frontend fe
  bind 127.0.0.1:{port}
  default_backend app
backend app
  balance roundrobin
  option httpchk GET /health/ready
  http-check expect status 200
  default-server inter {inter}ms fall {fall} rise {rise}
{servers}"""
SERVICE = """services:
  api:
    image: "{repository}:unpinned"
    network_mode: host
    command: ["--listen", "127.0.0.1:${{PORT}}"]
"""
# docker rollout wants a Docker healthcheck; the image has no shell, so ugw-wait-healthy is in it.
HEALTHCHECK = """    healthcheck:
      test: ["CMD", "/app/ugw-wait-healthy", "--in", "none", "--output", "none", "--quiet",
             "--url", "http://127.0.0.1:${{PORT}}/health/ready", "--timeout", "1s"]
      interval: 1s
      timeout: 2s
      retries: 30
"""


def haproxy_state(sock, server):
    """SERVER's status in backend app (UP, DOWN, DRAIN, ...), from HAProxy's `show stat`."""
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(sock)
            s.sendall(b"show stat\n")
            text = b"".join(iter(lambda: s.recv(65536), b"")).decode()
    except OSError:
        return None
    for row in text.splitlines():
        cells = row.split(",")
        if cells[:2] == ["app", server]:
            return cells[17]
    return None


def sh(argv, env=None, check=True, capture=True):
    proc = subprocess.run(argv, env=env, capture_output=capture, text=True, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def ready_version(port):
    """The version /health/ready on 127.0.0.1:port answers with 200, else None."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=1) as answer:
            return json.load(answer).get("version") if answer.status == 200 else None
    except (OSError, ValueError):
        return None


class Images:
    """A loopback registry holding the demo service as V1 and V2 (built by examples/lib/images.sh
    from the release build, ugw-wait-healthy inside for Docker healthchecks), removed at the end."""

    def __init__(self, base, bins, start_delay):
        script = f"""set -euo pipefail
source {ROOT}/examples/lib/releases.sh
source {ROOT}/examples/lib/images.sh
start_registry {base}/registry
echo "registry $REGISTRY $registry_pid"
export IMAGE_BINARIES=ugw-wait-healthy
for v in {V1} {V2}; do
  build_demo_image {bins} ugwbench/api "$v" "" -- --ready-after {start_delay}s
  echo "image $v $image_repository@$image_digest"
done
"""
        proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
        self.pid, self.registry, self.refs = None, None, {}
        for line in proc.stdout.splitlines():
            words = line.split()
            if words[0] == "registry":
                self.registry, self.pid = words[1], int(words[2])
            elif words[0] == "image":
                self.refs[words[1]] = words[2]
        if proc.returncode != 0 or len(self.refs) != 2:
            self.stop()
            raise RuntimeError(f"building the images failed:\n{proc.stderr}")
        self.repository = self.refs[V1].split("@")[0]

    def stop(self):
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except OSError:
                pass
        if self.registry:
            listed = sh(["docker", "images", "--format", "{{.Repository}} {{.ID}}"], check=False).stdout
            ids = sorted({i for r, i in (line.split() for line in listed.splitlines()) if r.startswith(self.registry)})
            if ids:
                sh(["docker", "rmi", "-f", *ids], check=False)


class Project:
    """One Compose project under DIR: FILE, HAProxy in front of `ports` (servers s<PORT>)."""

    def __init__(self, base, name, images, ports, healthcheck=False):
        self.dir = tempfile.mkdtemp(prefix=f"ugwbench-{name}-", dir=base)
        self.name = f"ugwbench{os.getpid()}{name}"
        self.file = os.path.join(self.dir, "compose.yml")
        with open(self.file, "w") as f:
            f.write(SERVICE.format(repository=images.repository) + (HEALTHCHECK.format() if healthcheck else ""))
        self.ports, self.port, self.sock = ports, free_port(), os.path.join(self.dir, "admin.sock")
        self.config = CONFIG.format(dir=self.dir, port=self.port, inter=INTER_MS, fall=FALL, rise=RISE,
                                    servers="".join(f"  server s{p} 127.0.0.1:{p} check\n" for p in ports))
        self.haproxy = None
        self.projects = set()

    def compose(self, *args, port=None, project=None, check=True):
        env = dict(os.environ, PORT=str(port or self.ports[0]))
        project = project or self.name
        self.projects.add(project)
        return sh(["docker-compose", "-p", project, "-f", self.file, *args], env=env, check=check)

    def start_haproxy(self, up):
        with open(os.path.join(self.dir, "haproxy.cfg"), "w") as f:
            f.write(self.config)
        self.haproxy = subprocess.Popen(["haproxy", "-db", "-f", os.path.join(self.dir, "haproxy.cfg")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until("HAProxy to see the service UP", lambda: self.state(f"s{up}") == "UP")

    def state(self, server):
        return haproxy_state(self.sock, server)

    def stop(self):
        if self.haproxy:
            os.killpg(self.haproxy.pid, signal.SIGKILL)
            self.haproxy.wait()
        for project in self.projects | {f"{self.name}-{p}" for p in self.ports}:
            sh(["docker-compose", "-p", project, "-f", self.file, "down", "-v", "--remove-orphans"],
               env=dict(os.environ, PORT="0"), check=False)


# ---------------------------------------------------------------- the three ways

def compose_way(p, images):
    """What the runbooks do: pull, `up -d --no-deps`, `until curl -sf; do sleep 5; done`."""
    pinned = os.path.join(p.dir, "pinned.yml")
    with open(pinned, "w") as f:
        f.write(f"services:\n  api:\n    image: \"{images.refs[V2]}\"\n")
    for args in (["-f", pinned, "pull", "api"], ["-f", pinned, "up", "-d", "--no-deps", "api"]):
        sh(["docker-compose", "-p", p.name, "-f", p.file, *args], env=dict(os.environ, PORT=str(p.ports[0])))
    url = f"http://127.0.0.1:{p.ports[0]}/health/ready"
    sh(["sh", "-c", f"until curl -sf {url} >/dev/null; do sleep 5; done"])
    return {}


def compose_install(p, images):
    pinned = os.path.join(p.dir, "pinned.yml")
    with open(pinned, "w") as f:
        f.write(f"services:\n  api:\n    image: \"{images.refs[V1]}\"\n")
    sh(["docker-compose", "-p", p.name, "-f", p.file, "-f", pinned, "up", "-d", "--no-deps", "api"],
       env=dict(os.environ, PORT=str(p.ports[0])))
    os.remove(pinned)


def rollout_way(p, images):
    """docker rollout's method: scale to 2 with --no-recreate, wait for the new container's health
    (its default timeout, 60 s), roll back (stop, remove the new) or stop and remove the old."""
    pinned = os.path.join(p.dir, "pinned.yml")
    with open(pinned, "w") as f:
        f.write(f"services:\n  api:\n    image: \"{images.refs[V2]}\"\n")
    files = ["-f", p.file, "-f", pinned]
    env = dict(os.environ, PORT=str(p.ports[0]))
    ids = lambda: sh(["docker-compose", "-p", p.name, *files, "ps", "-q", "api"], env=env).stdout.split()  # noqa: E731
    old = ids()
    sh(["docker-compose", "-p", p.name, *files, "pull", "api"], env=env)
    sh(["docker-compose", "-p", p.name, *files, "up", "-d", "--scale", "api=2", "--no-recreate", "api"], env=env)
    new = [i for i in ids() if i not in old]
    healthy, until = False, time.time() + 60
    while new and time.time() < until:
        status = sh(["docker", "inspect", "--format", "{{.State.Status}} {{.State.Health.Status}}", new[0]],
                    check=False).stdout.split()
        if status[-1:] == ["healthy"]:
            healthy = True
            break
        if status[:1] == ["exited"]:
            break  # the script would wait its timeout out; the outcome is the same
        time.sleep(1)
    if not healthy:
        said = logs_of(new)
        sh(["docker", "stop", *new], check=False)
        sh(["docker", "rm", *new], check=False)
        return {"note": "the new container never turned healthy (it could not bind the port the old one holds: "
                        f"{said}); rolled back, still on v1.0.0"}
    sh(["docker", "stop", *old])
    sh(["docker", "rm", *old])
    return {}


def logs_of(ids):
    if not ids:
        return "no new container"
    out = sh(["docker", "logs", ids[0]], check=False)
    lines = (out.stdout + out.stderr).strip().splitlines()
    return lines[-1] if lines else "no output"


def ugw_args(p, bins):
    return [os.path.join(bins, "ugw-swap"), "--compose", p.file, "--project", p.name, "--service", "api",
            "--strategy", "start-first", "--port-env", "PORT", "--slots", f"{p.ports[0]},{p.ports[1]}",
            "--restart-check", "http://127.0.0.1:{port}/health/ready", "--restart-timeout", "30s"]


def ugw_install(p, images, bins):
    sh([*ugw_args(p, bins), "--image", images.refs[V1], "--in", "none", "--output", "none", "--quiet"])


def ugw_way(p, images, bins):
    """fetch by digest | swap start-first, the old slot drained in HAProxy once the new one is UP."""
    # The balancer must see the new slot UP before the old one is drained: HAProxy's own check.
    drain = (f"{sys.executable} {os.path.abspath(__file__)} --wait-up {p.sock} s$UGW_LIVE_PORT && "
             f"{os.path.join(bins, 'ugw-drain')} --in none --output none --quiet "
             f"--haproxy {p.sock} --server app/s$UGW_DRAIN_PORT --timeout 20s")
    record = os.path.join(p.dir, "upgrade.json")
    fetch = subprocess.Popen([os.path.join(bins, "ugw-fetch"), "--in", "none", "--image", images.refs[V2], "--quiet"],
                             stdout=subprocess.PIPE)
    swap = subprocess.run([*ugw_args(p, bins), "--drain-cmd", drain, "--drain-grace", "0s", "--quiet"],
                          stdin=fetch.stdout, capture_output=True, text=True)
    fetch.wait()
    if swap.returncode != 0:
        raise RuntimeError(f"ugw-swap failed ({swap.returncode}):\n{swap.stderr}")
    with open(record, "w") as f:
        f.write(swap.stdout)
    steps = json.loads(swap.stdout)["steps"]
    restarts = steps[-1]["result"]["restarts"]
    return {"swap_s": steps[-1]["elapsed_ms"] / 1000, "fetch_s": steps[0]["elapsed_ms"] / 1000,
            "up_s": restarts[0]["elapsed_ms"] / 1000}


def one_way(way, args, images, bins, base):
    """A fresh project on v1, load at --rate, 2 s before, the upgrade, 2 s after: the figures."""
    ports = [free_port(), free_port()] if way == "ugw" else [free_port()]
    p = Project(base, way, images, ports, healthcheck=way == "rollout")
    load = None
    try:
        if way == "ugw":
            ugw_install(p, images, bins)
        else:
            compose_install(p, images)
        wait_until("v1 to answer", lambda: ready_version(ports[0]) == V1, seconds=30)
        p.start_haproxy(ports[0])
        load = Load(p.port, args.rate, args.work_ms, os.path.join(p.dir, "requests.tsv"), 180)
        time.sleep(2)
        start = time.time()
        extra = {"compose": compose_way, "rollout": rollout_way}[way](p, images) if way != "ugw" \
            else ugw_way(p, images, bins)
        end = time.time()
        time.sleep(2)
        rows = load.finish()
        load = None
        result = figures(rows, start, end)
        served = [v for v in (ready_version(port) for port in ports) if v]
        result.update(way=way, wall=end - start, version=",".join(served) or "-", **extra)
        return result
    finally:
        if load:
            load.kill()
        p.stop()


def start_to_healthy(images, times=3):
    """`docker run` of V2 to its /health/ready answering 200, the median of `times`."""
    took = []
    for n in range(times):
        port, name = free_port(), f"ugwbench{os.getpid()}floor{n}"
        sh(["docker", "pull", images.refs[V2]])
        start = time.time()
        sh(["docker", "run", "-d", "--rm", "--name", name, "--network", "host", images.refs[V2],
            "--listen", f"127.0.0.1:{port}"])
        try:
            wait_until("the image to turn healthy", lambda: ready_version(port) == V2, seconds=30, step=0.01)
            took.append(time.time() - start)
        finally:
            sh(["docker", "rm", "-f", name], check=False)
    return statistics.median(took)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200, help="requests a second (default 200)")
    parser.add_argument("--start-delay", type=float, default=1.0,
                        help="seconds the demo service takes to turn ready (its --ready-after)")
    parser.add_argument("--work-ms", type=int, default=20, help="each request is GET /slow?ms=N")
    parser.add_argument("--bin", default=os.path.join(ROOT, "target", "release"))
    parser.add_argument("--wait-up", nargs=2, metavar=("SOCK", "SERVER"),
                        help="(for ugw's --drain-cmd) wait until HAProxy says SERVER is UP, 20 s at most")
    args = parser.parse_args()
    if args.wait_up:
        wait_until("HAProxy to see the new slot UP", lambda: haproxy_state(*args.wait_up) == "UP", step=0.02)
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bins = os.path.abspath(args.bin)
    missing = [n for n in ("ugw-fetch", "ugw-swap", "ugw-drain", "ugw-wait-healthy", "ugw-demo-app")
               if not os.access(os.path.join(bins, n), os.X_OK)]
    missing += [c for c in ("docker", "docker-compose", "docker-registry", "haproxy", "curl")
                if not shutil.which(c)]
    if missing or sh(["docker", "info"], check=False).returncode != 0:
        print(f"compose: missing {', '.join(missing) or 'a running dockerd'} (make release; apt-get install "
              "docker.io docker-compose docker-registry haproxy curl)", file=sys.stderr)
        return 2
    table = summary.Summary("compose", "A Compose service upgraded under load (bench/compose.py)")
    if os.cpu_count() > 1:
        os.sched_setaffinity(0, {0})  # everything but the generator on core 0
    base = tempfile.mkdtemp(prefix="ugw-bench-compose-", dir="/tmp")
    images = None
    try:
        images = Images(base, bins, args.start_delay)
        floor = start_to_healthy(images)
        print(f"start-to-healthy: {floor:.3f} s", file=sys.stderr)
        ways = {}
        for way in ("compose", "rollout", "ugw"):
            ways[way] = one_way(way, args, images, bins, base)
            w = ways[way]
            print(f"{way}: {w['failed']} failed of {w['sent']}, {w['wall']:.1f} s, serving {w['version']}",
                  file=sys.stderr)
    finally:
        if images:
            images.stop()
        shutil.rmtree(base, ignore_errors=True)
    return report(args, table, floor, ways)


def report(args, table, floor, ways):
    ugw, compose, rollout = ways["ugw"], ways["compose"], ways["rollout"]
    overhead = ugw["up_s"] - floor
    lines = ["# A Compose service upgraded under load", "",
             f"`{table.command}`; {summary.machine()}; load average at the start "
             f"{' '.join(f'{x:.2f}' for x in table.load_start)}.", "",
             f"The demo image {V1} -> {V2} (it turns ready {args.start_delay:g} s after it starts) of one Compose "
             f"service, host network, behind HAProxy (retries 0, no redispatch; checks every {INTER_MS} ms, "
             f"rise {RISE}, fall {FALL}), {args.rate:g} requests/s of GET /slow?ms={args.work_ms} throughout. "
             f"The image's own start-to-healthy time (docker run to 200, median of 3): {floor:.2f} s.", "",
             "| way | sent | failed | socket errors | non-2xx | upgrade wall time | serving after |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for name, w in (("`docker-compose up -d --no-deps` + until curl", compose),
                    ("docker rollout's method", rollout), ("ugw (fetch by digest, swap start-first)", ugw)):
        lines.append(f"| {name} | {w['sent']} | {w['failed']} | {w['socket_errors']} | {w['non_2xx']} "
                     f"| {w['wall']:.2f} s | {w['version']} |")
    lines += ["", f"ugw's swap step: {ugw['swap_s']:.2f} s in all, of which the new slot's `up -d` until healthy "
              f"{ugw['up_s']:.2f} s (start-to-healthy + {overhead:.2f} s: Compose v1 is a Python program that takes "
              "most of a second to start); the rest is HAProxy seeing the new slot UP, ugw-drain on the old one, and "
              f"its stop. The fetch step: {ugw['fetch_s']:.2f} s (the image was present: measuring start-to-healthy "
              "pulled it, as each way's own pull finds it)."]
    if rollout.get("note"):
        lines += ["", f"docker rollout's method: {rollout['note']}."]
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "compose.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    zero = ugw["failed"] == 0
    table.row("failed requests during the upgrade", f"{ugw['failed']} of {ugw['sent']}",
              f"{compose['failed']} of {compose['sent']} (compose up)", None, "ugw 0", zero)
    table.row("failed requests, against docker rollout's method", f"{ugw['failed']}",
              f"{rollout['failed']} (serving {rollout['version']} after)", None, "ugw 0", zero)
    table.row("upgrade wall time", f"{ugw['wall']:.2f} s", f"{compose['wall']:.2f} s (compose up + until curl)",
              ugw["wall"] / compose["wall"] if compose["wall"] else None, "", None)
    table.row("ugw's new slot up and healthy, against the image's own start-to-healthy",
              f"{ugw['up_s']:.2f} s (whole swap {ugw['swap_s']:.2f} s)", f"{floor:.2f} s (docker run)",
              ugw["up_s"] / floor if floor else None, "<= start-to-healthy + 1 s", overhead <= 1.0)
    if rollout.get("note"):
        table.note(f"docker rollout's method: {rollout['note']}")
    table.note("Full report: results/compose.md.")
    table.write()
    print("\n".join(lines))
    return 0 if zero and overhead <= 1.0 and ugw["version"] == V2 else 1


if __name__ == "__main__":
    sys.exit(main())
