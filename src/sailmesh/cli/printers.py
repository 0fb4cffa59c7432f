"""kubectl's printers over API objects (dicts): tables per kind, `-o wide|name|json|yaml|
jsonpath=…|jsonpath-file=…|custom-columns=…|custom-columns-file=…`.

Owns: the `-o` values kubectl accepts (an unknown one is an error, as in kubectl), the
columns of each kind's table (kubectl's for built-in kinds, the CRDs' printer columns for
Istio's), and how several kinds print in one `get` (one table each, `kind/name` names).
Must not know: where objects come from (cli.cluster_view).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from sailmesh.cli import jsonpath
from sailmesh.cli.cluster_view import pod_status_text, type_name
from sailmesh.cli.output import age, table

FORMATS = ("custom-columns", "custom-columns-file", "json", "jsonpath", "jsonpath-as-json",
           "jsonpath-file", "name", "wide", "yaml")


class PrinterError(ValueError):
    """A bad `-o` value or template; the message is kubectl's."""


@dataclass(frozen=True)
class OutputFormat:
    name: str  # "" (the table), or one of FORMATS (files already read)
    template: str = ""

    @property
    def is_table(self) -> bool:
        return self.name in ("", "wide")


def parse_output(value: str | None) -> OutputFormat:
    if not value:
        return OutputFormat("")
    name, sep, arg = value.partition("=")
    if name not in FORMATS or (name in ("json", "yaml", "name", "wide") and sep):
        raise PrinterError(
            f'unable to match a printer suitable for the output format "{value}", allowed formats'
            f" are: {','.join(FORMATS)}")
    if name.endswith("-file"):
        try:
            arg = Path(arg).read_text()
        except OSError as exc:
            raise PrinterError(f"error reading template {arg}: {exc.strerror}") from exc
        name = name.removesuffix("-file")
    if name.startswith(("jsonpath", "custom-columns")) and not arg.strip():
        what = "template" if name.startswith("jsonpath") else "custom columns"
        raise PrinterError(f"{name} format specified but no {what} given")
    fmt = OutputFormat(name, arg)
    try:
        if name.startswith("jsonpath"):
            jsonpath.parse(arg)
        elif name == "custom-columns":
            _columns_spec(arg)
    except jsonpath.JSONPathError as exc:
        raise PrinterError(f"error parsing jsonpath {arg}, {exc}") from exc
    return fmt


def _columns_spec(spec: str) -> list[tuple[str, tuple[jsonpath.Node, ...]]]:
    spec = spec.strip()
    if "\n" in spec:  # custom-columns-file: a header line and a line of paths
        headers, paths = ([*spec.splitlines(), ""])[:2]
        pairs = list(zip(headers.split(), paths.split(), strict=False))
    else:
        pairs = []
        for col in spec.split(","):
            header, sep, path = col.partition(":")
            if not sep:
                raise PrinterError(f"unexpected custom-columns spec: {col},"
                                   " expected <header>:<json-path-expr>")
            pairs.append((header, path))
    return [(h, jsonpath.parse(jsonpath.relaxed(p))) for h, p in pairs]


def as_list(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "items": list(items), "kind": "List",
            "metadata": {"resourceVersion": ""}}


def render(items: Sequence[dict[str, Any]], fmt: OutputFormat, *, single: bool,
           no_headers: bool = False) -> str:
    """The text of a non-table format (no trailing newline added beyond kubectl's)."""
    data: Any = items[0] if single and len(items) == 1 else as_list(items)
    match fmt.name:
        case "name":
            return "".join(f"{type_name(o['kind'], o.get('apiVersion'))}/{o['metadata']['name']}\n"
                           for o in items)
        case "json":
            return json.dumps(data, indent=4) + "\n"
        case "yaml":
            return yaml.safe_dump(data, sort_keys=False)
        case "jsonpath":
            return _jsonpath(fmt.template, data)
        case "jsonpath-as-json":
            path = jsonpath.parse(fmt.template)
            found = [v for node in path if isinstance(node, jsonpath.Path)
                     for v in jsonpath.evaluate(node, data)]
            return json.dumps(found, indent=4) + "\n"
        case "custom-columns":
            cols = _columns_spec(fmt.template)
            rows = [[_cell(nodes, o) for _h, nodes in cols] for o in items]
            text = table([h for h, _ in cols], rows)
            return "".join(line + "\n" for line in text.splitlines()[1 if no_headers else 0:])
    raise PrinterError(f"no printer for {fmt.name}")


def _jsonpath(template: str, data: Any) -> str:
    try:
        return jsonpath.execute(template, data)
    except jsonpath.JSONPathError as exc:
        raise PrinterError(f"error executing jsonpath {template!r}: Error executing template: {exc}."
                           f" Printing more information for debugging the template:\n"
                           f"\ttemplate was:\n\t\t{template}\n") from exc


