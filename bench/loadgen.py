#!/usr/bin/env python3
"""A constant-rate HTTP load generator of the bench's own (wrk and ab hold a concurrency, not a
rate): GET PATH on 127.0.0.1:PORT at RATE requests a second, each sent on its schedule whatever
the answers before it take, over keep-alive connections (a new one is opened when every open one
is busy). It records, per request, the instant it was due, the instant it was sent, its latency
and its status (or the socket error), and notices when it falls behind its own schedule (a
request sent more than LATE_S after it was due). Standard library only (asyncio, raw sockets).

Run as its own process, pinned to one core (`taskset -c 1 python3 bench/loadgen.py ...`), so
what it measures is not slowed by the upgrade it watches: it prints `ready` once it sends, stops
at --max-seconds or on SIGTERM/SIGINT (letting in-flight requests finish, at most --timeout),
and writes one tab-separated line per request to --out:
    due_unix  sent_unix  latency_s  status  error
status is the HTTP status, or 0 for a socket error (connection refused or reset, no answer in
--timeout, a malformed answer), whose name is in `error`; `-` when there is none."""

import argparse
import asyncio
import signal
import sys
import time

LATE_S = 0.05  # a request sent this long after it was due: the generator fell behind
MAX_CONNECTIONS = 2000  # beyond this many busy at once the target is saturated, not the generator


class Generator:
    def __init__(self, port, path, rate, timeout):
        self.port, self.rate, self.timeout = port, rate, timeout
        self.request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        self.idle = []  # open keep-alive connections nobody uses right now: (reader, writer)
        self.rows = []
        self.busy = 0
        self.stopping = asyncio.Event()

    async def run(self, max_seconds):
        start = time.time()
        n = 0
        pending = set()
        print("ready", flush=True)
        while not self.stopping.is_set() and time.time() - start < max_seconds:
            due = start + n / self.rate
            delay = due - time.time()
            if delay > 0:
                try:
                    await asyncio.wait_for(self.stopping.wait(), delay)
                    break
                except asyncio.TimeoutError:
                    pass
            task = asyncio.create_task(self.one(due))
            pending.add(task)
            task.add_done_callback(pending.discard)
            n += 1
        if pending:
            await asyncio.wait(pending, timeout=self.timeout + 1)
        for _, writer in self.idle:
            writer.close()

    async def one(self, due):
        sent = time.time()
        if self.busy >= MAX_CONNECTIONS:
            self.rows.append((due, sent, 0.0, 0, "saturated"))
            return
        self.busy += 1
        try:
            status, error = await asyncio.wait_for(self.exchange(), self.timeout)
        except asyncio.TimeoutError:
            status, error = 0, "timeout"
        finally:
            self.busy -= 1
        self.rows.append((due, sent, time.time() - sent, status, error))

    async def exchange(self):
        """One request on an idle connection (or a new one); (status, error name or '-')."""
        reader = writer = None
        try:
            if self.idle:
                reader, writer = self.idle.pop()
            else:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(self.request)
            await writer.drain()
            status, keep = await read_response(reader)
        except asyncio.CancelledError:
            if writer is not None:
                writer.close()
            raise
        except (OSError, ValueError, asyncio.IncompleteReadError) as e:
            if writer is not None:
                writer.close()
            return 0, type(e).__name__
        if keep:
            self.idle.append((reader, writer))
        else:
            writer.close()
        return status, "-"


async def read_response(reader):
    """Status and whether the connection may be reused; the body read by its Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise ValueError(f"not an HTTP answer: {lines[0]!r}")
    status = int(parts[1])
    length, keep = 0, parts[0] == "HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection":
            keep = value != "close"
        elif name == "transfer-encoding" and value != "identity":
            raise ValueError("chunked answers are not expected from the demo service")
    if length:
        await reader.readexactly(length)
    return status, keep


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/")
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--max-seconds", type=float, default=600)
    parser.add_argument("--timeout", type=float, default=10)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    generator = Generator(args.port, args.path, args.rate, args.timeout)

    async def go():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, generator.stopping.set)
        await generator.run(args.max_seconds)

    asyncio.run(go())
    with open(args.out, "w") as f:
        for due, sent, latency, status, error in sorted(generator.rows):
            f.write(f"{due:.6f}\t{sent:.6f}\t{latency:.6f}\t{status}\t{error}\n")
    late = sum(1 for row in generator.rows if row[1] - row[0] > LATE_S)
    print(f"done {len(generator.rows)} requests, {late} late", file=sys.stderr)


if __name__ == "__main__":
    main()
