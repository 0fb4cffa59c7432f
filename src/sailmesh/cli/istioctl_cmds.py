"""istioctl's verbs that Istio's pages type: `install`, `kube-inject`, `proxy-status`,
`version` (`proxy-config`, `analyze` and `x describe` live in their own modules).

istioctl facts reproduced:
- `install` takes IstioOperator files (-f, merged in order) and `--set path=value` on top
  (`profile=demo`, `meshConfig.accessLogFile=/dev/stdout`,
  `meshConfig.outboundTrafficPolicy.mode=REGISTRY_ONLY`, `values.…`); the result is the one
  installed configuration (a new install replaces the previous one), kept as IstioOperator
  `istio-system/installed-state` unless the file names it; `-y` skips the question.
- `kube-inject -f FILE` prints the manifest with every pod template injected: the
  `istio-proxy` container (proxyv2 image, `proxy sidecar` args, uid 1337), the `istio-init`
  init container, the `security.istio.io/tlsMode` and canonical-name labels and the
  `sidecar.istio.io/status` annotation that marks a pod as injected; other objects pass
  through. Templates that opt out (`sidecar.istio.io/inject: "false"`) are left alone.
- `proxy-status` lists every proxy with CDS/LDS/EDS/RDS as SYNCED, NOT SENT, STALE or
  ERROR (NACKed), the control-plane instance and the version.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from sailmesh import ISTIO_VERSION, __version__
from sailmesh.cli.common import daemon_call
from sailmesh.cli.config_cmds import _report_problems, _store, write
from sailmesh.cli.output import fail, table
from sailmesh.model.injection import INJECT_LABEL, SIDECAR_STATUS_ANNOTATION, TLS_MODE_LABEL
from sailmesh.model.install import PROXY_IMAGE, ROOT_NAMESPACE
from sailmesh.resources.errors import ResourceError
from sailmesh.resources.loader import load_object
from sailmesh.store import StoreError

PROFILES = ("default", "demo", "minimal", "empty", "preview", "remote", "ambient", "openshift")
INSTALLED_STATE = "installed-state"
_TOP_LEVEL = {"profile", "hub", "tag", "revision", "namespace", "meshConfig", "values",
              "components", "addonComponents"}


# --- install ---------------------------------------------------------------------------------


def _value(text: str) -> Any:
    """--set values as istioctl reads them: true/false, numbers, else the string."""
    if text in ("true", "false"):
        return text == "true"
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def set_path(spec: dict[str, Any], assignment: str) -> None:
    """Apply one `--set a.b.c=v` to an IstioOperator spec."""
    path, sep, raw = assignment.partition("=")
    if not sep or not path:
        fail(f"--set {assignment}: expected path=value")
    keys = path.split(".")
    if keys[0] == "spec":
        keys = keys[1:]
    if keys[0] not in _TOP_LEVEL:
        fail(f"--set {assignment}: unknown field {keys[0]!r} of IstioOperator.spec"
             f" (one of {', '.join(sorted(_TOP_LEVEL))})")
    node = spec
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            fail(f"--set {assignment}: {k} is not an object")
    node[keys[-1]] = _value(raw)


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _operator_docs(files: tuple[str, ...]) -> list[dict[str, Any]]:
    docs = []
    for f in files:
        text = sys.stdin.read() if f == "-" else Path(f).read_text()
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict) and doc.get("kind") == "IstioOperator":
                docs.append(doc)
    if files and not docs:
        fail("no IstioOperator in the input; `install` takes an IstioOperator (use `apply` for others)")
    return docs


@click.command()
@click.option("-f", "--filename", "files", multiple=True, help="IstioOperator file(s), merged in order.")
@click.option("-s", "--set", "sets", multiple=True, help="path=value, e.g. profile=demo.")
@click.option("-y", "--skip-confirmation", is_flag=True, help="Do not ask (sailctl never asks).")
@click.option("-n", "--namespace", default=None, hidden=True)
def install(files: tuple[str, ...], sets: tuple[str, ...], skip_confirmation: bool,
            namespace: str | None) -> None:
    """Install the mesh configuration, like `istioctl install` (-f FILE, --set path=value)."""
    docs = _operator_docs(files)
    name = INSTALLED_STATE
    spec: dict[str, Any] = {}
    for doc in docs:
        spec = _merge(spec, doc.get("spec") or {})
        name = (doc.get("metadata") or {}).get("name") or name
    for s in sets:
        set_path(spec, s)
    profile = spec.get("profile", "default")
    if profile not in PROFILES:
        fail(f'could not find profile "{profile}" (known: {", ".join(PROFILES)})')
    obj = {"apiVersion": "install.istio.io/v1alpha1", "kind": "IstioOperator",
           "metadata": {"name": name, "namespace": ROOT_NAMESPACE}, "spec": spec}
    try:
        operator = load_object(obj, source="<install>", namespace=ROOT_NAMESPACE)
    except ResourceError as exc:
        _report_problems(exc)
    store = _store()
    # One installed configuration: what an earlier install left is replaced, not merged.
    older = [r.key for r in store.list() if r.kind == "IstioOperator" and r.name != name]
    if older:
        try:
            store.delete(older, ignore_missing=True)
        except StoreError as exc:
            fail(str(exc))
    write([operator])
    click.echo(f'✔ Istio core installed (profile "{profile}")')
    click.echo("✔ Istiod installed")
    click.echo("✔ Ingress gateways installed")
    click.echo("✔ Egress gateways installed")
    click.echo("✔ Installation complete")


# --- kube-inject -----------------------------------------------------------------------------

_TEMPLATE_PATHS = {
    "Deployment": ("spec", "template"), "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"), "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"), "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


def _proxy_container() -> dict[str, Any]:
    return {
        "name": "istio-proxy",
        "image": f"{PROXY_IMAGE}:{ISTIO_VERSION}",
        "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local",
                 "--proxyLogLevel=warning", "--proxyComponentLogLevel=misc:error",
                 "--log_output_level=default:info"],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_NAMESPACE",
                 "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "ISTIO_META_CLUSTER_ID", "value": "Kubernetes"}],
        "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021},
                           "periodSeconds": 15, "timeoutSeconds": 3, "failureThreshold": 4},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "privileged": False, "readOnlyRootFilesystem": True,
                            "runAsGroup": 1337, "runAsNonRoot": True, "runAsUser": 1337},
    }


def _init_container() -> dict[str, Any]:
    return {
        "name": "istio-init",
        "image": f"{PROXY_IMAGE}:{ISTIO_VERSION}",
        "args": ["istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT",
                 "-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020",
                 "--log_output_level=default:info"],
        "securityContext": {"allowPrivilegeEscalation": False,
                            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
                            "privileged": False, "readOnlyRootFilesystem": False,
                            "runAsGroup": 0, "runAsNonRoot": False, "runAsUser": 0},
    }


def inject_template(template: dict[str, Any]) -> bool:
    """Inject one pod template in place; False when it opts out or is injected already."""
    meta = template.setdefault("metadata", {})
    labels = meta.setdefault("labels", {}) or {}
    notes = meta.setdefault("annotations", {}) or {}
    meta["labels"], meta["annotations"] = labels, notes
    opt = str(labels.get(INJECT_LABEL, notes.get(INJECT_LABEL, ""))).lower()
    if opt in ("false", "n", "no", "off") or SIDECAR_STATUS_ANNOTATION in notes:
        return False
    spec = template.setdefault("spec", {})
    containers = spec.setdefault("containers", [])
    app = containers[0]["name"] if containers else "app"
    notes.setdefault("kubectl.kubernetes.io/default-container", app)
    notes.setdefault("kubectl.kubernetes.io/default-logs-container", app)
    notes.update({"prometheus.io/path": "/stats/prometheus", "prometheus.io/port": "15020",
                  "prometheus.io/scrape": "true"})
    notes[SIDECAR_STATUS_ANNOTATION] = json.dumps(
        {"initContainers": ["istio-init"], "containers": ["istio-proxy"], "volumes": [],
         "imagePullSecrets": None, "revision": "default"}, separators=(",", ":"))
    labels[TLS_MODE_LABEL] = "istio"
    labels["service.istio.io/canonical-name"] = labels.get(
        "app.kubernetes.io/name", labels.get("app", app))
    labels["service.istio.io/canonical-revision"] = labels.get(
        "app.kubernetes.io/version", labels.get("version", "latest"))
    containers.append(_proxy_container())
    spec["initContainers"] = [*(spec.get("initContainers") or []), _init_container()]
    return True


def kube_inject_docs(docs: list[Any]) -> list[Any]:
    out = []
    for doc in docs:
        doc = copy.deepcopy(doc)
        if isinstance(doc, dict):
            path = _TEMPLATE_PATHS.get(doc.get("kind", ""))
            if doc.get("kind") == "Pod":
                inject_template(doc)
            elif path:
                node: Any = doc
                for key in path:
                    node = node.setdefault(key, {}) if isinstance(node, dict) else {}
                if inject_template(node):
                    node.setdefault("metadata", {}).setdefault("creationTimestamp", None)
                    doc.setdefault("status", {})
        out.append(doc)
    return out


@click.command("kube-inject")
@click.option("-f", "--filename", "filename", required=True, help="Manifest file, or - for stdin.")
@click.option("-o", "--output", "output", default=None, help="Write to this file instead of stdout.")
def kube_inject(filename: str, output: str | None) -> None:
    """Print a manifest with Istio's sidecar injected into its pod templates."""
    try:
        text = sys.stdin.read() if filename == "-" else Path(filename).read_text()
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except OSError as exc:
        fail(f"open {filename}: {exc.strerror}")
    except yaml.YAMLError as exc:
        fail(f"{filename}: {exc}")
    body = "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in kube_inject_docs(docs))
    if output:
        Path(output).write_text(body)
    else:
        click.echo(body, nl=False)


