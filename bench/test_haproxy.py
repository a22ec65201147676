"""Tests of bench/haproxy.py, the HAProxy the load benches start, against the real haproxy:
`python3 -m unittest bench/test_haproxy.py` (standard library only; skipped without haproxy)."""

import http.server
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import haproxy  # noqa: E402  (the module beside this file)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Healthy(http.server.BaseHTTPRequestHandler):
    """200 on every GET: a backend whose health check passes."""

    def do_GET(self):  # noqa: N802  (the name http.server calls)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_):
        pass


@unittest.skipUnless(shutil.which("haproxy"), "haproxy is not installed")
class HaproxyTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ugwbh")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.sock = os.path.join(self.dir, "admin.sock")

    def write(self, text):
        path = os.path.join(self.dir, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_every_variant_the_benches_write_is_valid_and_never_retries(self):
        for extra in ({}, {"expect_status": 200, "timeouts": ("http-keep-alive 30s", "check 1s")}):
            text = haproxy.config(self.sock, free_port(), [("s1", "127.0.0.1:1"), ("s2", "127.0.0.1:2")],
                                  health="/health/ready", inter_ms=100, fall=3, rise=2, **extra)
            checked = subprocess.run(["haproxy", "-c", "-f", self.write(text)],
                                     capture_output=True, text=True)
            self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)
            for line in ("retries 0", "no option redispatch", "retry-on none",
                         "server s1 127.0.0.1:1 check", "server s2 127.0.0.1:2 check"):
                self.assertIn(f"  {line}\n", text)
        self.assertIn("  http-check expect status 200\n  default-server", text)
        self.assertIn("  timeout check 1s\n", text)

    def test_states_names_each_server_with_its_status_and_nothing_while_haproxy_is_down(self):
        self.assertEqual(haproxy.states(self.sock), {})
        backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
        threading.Thread(target=backend.serve_forever, daemon=True).start()
        self.addCleanup(backend.server_close)
        self.addCleanup(backend.shutdown)
        up = f"127.0.0.1:{backend.server_address[1]}"
        down = f"127.0.0.1:{free_port()}"
        text = haproxy.config(self.sock, free_port(), [("live", up), ("gone", down)],
                              health="/health/live", inter_ms=50, fall=1, rise=1)
        proc = subprocess.Popen(["haproxy", "-db", "-f", self.write(text)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        until, seen = time.time() + 10, {}
        while time.time() < until and seen != {"live": "UP", "gone": "DOWN"}:
            time.sleep(0.05)
            seen = {name: status.split(" ")[0] for name, status in haproxy.states(self.sock).items()}
        self.assertEqual(seen, {"live": "UP", "gone": "DOWN"})


if __name__ == "__main__":
    unittest.main()
