"""The HAProxy the load benches put in front of their demo nodes (bench/drain.py,
bench/rolling_upgrade.py): on loopback, its admin socket in the run's folder, and nothing that
hides a failed request (retries 0, no redispatch, retry-on none), so that a request an upgrade
breaks is counted, never quietly retried on another node. Standard library only."""

import socket

# The backend every bench's frontend sends to; `ugw-drain --server app/NAME` names it.
BACKEND = "app"

_PREAMBLE = """global
  stats socket {admin_socket} level admin
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
{timeouts}  # Nothing may hide a request that failed: no retry, no redispatch to another server.
  retries 0
  no option redispatch
  retry-on none
frontend fe
  bind 127.0.0.1:{port}
  default_backend {backend}
backend {backend}
  balance roundrobin
  option httpchk GET {health}
{expect}  default-server inter {inter_ms}ms fall {fall} rise {rise}
"""


def config(admin_socket, port, servers, *, health, inter_ms, fall, rise, expect_status=None,
           timeouts=()):
    """The configuration text: a frontend on 127.0.0.1:`port`, round-robin over `servers`
    ((name, "host:port") pairs, in order), each checked with GET `health` every `inter_ms` ms
    (DOWN after `fall` failures, UP after `rise` passes; a pass is any 2xx/3xx unless
    `expect_status` names the one status). `timeouts` are more `timeout` lines for defaults
    ("check 1s")."""
    text = _PREAMBLE.format(
        admin_socket=admin_socket, port=port, backend=BACKEND, health=health, inter_ms=inter_ms,
        fall=fall, rise=rise,
        timeouts="".join(f"  timeout {t}\n" for t in timeouts),
        expect=f"  http-check expect status {expect_status}\n" if expect_status else "")
    return text + "".join(f"  server {name} {address} check\n" for name, address in servers)


def states(admin_socket):
    """Each server of the backend and its status (UP, DOWN, DRAIN, MAINT, ...), from `show stat`
    on the admin socket; {} while HAProxy does not answer."""
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(admin_socket)
            s.sendall(b"show stat\n")
            text = b"".join(iter(lambda: s.recv(65536), b"")).decode()
    except OSError:
        return {}
    rows = [row.split(",") for row in text.splitlines()]
    # Column 17 is `status`; the BACKEND and FRONTEND rows are the proxy's own, not a server's.
    return {r[1]: r[17] for r in rows
            if len(r) > 17 and r[0] == BACKEND and r[1] not in ("BACKEND", "FRONTEND")}