# --- proxy-status, version -------------------------------------------------------------------


def _sync_state(types: dict[str, Any], short: str, connected: bool) -> str:
    t = next((v for k, v in types.items() if k.endswith(f".{short}")), None)
    if t is None or not t.get("sent_version"):
        return "NOT SENT"
    if t.get("last_nack") and t["last_nack"].get("version") == t.get("sent_version") \
            and t.get("acked_version") != t.get("sent_version"):
        return "ERROR"
    if not connected:
        return "STALE"
    return "SYNCED" if t.get("acked_version") == t.get("sent_version") else "STALE"


@click.command("proxy-status")
@click.argument("target", required=False)
@click.option("-n", "--namespace", default=None)
def proxy_status(target: str | None, namespace: str | None) -> None:
    """Every proxy's xDS state: SYNCED, NOT SENT, STALE or ERROR per resource type."""
    st = daemon_call("status")
    if st is None:
        fail("the mesh is not running; start it with `sailctl up -d`")
    rows = []
    istiod = f"istiod-{st['pid']}"
    for _node, p in sorted(st["proxies"].items(), key=lambda kv: (kv[1]["pod"], kv[1]["namespace"])):
        if namespace and p["namespace"] != namespace:
            continue
        if target and p["pod"] != target.rpartition("/")[2].split(".")[0]:
            continue
        types = p["status"].get("types", {}) if isinstance(p["status"], dict) else {}
        states = [_sync_state(types, t, p["connected"])
                  for t in ("Cluster", "Listener", "ClusterLoadAssignment", "RouteConfiguration")]
        rows.append([f"{p['pod']}.{p['namespace']}", "Kubernetes", *states, "IGNORED", istiod,
                     ISTIO_VERSION])
    click.echo(table(["NAME", "CLUSTER", "CDS", "LDS", "EDS", "RDS", "ECDS", "ISTIOD", "VERSION"],
                     rows))


