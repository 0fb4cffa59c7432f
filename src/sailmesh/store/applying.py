"""One `apply`, as kubectl and the API server do it together: sources → the loader's
validation → one store transaction → what kubectl prints, and its exit code.

Owns: what `sailctl apply` prints and exits with, as data (`Report`), so that the running
daemon (meshd's `apply` operation: its models are imported already) and the CLI without a
daemon give the same answer to the same input; the lines of every other write (`create`,
`replace`, `label`, ... through `write`); and folding the daemon's sync answer into a
report (diagnostics about the objects of this command, and every proxy that did not
confirm the new configuration, which makes the command fail).
Must not know: the control socket, click, how the lines reach a terminal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sailmesh.resources.base import Resource, type_name
from sailmesh.resources.errors import ResourceError
from sailmesh.resources.loader import LoadResult, load_sources
from sailmesh.resources.selectors import label_selector_matches
from sailmesh.sources import Source
from sailmesh.store.store import AlreadyExists, Store, StoreError

Stream = Literal["out", "err"]


@dataclass
class Report:
    """What one command prints, in order, on stdout ("out") and stderr ("err"), its exit
    code, and the `Kind ns/name` of the objects it wrote (what its sync report is about)."""

    lines: list[tuple[Stream, str]] = field(default_factory=list)
    code: int = 0
    refs: list[str] = field(default_factory=list)
    written: bool = False

    def out(self, text: str) -> None:
        self.lines.append(("out", text))

    def err(self, text: str) -> None:
        self.lines.append(("err", text))

    def fail(self, message: str) -> None:
        self.err(f"error: {message}")
        self.code = 1

    def as_json(self) -> dict[str, Any]:
        return {"lines": [list(line) for line in self.lines], "code": self.code,
                "refs": self.refs, "written": self.written}


def apply_sources(store: Store, sources: Sequence[Source], namespace: str | None,
                  selector: str | None) -> Report:
    """`kubectl apply -f`: every object valid, or nothing is written; `selector` is `-l`."""
    report = Report()
    loaded = load(sources, namespace, report)
    if loaded is None:
        return report
    resources = [r for r in loaded.resources if label_selector_matches(r.metadata.labels, selector)]
    if not resources:
        report.fail("no objects passed to apply")
        return report
    write(store, resources, report)
    return report


def load(sources: Sequence[Source], namespace: str | None, report: Report) -> LoadResult | None:
    """The loader's answer; its problems go to the report (None and exit 1 on an error)."""
    try:
        result = load_sources(sources, namespace)
    except ResourceError as exc:
        report_problems(exc, report)
        return None
    for w in result.warnings:
        report.err(str(w))  # "file:line: warning: Kind ns/name: field: message"
    return result


def report_problems(exc: ResourceError, report: Report) -> None:
    for p in exc.problems:
        report.err(f"error: {p}" if p.is_error else str(p))
    report.code = 1


def write(store: Store, resources: Sequence[Resource], report: Report, *,
          create_only: bool = False, verb: str = "") -> None:
    """One store transaction; a line per object (`<type>/<name> <verb or change>`)."""
    try:
        outcomes = store.apply(resources, create_only=create_only)
    except AlreadyExists as exc:
        # kubectl: `Error from server (AlreadyExists): namespaces "x" already exists`, exit 1.
        r = exc.resource
        plural = type_name(r.NAMES[0], r.api_version)
        report.err(f'Error from server (AlreadyExists): {plural} "{r.name}" already exists')
        report.code = 1
        return
    except StoreError as exc:
        report.fail(str(exc))
        return
    by_key = {r.ref: r for r in resources}
    for o in outcomes:
        r = by_key[o.ref]
        report.out(f"{r.type_name}/{o.name} {verb or o.change}")
        if r.kind == "IstioOperator":
            _explain_mesh_config(r, report)
    report.refs = [o.ref for o in outcomes]
    report.written = True


def _explain_mesh_config(op: Resource, report: Report) -> None:
    mesh = op.spec.mesh_config  # type: ignore[attr-defined]
    if mesh.mesh_mtls.min_protocol_version != "TLS_AUTO":
        # Istio applies meshMTLS to the server side of sidecar mTLS only (pitfall #19).
        report.out(
            f"meshMTLS.minProtocolVersion {mesh.mesh_mtls.min_protocol_version}: applies to the server"
            " side of sidecar mutual TLS only (inbound of injected workloads); gateways and"
            " DestinationRule SIMPLE/MUTUAL keep their own settings (see tlsDefaults)."
        )
    if mesh.tls_defaults.min_protocol_version != "TLS_AUTO" or mesh.tls_defaults.cipher_suites:
        report.out("tlsDefaults: the baseline of every gateway server's TLS settings; a server's own"
                   " minProtocolVersion/cipherSuites win.")


def confirm(report: Report, sync_reply: Mapping[str, Any] | None) -> None:
    """The daemon's sync answer (None: no mesh running) into the report of the command."""
    if sync_reply is None:
        return
    refs = set(report.refs)
    for d in sync_reply.get("diagnostics", []):
        # Show what concerns the objects of this command; `sailctl status` shows all.
        if d["ref"] in refs or any(ref in d["message"] for ref in refs):
            where = f" {d['field']}:" if d.get("field") else ""
            report.err(f"{d['severity']}: {d['ref']}:{where} {d['message']}")
    unconfirmed = {n: why for n, why in sync_reply.get("proxies", {}).items() if why is not True}
    for node_id, why in sorted(unconfirmed.items()):
        report.err(f"error: proxy {node_id} has not applied the new configuration: {why}")
    if unconfirmed:
        # The objects are stored (as kubectl's are once the API server took them), but the
        # mesh does not run them everywhere: scripts must see that.
        report.code = 1
