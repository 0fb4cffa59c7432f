"""The tcp-echo stand-in answers as Istio's tcp-echo-server: real sockets on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from sailmesh.apps.tcp_echo import reply


def test_reply_is_prefix_space_line() -> None:
    assert reply("hello", b"world\n") == b"hello world\n"


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture()
def server() -> Iterator[tuple[list[int], subprocess.Popen[str]]]:
    ports = _free_ports(2)
    proc = subprocess.Popen([sys.executable, "-m", "sailmesh.apps.tcp_echo",
                             ",".join(map(str, ports)), "one"], stdout=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in ports]  # type: ignore[union-attr]
        assert lines == [f"listening on [::]:{p}, prefix: one\n" for p in ports]
        yield ports, proc
    finally:
        proc.kill()
        proc.wait()


def _connect(port: int) -> socket.socket:
    deadline = time.monotonic() + 5
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_every_port_echoes_each_line_with_the_prefix(
        server: tuple[list[int], subprocess.Popen[str]]) -> None:
    ports, proc = server
    for port in ports:
        with _connect(port) as s:
            s.sendall(b"first\nsecond\n")
            got = b""
            while got.count(b"\n") < 2:
                got += s.recv(100)
            assert got == b"one first\none second\n"
            # A last line without a newline gets no answer; the server closes on EOF.
            s.sendall(b"partial")
            s.shutdown(socket.SHUT_WR)
            assert s.recv(100) == b""
    proc.kill()
    out = proc.communicate()[0]
    assert "request: first\nresponse: one first\n" in out
