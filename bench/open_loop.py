"""Open-loop HTTP/1.1 load at a fixed rate, from one thread: the load client of
bench/sidecar_mtls.py, run inside a pod from this file alone (standard library only).

    python open_loop.py '{"host": ..., "port": 80, "rate": 1000, "duration": 10,
                          "warmup": 2, "connections": 16, "payload": 1024}'

In the manner of wrk2: request i is due at start + i/rate; it goes out at its due time on a
free keep-alive connection, or as soon as one is free when every connection is busy, and its
latency counts from the *due* time, so a stall of the server is not hidden by the client
waiting it out (coordinated omission). The connections take requests in turn (round robin
while they are free), as fortio's connections in Istio's benchmark each carry 1/N of the
rate. Each request is a POST of `payload` bytes.

One thread, non-blocking sockets and select(2), whose timeout is in microseconds (epoll and
poll round theirs up to a millisecond), with the timer slack at 1 ns so that the kernel wakes
the client on time. A thread per connection would add a delay of the client's own: a
response waits for the interpreter lock while the thread holding it is descheduled, more so
on a busy machine. The garbage collector is off while the load runs (no pause of its own).

Prints START when the warm-up ends, END when the last counted request is due, then one JSON
line: per counted request the latency from its due time and from its actual send, and the
send lag (actual send - due), in microseconds; the count of failed requests.
"""

from __future__ import annotations

import collections
import gc
import json
import math
import select
import socket
import sys
import time

PR_SET_TIMERSLACK = 29  # prctl(2)


def request_bytes(host: str, payload: int) -> bytes:
    head = (f"POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {payload}\r\n\r\n")
    return head.encode() + b"x" * payload


def response_status(buf: bytes) -> int | None:
    """The status of the HTTP/1.1 response that `buf` holds whole (head and Content-Length
    body), or None while it is incomplete. ValueError for a response this client cannot
    frame (no Content-Length) or bytes beyond it (one request in flight per connection)."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buf[:end].decode("latin-1").split("\r\n")
    lengths = [int(line.split(":", 1)[1]) for line in lines[1:]
               if line.lower().startswith("content-length:")]
    if not lengths:
        raise ValueError(f"no Content-Length in the response {lines[0]!r}")
    size = end + 4 + lengths[0]
    if len(buf) > size:
        raise ValueError(f"{len(buf) - size} bytes after the response {lines[0]!r}")
    return int(lines[0].split()[1]) if len(buf) == size else None


class Schedule:
    """When request i is due, and the marks START (end of the warm-up) and END (the last
    counted request is due), all in time.monotonic() seconds."""

    def __init__(self, start: float, rate: float, warmup_s: float, duration_s: float) -> None:
        self.start, self.rate = start, rate
        self.warm = int(warmup_s * rate)
        self.total = self.warm + int(duration_s * rate)
        self.marks = [("START", self.due(self.warm)), ("END", self.due(self.total))]

    def due(self, i: int) -> float:
        return self.start + i / self.rate


class Connection:
    def __init__(self, addr: tuple) -> None:
        self.sock = socket.create_connection(addr, timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.request = -1  # the request in flight, -1 when free
        self.unsent = b""
        self.buf = b""

    def fileno(self) -> int:
        return self.sock.fileno()


def set_timer_slack_ns(ns: int) -> None:
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the default slack


def run(spec: dict, out=sys.stdout) -> dict:
    addr = socket.getaddrinfo(spec["host"], spec["port"], socket.AF_INET,
                              socket.SOCK_STREAM)[0][4]
    request = request_bytes(spec["host"], spec["payload"])
    conns = [Connection(addr) for _ in range(spec["connections"])]
    free = collections.deque(conns)
    sched = Schedule(time.monotonic() + 0.2, spec["rate"], spec["warmup"], spec["duration"])
    marks = list(sched.marks)
    total = sched.total
    latency = [math.nan] * total  # from the due time (corrected for coordinated omission)
    service = [math.nan] * total  # from the actual send
    lag = [math.nan] * total  # actual send - due
    sent_at = [0.0] * total
    errors: list[str] = []
    set_timer_slack_ns(1)
    gc.disable()

    def fail(conn: Connection, why: str) -> None:
        errors.append(why)
        conn.sock.close()
        conns[conns.index(conn)] = fresh = Connection(addr)
        free.append(fresh)

    i = 0
    while True:
        now = time.monotonic()
        while marks and now >= marks[0][1]:
            print(marks.pop(0)[0], file=out, flush=True)
        while i < total and free and sched.due(i) <= now:
            conn = free.popleft()
            sent_at[i] = time.monotonic()
            lag[i] = sent_at[i] - sched.due(i)
            conn.request, conn.buf = i, b""
            try:
                n = conn.sock.send(request)
            except OSError as exc:
                fail(conn, f"send: {exc}")
            else:
                conn.unsent = request[n:]
            i += 1
        busy = [c for c in conns if c.request >= 0]
        if i >= total and not busy and not marks:
            break
        wake = [marks[0][1]] if marks else []
        if i < total and free:
            wake.append(sched.due(i))
        # Nothing to wake for but responses: wait for them (there is at least one in flight).
        timeout = max(0.0, min(wake) - time.monotonic()) if wake else None
        readable, writable, _ = select.select(busy, [c for c in busy if c.unsent], [], timeout)
        done = time.monotonic()  # one clock read for every response of this wake-up
        for conn in writable:
            try:
                conn.unsent = conn.unsent[conn.sock.send(conn.unsent):]
            except OSError as exc:
                conn.request = -1
                fail(conn, f"send: {exc}")
        for conn in readable:
            if conn.request < 0:
                continue  # failed on send above
            try:
                chunk = conn.sock.recv(65536)
                if not chunk:
                    raise OSError("connection closed by the server")
                conn.buf += chunk
                status = response_status(conn.buf)
            except (OSError, ValueError) as exc:
                conn.request = -1
                fail(conn, str(exc))
                continue
            if status is None:
                continue
            if status != 200:
                errors.append(f"HTTP {status}")
            else:
                n = conn.request
                latency[n], service[n] = done - sched.due(n), done - sent_at[n]
            conn.request = -1
            free.append(conn)
    gc.enable()
    for conn in conns:
        conn.sock.close()
    counted = range(sched.warm, total)
    return {
        "latency_us": [round(latency[k] * 1e6, 1) for k in counted],
        "service_us": [round(service[k] * 1e6, 1) for k in counted],
        "lag_us": [round(lag[k] * 1e6, 1) for k in counted],
        "errors": len(errors), "first_errors": errors[:5],
    }


def main() -> None:
    result = run(json.loads(sys.argv[1]))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
