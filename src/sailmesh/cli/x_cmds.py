"""`sailctl x tls-check` and `sailctl x describe`: explain TLS on a hop, summarise a workload.

Owns: the edge of these commands — reading the stored config, the daemon's pod list and the
two Envoys' config dumps (admin Unix sockets), resolving pod names to their Deployments,
and printing (plain text or `-o json|yaml`). The decisions come from `analysis.explain`,
`analysis.summary` and `analysis.live`; nothing here judges a policy.
"""

from __future__ import annotations

import http.client
import json
import socket
from datetime import UTC, datetime
from typing import Any

import click

from sailmesh.analysis.context import AnalysisContext, build_context, with_builtin_gateways
from sailmesh.analysis.explain import explain
from sailmesh.analysis.hop import ExplainError, Hop, Source, find_destination, find_source
from sailmesh.analysis.live import Observed, client_agrees, client_side, server_side
from sailmesh.analysis.summary import service_summary, workload_summary
from sailmesh.analysis.workloads import MeshWorkload
from sailmesh.cli.common import daemon_call, home, namespace_option
from sailmesh.cli.edges_cmd import edges
from sailmesh.cli.output import emit, fail, table
from sailmesh.model.services import cluster_name
from sailmesh.model.snapshot import Snapshot
from sailmesh.store import Store, StoreError

OUTPUT = click.option("-o", "--output", type=click.Choice(["json", "yaml"]), default=None,
                      help="Print as json or yaml instead of text.")


@click.group("x")
def x() -> None:
    """Experimental commands: tls-check, describe."""


def _context() -> AnalysisContext:
    try:
        stored = Store(home().root).list()
    except StoreError as exc:
        fail(str(exc))
    return build_context(Snapshot.of(with_builtin_gateways(stored)), datetime.now(UTC))


def _pods() -> list[dict[str, Any]]:
    """Pods of the running mesh ([] when it is not running)."""
    status = daemon_call("status")
    return list(status.get("pods", [])) if status else []


def _workload_name(spec: str, namespace: str, pods: list[dict[str, Any]]) -> str:
    """A running pod's name → `deploy/<its Deployment>`; anything else unchanged."""
    kind, _, name = spec.rpartition("/")
    if kind not in ("", "pod", "pods", "po"):
        return spec
    for p in pods:
        if p["namespace"] == namespace and p["name"] == name and p.get("deployment"):
            return f"deploy/{p['deployment']}"
    return spec


def _pods_of(w: MeshWorkload, pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    mine = [p for p in pods if p["namespace"] == w.namespace
            and (p.get("deployment") == w.name or p["name"] == w.name)]
    return sorted(mine, key=lambda p: (not p.get("ready"), p["name"]))


# --- reading Envoy -----------------------------------------------------------------------------


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=5)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(self._path)


def _dump(admin: str) -> dict[str, Any] | None:
    """Envoy's /config_dump, or None when the admin socket does not answer."""
    conn = _UnixHTTP(admin)
    try:
        conn.request("GET", "/config_dump")
        resp = conn.getresponse()
        body = resp.read()
        return json.loads(body) if resp.status == 200 else None
    except (OSError, ValueError):
        return None
    finally:
        conn.close()


def _live(hop: Hop, pods: list[dict[str, Any]], ctx: AnalysisContext) -> dict[str, Any] | None:
    """The two Envoys' view of the hop, compared with the static verdict."""
    if not pods:
        return None
    out: dict[str, Any] = {"client": None, "servers": []}
    src = hop.source.workload
    if hop.client.proxy and src is not None:
        cluster = cluster_name(hop.destination.port, hop.destination.host,
                               hop.destination.subset or "")
        # A host the client's Sidecar resource does not import has no cluster at all.
        absent = hop.client.policy if hop.client.mode == "NONE" else None
        out["client"] = _observe(_pods_of(src, pods),
                                 lambda d: client_side(d, cluster),
                                 lambda o: client_agrees(hop.client.mode, o), absent)
    for s in hop.servers:
        w = next((w for w in ctx.workloads if w.ref == s.target), None)
        if w is None or not s.sidecar or s.gateway:
            continue
        seen = _observe(_pods_of(w, pods), lambda d, port=s.port: server_side(d, port),
                        lambda o, mode=s.mode: o.kind == mode)
        out["servers"].append({"workload": s.target, **seen})
    return out


