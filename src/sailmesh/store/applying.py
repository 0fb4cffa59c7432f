"""`apply`, `create`, `replace` and `delete` of files, as kubectl and the API server do them
together: sources → the loader's validation → one store transaction (or a dry run) → what
kubectl prints, and its exit code.

Owns: what `sailctl <verb> -f` prints and exits with, as data (`Report`), so that the
running daemon (meshd's `-f` operations: its models are imported already) and the CLI
without a daemon give the same answer to the same input; the server's errors as kubectl
prints them (AlreadyExists, NotFound, naming the file an object came from); the lines of
every other write (`create secret`, `label`, ... through `write`); and folding the daemon's
sync answer into a report (diagnostics about the objects of this command, and every proxy
that did not confirm the new configuration, which makes the command fail).
Must not know: the control socket, click, how the lines reach a terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sailmesh.resources.base import Resource, type_name
from sailmesh.resources.errors import ResourceError
from sailmesh.resources.kinds import KINDS
from sailmesh.resources.loader import LoadResult, load_sources
from sailmesh.resources.selectors import label_selector_matches
from sailmesh.sources import Source
from sailmesh.store.store import AlreadyExists, NotFound, Outcome, Store, StoreError

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


Verb = Literal["apply", "create", "replace", "delete"]
VERBS: tuple[Verb, ...] = ("apply", "create", "replace", "delete")
# kubectl's words for a verb: the line per object, and its errors' "error when <acting>".
_DONE = {"create": "created", "replace": "replaced"}
_ACTING = {"create": "creating", "replace": "replacing", "delete": "deleting"}
DryRun = Literal["none", "client", "server"]
# kubectl's mark on the lines of a dry run.
_DRY = {"none": "", "client": " (dry run)", "server": " (server dry run)"}


def run_files(store: Store, verb: Verb, sources: Sequence[Source], namespace: str | None,
              selector: str | None = None, *, ignore_not_found: bool = False,
              dry_run: DryRun = "none") -> Report:
    """`kubectl <verb> -f`: every object valid, or nothing changes. `selector` is `-l`;
    `ignore_not_found` is delete's; a dry run is checked against what is stored (a server
    dry run, as the API server's: a create of an existing object fails) and writes
    nothing."""
    report = Report()
    loaded = load(sources, namespace, report)
    if loaded is None:
        return report
    resources = [r for r in loaded.resources if label_selector_matches(r.metadata.labels, selector)]
    if not resources:
        report.fail(f"no objects passed to {verb}")
        return report
    origins = {key: origin.source for key, origin in loaded.origins.items()}
    if dry_run == "client" and verb != "apply":
        # kubectl asks no server for these: what the objects are named is all it prints.
        for r in resources:
            report.out(f'{r.type_name} "{r.name}" deleted (dry run)' if verb == "delete"
                       else f"{r.type_name}/{r.name} {_DONE[verb]} (dry run)")
        return report
    if verb == "delete":
        delete(store, [r.key for r in resources], report, ignore_not_found=ignore_not_found, origins=origins,
               dry_run=dry_run)
    else:
        write(store, resources, report, create_only=verb == "create",
              must_exist=verb == "replace", verb=_DONE.get(verb, ""), origins=origins,
              dry_run=dry_run)
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
          create_only: bool = False, must_exist: bool = False, verb: str = "",
          origins: Mapping[tuple[str, str, str], str] | None = None,
          dry_run: DryRun = "none") -> None:
    """One store transaction; a line per object (`<type>/<name> <verb or change>`).
    `origins` (object key → the file it came from) names the file in the server's errors,
    as kubectl does for `-f` inputs."""
    acting = _ACTING["create" if create_only else "replace"]
    outcomes = _stored(report, acting, origins,
                       lambda: store.apply(resources, create_only=create_only,
                                           must_exist=must_exist, dry_run=dry_run != "none"))
    if outcomes is None:
        return
    by_key = {r.ref: r for r in resources}
    for o in outcomes:
        r = by_key[o.ref]
        report.out(f"{r.type_name}/{o.name} {verb or o.change}{_DRY[dry_run]}")
        if r.kind == "IstioOperator":
            _explain_mesh_config(r, report)
    report.refs = [o.ref for o in outcomes]
    report.written = dry_run == "none"


def delete(store: Store, keys: Sequence[tuple[str, str, str]], report: Report, *,
           ignore_not_found: bool = False,
           origins: Mapping[tuple[str, str, str], str] | None = None,
           dry_run: DryRun = "none") -> None:
    """`kubectl delete`: every `(kind, namespace, name)`, or none (a missing one is
    NotFound unless `ignore_not_found`); `<type> "<name>" deleted` per object."""
    outcomes = _stored(report, _ACTING["delete"], origins,
                       lambda: store.delete(keys, ignore_missing=ignore_not_found,
                                            dry_run=dry_run != "none"))
    if outcomes is None:
        return
    for o in outcomes:
        report.out(f'{kind_type_name(o.kind)} "{o.name}" deleted{_DRY[dry_run]}')
    report.refs = [o.ref for o in outcomes]
    report.written = bool(outcomes) and dry_run == "none"


def _stored(report: Report, acting: str, origins: Mapping[tuple[str, str, str], str] | None,
            change: Callable[[], list[Outcome]]) -> list[Outcome] | None:
    """The store's outcomes of `change`, or None with its errors in the report: the
    server's (AlreadyExists, NotFound) as kubectl prints them, one per object."""
    try:
        return change()
    except AlreadyExists as exc:
        errors = [("AlreadyExists", r.key, "already exists") for r in exc.resources]
    except NotFound as exc:
        errors = [("NotFound", key, "not found") for key in exc.keys]
    except StoreError as exc:
        report.fail(str(exc))
        return None
    for reason, key, what in errors:
        server_error(report, reason, key, what, acting, origins)
    return None


def kind_type_name(kind: str) -> str:
    """kubectl's `<resource>.<group>` of a stored kind: `virtualservice.networking.istio.io`."""
    return type_name(kind, KINDS[kind].API_VERSIONS[0])


def server_error(report: Report, reason: str, key: tuple[str, str, str], what: str,
                 acting: str = "",
                 origins: Mapping[tuple[str, str, str], str] | None = None) -> None:
    """kubectl's `Error from server (AlreadyExists): error when creating "vs.yaml":
    virtualservices.networking.istio.io "web" already exists` (no file: no "error when")."""
    kind, _, name = key
    source = (origins or {}).get(key)
    when = f'error when {acting} "{source}": ' if source else ""
    plural = type_name(KINDS[kind].NAMES[0], KINDS[kind].API_VERSIONS[0])
    report.err(f'Error from server ({reason}): {when}{plural} "{name}" {what}')
    report.code = 1


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