def _cell(nodes: tuple[jsonpath.Node, ...], obj: dict[str, Any]) -> str:
    values = [v for node in nodes if isinstance(node, jsonpath.Path)
              for v in jsonpath.evaluate(node, obj)]
    return ",".join(jsonpath.go_text(v) for v in values) if values else "<none>"


# --- tables ----------------------------------------------------------------------------------


def tables(items: Sequence[dict[str, Any]], *, wide: bool, with_namespace: bool,
           with_kind: bool, show_labels: bool = False, no_headers: bool = False,
           raw_pods: dict[tuple[str, str], dict[str, Any]] | None = None) -> str:
    """One table per kind, in the order kinds first appear; blank line between them."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for o in items:
        groups.setdefault(o["kind"], []).append(o)
    out = []
    for kind, objs in groups.items():
        columns = COLUMNS.get(kind, _no_columns)
        headers: list[str] = []
        rows = []
        for o in objs:
            extra, values = columns(o, wide, raw_pods or {})
            headers = extra
            name = o["metadata"]["name"]
            if with_kind:
                name = f"{type_name(kind, o.get('apiVersion'))}/{name}"
            ns = [o["metadata"].get("namespace", "")] if with_namespace else []
            labels = [_labels(o)] if show_labels else []
            rows.append([*ns, name, *values, *labels])
        head = (["NAMESPACE"] if with_namespace else []) + ["NAME", *headers] + (
            ["LABELS"] if show_labels else [])
        text = table(head, rows)
        out.append("\n".join(text.splitlines()[1:]) if no_headers else text)
    return "\n\n".join(out)


def _labels(o: dict[str, Any]) -> str:
    labels = o["metadata"].get("labels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


def _age(o: dict[str, Any]) -> str:
    ts = o["metadata"].get("creationTimestamp")
    if not ts:
        return "<unknown>"
    return age(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp())


Columns = Callable[[dict[str, Any], bool, dict[tuple[str, str], dict[str, Any]]],
                   tuple[list[str], list[Any]]]


def _no_columns(o: dict[str, Any], wide: bool, raw: Any) -> tuple[list[str], list[Any]]:
    return ["AGE"], [_age(o)]


def _pod_columns(o: dict[str, Any], wide: bool, raw: dict[tuple[str, str], dict[str, Any]]
                 ) -> tuple[list[str], list[Any]]:
    st = o["status"]
    cs = st.get("containerStatuses", [])
    ready = sum(1 for c in cs if c.get("ready"))
    restarts = sum(c.get("restartCount", 0) for c in cs)
    status = pod_status_text(o, raw.get((o["metadata"]["namespace"], o["metadata"]["name"])))
    headers = ["READY", "STATUS", "RESTARTS", "AGE"]
    values: list[Any] = [f"{ready}/{len(cs)}", status, restarts, _age(o)]
    if wide:
        headers += ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
        values += [st.get("podIP", "<none>"), o["spec"].get("nodeName", "<none>"), "<none>", "<none>"]
    return headers, values


def _selector(o: dict[str, Any]) -> str:
    sel = o["spec"].get("selector") or {}
    sel = sel.get("matchLabels", sel) if isinstance(sel, dict) else {}
    return ",".join(f"{k}={v}" for k, v in sel.items()) or "<none>"


def _containers_wide(o: dict[str, Any]) -> tuple[list[str], list[Any]]:
    cs = o["spec"].get("template", {}).get("spec", {}).get("containers", [])
    return (["CONTAINERS", "IMAGES", "SELECTOR"],
            [",".join(c["name"] for c in cs) or "<none>", ",".join(c.get("image", "") for c in cs)
             or "<none>", _selector(o)])


def _deployment_columns(o: dict[str, Any], wide: bool, raw: Any) -> tuple[list[str], list[Any]]:
    st, want = o.get("status", {}), o["spec"].get("replicas", 1)
    headers = ["READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    values: list[Any] = [f"{st.get('readyReplicas', 0)}/{want}", st.get("updatedReplicas", 0),
                         st.get("availableReplicas", 0), _age(o)]
    if wide:
        h, v = _containers_wide(o)
        headers, values = headers + h, values + v
    return headers, values


def _replica_set_columns(o: dict[str, Any], wide: bool, raw: Any) -> tuple[list[str], list[Any]]:
    st = o["status"]
    return (["DESIRED", "CURRENT", "READY", "AGE"],
            [o["spec"]["replicas"], st["replicas"], st["readyReplicas"], _age(o)])


def _service_columns(o: dict[str, Any], wide: bool, raw: Any) -> tuple[list[str], list[Any]]:
    spec = o["spec"]
    ports = ",".join(
        f"{p['port']}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/{p.get('protocol', 'TCP')}"
        for p in spec.get("ports", [])) or "<none>"
    ingress = o.get("status", {}).get("loadBalancer", {}).get("ingress", [])
    external = ",".join(i.get("ip") or i.get("hostname", "") for i in ingress)
    if not external:
        external = "<pending>" if spec.get("type") == "LoadBalancer" else "<none>"
    headers = ["TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    values = [spec.get("type", "ClusterIP"), spec.get("clusterIP", "<none>"), external, ports, _age(o)]
    if wide:
        headers.append("SELECTOR")
        values.append(",".join(f"{k}={v}" for k, v in (spec.get("selector") or {}).items()) or "<none>")
    return headers, values


def _route_columns(o: dict[str, Any], wide: bool, raw: Any) -> tuple[list[str], list[Any]]:
    """`oc get routes`: no AGE; a Route the router did not admit shows the reason."""
    spec = o["spec"]
    ingress = ((o.get("status") or {}).get("ingress") or [{}])[0]
    condition = (ingress.get("conditions") or [{}])[0]
    host = ingress.get("host") or spec.get("host", "")
    if condition.get("status") == "False":
        host = condition.get("reason", "NotAdmitted")
    backends = [spec["to"], *spec.get("alternateBackends", [])]
    weights = [b.get("weight", 100) for b in backends]
    if len(backends) == 1:
        services = backends[0]["name"]
    else:
        total = sum(weights) or 1
        services = ",".join(f"{b['name']}({round(100 * w / total)}%)"
                            for b, w in zip(backends, weights, strict=True))
    port = str((spec.get("port") or {}).get("targetPort", "<all>"))
    tls = spec.get("tls") or {}
    termination = tls.get("termination", "")
    if tls.get("insecureEdgeTerminationPolicy"):
        termination += "/" + tls["insecureEdgeTerminationPolicy"]
    return (["HOST/PORT", "PATH", "SERVICES", "PORT", "TERMINATION", "WILDCARD"],
            [host, spec.get("path", ""), services, port, termination,
             spec.get("wildcardPolicy") or "None"])


def _quoted_list(xs: Sequence[str] | None) -> str:
    return "[" + ",".join(f'"{x}"' for x in xs or []) + "]"


def _spec_columns(*fields: tuple[str, Callable[[dict[str, Any]], Any]]) -> Columns:
    """A CRD's additionalPrinterColumns, then AGE."""
    def columns(o: dict[str, Any], wide: bool, raw: Any) -> tuple[list[str], list[Any]]:
        spec = o.get("spec") or {}
        return [h for h, _ in fields] + ["AGE"], [get(spec) for _, get in fields] + [_age(o)]
    return columns