def _observe(pods: list[dict[str, Any]], read: Any, agrees: Any,
             absent: str | None = None) -> dict[str, Any]:
    """`absent`: why the hop is expected to have no configuration in the proxy."""
    for p in pods:
        if not p.get("admin"):
            continue
        dump = _dump(p["admin"])
        if dump is None:
            return {"pod": p["name"], "observed": None, "agrees": None,
                    "note": "the proxy's admin socket did not answer"}
        seen: Observed | None = read(dump)
        if seen is None:
            return {"pod": p["name"], "observed": None, "agrees": absent is not None,
                    "note": "the proxy has no configuration for this hop"
                    + (f" ({absent})" if absent else "")}
        return {"pod": p["name"], "observed": seen.as_dict(), "agrees": agrees(seen)}
    note = "no running pod with a proxy admin socket" if pods else "no running pod"
    return {"pod": None, "observed": None, "agrees": None, "note": note}


# --- tls-check ---------------------------------------------------------------------------------


@x.command("tls-check")
@click.argument("endpoints", nargs=-1, required=True, metavar="[SOURCE] DESTINATION[:PORT]")
@namespace_option
@OUTPUT
def tls_check(endpoints: tuple[str, ...], namespace: str | None, output: str | None) -> None:
    """Is a hop plaintext, TLS or mutual TLS, and why — and does it work?

    SOURCE: a pod, deploy/NAME, ingress, egress or outside (default: a sidecar in the
    namespace). DESTINATION: a Service (NAME, NAME.NS, FQDN, svc/NAME) or a ServiceEntry
    host, with :PORT when it has several ports; or route/NAME, the OpenShift router's hop
    to the gateway behind a Route.
    """
    if len(endpoints) > 2:
        raise click.UsageError("expected [SOURCE] DESTINATION[:PORT]")
    ns = namespace or "default"
    ctx = _context()
    if endpoints[-1].startswith(("route/", "routes/")):
        from sailmesh.cli.router_cmds import tls_check_route

        tls_check_route(ctx, endpoints[-1].split("/", 1)[1], ns, output)
        return
    pods = _pods()
    source_spec = _workload_name(endpoints[0], ns, pods) if len(endpoints) == 2 else None
    try:
        source = find_source(ctx, source_spec, ns)
        dest = find_destination(ctx, endpoints[-1], ns, source.namespace or ns)
    except ExplainError as exc:
        fail(str(exc))
    hop = explain(ctx, source, dest)
    report = hop.as_dict()
    report["live"] = _live(hop, pods, ctx)
    if output:
        emit(report, output)
        return
    click.echo(_render_hop(hop, report["live"]))


def _render_hop(hop: Hop, live: dict[str, Any] | None) -> str:
    c = hop.client
    dest = f"{hop.destination.host}:{hop.destination.port}"
    if hop.destination.subset:
        dest += f" ({hop.destination.subset})"
    rows = [[hop.source.describe(), dest, f"{s.target}:{s.port}", s.sends,
             f"{s.accepts} ({s.mode})" if s.sidecar and not s.gateway else s.accepts,
             "works" if s.works else "FAILS"] for s in hop.servers]
    lines = [table(["SOURCE", "DESTINATION", "SERVER", "CLIENT SENDS", "SERVER ACCEPTS",
                    "VERDICT"], rows) if rows else
             f"{dest}: no workload behind {hop.destination.ref}; nothing to judge."]
    lines.append("")
    if hop.asked is not None:
        lines.append(f"Route: {hop.asked.host}:{hop.asked.port} goes to {dest}")
    if hop.route:
        lines += [f"  - {r}" for r in hop.route]
    lines.append(f"Client ({hop.source.describe()}): {_client_title(hop.source, c.mode)} "
                 f"[{c.policy}]")
    lines += [f"  - {r}" for r in c.reasons]
    if c.sni:
        lines.append(f"  SNI: {c.sni}")
    if c.certificate:
        lines.append(f"  presents: {c.certificate}")
    lines += [f"  not applied: {r}" for r in c.other_rules]
    for s in hop.servers:
        shown = s.mode if s.sidecar and not s.gateway else s.accepts
        lines.append(f"Server {s.target} port {s.port}: {shown} "
                     f"[{s.policy}]")
        lines += [f"  - {r}" for r in s.reasons]
        if s.chain:
            lines.append(f"  inbound chain: {s.chain}")
        if s.error:
            lines.append(f"  the client sees: {s.error}")
    lines.append(f"Verdict: {hop.verdict}")
    if live is not None:
        lines.append("Live (Envoy config dumps):")
        if live["client"] is not None:
            lines.append("  client " + _render_seen(live["client"]))
        for s in live["servers"]:
            lines.append(f"  server {s['workload']} " + _render_seen(s))
    return "\n".join(lines)


