"""Offline control-plane benchmark: what one configuration change costs the planner, without
a mesh — the model build, `plan_push` and the xDS snapshots over N Services and M injected pods (plus a client
pod and an ingress gateway), with the daemon's TranslationMemo kept across changes.

    python bench/plan_push.py [--cells 1000x30] [--changes 10] [--repeats 3] [--base COMMIT]
                              [--profile OUT]

The mesh is the one bench/control_plane.py builds (N Services over M nginx Deployments in
one injected namespace); a change is the same VirtualService (direct response for svc-0)
and DestinationRule (a new subset for svc-1). Per change: build_model, plan_push (with the
memo, as the daemon runs it), the nodes' xDS snapshots (built from their last ones, as the
daemon's XdsServer.build does), and the three together; printed per cell as min / median over
`--repeats` rounds of `--changes` changes (each round a fresh process with a fresh memo
and one unmeasured warm-up push). `--base` runs the same rounds on an older commit
(checked out with `git worktree`, run through PYTHONPATH), alternating A B, B A.
Certificates are issued once per pod (the daemon keeps still-valid ones too), so signing
is not measured. `--profile OUT` writes a cProfile of the measured
changes of this tree's last round. Peak RSS: the largest of the rounds' processes.
Nothing printed is a recorded figure.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sailmesh.ca import CertificateAuthority, IssuedCert, issue_workload_cert, spiffe_id
from sailmesh.control import ProxyPod, TranslationMemo, plan_push
from sailmesh.model.mesh import MeshModel, build_model, mesh_config
from sailmesh.model.proxy import Proxy
from sailmesh.model.snapshot import Snapshot
from sailmesh.model.workloads import Workload
from sailmesh.resources.base import Resource
from sailmesh.resources.loader import load_text
from sailmesh.xds.cache import Packer
from sailmesh.xds.cache import Snapshot as XdsSnapshot

# The live benchmark's Services and change (this file's directory is on sys.path).
from control_plane import APP_PORT, CHANGE, NS, SERVICE  # isort: skip

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PHASES = ("build_model", "plan_push", "snapshots", "total")
MTLS = {"security.istio.io/tlsMode": "istio"}

GATEWAY = """---
apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  ports: [{name: http2, port: 80, targetPort: 8080}, {name: https, port: 443, targetPort: 8443}]
"""


class Identities:
    """One real workload certificate per pod, issued on first use and kept."""

    def __init__(self) -> None:
        self.ca = CertificateAuthority.self_signed("cluster.local", "ecdsa-p256", NOW)
        self.issued: dict[tuple[str, str], IssuedCert] = {}

    def certificate(self, pod: tuple[str, str], service_account: str,
                    now: datetime) -> IssuedCert:
        if pod not in self.issued:
            self.issued[pod] = issue_workload_cert(
                self.ca, spiffe_id=spiffe_id("cluster.local", pod[0], service_account), now=now)
        return self.issued[pod]


def mesh(n: int, m: int) -> tuple[list[Resource], list[Workload], list[ProxyPod], dict]:
    text = GATEWAY + "".join(SERVICE % {"i": i, "j": i % m, "ns": NS, "port": APP_PORT}
                             for i in range(n))
    resources = load_text(text, "bench.yaml").resources
    workloads = [Workload(NS, f"app-{j}-0", {"app": f"app-{j}", **MTLS}, f"10.88.{j // 200}."
                          f"{j % 200 + 2}", "default", True, {"http": APP_PORT}) for j in range(m)]
    workloads.append(Workload(NS, "client-0", {"app": "client", **MTLS}, "10.88.9.2", "default",
                              True))
    workloads.append(Workload("istio-system", "istio-ingressgateway-0",
                              {"istio": "ingressgateway"}, "10.88.9.3", "gateway", True))
    pods = []
    for w in workloads:
        kind = "router" if w.namespace == "istio-system" else "sidecar"
        proxy = Proxy(kind, w.namespace, w.name, w.labels, w.ip)
        pods.append(ProxyPod(proxy.node_id, proxy, w.service_account))
    vips = {(r.namespace, r.name): f"10.96.{i // 250}.{i % 250 + 1}"
            for i, r in enumerate(resources)}
    return resources, workloads, pods, vips


def snapshot(base: list[Resource], k: int) -> Snapshot:
    return Snapshot.of([*base, *load_text(CHANGE % {"ns": NS, "k": k},
                                          "change.yaml").resources])


def run_round(n: int, m: int, changes: int, profile: cProfile.Profile | None
              ) -> dict[str, list[float]]:
    base, workloads, pods, vips = mesh(n, m)
    identities, memo = Identities(), TranslationMemo()
    out: dict[str, list[float]] = {phase: [] for phase in PHASES}
    xds = Snapshots()

    def push(k: int) -> tuple[float, float, float]:
        snap = snapshot(base, k)
        t0 = time.perf_counter()
        model: MeshModel = build_model(snap, workloads, mesh_config(snap), vips)
        t1 = time.perf_counter()
        planned = plan_push(model, pods, identities, now=NOW, memo=memo)
        t2 = time.perf_counter()
        xds.build({node_id: node.resources for node_id, node in planned.nodes.items()})
        return t1 - t0, t2 - t1, time.perf_counter() - t2

    push(0)  # warm-up: first push, certificates issued
    for k in range(1, changes + 1):
        if profile is not None:
            profile.enable()
        times = push(k)
        if profile is not None:
            profile.disable()
        for phase, seconds in zip(PHASES, [*times, sum(times)], strict=True):
            out[phase].append(seconds)
    return out


class Snapshots:
    """Each node's xDS snapshot built from its last one, as the daemon's XdsServer.build
    does (codes before it keep no shared layers: they get none)."""

    def __init__(self) -> None:
        self.packer, self.last = Packer(), {}

    def build(self, resources: dict) -> None:
        shared: dict = {}
        for node_id, node_resources in resources.items():
            self.packer.start(node_id)
            try:
                built = XdsSnapshot.build(node_resources, self.packer,
                                          self.last.get(node_id), shared)
            except TypeError:  # an older Snapshot.build
                built = XdsSnapshot.build(node_resources, self.packer, self.last.get(node_id))
            self.last[node_id] = built


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", default="1000x30", help="NxM,...: Services x pods")
    ap.add_argument("--changes", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--base", default="", help="commit to compare with, rounds interleaved")
    ap.add_argument("--profile", help="write a cProfile of the last round here")
    ap.add_argument("--round", help=argparse.SUPPRESS)  # NxM: one round, JSON out
    args = ap.parse_args()
    if args.round:
        n, m = (int(x) for x in args.round.split("x"))
        profile = cProfile.Profile() if args.profile else None
        result = run_round(n, m, args.changes, profile)
        result["rss"] = [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]
        print(json.dumps(result))
        if profile is not None:
            profile.dump_stats(args.profile)
        return
    repo = Path(__file__).resolve().parents[1]
    codes = {"this": repo / "src"}
    base_dir = None
    if args.base:
        base_dir = Path(tempfile.mkdtemp(prefix="smbench-plan-", dir="/tmp"))
        subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(base_dir),
                        args.base], check=True, capture_output=True)
        codes[args.base] = base_dir / "src"
    try:
        for cell in args.cells.split(","):
            rounds: dict[str, list[dict[str, list[float]]]] = {code: [] for code in codes}
            for r in range(args.repeats):
                order = list(codes.items())
                if r % 2:
                    order.reverse()  # A B, then B A: drift falls on both codes
                for code, src in order:
                    last = r == args.repeats - 1 and code == "this"
                    argv = [sys.executable, __file__, "--round", cell,
                            "--changes", str(args.changes),
                            *(["--profile", args.profile] if args.profile and last else [])]
                    run = subprocess.run(argv, env={**os.environ, "PYTHONPATH": str(src)},
                                         check=True, capture_output=True, text=True)
                    rounds[code].append(json.loads(run.stdout))
            for code, results in rounds.items():
                parts = []
                for phase in PHASES:
                    values = [v for rnd in results for v in rnd[phase]]
                    parts.append(f"{phase} min {min(values):.3f} median "
                                 f"{statistics.median(values):.3f}")
                peak = max(v for rnd in results for v in rnd["rss"])
                print(f"{cell:>9} {code:>8}  " + " | ".join(parts) + " s per change | peak "
                      f"RSS {peak:.0f} MiB", flush=True)
    finally:
        if base_dir is not None:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force",
                            str(base_dir)], capture_output=True)


if __name__ == "__main__":
    main()
