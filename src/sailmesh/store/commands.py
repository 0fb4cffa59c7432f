"""Every write command as one request, as kubectl's requests to the API server: `apply|
create|replace|delete -f`, `delete KIND NAME...|-l|--all`, `create <kind>` (the object the
CLI built), `label` and `annotate`.

Owns: what each request changes in the store and what its command prints and exits with
(`applying.Report`), the same in the running daemon (meshd runs `run` for every one of
them) and in the CLI where no mesh runs; kubectl's names of kinds in arguments, its `k=v`
and `k-` updates with `--overwrite`, and its errors for objects named on the command line
(`Error from server (NotFound): virtualservices.networking.istio.io "x" not found`).
Must not know: the control socket, click, pods (the running mesh's, not stored).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from sailmesh.resources.errors import ResourceError
from sailmesh.resources.kinds import KINDS, stored_kind
from sailmesh.resources.loader import load_object
from sailmesh.resources.selectors import label_selector_matches
from sailmesh.sources import Source
from sailmesh.sources.targets import named_targets
from sailmesh.store.applying import (
    VERBS,
    DryRun,
    Report,
    delete,
    report_problems,
    run_files,
    server_error,
    write,
)
from sailmesh.store.store import Store

# The requests besides the `-f` verbs, by the control socket's op name.
NAMED_OPS = ("delete_named", "create_object", "label", "annotate")
OPS = (*VERBS, *NAMED_OPS)
# `label` and `annotate`: the metadata field each updates, kubectl's word for one update,
# and the line per object.
_EDITS = {"label": ("labels", "label", "labeled"),
          "annotate": ("annotations", "annotation", "annotated")}
COMMAND_LINE = "<command line>"


class _Refused(ValueError):
    """A command line kubectl refuses before asking the server."""


def run(store: Store, op: str, req: Mapping[str, Any]) -> Report:
    """The request `op` (one of `OPS`) with its arguments, on `store`."""
    dry_run = cast(DryRun, req.get("dry_run") or "none")
    namespace = req.get("namespace")
    if op in VERBS:
        return run_files(store, op, [Source.from_json(s) for s in req.get("sources", [])],  # type: ignore[arg-type]
                         namespace, req.get("selector"),
                         ignore_not_found=bool(req.get("ignore_not_found")), dry_run=dry_run)
    report = Report()
    try:
        if op == "delete_named":
            delete_named(store, req["args"], namespace, req.get("selector"), bool(req.get("all")),
                         report, ignore_not_found=bool(req.get("ignore_not_found")),
                         dry_run=dry_run)
        elif op == "create_object":
            create_object(store, req["object"], namespace, report, verb=req.get("verb") or "created",
                          dry_run=dry_run)
        elif op in _EDITS:
            edit_metadata(store, op, req["args"], namespace, report,
                          overwrite=bool(req.get("overwrite")), dry_run=dry_run)
        else:
            raise ValueError(f"unknown write {op!r}")
    except _Refused as exc:
        report.fail(str(exc))
    return report


def delete_named(store: Store, args: Sequence[str], namespace: str | None,
                 selector: str | None, delete_all: bool, report: Report, *,
                 ignore_not_found: bool = False, dry_run: DryRun = "none") -> None:
    """`delete KIND NAME...`, `KIND/NAME...`, `KIND[,KIND] -l SELECTOR|--all`: every object,
    or none."""
    keys: list[tuple[str, str, str]] = []
    for kind, names in _targets(args):
        ns = (namespace or "default") if KINDS[kind].NAMESPACED else ""
        if selector is not None or delete_all:
            names = [r.name for r in store.list() if r.kind == kind and r.key[1] == ns
                     and label_selector_matches(r.metadata.labels, selector)]
            if not names:
                report.err(f"No resources found{f' in {ns} namespace' if ns else ''}.")
                continue
        elif not names:
            raise _Refused("resource(s) were provided, but no name was specified")
        keys.extend((kind, ns, n) for n in names)
    if keys:
        delete(store, keys, report, ignore_not_found=ignore_not_found, dry_run=dry_run)


def create_object(store: Store, obj: dict[str, Any], namespace: str | None, report: Report,
                  *, verb: str = "created", dry_run: DryRun = "none") -> None:
    """`create namespace|secret|configmap|route|role...`: the object the CLI built, validated
    as `-f` input is; an existing one is AlreadyExists."""
    try:
        resource = load_object(obj, source=COMMAND_LINE, namespace=namespace)
    except ResourceError as exc:
        report_problems(exc, report)
        return
    write(store, [resource], report, create_only=True, verb=verb, dry_run=dry_run)


def edit_metadata(store: Store, op: str, args: Sequence[str], namespace: str | None,
                  report: Report, *, overwrite: bool = False, dry_run: DryRun = "none") -> None:
    """`label|annotate KIND NAME k=v k2-` (or `KIND/NAME`): the object, validated again
    with its new labels or annotations, stored; kubectl's `--overwrite` rule."""
    field, what, verb = _EDITS[op]
    if args and "/" in args[0]:
        kind_arg, _, name = args[0].partition("/")
        changes = args[1:]
    elif len(args) >= 2:
        kind_arg, name, changes = args[0], args[1], args[2:]
    else:
        raise _Refused("expected TYPE NAME or TYPE/NAME")
    kind = _kind(kind_arg)
    if not changes:
        raise _Refused(f"at least one {what} update is required")
    key = (kind, (namespace or "default") if KINDS[kind].NAMESPACED else "", name)
    current = store.get(*key)
    if current is None:
        server_error(report, "NotFound", key, "not found")
        return
    obj = current.model_dump(by_alias=True, exclude_unset=True, mode="json")
    meta = obj["metadata"]
    before = meta.get(field) or {}
    after = key_value_changes(before, changes, overwrite, what)
    if after == before and op == "annotate":
        report.out(f"{current.type_name}/{name} {verb} (no change)")
        return
    meta[field] = after
    try:
        updated = load_object(obj, source=COMMAND_LINE, namespace=key[1] or None)
    except ResourceError as exc:
        report_problems(exc, report)
        return
    write(store, [updated], report, verb=verb, dry_run=dry_run)


def key_value_changes(current: Mapping[str, str], changes: Sequence[str], overwrite: bool,
                      what: str) -> dict[str, str]:
    """kubectl's `k=v` (set) and `k-` (remove) arguments of `label` and `annotate`: a key
    with another value is changed only with `--overwrite`."""
    out = dict(current)
    for c in changes:
        if c.endswith("-") and "=" not in c:
            out.pop(c[:-1], None)
            continue
        k, sep, v = c.partition("=")
        if not sep:
            raise _Refused(f"invalid {what} spec: {c}")
        if k in out and out[k] != v and not overwrite:
            raise _Refused(f"'{k}' already has a value ({out[k]}), and --overwrite is false")
        out[k] = v
    return out


def _targets(args: Sequence[str]) -> list[tuple[str, list[str]]]:
    """`KIND NAME...`, `KIND/NAME...` or `KIND,KIND` → (kind, names) pairs."""
    if not args:
        raise _Refused("you must provide one or more resources by argument or filename")
    return [(_kind(kind), names) for kind, names in named_targets(args)]


def _kind(name: str) -> str:
    kind = stored_kind(name)
    if kind is None:
        raise _Refused(f'the server doesn\'t have a resource type "{name}"')
    return kind
