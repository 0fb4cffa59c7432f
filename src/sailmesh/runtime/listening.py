"""Which TCP ports accept connections inside a pod's network namespace, asked of the kernel
over sock_diag netlink (what `ss -ltn` does), for pod readiness.

Owns: one NETLINK_SOCK_DIAG socket per pod, opened inside the pod's network namespace
(netlink answers for the namespace its socket was created in), and the LISTEN-only dump
request. Must not know: pods, plans, Istio.

Why not /proc/<pid>/net/tcp: reading it walks the kernel's whole TCP hash table (every
connection of every namespace on the machine) to print the few of one namespace: ~9 ms
per pod per check, so idle cost grew with every pod. A dump
asking for the LISTEN state only walks the listening hash (linux net/ipv4/inet_diag.c:
with no state but TCPF_LISTEN the established table is skipped).
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import threading

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
TCPF_LISTEN = 1 << 10  # include/net/tcp_states.h: TCP_LISTEN = 10
CLONE_NEWNET = 0x40000000
# struct nlmsghdr, then struct inet_diag_req_v2 (family, protocol, ext, pad, states,
# inet_diag_sockid: sport, dport (big endian), src[4], dst[4], if, cookie[2]).
_NLMSGHDR = struct.Struct("=IHHII")
_REQ = struct.Struct("=BBBBI")
_SOCKID_LEN = 48
_MSG_SPORT = 4  # inet_diag_msg: family, state, timer, retrans, then the sockid


class ListenProbe:
    """The listening TCP ports of one network namespace. Not thread-safe: one caller."""

    def __init__(self, netns_path: str) -> None:
        self._sock = _socket_in(netns_path)
        self._seq = 0

    def ports(self) -> set[int]:
        """Ports with a socket in LISTEN (IPv4 or IPv6); raises OSError if the kernel fails."""
        out: set[int] = set()
        for family in (socket.AF_INET, socket.AF_INET6):
            out |= self._dump(family)
        return out

    def close(self) -> None:
        self._sock.close()

    def _dump(self, family: int) -> set[int]:
        self._seq += 1
        body = _REQ.pack(family, socket.IPPROTO_TCP, 0, 0, TCPF_LISTEN) + bytes(_SOCKID_LEN)
        header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY,
                                NLM_F_REQUEST | NLM_F_DUMP, self._seq, 0)
        self._sock.send(header + body)
        ports: set[int] = set()
        while True:
            data = self._sock.recv(65536)
            offset = 0
            while offset + _NLMSGHDR.size <= len(data):
                length, kind, _, seq, _ = _NLMSGHDR.unpack_from(data, offset)
                if length < _NLMSGHDR.size:
                    raise OSError("sock_diag: malformed netlink message")
                if seq == self._seq:
                    if kind == NLMSG_DONE:
                        return ports
                    if kind == NLMSG_ERROR:
                        (errno,) = struct.unpack_from("=i", data, offset + _NLMSGHDR.size)
                        raise OSError(-errno, f"sock_diag: {os.strerror(-errno)}")
                    if kind == SOCK_DIAG_BY_FAMILY:
                        (port,) = struct.unpack_from(">H", data,
                                                     offset + _NLMSGHDR.size + _MSG_SPORT)
                        ports.add(port)
                offset += (length + 3) & ~3  # NLMSG_ALIGN


def _socket_in(netns_path: str) -> socket.socket:
    """A sock_diag socket created inside the namespace at `netns_path`. setns(2) changes
    only the calling thread, so a short-lived thread enters the namespace, opens the
    socket (which stays bound to that namespace) and ends."""
    result: list[socket.socket | BaseException] = []

    def enter_and_open() -> None:
        try:
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc().setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {netns_path}: {os.strerror(err)}")
            finally:
                os.close(fd)
            result.append(socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC,
                                        NETLINK_SOCK_DIAG))
        except BaseException as exc:  # handed to the caller's thread
            result.append(exc)

    thread = threading.Thread(target=enter_and_open, name="sailmesh-netns-probe")
    thread.start()
    thread.join()
    got = result[0]
    if isinstance(got, BaseException):
        raise got
    return got


_LIBC: ctypes.CDLL | None = None


def _libc() -> ctypes.CDLL:
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC
