"""kubectl's object-changing and waiting verbs: rollout restart|status, wait, scale, patch
(`label` and `annotate` are `file_cmds`').

Every change is made to the object's API form, then loaded again (so validation and
file:line-free errors are the same as for `apply`) and written through `config_cmds.write`.
kubectl facts reproduced:
- `rollout restart` sets the pod template annotation `kubectl.kubernetes.io/restartedAt`,
  which changes the pod template and so replaces every pod.
- `rollout status` prints "Waiting for deployment "X" rollout to finish: …" lines, then
  `deployment "X" successfully rolled out`; `--timeout` ends it with an error, exit 1.
- `wait --for=condition=C` (case-insensitive, `=false` for the opposite),
  `--for=delete`, `--for=jsonpath='{…}'=VALUE`; prints `kind/name condition met`;
  default timeout 30s; "error: no matching resources found" when nothing is selected.
- `patch --type strategic|merge|json` (strategic is the default: lists of objects merge by
  `name`); an unchanged object prints "patched (no change)".
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click
import jsonpatch

from sailmesh.cli import cluster_view, jsonpath
from sailmesh.cli.cluster_view import ClusterView, resource_dict, type_name
from sailmesh.cli.common import home, namespace_option
from sailmesh.cli.config_cmds import (
    _report_problems,
    _store,
    resolve_kind,
    write,
)
from sailmesh.cli.get_cmd import select, targets
from sailmesh.cli.output import fail
from sailmesh.resources.errors import ResourceError
from sailmesh.resources.kinds import KINDS
from sailmesh.resources.loader import load_object

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def parse_duration(text: str) -> float:
    """kubectl's --timeout: Go durations (`30s`, `2m`, `1h30m`, `500ms`); a bare number is
    seconds."""
    from sailmesh.resources.durations import duration_seconds

    try:
        return float(text) if text.replace(".", "", 1).isdigit() else duration_seconds(text)
    except ValueError as exc:
        fail(f'invalid argument "{text}" for "--timeout" flag: {exc}')


def _one_target(args: tuple[str, ...], namespace: str | None) -> tuple[str, str, str]:
    """`KIND NAME` or `KIND/NAME` → (kind, namespace, name) of a stored object."""
    if len(args) == 1 and "/" in args[0]:
        kind_arg, _, name = args[0].partition("/")
    elif len(args) == 2:
        kind_arg, name = args
    else:
        fail("expected TYPE NAME or TYPE/NAME")
    kind = resolve_kind(kind_arg)
    return kind, (namespace or "default") if KINDS[kind].NAMESPACED else "", name


def _stored_dict(kind: str, ns: str, name: str) -> dict[str, Any]:
    r = _store().get(kind, ns, name)
    if r is None:
        where = f' in namespace "{ns}"' if ns else ""
        fail(f'Error from server (NotFound): {type_name(kind).split(".")[0]}s "{name}" not found{where}')
    return resource_dict(r)


def _save(obj: dict[str, Any], ns: str, verb: str) -> None:
    try:
        resource = load_object(obj, source="<command line>", namespace=ns or None)
    except ResourceError as exc:
        _report_problems(exc)
    write([resource], verb=verb)


def _change(kind: str, ns: str, name: str, edit: Callable[[dict[str, Any]], None], verb: str) -> None:
    before = _stored_dict(kind, ns, name)
    after = copy.deepcopy(before)
    edit(after)
    if after == before:
        click.echo(f"{type_name(kind)}/{name} {verb} (no change)")
        return
    _save(after, ns, verb)


# --- rollout -----------------------------------------------------------------------------


@click.group()
def rollout() -> None:
    """Manage the rollout of a Deployment: restart, status."""


@rollout.command("restart")
@click.argument("args", nargs=-1, required=True)
@namespace_option
def rollout_restart(args: tuple[str, ...], namespace: str | None) -> None:
    """Restart every pod of a Deployment (deploy/NAME or deployment NAME)."""
    kind, ns, name = _one_target(args, namespace)
    if kind != "Deployment":
        fail(f"{type_name(kind)}/{name}: restarting is not supported")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def edit(obj: dict[str, Any]) -> None:
        meta = obj["spec"]["template"].setdefault("metadata", {})
        meta.setdefault("annotations", {})[RESTARTED_AT] = stamp

    _change(kind, ns, name, edit, "restarted")


@rollout.command("status")
@click.argument("args", nargs=-1, required=True)
@namespace_option
@click.option("--timeout", default="0s", help="How long to wait (0: until done).")
@click.option("-w", "--watch/--no-watch", default=True)
def rollout_status(args: tuple[str, ...], namespace: str | None, timeout: str, watch: bool) -> None:
    """Wait until a Deployment's pods are all updated and ready."""
    kind, ns, name = _one_target(args, namespace)
    if kind != "Deployment":
        fail(f"no status viewer has been implemented for {type_name(kind)}")
    limit = parse_duration(timeout)
    deadline = time.monotonic() + limit if limit > 0 else None
    last = ""
    while True:
        view = ClusterView.read(home())
        objs = [o for o in view.objects("Deployment", ns) if o["metadata"]["name"] == name]
        if not objs:
            fail(f'deployments.apps "{name}" not found')
        message, done = _rollout_message(name, objs[0])
        if message != last:
            click.echo(message)
            last = message
        if done or not watch:
            return
        if deadline is not None and time.monotonic() > deadline:
            fail("timed out waiting for the condition")
        time.sleep(0.2)