@click.command("version")
@click.option("--remote/--no-remote", default=True)
@click.option("-o", "--output", default=None, type=click.Choice(["short", "json", "yaml"]))
@click.option("--short", is_flag=True)
def version(remote: bool, output: str | None, short: bool) -> None:
    """Client, control plane and data plane versions (Istio API level, sailmesh build)."""
    if short:
        click.echo(ISTIO_VERSION)
        return
    st = daemon_call("status") if remote else None
    proxies = len(st["proxies"]) if st else 0
    if output in ("json", "yaml"):
        data = {"clientVersion": {"version": ISTIO_VERSION, "sailmesh": __version__}}
        if st:
            data["meshVersion"] = [{"Component": "istiod", "Info": {"version": ISTIO_VERSION}}]
            data["dataPlaneVersion"] = {"proxies": proxies, "version": ISTIO_VERSION}
        click.echo(json.dumps(data, indent=2) if output == "json" else yaml.safe_dump(data), nl=False)
        return
    click.echo(f"client version: {ISTIO_VERSION} (sailmesh {__version__})")
    if st:
        click.echo(f"control plane version: {ISTIO_VERSION}")
        click.echo(f"data plane version: {ISTIO_VERSION} ({proxies} proxies)")
    elif remote:
        click.echo("control plane version: none (the mesh is not running)")
