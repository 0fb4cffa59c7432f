"""Address allocation for pods (pod CIDR), ClusterIP services (service CIDR) and
LoadBalancer services (loopback addresses of the host, `LOAD_BALANCER_CIDR`).

Owns the `ipam.json` file in the state dir: an address stays bound to its
(namespace, name) key until released, so a daemon restart gives a pod or a service the
address it had. Allocation walks forward from a persisted cursor instead of taking the
lowest free address, so a just-released address is not handed out again at once (stale
endpoints and conntrack entries would otherwise reach the wrong pod).

Must not know about namespaces, processes or iptables.
"""

from __future__ import annotations

import ipaddress
import json
import os
import threading
from pathlib import Path

from sailmesh.runtime.errors import PodRuntimeError

# LoadBalancer Services get an address of the host's own loopback range (127.0.0.2 on):
# reachable from the host only, so nothing a tutorial sends leaves the machine. 127.0.0.1
# stays the gateway's fixed address on its target ports (`sailctl env`).
LOAD_BALANCER_CIDR = "127.0.0.0/24"


class AddressPool:
    """One CIDR's allocations, stored under `section` in the shared ipam file."""

    def __init__(self, store: IpamStore, section: str, cidr: str, first_offset: int) -> None:
        self._store = store
        self._section = section
        self._net = ipaddress.IPv4Network(cidr)
        if self._net.num_addresses < 16:
            raise PodRuntimeError(f"CIDR {cidr} is too small; give at least a /28")
        self._first = first_offset

    @property
    def network(self) -> ipaddress.IPv4Network:
        return self._net

    def get(self, key: str) -> str | None:
        with self._store.lock:
            return self._store.data[self._section].get(key)

    def allocate(self, key: str) -> str:
        with self._store.lock:
            table: dict[str, str] = self._store.data[self._section]
            if key in table:
                return table[key]
            used = set(table.values())
            size = self._net.num_addresses
            cursors: dict[str, int] = self._store.data["cursors"]
            start = max(cursors.get(self._section, self._first), self._first)
            span = size - 1 - self._first  # last address of the block is never handed out
            for step in range(span):
                offset = self._first + (start - self._first + step) % span
                ip = str(self._net.network_address + offset)
                if ip not in used:
                    table[key] = ip
                    cursors[self._section] = offset + 1
                    self._store.save()
                    return ip
            raise PodRuntimeError(
                f"no free address left in {self._net} ({len(table)} in use);"
                " delete pods/services or give a larger CIDR"
            )

    def release(self, key: str) -> None:
        with self._store.lock:
            if self._store.data[self._section].pop(key, None) is not None:
                self._store.save()

    def allocated_keys(self) -> list[str]:
        with self._store.lock:
            return list(self._store.data[self._section])

    def offset(self, ip: str) -> int:
        return int(ipaddress.IPv4Address(ip)) - int(self._net.network_address)


class IpamStore:
    """The JSON file behind every pool; writes are atomic (temp file + rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.data: dict[str, dict] = {"pods": {}, "vips": {}, "load_balancers": {},
                                      "cursors": {}}
        if path.exists():
            try:
                loaded = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise PodRuntimeError(
                    f"cannot read address allocations from {path}: {exc};"
                    " fix or delete the file (pods and services then get new addresses)"
                ) from exc
            for section in self.data:
                self.data[section].update(loaded.get(section, {}))

    def save(self) -> None:
        with self.lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
            os.replace(tmp, self.path)