def _client_title(source: Source, mode: str) -> str:
    if not source.proxied:
        return "no client proxy"
    return {"AUTO": "auto mTLS", "ISTIO_MUTUAL": "ISTIO_MUTUAL (mesh mTLS)"}.get(mode, mode)


def _render_seen(seen: dict[str, Any]) -> str:
    pod = f"(pod {seen['pod']})" if seen.get("pod") else ""
    if seen.get("observed") is None:
        return f"{pod}: {seen.get('note', 'unknown')}"
    obs = seen["observed"]
    verdict = "agrees" if seen["agrees"] else "DIFFERS from the static verdict"
    return f"{pod}: {obs['kind']}: {obs['detail']}; {verdict}"


# --- describe -----------------------------------------------------------------------------------


@x.command("describe")
@click.argument("kind", type=click.Choice(["pod", "po", "svc", "service"]))
@click.argument("name")
@namespace_option
@OUTPUT
def describe(kind: str, name: str, namespace: str | None, output: str | None) -> None:
    """Services, ports, effective mTLS per port, DestinationRules, VirtualServices and
    Gateways of a pod (or deploy/NAME) or a Service."""
    ns = namespace or "default"
    ctx = _context()
    if kind in ("svc", "service"):
        svc = next((s for s in ctx.model.services.values()
                    if s.namespace == ns and s.name == name), None)
        if svc is None:
            fail(f'services "{name}" not found in namespace "{ns}"')
        data = service_summary(ctx, svc)
        if output:
            emit(data, output)
        else:
            click.echo("\n".join(_render_service(data)))
        return
    spec = _workload_name(name, ns, _pods())
    try:
        source = find_source(ctx, spec, ns)
    except ExplainError as exc:
        fail(str(exc))
    assert source.workload is not None
    data = workload_summary(ctx, source.workload)
    if output:
        emit(data, output)
        return
    lines = [f"Workload: {data['workload']}",
             f"   Sidecar: {'yes' if data['sidecar'] else 'no'} ({data['sidecarReason']})",
             f"   Identity: {data['identity']}"]
    if not data["services"]:
        lines.append("   No Service selects it.")
    for svc_data in data["services"]:
        lines.append("--------------------")
        lines += _render_service(svc_data)
    click.echo("\n".join(lines))


def _render_service(d: dict[str, Any]) -> list[str]:
    lines = [f"{d['service']} ({d['host']})"]
    for p in d["ports"]:
        app = "TLS" if p["appTLS"] else "plaintext"
        lines.append(f"   Port: {p['name'] or '-'} {p['port']} → {p['targetPort'] or p['port']} "
                     f"(application speaks {app})")
        for e in p["endpoints"]:
            lines.append(f"      {e['workload']} port {e['containerPort']}: mTLS {e['mtls']}"
                         + (f" [{e['policy']}]" if e["policy"] else ""))
    if not d["workloads"]:
        lines.append("   No workload selected.")
    for dr in d["destinationRules"]:
        modes = ", ".join(f"{k}: {v}" for k, v in dr["tls"].items())
        where = ", ".join(dr["appliesTo"]) or f"nobody ({dr.get('why', '')})"
        lines.append(f"DestinationRule: {dr['rule']} for \"{dr['host']}\" — tls {modes}")
        lines.append(f"   Applies to clients in: {where}")
    if not d["destinationRules"]:
        lines.append("DestinationRule: none (auto mTLS)")
    for vs in d["virtualServices"]:
        lines.append(f"VirtualService: {vs['virtualService']} hosts {', '.join(vs['hosts'])} "
                     f"gateways {', '.join(vs['gateways'])}")
    for g in d["gateways"]:
        tls = (f"TLS {g['tlsMode']}" + (f" credentialName {g['credentialName']}"
                                        if g["credentialName"] else "")) if g["tlsMode"] else (
            "no TLS")
        lines.append(f"Exposed on {g['gateway']}: port {g['port']} {g['protocol']} {tls}, "
                     f"hosts {', '.join(g['hosts'])} (via {g['virtualService']})")
    return lines


x.add_command(edges)
