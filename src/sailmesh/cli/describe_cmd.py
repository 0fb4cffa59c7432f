"""`describe`, as kubectl prints it: pods (containers, conditions, Events for a pod that
cannot start), deployments (replica counts, conditions), services (ports, endpoints), and
any other kind as its fields.

kubectl facts: `Name:`-style aligned fields; nested values indented two spaces; `<none>`
for empty; several objects separated by a blank line; a missing object is
`Error from server (NotFound)` and exit 1.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import click

from sailmesh.cli.cluster_view import ClusterView
from sailmesh.cli.common import home, namespace_option
from sailmesh.cli.get_cmd import needs_mesh, select, targets
from sailmesh.resources.selectors import label_selector_matches

WIDTH = 18  # kubectl aligns values after the longest common label, about this wide


def _field(label: str, value: Any, indent: int = 0) -> str:
    text = f"{' ' * indent}{label}:"
    return f"{text:<{WIDTH + indent}}{value if value not in (None, '') else '<none>'}"


def _map(label: str, values: dict[str, str] | None) -> Iterator[str]:
    items = sorted((values or {}).items())
    if not items:
        yield _field(label, "<none>")
        return
    yield _field(label, f"{items[0][0]}={items[0][1]}")
    for k, v in items[1:]:
        yield " " * WIDTH + f"{k}={v}"


def _common(o: dict[str, Any]) -> Iterator[str]:
    meta = o["metadata"]
    yield _field("Name", meta["name"])
    if meta.get("namespace"):
        yield _field("Namespace", meta["namespace"])
    yield from _map("Labels", meta.get("labels"))
    yield from _map("Annotations", meta.get("annotations"))


def _pod(o: dict[str, Any], raw: dict[str, Any] | None) -> Iterator[str]:
    meta, st = o["metadata"], o["status"]
    yield _field("Name", meta["name"])
    yield _field("Namespace", meta["namespace"])
    yield _field("Service Account", "default")
    yield _field("Node", "sailmesh/127.0.0.1")
    yield _field("Start Time", st.get("startTime"))
    yield from _map("Labels", meta.get("labels"))
    yield _field("Status", st["phase"])
    yield _field("IP", st.get("podIP"))
    owners = meta.get("ownerReferences") or []
    if owners:
        yield _field("Controlled By", f"{owners[0]['kind']}/{owners[0]['name']}")
    yield "Containers:"
    for c in st.get("containerStatuses", []):
        yield f"  {c['name']}:"
        yield _field("Image", c.get("image"), 4)
        state = c.get("state", {})
        if "running" in state:
            yield _field("State", "Running", 4)
            yield _field("Started", state["running"].get("startedAt"), 6)
        else:
            waiting = state.get("waiting", {})
            yield _field("State", "Waiting", 4)
            yield _field("Reason", waiting.get("reason") or "ContainerCreating", 6)
        yield _field("Ready", "True" if c.get("ready") else "False", 4)
        yield _field("Restart Count", c.get("restartCount", 0), 4)
    yield "Conditions:"
    yield "  Type              Status"
    for cond in st.get("conditions", []):
        yield f"  {cond['type']:<18}{cond['status']}"
    yield from _events(raw)


def _events(raw: dict[str, Any] | None) -> Iterator[str]:
    """A pod that cannot start (or keeps failing) says why, as the kubelet's events do."""
    raw = raw or {}
    message = raw.get("message") or ""
    events = [tuple(e) for e in raw.get("events") or ()]
    if not events and message:
        reason = "BackOff" if raw.get("restarts") else "Failed"
        events = [("Warning", reason, line) for line in message.splitlines()]
    if not events:
        yield _field("Events", "<none>")
        return
    width = max(len("Reason"), *(len(e[1]) for e in events)) + 2
    yield "Events:"
    yield f"  Type     {'Reason':<{width}}Age   From     Message"
    yield f"  ----     {'------':<{width}}----  ----     -------"
    for kind, reason, text in events:
        yield f"  {kind:<9}{reason:<{width}}-     kubelet  {text}"


