"""Envoy's share of one VirtualService change, per sidecar, without a mesh: the CPU a real
Envoy spends applying the client sidecar's port-80 RouteConfiguration after each change, for
this tree's translation and an older commit's, on the same Envoy binary.

    python bench/envoy_routes.py [--services 1000] [--updates 40] [--rounds 4] [--base COMMIT]
                                 [--sidecar N]

The mesh and the change are bench/control_plane.py's (N Services over 30 nginx Deployments in
one injected namespace; a change is a VirtualService with a direct response naming the change
for svc-0, plus a DestinationRule). Each code translates the client pod's sidecar once per
change (in its own process: `--base` is checked out with `git worktree` and run through
PYTHONPATH) and hands over the RouteConfigurations named "80". Then, per round, a fresh
Envoy (2 workers, as a sidecar) behind sailmesh's own xDS server gets a listener using RDS
"80" and the first of them, and every later one is pushed in turn, each after the last was
ACKed. Printed per code: Envoy CPU per update (utime + stime over the updates / updates,
10 ms clock ticks, hence many updates) and push → ACK wall time, min and median over rounds
run A B, B A, ...; the RouteConfiguration's size, virtual hosts and domains. A live mesh does
this in each of its M sidecars at once on the same cores. Nothing printed is a recorded figure.

`--sidecar N` adds another translation of this tree, run in the same interleaved rounds: the
namespace under a default Istio Sidecar resource (no workloadSelector) that imports only N
of the Services (svc-0 …, the ones its clients call) and istio-system — Istio's answer to a
route table that holds every Service of the mesh.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2

if TYPE_CHECKING:
    from sailmesh.xds import XdsServer

# sailmesh is imported inside the functions: `--emit` runs under an older tree's PYTHONPATH.
PODS = 30
ROUTE = "80"


SIDECAR = """apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: %(ns)s}
spec:
  egress:
  - hosts: [%(hosts)s]
