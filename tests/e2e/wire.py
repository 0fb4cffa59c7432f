"""What goes over a pod's wire: a packet capture inside the pod's network namespace (a raw
AF_PACKET socket on its interfaces) and a reader for the TLS handshake records in it.

Used to prove facts a client cannot see: that a hop is TLS, which server name (SNI) and
ALPN protocols the client offered, that the server answered with a ServerHello.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

# Runs in the pod's network namespace, from the host (`ip netns exec NETNS python3 -c SNIFFER
# SECONDS PORT`: a container has no CAP_NET_RAW): prints one
# JSON object per TCP segment with payload to or from PORT, for SECONDS seconds.
SNIFFER = r"""
import json, socket, sys, time
seconds, port = float(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(3))
s.settimeout(0.1)
end, seen = time.time() + seconds, set()
print("ready", flush=True)
while time.time() < end:
    try:
        frame, addr = s.recvfrom(65535)
    except socket.timeout:
        continue
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        continue
    ip = frame[14:]
    ihl = (ip[0] & 15) * 4
    if ip[9] != 6:
        continue
    tcp = ip[ihl:]
    sport, dport = int.from_bytes(tcp[0:2], "big"), int.from_bytes(tcp[2:4], "big")
    payload = tcp[(tcp[12] >> 4) * 4:]
    if port not in (sport, dport) or not payload:
        continue
    key = (bytes(ip[12:20]), sport, dport, int.from_bytes(tcp[4:8], "big"))
    if key in seen:
        continue
    seen.add(key)
    print(json.dumps({"src": socket.inet_ntoa(ip[12:16]), "dst": socket.inet_ntoa(ip[16:20]),
                      "sport": sport, "dport": dport, "payload": payload.hex()}), flush=True)
"""


@dataclass(frozen=True)
class Segment:
    src: str
    dst: str
    sport: int
    dport: int
    payload: bytes


def segments(output: str) -> list[Segment]:
    out = []
    for line in output.splitlines():
        if line.startswith("{"):
            d = json.loads(line)
            out.append(Segment(d["src"], d["dst"], d["sport"], d["dport"],
                               bytes.fromhex(d["payload"])))
    return out


@dataclass(frozen=True)
class ClientHello:
    server_name: str | None  # None: no server_name extension (RFC 6066 §3) was sent
    alpn: tuple[str, ...]


def client_hello(payload: bytes) -> ClientHello | None:
    """The ClientHello at the start of a TLS stream (RFC 8446 §4.1.2), else None."""
    if len(payload) < 6 or payload[0] != 0x16 or payload[5] != 0x01:
        return None
    body = payload[9:]  # record header (5) + handshake type and length (4)
    pos = 2 + 32  # legacy_version, random
    pos += 1 + body[pos]  # legacy_session_id
    pos += 2 + struct.unpack_from("!H", body, pos)[0]  # cipher_suites
    pos += 1 + body[pos]  # legacy_compression_methods
    end = pos + 2 + struct.unpack_from("!H", body, pos)[0]
    pos += 2
    name, alpn = None, ()
    while pos + 4 <= min(end, len(body)):
        kind, size = struct.unpack_from("!HH", body, pos)
        data = body[pos + 4:pos + 4 + size]
        if kind == 0 and len(data) > 5:  # server_name: list length, type, name length, name
            name = data[5:5 + struct.unpack_from("!H", data, 3)[0]].decode()
        elif kind == 16:  # application_layer_protocol_negotiation
            items, i = [], 2
            while i < len(data):
                items.append(data[i + 1:i + 1 + data[i]].decode())
                i += 1 + data[i]
            alpn = tuple(items)
        pos += 4 + size
    return ClientHello(name, alpn)


def is_server_hello(payload: bytes) -> bool:
    return len(payload) > 5 and payload[0] == 0x16 and payload[5] == 0x02