def _rollout_message(name: str, dep: dict[str, Any]) -> tuple[str, bool]:
    want = dep["spec"].get("replicas", 1)
    st = dep.get("status", {})
    updated, total = st.get("updatedReplicas", 0), st.get("replicas", 0)
    available = st.get("availableReplicas", 0)
    prefix = f'Waiting for deployment "{name}" rollout to finish: '
    if updated < want:
        return f"{prefix}{updated} out of {want} new replicas have been updated...", False
    if total > updated:
        return f"{prefix}{total - updated} old replicas are pending termination...", False
    if available < updated:
        return f"{prefix}{available} of {updated} updated replicas are available...", False
    return f'deployment "{name}" successfully rolled out', True


# --- wait --------------------------------------------------------------------------------


def _condition_test(spec: str) -> Callable[[dict[str, Any] | None], bool]:
    """--for=… → a test on the object (None: it no longer exists)."""
    if spec == "delete":
        return lambda obj: obj is None
    if spec.startswith("condition="):
        cond, _, want = spec[len("condition="):].partition("=")
        wanted = (want or "True").lower()
        return lambda obj: obj is not None and (
            (cluster_view.condition_status(obj, cond) or "").lower() == wanted)
    if spec.startswith("jsonpath="):
        expr, sep, want = spec[len("jsonpath="):].rpartition("=")
        if not sep or not expr:
            expr, want = spec[len("jsonpath="):], None
        expr = expr.strip("'\"")
        template = jsonpath.relaxed(expr)
        jsonpath.parse(template)

        def test(obj: dict[str, Any] | None) -> bool:
            if obj is None:
                return False
            got = jsonpath.execute(template, obj)
            return bool(got) if want is None else got == want
        return test
    fail(f"unrecognized condition: {spec!r}")


@click.command("wait")
@click.argument("args", nargs=-1)
@namespace_option
@click.option("--for", "for_", required=True,
              help="condition=NAME[=value], delete, or jsonpath='{…}'=VALUE")