def _simple(*fields: tuple[str, Callable[[dict[str, Any]], Any]]) -> Columns:
    def columns(o: dict[str, Any], wide: bool, raw: Any) -> tuple[list[str], list[Any]]:
        return [h for h, _ in fields] + ["AGE"], [get(o) for _, get in fields] + [_age(o)]
    return columns


COLUMNS: dict[str, Columns] = {
    "Pod": _pod_columns,
    "Deployment": _deployment_columns,
    "ReplicaSet": _replica_set_columns,
    "Service": _service_columns,
    "Route": _route_columns,
    "Namespace": _simple(("STATUS", lambda o: o.get("status", {}).get("phase", "Active"))),
    "Secret": _simple(("TYPE", lambda o: o.get("type", "Opaque")),
                      ("DATA", lambda o: len(o.get("data") or {}) + len(o.get("stringData") or {}))),
    "ConfigMap": _simple(("DATA", lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}))),
    "ServiceAccount": _simple(("SECRETS", lambda o: len(o.get("secrets") or []))),
    "VirtualService": _spec_columns(("GATEWAYS", lambda s: _quoted_list(s.get("gateways"))),
                                    ("HOSTS", lambda s: _quoted_list(s.get("hosts")))),
    "DestinationRule": _spec_columns(("HOST", lambda s: s.get("host", ""))),
    "ServiceEntry": _spec_columns(("HOSTS", lambda s: _quoted_list(s.get("hosts"))),
                                  ("LOCATION", lambda s: s.get("location", "")),
                                  ("RESOLUTION", lambda s: s.get("resolution", ""))),
    "PeerAuthentication": _spec_columns(("MODE", lambda s: (s.get("mtls") or {}).get("mode", ""))),
    "IstioOperator": _simple(("REVISION", lambda o: (o.get("spec") or {}).get("revision", "")),
                             ("STATUS", lambda o: "")),
}
