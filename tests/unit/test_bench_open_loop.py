"""bench/open_loop.py, the sidecar benchmark's load client: its schedule, its HTTP/1.1
framing, and a whole run against a local keep-alive server (every request answered, the
marks printed, the loop ends when the last response is in); bench/sidecar_mtls.py's
percentiles."""

from __future__ import annotations

import io
import math
import socketserver
import threading

import pytest
from bench import open_loop
from bench.sidecar_mtls import percentile

RESPONSE = b"HTTP/1.1 200 OK\r\nServer: t\r\nContent-Length: 5\r\n\r\nhello"


def test_schedule_spaces_requests_by_the_rate_and_marks_the_counted_window():
    s = open_loop.Schedule(start=100.0, rate=1000, warmup_s=0.5, duration_s=2)
    assert (s.warm, s.total) == (500, 2500)
    assert s.due(0) == 100.0
    assert s.due(1) == pytest.approx(100.001)
    assert s.due(2499) == pytest.approx(102.499)
    assert s.marks == [("START", pytest.approx(100.5)), ("END", pytest.approx(102.5))]


@pytest.mark.parametrize(("buf", "status"), [
    (b"", None),
    (RESPONSE[:20], None),  # head incomplete
    (RESPONSE[:-1], None),  # body incomplete
    (RESPONSE, 200),
    (b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n", 503),
])
def test_response_status_frames_by_content_length(buf, status):
    assert open_loop.response_status(buf) == status


@pytest.mark.parametrize(("buf", "error"), [
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     "no Content-Length in the response 'HTTP/1.1 200 OK'"),
    (RESPONSE + b"HTTP/1.1", "8 bytes after the response 'HTTP/1.1 200 OK'"),
])
def test_response_status_refuses_what_it_cannot_frame(buf, error):
    with pytest.raises(ValueError, match=error):
        open_loop.response_status(buf)


def test_request_is_a_post_of_the_payload():
    req = open_loop.request_bytes("server.ns", 3)
    assert req == (b"POST / HTTP/1.1\r\nHost: server.ns\r\nContent-Type: application/octet-stream"
                   b"\r\nContent-Length: 3\r\n\r\nxxx")


@pytest.mark.parametrize(("q", "value"), [(0, 1.0), (50, 2.5), (90, 3.7), (100, 4.0)])
def test_percentile_interpolates_between_ranks(q, value):
    assert percentile([1.0, 2.0, 3.0, 4.0], q) == pytest.approx(value)


def test_percentile_of_nothing_is_nan():
    assert math.isnan(percentile([], 50))


class KeepAliveHandler(socketserver.StreamRequestHandler):
    """Answers each POST of the client (head + Content-Length body) with RESPONSE, keeping
    the connection open."""

    def handle(self) -> None:
        while line := self.rfile.readline():
            length = 0
            while (line := self.rfile.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            self.rfile.read(length)
            self.wfile.write(RESPONSE)


def test_a_run_answers_every_request_and_ends_after_the_last_response():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), KeepAliveHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out = io.StringIO()
    try:
        result = open_loop.run({"host": "127.0.0.1", "port": server.server_address[1],
                                "rate": 400, "duration": 0.5, "warmup": 0.1, "connections": 4,
                                "payload": 64}, out=out)
    finally:
        server.shutdown()
        server.server_close()
    assert out.getvalue() == "START\nEND\n"
    assert (result["errors"], result["first_errors"]) == (0, [])
    assert len(result["latency_us"]) == len(result["service_us"]) == len(result["lag_us"]) == 200
    assert all(lat >= svc > 0 for lat, svc in zip(result["latency_us"], result["service_us"],
                                                          strict=True))
    assert all(lag >= 0 for lag in result["lag_us"])
