"""Commands that reach into a pod of the running mesh, as kubectl does: logs and exec,
and how a pod is named on the command line (`POD`, `pod/POD`, `deploy/NAME`, `svc/NAME`,
`-l SELECTOR`). Must not know how the mesh is started or stopped (mesh_cmds).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from sailmesh.cli.cluster_view import status_pods
from sailmesh.cli.common import (
    home,
    namespace_option,
    require_daemon,
)
from sailmesh.cli.output import fail
from sailmesh.resources.selectors import label_selector_matches
from sailmesh.store import Store


def find_pod(target: str, namespace: str | None) -> dict[str, Any]:
    """`POD`, `pod/POD`, `deploy/NAME` or `svc/NAME` (a ready pod of it first), as kubectl
    resolves them."""
    return find_pods(target, namespace, None)[0]


def find_pods(target: str | None, namespace: str | None, selector: str | None
              ) -> list[dict[str, Any]]:
    st = require_daemon("status")
    ns = namespace or "default"
    pods = sorted((p for p in status_pods(st) if p["namespace"] == ns),
                  key=lambda p: (not p["ready"], p["name"]))
    if target is None:
        found = [p for p in pods if label_selector_matches(p["labels"], selector)]
        if not found:
            fail(f"No resources found in {ns} namespace.")
        return found
    kind, _, name = target.rpartition("/")
    if kind in ("deploy", "deployment", "deployments", "deployment.apps"):
        matches_ = [p for p in pods if p.get("deployment") == name]
        if not matches_:
            fail(f'deployments.apps "{name}" not found')
        return matches_[:1]
    if kind in ("svc", "service", "services"):
        return [_service_pod(name, ns, pods)]
    if kind not in ("", "pod", "pods", "po"):
        fail(f"cannot use {kind}/ here: give a pod name, deploy/NAME or svc/NAME")
    for p in pods:
        if p["name"] == name:
            return [p]
    fail(f'pods "{name}" not found')


def _service_pod(name: str, ns: str, pods: Sequence[dict[str, Any]]) -> dict[str, Any]:
    svc = Store(home().root).get("Service", ns, name)
    if svc is None:
        fail(f'services "{name}" not found')
    selector = svc.spec.selector or {}  # type: ignore[attr-defined]
    chosen = [p for p in pods if selector and label_selector_matches(p["labels"], ",".join(
        f"{k}={v}" for k, v in selector.items()))]
    if not chosen:
        fail(f"no pods of service {name} in namespace {ns}")
    return chosen[0]


def _default_container(pod: dict[str, Any]) -> str:
    """The app container: Istio's injector marks it as kubectl's default container, so
    kubectl picks it without naming the others."""
    names = pod.get("container_names") or list(pod.get("logs", {}))
    return next((n for n in names if n != "istio-proxy"), names[0] if names else "")


# The kubelet's answer to `logs` for a container that waits to start, by waiting reason.
_LOGS_WAITING = {"ErrImagePull": "image can't be pulled",
                 "ImagePullBackOff": "trying and failing to pull image"}


def _waiting_reason(pod: dict[str, Any], container: str) -> str:
    """The reason `container` waits to start in a pod that cannot start ("" otherwise)."""
    if pod.get("phase") != "Pending" or not pod.get("reason"):
        return ""
    if pod.get("waiting") and pod["waiting"] != container:
        return "ContainerCreating"
    return str(pod["reason"])


def _fail_waiting(first_line: str, pod: dict[str, Any]) -> NoReturn:
    """kubectl's error for a container that is not running, then why it is not (the
    kubelet's message, which kubectl would show only in `describe pod`)."""
    click.echo(f"{first_line}\n{pod['message']}", err=True)
    sys.exit(1)


@click.command()
@click.argument("target", required=False)
@namespace_option
@click.option("-c", "--container", default=None)
@click.option("-l", "--selector", default=None, help="Logs of every pod the selector matches.")
@click.option("--all-containers", is_flag=True)
@click.option("--prefix", is_flag=True, help="Prefix each line with [pod/NAME/CONTAINER].")
@click.option("-f", "--follow", is_flag=True)
@click.option("--tail", default=None, type=int,
              help="Last lines to show (default all; 10 with a selector, as kubectl).")
def logs(target: str | None, namespace: str | None, container: str | None, selector: str | None,
         all_containers: bool, prefix: bool, follow: bool, tail: int | None) -> None:
    """Print a pod's output (POD, deploy/NAME, or -l SELECTOR)."""
    if (target is None) == (selector is None):
        fail("expected POD, TYPE/NAME or -l SELECTOR (exactly one)")
    pods = find_pods(target, namespace, selector)
    if tail is None:
        tail = 10 if selector else -1
    streams = []
    for pod in pods:
        logs_by_name = pod.get("logs", {})
        names = list(logs_by_name) if all_containers else [container or _default_container(pod)]
        for name in names:
            reason = _waiting_reason(pod, name)
            if reason:
                _fail_waiting(f'Error from server (BadRequest): container "{name}" in pod '
                              f'"{pod["name"]}" is waiting to start: '
                              f"{_LOGS_WAITING.get(reason, reason)}", pod)
            if name not in logs_by_name:
                fail(f"container {name} is not valid for pod {pod['name']}")
            label = f"[pod/{pod['name']}/{name}] " if prefix else ""
            streams.append((logs_by_name[name], label))
    for path, label in streams:
        _print_log(path, label, tail, follow and len(streams) == 1)


def _print_log(path: str, label: str, tail: int, follow: bool) -> None:
    try:
        with open(path, "rb") as f:
            lines = f.read().splitlines(keepends=True)
            out = lines[-tail:] if tail > 0 else ([] if tail == 0 else lines)
            sys.stdout.buffer.write(b"".join(label.encode() + line for line in out))
            sys.stdout.flush()
            while follow:
                chunk = f.read()
                if chunk:
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.flush()
                else:
                    time.sleep(0.2)
    except FileNotFoundError:
        return
    except KeyboardInterrupt:
        pass


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("target")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@namespace_option
@click.option("-c", "--container", default=None)
@click.option("-i", "--stdin", is_flag=True)
@click.option("-t", "--tty", is_flag=True)
def exec_cmd(target: str, command: tuple[str, ...], namespace: str | None,
             container: str | None, stdin: bool, tty: bool) -> None:
    """Run a command in a pod's container: exec POD|deploy/NAME [-c CONTAINER] -- CMD...

    Like kubectl, a failing command's status is the exit status and is reported as
    "command terminated with exit code N" on stderr.
    """
    argv = [c for c in command if c != "--"] if command and command[0] == "--" else list(command)
    pod = find_pod(target, namespace)
    name = container or _default_container(pod)
    if pod.get("control_plane"):
        fail(f"pod {pod['name']} is the mesh's control plane, the sailmesh daemon: it runs on "
             "this host, not in a pod's namespaces; use `sailctl status` or its log "
             f"(kubectl logs {pod['name']} -n {pod['namespace']})")
    if _waiting_reason(pod, name):
        _fail_waiting(f'error: unable to upgrade connection: container not found ("{name}")', pod)
    reply = require_daemon("exec_argv", namespace=pod["namespace"], pod=pod["name"], argv=argv,
                           container=name)
    try:
        code = subprocess.run(reply["argv"], stdin=None if stdin else subprocess.DEVNULL).returncode
    except KeyboardInterrupt:
        code = 130
    if code != 0:
        click.echo(f"command terminated with exit code {code}", err=True)
        sys.exit(code)
