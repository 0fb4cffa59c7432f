"""Envoy's share of one change, per sidecar, without a mesh: the CPU a real Envoy spends
applying everything the client sidecar of bench/control_plane.py's mesh is sent for a change
(listeners, routes, clusters, endpoints, secrets, each only when it changed), its stats and
memory, for this tree and an older commit, each with its own bootstrap, on the same Envoy.

    python bench/envoy_update.py [--services 1000] [--updates 20] [--rounds 2] [--base COMMIT]

Each code plans the client pod's node (plan_push, as meshd does) once per change, and writes
its Envoy bootstrap (in its own process: `--base` is checked out with `git worktree` and run
through PYTHONPATH). Three kinds of change, as in bench/control_plane.py: `both` (the
VirtualService of svc-0 and the DestinationRule of svc-1), `vs` (the VirtualService only)
and `dr` (the DestinationRule only). Per round, a fresh Envoy (2 workers, as a sidecar)
behind sailmesh's xDS server gets the first config and then every later one in turn, each
after the last was ACKed. Printed per code and kind: Envoy CPU per change (utime + stime
over the changes / changes, 10 ms clock ticks, hence many changes) and push → ACK median,
min and median over rounds run A B, B A, ...; once per code: the xDS resources changed per
change by type, Envoy's stats count, the CPU of one telemetry read of its stats (the control
plane's `/stats/prometheus?usedonly&filter=...`, median of 10) and the heap Envoy allocated
(`/memory`). The sidecar's listener addresses are moved to loopback ports (nothing is
captured here). Nothing printed is a recorded figure.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from envoy.config.listener.v3 import listener_pb2
from envoy_routes import (  # bench/ is sys.path[0]
    codes_under_test,
    cpu_seconds,
    free_port,
    push_in_turn,
    start_envoy,
)

KINDS = ("both", "vs", "dr")
LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
TELEMETRY_READ = "/stats/prometheus?usedonly&filter=^(sailmesh_telemetry\\.|server\\.uptime$)"


def emit(n: int, updates: int, out: Path) -> None:
    """This process's code: per kind, the client node's resources after each change
    ({type: {name: bytes}}), and its Envoy bootstrap with placeholder sockets."""
    from control_plane import CHANGE
    from plan_push import NOW, NS, Identities, mesh

    from sailmesh.control import TranslationMemo, plan_push
    from sailmesh.model.mesh import build_model, mesh_config
    from sailmesh.model.snapshot import Snapshot
    from sailmesh.resources.loader import load_text
    from sailmesh.xds import envoy_bootstrap

    vs, dr = CHANGE.split("---\n")
    base, workloads, pods, vips = mesh(n, 30)
    client = next(p for p in pods if p.proxy.name.startswith("client"))
    identities, memo = Identities(), TranslationMemo()

    def node(kv: int, kd: int) -> dict[str, dict[str, bytes]]:
        snap = Snapshot.of([*base, *load_text(vs % {"ns": NS, "k": kv}, "vs.yaml").resources,
                            *load_text(dr % {"ns": NS, "k": kd}, "dr.yaml").resources])
        model = build_model(snap, workloads, mesh_config(snap), vips)
        planned = plan_push(model, [client], identities, now=NOW, memo=memo)
        return {t: {name: m.SerializeToString() for name, m in r.items()}
                for t, r in planned.nodes[client.node_id].resources.items()}

    configs = {kind: [node(k if kind != "dr" else 0, k if kind != "vs" else 0)
                      for k in range(updates + 1)] for kind in KINDS}
    boot = envoy_bootstrap(node_id=client.node_id, cluster="client.cpbench",
                           xds_socket=Path("@XDS@"), admin_socket=Path("@ADMIN@"),
                           ready_port=None, stats_port=None, listen_address="127.0.0.1")
    out.write_bytes(pickle.dumps({"node": client.node_id, "configs": configs, "bootstrap": boot}))


def _loopback(configs: list[dict[str, dict[str, bytes]]]) -> list[dict[str, dict[str, bytes]]]:
    """Listeners that would bind (15001, 15006) moved to free loopback ports."""
    ports: dict[str, int] = {}
    out = []
    for config in configs:
        listeners = {}
        for name, data in config.get(LISTENER, {}).items():
            listener = listener_pb2.Listener.FromString(data)
            address = listener.address.socket_address
            if address.port_value in (15001, 15006):
                address.address, address.port_value = "127.0.0.1", ports.setdefault(name, free_port())
            listeners[name] = listener.SerializeToString()
        out.append({**config, LISTENER: listeners})
    return out


def _admin(socket: Path, path: str) -> str:
    return subprocess.run(["curl", "-s", "--unix-socket", str(socket), f"http://admin{path}"],
                          capture_output=True, text=True, check=True).stdout


async def one_round(node: str, bootstrap: dict, configs: list[dict[str, dict[str, bytes]]],
                    probe: bool) -> dict:
    """A fresh Envoy: the first config, then every other one in turn."""
    from google.protobuf import symbol_database

    from sailmesh.xds import XdsServer

    db = symbol_database.Default()

    def typed(config: dict[str, dict[str, bytes]]) -> dict:
        return {t: {name: db.GetSymbol(t.rsplit("/", 1)[1]).FromString(data)
                    for name, data in r.items()} for t, r in config.items()}

    with tempfile.TemporaryDirectory(prefix="smbench-update-") as tmp_name:
        tmp = Path(tmp_name)
        server = XdsServer(tmp / "xds.sock")
        await server.start()
        version = server.set_resources(node, typed(configs[0]))
        text = (json.dumps(bootstrap).replace("@XDS@", str(tmp / "xds.sock"))
                .replace("@ADMIN@", str(tmp / "admin.sock")))
        (tmp / "envoy.json").write_text(text)
        envoy = await start_envoy(tmp, server, node, version, timeout=120)
        out: dict = {}
        try:
            if probe:
                admin = tmp / "admin.sock"
                out["stats"] = len(_admin(admin, "/stats").splitlines())
                reads = []
                for _ in range(10):
                    cpu = cpu_seconds(envoy.pid)
                    _admin(admin, TELEMETRY_READ)
                    reads.append(cpu_seconds(envoy.pid) - cpu)
                out["read"] = statistics.mean(reads)  # 10 ms ticks: a mean, not a median
                out["heap"] = int(json.loads(_admin(admin, "/memory"))["allocated"])
            out["cpu"], out["wall"] = await push_in_turn(
                server, node, envoy.pid, [typed(c) for c in configs[1:]])
        finally:
            envoy.terminate()
            envoy.wait()
            await server.stop()
    return out


def _changed(configs: list[dict[str, dict[str, bytes]]]) -> str:
    """Resources changed (added, changed or removed) per change, by type, and their size."""
    parts = []
    for t in configs[0]:
        count = size = 0
        for old, new in itertools.pairwise(configs):
            a, b = old.get(t, {}), new.get(t, {})
            moved = [n for n in b if a.get(n) != b[n]]
            count += len(moved) + len([n for n in a if n not in b])
            size += sum(len(b[n]) for n in moved)
        steps = len(configs) - 1
        parts.append(f"{t.rsplit('.', 1)[1]} {count / steps:g} ({size / steps / 1024:.0f} KiB)")
    return ", ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--updates", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--base", default="", help="commit to compare with, rounds interleaved")
    ap.add_argument("--emit", help=argparse.SUPPRESS)  # FILE: write this code's configs
    args = ap.parse_args()
    if args.emit:
        emit(args.services, args.updates, Path(args.emit))
        return
    with codes_under_test(args.base, "smbench-update-") as (codes, work):
        emitted = {}
        for code, src in codes.items():
            out = work / f"{len(emitted)}.pickle"
            subprocess.run([sys.executable, __file__, "--emit", str(out), "--services",
                            str(args.services), "--updates", str(args.updates)],
                           env={**os.environ, "PYTHONPATH": str(src)}, check=True)
            emitted[code] = pickle.loads(out.read_bytes())
            emitted[code]["configs"] = {k: _loopback(v) for k, v in emitted[code]["configs"].items()}
        results: dict[tuple[str, str], list[dict]] = {(c, k): [] for c in codes for k in KINDS}
        for r in range(args.rounds):  # A B, B A, ...
            for code in (list(codes) if r % 2 == 0 else list(reversed(codes))):
                e = emitted[code]
                for kind in KINDS:
                    results[code, kind].append(asyncio.run(one_round(
                        e["node"], e["bootstrap"], e["configs"][kind], probe=kind == "both")))
        print(f"{args.services} services, the client sidecar's whole config, "
              f"{args.updates} changes x {args.rounds} rounds")
        for code in codes:
            probe = results[code, "both"]
            print(f"  {code}: {statistics.median(p['stats'] for p in probe):.0f} stats, telemetry "
                  f"read {statistics.median(p['read'] for p in probe) * 1000:.1f} ms CPU, heap "
                  f"{statistics.median(p['heap'] for p in probe) / 2**20:.0f} MiB; sent per "
                  f"change: {_changed(emitted[code]['configs']['both'])}")
            for kind in KINDS:
                cpus = [x["cpu"] for x in results[code, kind]]
                walls = [x["wall"] for x in results[code, kind]]
                print(f"    {kind:>4}: Envoy CPU/change min {min(cpus) * 1000:5.1f} ms  median "
                      f"{statistics.median(cpus) * 1000:5.1f} ms | push→ACK median "
                      f"{statistics.median(walls) * 1000:5.1f} ms")


if __name__ == "__main__":
    main()