"""


def translated_routes(n: int, updates: int, out: Path, scope: int = 0) -> None:
    """This process's code: the client sidecar's RouteConfiguration "80" after each change,
    length-prefixed, into `out`; `scope` > 0: under a Sidecar importing that many Services."""
    from plan_push import NS, mesh, snapshot  # bench/ is sys.path[0]

    from sailmesh.model.mesh import build_model, mesh_config
    from sailmesh.resources.loader import load_text
    from sailmesh.translate import translate_proxy

    base, workloads, pods, vips = mesh(n, PODS)
    if scope:
        hosts = [f"./svc-{i}.{NS}.svc.cluster.local" for i in range(scope)]
        base = [*base, *load_text(SIDECAR % {"ns": NS, "hosts": ", ".join(
            [*hosts, "istio-system/*"])}, "sidecar.yaml").resources]
    client = next(p.proxy for p in pods if p.proxy.name.startswith("client"))
    now = datetime.now(UTC)
    with out.open("wb") as f:
        for k in range(updates + 1):
            snap = snapshot(base, k)
            model = build_model(snap, workloads, mesh_config(snap), vips)
            data = translate_proxy(model, client, now=now).routes[ROUTE].SerializeToString()
            f.write(len(data).to_bytes(8, "big") + data)


def load_routes(path: Path) -> list[bytes]:
    data, out, at = path.read_bytes(), [], 0
    while at < len(data):
        size = int.from_bytes(data[at:at + 8], "big")
        out.append(data[at + 8:at + 8 + size])
        at += 8 + size
    return out


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_round(routes: list[bytes]) -> tuple[float, float]:
    """A fresh Envoy: the first RouteConfiguration, then every other one pushed in turn;
    (Envoy CPU seconds per update, median push → ACK seconds)."""
    from sailmesh.translate.http_manager import hcm_filter, http_connection_manager
    from sailmesh.translate.sidecar_inbound import socket_address
    from sailmesh.xds import XdsServer, envoy_bootstrap, type_urls

    node = "sidecar~client-0.cpbench"
    listener = listener_pb2.Listener(
        name="0.0.0.0_80", address=socket_address("127.0.0.1", free_port()),
        filter_chains=[lc.FilterChain(filters=[hcm_filter(http_connection_manager(
            "outbound_0.0.0.0_80", rds=ROUTE))])])

    def config(data: bytes) -> dict:
        return {type_urls.LISTENER: {listener.name: listener},
                type_urls.ROUTE: {ROUTE: route_pb2.RouteConfiguration.FromString(data)}}

    with tempfile.TemporaryDirectory(prefix="smbench-routes-") as tmp_name:
        tmp = Path(tmp_name)
        server = XdsServer(tmp / "xds.sock")
        await server.start()
        version = server.set_resources(node, config(routes[0]))
        boot = envoy_bootstrap(node_id=node, cluster="client.cpbench", xds_socket=tmp / "xds.sock",
                               admin_socket=tmp / "admin.sock", ready_port=free_port(),
                               stats_port=free_port(), listen_address="127.0.0.1")
        (tmp / "envoy.json").write_text(json.dumps(boot))
        envoy = await start_envoy(tmp, server, node, version, timeout=60)
        try:
            return await push_in_turn(server, node, envoy.pid, [config(d) for d in routes[1:]])
        finally:
            envoy.terminate()
            envoy.wait()
            await server.stop()


async def start_envoy(tmp: Path, server: XdsServer, node: str, version: str,
                      timeout: float) -> subprocess.Popen:
    """Envoy (2 workers, as a sidecar) on tmp/envoy.json, once it has applied `version`."""
    from sailmesh.xds import envoy_argv

    with (tmp / "envoy.log").open("w") as log:
        envoy = subprocess.Popen(envoy_argv(tmp / "envoy.json", concurrency=2,
                                            log_level="warning"),
                                 stdout=log, stderr=subprocess.STDOUT)
    if not await server.wait_applied(node, version, timeout=timeout):
        envoy.terminate()
        envoy.wait()
        raise RuntimeError(f"Envoy did not apply the first config: "
                           f"{(tmp / 'envoy.log').read_text()[-2000:]}")
    return envoy


async def push_in_turn(server: XdsServer, node: str, pid: int,
                       configs: list[dict]) -> tuple[float, float]:
    """Push each config after the last was ACKed: (Envoy CPU seconds per update, median
    push → ACK seconds)."""
    walls = []
    cpu = cpu_seconds(pid)
    for config in configs:
        version = server.set_resources(node, config)
        pushed = time.perf_counter()
        if not await server.wait_applied(node, version, timeout=60):
            raise RuntimeError(f"not applied: {server.status(node).problems}")
        walls.append(time.perf_counter() - pushed)
    return (cpu_seconds(pid) - cpu) / len(configs), statistics.median(walls)


def _shape(data: bytes) -> str:
    config = route_pb2.RouteConfiguration.FromString(data)
    domains = sum(len(vh.domains) for vh in config.virtual_hosts)
    return f"{len(data) / 1024:.0f} KiB, {len(config.virtual_hosts)} vhosts, {domains} domains"


@contextlib.contextmanager
def codes_under_test(base: str, prefix: str) -> Iterator[tuple[dict[str, Path], Path]]:
    """({code: its src directory}, a scratch directory) while the block runs: this tree as
    "this", and `base` (if given) checked out with `git worktree`; both removed after."""
    repo = Path(__file__).resolve().parents[1]
    work = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    codes = {"this": repo / "src"}
    try:
        if base:
            subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach",
                            str(work / "base"), base], check=True, capture_output=True)
            codes[base] = work / "base" / "src"
        yield codes, work
    finally:
        if base:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force",
                            str(work / "base")], check=False, capture_output=True)
        subprocess.run(["rm", "-rf", str(work)], check=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--updates", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--base", default="", help="commit to compare with, rounds interleaved")
    ap.add_argument("--sidecar", type=int, default=0, metavar="N",
                    help="also this tree under a Sidecar importing N Services")
    ap.add_argument("--emit", help=argparse.SUPPRESS)  # FILE: write this code's routes
    ap.add_argument("--scope", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.emit:
        translated_routes(args.services, args.updates, Path(args.emit), args.scope)
        return
    with codes_under_test(args.base, "smbench-routes-") as (codes, work):
        scopes = {"this": 0}
        if args.sidecar:
            codes = {"this": codes["this"], f"sidecar {args.sidecar}": codes["this"],
                     **{c: src for c, src in codes.items() if c != "this"}}
            scopes[f"sidecar {args.sidecar}"] = args.sidecar
        routes = {}
        for code, src in codes.items():
            out = work / f"{code.replace(' ', '-')}.routes"
            subprocess.run([sys.executable, __file__, "--emit", str(out),
                            "--services", str(args.services), "--updates", str(args.updates),
                            # an older tree (`--base`) knows no --scope
                            *(["--scope", str(scopes[code])] if scopes.get(code) else [])],
                           env={**os.environ, "PYTHONPATH": str(src)}, check=True)
            routes[code] = load_routes(out)
        results: dict[str, list[tuple[float, float]]] = {code: [] for code in codes}
        for r in range(args.rounds):  # A B C, C B A, ...
            order = list(codes) if r % 2 == 0 else list(reversed(codes))
            for code in order:
                results[code].append(asyncio.run(one_round(routes[code])))
        print(f"{args.services} services, client sidecar's route {ROUTE!r}, "
              f"{args.updates} updates x {args.rounds} rounds")
        for code, rounds in results.items():
            cpus, walls = [c for c, _ in rounds], [w for _, w in rounds]
            print(f"  {code:>10}: Envoy CPU/update min {min(cpus) * 1000:5.1f} ms  median "
                  f"{statistics.median(cpus) * 1000:5.1f} ms | push→ACK median "
                  f"{statistics.median(walls) * 1000:5.1f} ms | {_shape(routes[code][-1])}")


if __name__ == "__main__":
    main()