def _deployment(o: dict[str, Any]) -> Iterator[str]:
    spec, st = o["spec"], o.get("status", {})
    yield from _common(o)
    sel = (spec.get("selector") or {}).get("matchLabels", {})
    yield _field("Selector", ",".join(f"{k}={v}" for k, v in sel.items()))
    want, ready = spec.get("replicas", 1), st.get("availableReplicas", 0)
    yield _field("Replicas", f"{want} desired | {st.get('updatedReplicas', 0)} updated | "
                             f"{st.get('replicas', 0)} total | {ready} available | "
                             f"{st.get('unavailableReplicas', 0)} unavailable")
    yield _field("StrategyType", (spec.get("strategy") or {}).get("type", "RollingUpdate"))
    tmpl = spec.get("template", {})
    yield "Pod Template:"
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    yield _field("  Labels", ",".join(f"{k}={v}" for k, v in sorted(labels.items())))
    yield "  Containers:"
    for c in tmpl.get("spec", {}).get("containers", []):
        yield f"   {c['name']}:"
        yield _field("Image", c.get("image"), 4)
        ports = ",".join(f"{p['containerPort']}/{p.get('protocol', 'TCP')}" for p in c.get("ports", []))
        yield _field("Port", ports, 4)
    yield "Conditions:"
    yield "  Type           Status  Reason"
    yield "  ----           ------  ------"
    for cond in st.get("conditions", []):
        yield f"  {cond['type']:<15}{cond['status']:<8}{cond.get('reason', '')}"
    yield _field("Events", "<none>")


def _service(o: dict[str, Any], view: ClusterView) -> Iterator[str]:
    spec = o["spec"]
    yield from _common(o)
    selector = spec.get("selector") or {}
    yield _field("Selector", ",".join(f"{k}={v}" for k, v in selector.items()))
    yield _field("Type", spec.get("type", "ClusterIP"))
    yield _field("IP", spec.get("clusterIP"))
    for ing in o.get("status", {}).get("loadBalancer", {}).get("ingress", []):
        yield _field("LoadBalancer Ingress", ing.get("ip") or ing.get("hostname"))
    sel = ",".join(f"{k}={v}" for k, v in selector.items())
    pods = [p for p in view.objects("Pod", o["metadata"]["namespace"])
            if selector and label_selector_matches(p["metadata"].get("labels") or {}, sel)
            and p["status"].get("podIP")]
    for port in spec.get("ports", []):
        target = port.get("targetPort", port["port"])
        proto = port.get("protocol", "TCP")
        yield _field("Port", f"{port.get('name', '<unset>')}  {port['port']}/{proto}")
        yield _field("TargetPort", f"{target}/{proto}")
        if port.get("nodePort"):
            yield _field("NodePort", f"{port.get('name', '<unset>')}  {port['nodePort']}/{proto}")
        yield _field("Endpoints", ",".join(f"{p['status']['podIP']}:{target}" for p in pods))
    yield _field("Session Affinity", "None")
    yield _field("Events", "<none>")


def _generic(o: dict[str, Any]) -> Iterator[str]:
    yield from _common(o)
    yield _field("API Version", o.get("apiVersion"))
    yield _field("Kind", o.get("kind"))
    for key, value in o.items():
        if key in ("apiVersion", "kind", "metadata"):
            continue
        yield f"{key[:1].upper()}{key[1:]}:"
        yield from _nested(value, 2)
    yield _field("Events", "<none>")


def _nested(value: Any, indent: int) -> Iterator[str]:
    pad = " " * indent
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, dict | list):
                yield f"{pad}{k[:1].upper()}{k[1:]}:"
                yield from _nested(v, indent + 2)
            else:
                yield f"{pad}{k[:1].upper()}{k[1:]}:  {v}"
    elif isinstance(value, list):
        for v in value:
            if isinstance(v, dict | list):
                yield from _nested(v, indent)
            else:
                yield f"{pad}{v}"
    else:
        yield f"{pad}{value}"


@click.command()
@click.argument("args", nargs=-1, required=True)
@namespace_option
@click.option("-l", "--selector", default=None)
@click.option("-A", "--all-namespaces", "all_namespaces", is_flag=True)
def describe(args: tuple[str, ...], namespace: str | None, selector: str | None,
             all_namespaces: bool) -> None:
    """Show details of resources, with the reasons a pod does not start (kubectl describe)."""
    wanted = targets(args)
    view = ClusterView.read(home(), live=needs_mesh(wanted))
    ns = None if all_namespaces else (namespace or "default")
    items, missing = select(view, wanted, ns, selector)
    blocks = []
    for o in items:
        match o["kind"]:
            case "Pod":
                raw = view.raw_pod(o["metadata"]["namespace"], o["metadata"]["name"])
                lines = list(_pod(o, raw))
            case "Deployment":
                lines = list(_deployment(o))
            case "Service":
                lines = list(_service(o, view))
            case _:
                lines = list(_generic(o))
        blocks.append("\n".join(lines))
    if blocks:
        click.echo("\n\n".join(blocks))
    for m in missing:
        click.echo(m, err=True)
    if not items and not missing:
        click.echo(f"No resources found in {ns} namespace." if ns else "No resources found", err=True)
    if missing:
        sys.exit(1)