@click.option("-l", "--selector", default=None)
@click.option("--all", "all_", is_flag=True)
@click.option("-A", "--all-namespaces", "all_namespaces", is_flag=True)
@click.option("--timeout", default="30s")
def wait_cmd(args: tuple[str, ...], namespace: str | None, for_: str, selector: str | None,
             all_: bool, all_namespaces: bool, timeout: str) -> None:
    """Wait for a condition on resources (kubectl wait)."""
    test = _condition_test(for_)
    wanted = targets(args)
    ns = None if all_namespaces else (namespace or "default")
    view = ClusterView.read(home())
    items, missing = select(view, wanted, ns, selector)
    if missing and for_ != "delete":
        fail("\n".join(m.removeprefix("Error from server (NotFound): ") for m in missing))
    if not items:
        if for_ == "delete" and missing:
            return
        fail("no matching resources found")
    keys = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in items]
    deadline = time.monotonic() + parse_duration(timeout)
    pending = list(keys)
    while True:
        current = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o
                   for kind in {k for k, _, _ in pending}
                   for o in view.objects(kind, None)}
        for key in list(pending):
            if test(current.get(key)):
                kind, _, name = key
                click.echo(f"{type_name(kind)}/{name} condition met")
                pending.remove(key)
        if not pending:
            return
        if time.monotonic() > deadline:
            kind, _, name = pending[0]
            fail(f"timed out waiting for the condition on {type_name(kind).split('.')[0]}s/{name}")
        time.sleep(0.2)
        view = ClusterView.read(home())


# --- scale, patch ------------------------------------------------------------------


@click.command()
@click.argument("args", nargs=-1, required=True)
@namespace_option
@click.option("--replicas", type=int, required=True)
def scale(args: tuple[str, ...], namespace: str | None, replicas: int) -> None:
    """Set a Deployment's replicas (deploy/NAME or deployment NAME)."""
    kind, ns, name = _one_target(args, namespace)
    if kind != "Deployment":
        fail(f"cannot scale {type_name(kind)}/{name}")
    if replicas < 0:
        fail("The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
    _change(kind, ns, name, lambda obj: obj["spec"].__setitem__("replicas", replicas), "scaled")


def strategic_merge(target: Any, patch: Any) -> Any:
    """Kubernetes strategic merge patch for the shapes Istio's pages use: maps merge, null
    deletes, lists of objects with a `name` merge by name, other lists are replaced."""
    if isinstance(patch, dict) and isinstance(target, dict):
        out = dict(target)
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = strategic_merge(target.get(k), v)
        return out
    if (isinstance(patch, list) and isinstance(target, list) and patch
            and all(isinstance(p, dict) and "name" in p for p in patch)
            and all(isinstance(t, dict) and "name" in t for t in target)):
        merged = {t["name"]: t for t in target}
        order = [t["name"] for t in target]
        for p in patch:
            merged[p["name"]] = strategic_merge(merged.get(p["name"]), p)
            if p["name"] not in order:
                order.append(p["name"])
        return [merged[n] for n in order]
    return copy.deepcopy(patch)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON Merge Patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


@click.command()
@click.argument("args", nargs=-1, required=True)
@namespace_option
@click.option("-p", "--patch", "patch_text", required=True, help="The patch (JSON or YAML).")
@click.option("--type", "patch_type", type=click.Choice(["strategic", "merge", "json"]),
              default="strategic")
def patch(args: tuple[str, ...], namespace: str | None, patch_text: str, patch_type: str) -> None:
    """Change fields of a resource with a strategic, JSON merge or JSON (RFC 6902) patch."""
    import yaml

    kind, ns, name = _one_target(args, namespace)
    try:
        body = yaml.safe_load(patch_text)
    except yaml.YAMLError as exc:
        fail(f"unable to parse \"{patch_text}\": {exc}")

    def edit(obj: dict[str, Any]) -> None:
        if patch_type == "json":
            if not isinstance(body, list):
                fail("unable to parse patch: a json patch is a list of operations")
            try:
                result = jsonpatch.apply_patch(obj, body)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                fail(f"the request is invalid: {exc}")
        elif patch_type == "merge":
            result = merge_patch(obj, body)
        else:
            result = strategic_merge(obj, body)
        obj.clear()
        obj.update(json.loads(json.dumps(result)))

    _change(kind, ns, name, edit, "patched")
