"""Kubernetes API server rules for the core kinds: metadata, Service, Deployment, ConfigMap,
Secret.

Owns: the checks kube-apiserver applies to these objects (k8s.io/apimachinery validation
and pkg/apis/core/validation), worded as it words them, plus the one limit of running
every pod on one machine (kubelet's default maxPods). Must not know: files, other
resources, Envoy, how pods are run. Each finding names its field path; the loader turns
it into a line.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sailmesh.resources import names
from sailmesh.resources.core import (
    ConfigMap,
    Container,
    Deployment,
    KeyToPath,
    PodTemplate,
    Secret,
    Service,
    Volume,
    VolumeMount,
)
from sailmesh.resources.errors import Findings
from sailmesh.resources.sidecar_volumes import UserVolumeError, user_volumes

# kubelet's default --max-pods: one node runs at most 110 pods; sailmesh runs every replica
# on this one machine, so a Deployment asking for more can never be satisfied.
MAX_REPLICAS = 110
# apimachinery ValidateAnnotations: all annotations of one object together.
MAX_ANNOTATIONS_BYTES = 256 * 1024
# pkg/apis/core/validation: ConfigMap and Secret data together.
MAX_DATA_BYTES = 1024 * 1024
# Volume file modes (defaultMode, items[].mode): "between 0 and 0777 (octal)".
MAX_FILE_MODE = 0o777

_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_IANA_SVC_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")


# --- grammar (apimachinery validation) ----------------------------------------------------


def _qualified_name(key: str) -> str | None:
    """Label and annotation keys: `[prefix/]name`, prefix a DNS subdomain."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or names.dns1123_subdomain(prefix)):
        return "prefix part " + (names.dns1123_subdomain(prefix) or "must be non-empty")
    if not name:
        return "name part must be non-empty"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _QUALIFIED_NAME.fullmatch(name):
        return ("name part must consist of alphanumeric characters, '-', '_' or '.', and must"
                " start and end with an alphanumeric character")
    return None


def _label_value(value: str) -> str | None:
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not _LABEL_VALUE.fullmatch(value):
        return ("a valid label must be an empty string or consist of alphanumeric characters,"
                " '-', '_' or '.', and must start and end with an alphanumeric character")
    return None


def _port_name(name: str) -> str | None:
    """IsValidPortName: an IANA service name (container ports, named targetPorts)."""
    if len(name) > 15:
        return "must be no more than 15 characters"
    if not _IANA_SVC_NAME.fullmatch(name) or "--" in name:
        return ("must contain only lowercase alphanumeric characters or '-', start and end"
                " with an alphanumeric character, and not contain '--'")
    if not any(c.isalpha() for c in name):
        return "must contain at least one letter (a-z)"
    return None


def _config_key(key: str) -> str | None:
    if len(key) > 253:
        return "must be no more than 253 characters"
    if not _CONFIG_KEY.fullmatch(key):
        return "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
    if key in (".", "..") or key.startswith(".."):
        return "must not be '.' or '..' and must not start with '..'"
    return None


def _descending_path(path: str) -> str | None:
    """validateLocalDescendingPath: relative, and never `..` (items[].path, subPath)."""
    if path.startswith("/"):
        return "must be a relative path"
    if ".." in path.split("/"):
        return "must not contain '..'"
    return None


def _mount_path(path: str) -> str | None:
    if not path:
        return "Required value"
    if not path.startswith("/"):
        return "must be an absolute path"
    if ".." in path.split("/"):
        return "must not contain '..'"
    if posixpath.normpath(path) == "/":
        return "must not be the root directory"
    return None


# --- metadata -----------------------------------------------------------------------------


def check_labels(labels: Mapping[str, str], at: str, f: Findings) -> None:
    for key, value in labels.items():
        if problem := _qualified_name(key):
            f.error(f"{at}[{key}]", f'Invalid value: "{_short(key)}": {problem}')
        if problem := _label_value(value):
            f.error(f"{at}[{key}]", f'Invalid value: "{_short(value)}": {problem}')


def check_annotations(annotations: Mapping[str, str], at: str, f: Findings) -> None:
    for key in annotations:
        if problem := _qualified_name(key):
            f.error(f"{at}[{key}]", f'Invalid value: "{_short(key)}": {problem}')
    total = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
    if total > MAX_ANNOTATIONS_BYTES:
        f.error(at, f"Too long: must have at most {MAX_ANNOTATIONS_BYTES} bytes")


def _short(text: str) -> str:
    return text if len(text) <= 70 else text[:60] + f"... ({len(text)} characters)"


# --- kinds --------------------------------------------------------------------------------


def check_service(svc: Service, f: Findings) -> None:
    spec = svc.spec
    headless = spec.cluster_ip == "None"
    if not spec.ports and spec.type != "ExternalName" and not headless:
        f.error("spec.ports", "Required value")
    check_labels(spec.selector or {}, "spec.selector", f)
    port_names: set[str] = set()
    endpoints: set[tuple[int, str]] = set()
    for i, port in enumerate(spec.ports):
        at = f"spec.ports[{i}]"
        if len(spec.ports) > 1 and not port.name:
            f.error(f"{at}.name", "Required value", "every port needs a name when there are several")
        elif port.name and port.name in port_names:
            f.error(f"{at}.name", f'Duplicate value: "{port.name}"')
        elif port.name and (problem := names.dns1123_label(port.name)):
            f.error(f"{at}.name", f'Invalid value: "{port.name}": {problem}')
        if port.name:
            port_names.add(port.name)
        if (port.port, port.protocol) in endpoints:
            f.error(at, f"Duplicate value: port {port.port}/{port.protocol}")
        endpoints.add((port.port, port.protocol))
        if isinstance(port.target_port, str) and (problem := _port_name(port.target_port)):
            f.error(f"{at}.targetPort", f'Invalid value: "{port.target_port}": {problem}')


def check_deployment(deploy: Deployment, f: Findings) -> None:
    spec = deploy.spec
    if spec.replicas > MAX_REPLICAS:
        f.error("spec.replicas", f"Invalid value: {spec.replicas}: must be at most {MAX_REPLICAS}",
                "every replica runs as a pod on this machine, and one node runs at most"
                f" {MAX_REPLICAS} pods (kubelet's default maxPods)")
    wanted = spec.selector.match_labels
    if not wanted and not spec.selector.match_expressions:
        f.error("spec.selector", "Invalid value: empty selector is invalid for deployment")
    check_labels(wanted, "spec.selector.matchLabels", f)
    labels = spec.template.metadata.labels
    check_labels(labels, "spec.template.metadata.labels", f)
    check_annotations(spec.template.metadata.annotations, "spec.template.metadata.annotations", f)
    if any(labels.get(k) != v for k, v in wanted.items()):
        shown = ", ".join(f"{k}: {v}" for k, v in labels.items())
        f.error(
            "spec.template.metadata.labels",
            f"Invalid value: {{{shown}}}: `selector` does not match template `labels`",
            "every selector.matchLabels entry must appear in the template labels",
        )
    _pod_template(spec.template, "spec.template", f)


def _pod_template(template: PodTemplate, at: str, f: Findings) -> None:
    pod = template.spec
    for field, value in (("serviceAccountName", pod.service_account_name),
                         ("serviceAccount", pod.service_account)):
        if value is not None and (problem := names.dns1123_subdomain(value)):
            f.error(f"{at}.spec.{field}", f'Invalid value: "{_short(value)}": {problem}')
    for field, value in (("hostname", pod.hostname), ("subdomain", pod.subdomain)):
        if value is not None and (problem := names.dns1123_label(value)):
            f.error(f"{at}.spec.{field}", f'Invalid value: "{_short(value)}": {problem}')
    if pod.host_users is False:
        f.warning(f"{at}.spec.hostUsers", "hostUsers: false is accepted but pods run without a"
                  " user namespace here", "a pod's root is confined by its own root"
                  " filesystem, PID namespace and the container capability set instead")
    if (pod.termination_grace_period_seconds or 0) < 0:
        f.error(f"{at}.spec.terminationGracePeriodSeconds", "must be greater than or equal to 0")
    _volumes(pod.volumes, f"{at}.spec.volumes", f)
    volumes = {v.name for v in pod.volumes}
    seen: set[str] = set()
    for group, containers in (("containers", pod.containers),
                              ("initContainers", pod.init_containers or [])):
        for i, container in enumerate(containers):
            c_at = f"{at}.spec.{group}[{i}]"
            if container.name in seen:
                f.error(f"{c_at}.name", f'Duplicate value: "{container.name}"')
            seen.add(container.name)
            _container(container, c_at, volumes, f)
    try:
        extra_volumes, extra_mounts = user_volumes(template)
    except UserVolumeError as exc:
        f.error(f"{at}.metadata.annotations[{exc.annotation}]", str(exc),
                "Istio's form: [{\"name\": \"certs\", \"mountPath\": \"/etc/certs\"}]")
        return
    _volumes(extra_volumes, f"{at}.metadata.annotations[sidecar.istio.io/userVolume]", f)
    _mounts(extra_mounts, f"{at}.metadata.annotations[sidecar.istio.io/userVolumeMount]",
            volumes | {v.name for v in extra_volumes}, f)


def _container(container: Container, at: str, volumes: set[str], f: Findings) -> None:
    if problem := names.dns1123_label(container.name):
        f.error(f"{at}.name", f'Invalid value: "{_short(container.name)}": {problem}')
    ctx = container.security_context
    if ctx is not None and ctx.allow_privilege_escalation is False:
        # pkg/apis/core/validation ValidateSecurityContext.
        if ctx.privileged:
            f.error(f"{at}.securityContext", "cannot set `allowPrivilegeEscalation` to false"
                    " and `privileged` to true")
        added = {c.upper().removeprefix("CAP_") for c in (ctx.capabilities.add if
                                                          ctx.capabilities else [])}
        if "SYS_ADMIN" in added:
            f.error(f"{at}.securityContext", "cannot set `allowPrivilegeEscalation` to false"
                    " and `capabilities.Add` CAP_SYS_ADMIN")
    for j, port in enumerate(container.ports):
        if port.name and (problem := _port_name(port.name)):
            f.error(f"{at}.ports[{j}].name", f'Invalid value: "{port.name}": {problem}')
    for j, env in enumerate(container.env):
        if not env.name or "=" in env.name:
            f.error(f"{at}.env[{j}].name", f'Invalid value: "{_short(env.name)}": a valid'
                    " environment variable name must consist of printable ASCII characters"
                    " other than '='")
    # Strings that become argv, environment or paths of a process cannot hold NUL: the
    # container runtime refuses them when the pod starts; refused here, at apply.
    texts = [("command", container.command or []), ("args", container.args or []),
             ("env", [e.name + (e.value or "") for e in container.env]),
             ("workingDir", [container.working_dir or ""])]
    for field, values in texts:
        if any("\0" in v for v in values):
            f.error(f"{at}.{field}", "Invalid value: must not contain a NUL character")
    _mounts(container.volume_mounts, f"{at}.volumeMounts", volumes, f)


def _mounts(mounts: Sequence[VolumeMount], at: str, volumes: set[str], f: Findings) -> None:
    paths: set[str] = set()
    for j, mount in enumerate(mounts):
        if mount.name not in volumes:
            f.error(f"{at}[{j}].name", f'Not found: "{mount.name}"')
        if problem := _mount_path(mount.mount_path):
            f.error(f"{at}[{j}].mountPath", f'Invalid value: "{_short(mount.mount_path)}": {problem}')
        elif posixpath.normpath(mount.mount_path) in paths:
            f.error(f"{at}[{j}].mountPath", f'Invalid value: "{mount.mount_path}": must be unique')
        paths.add(posixpath.normpath(mount.mount_path))
        if mount.sub_path and (problem := _descending_path(mount.sub_path)):
            f.error(f"{at}[{j}].subPath", f'Invalid value: "{_short(mount.sub_path)}": {problem}')


def _volumes(volumes: Sequence[Volume], at: str, f: Findings) -> None:
    seen: set[str] = set()
    for i, volume in enumerate(volumes):
        v_at = f"{at}[{i}]"
        if volume.name in seen:
            f.error(f"{v_at}.name", f'Duplicate value: "{volume.name}"')
        seen.add(volume.name)
        if problem := names.dns1123_label(volume.name):
            f.error(f"{v_at}.name", f'Invalid value: "{_short(volume.name)}": {problem}')
        sources = [s for s in _SOURCE_FIELDS if getattr(volume, _SOURCE_FIELDS[s]) is not None]
        if len(sources) > 1:
            f.error(v_at, "may not specify more than 1 volume type")
        for source_name in sources[:1]:
            source = getattr(volume, _SOURCE_FIELDS[source_name])
            if source_name == "emptyDir":
                continue
            if source_name in ("projected", "downwardAPI"):
                _projected(source, f"{v_at}.{source_name}", f)
                continue
            s_at = f"{v_at}.{source_name}"
            ref = source.name if source_name == "configMap" else source.secret_name
            ref_field = "name" if source_name == "configMap" else "secretName"
            if problem := names.dns1123_subdomain(ref):
                f.error(f"{s_at}.{ref_field}", f'Invalid value: "{_short(ref)}": {problem}')
            _mode(source.default_mode, f"{s_at}.defaultMode", f)
            _items(source.items or [], f"{s_at}.items", f)


_SOURCE_FIELDS = {"configMap": "config_map", "secret": "secret", "emptyDir": "empty_dir",
                  "projected": "projected", "downwardAPI": "downward_api"}
# Kubernetes: the pod fields a downwardAPI volume file may name.
DOWNWARD_FIELDS = ("metadata.name", "metadata.namespace", "metadata.uid", "metadata.labels",
                   "metadata.annotations")
_PROJECTION_FIELDS = {"configMap": "config_map", "secret": "secret",
                      "downwardAPI": "downward_api", "serviceAccountToken": "service_account_token"}


def _projected(source: Any, at: str, f: Findings) -> None:
    """A projected or downwardAPI volume: one source per projection, known pod fields, and
    no two files at the same path (Kubernetes: "conflicting duplicate paths")."""
    _mode(source.default_mode, f"{at}.defaultMode", f)
    projections = getattr(source, "sources", None)
    entries: list[tuple[str, Any]] = (
        [(f"{at}.sources[{i}]", p) for i, p in enumerate(projections)] if projections is not None
        else [(at, source)])
    paths: set[str] = set()
    for p_at, projection in entries:
        if projections is not None:
            kinds = [k for k, attr in _PROJECTION_FIELDS.items()
                     if getattr(projection, attr) is not None]
            if len(kinds) != 1:
                f.error(p_at, "may not specify more than 1 volume type" if kinds
                        else "must specify exactly 1 volume type")
                continue
            sub = getattr(projection, _PROJECTION_FIELDS[kinds[0]])
            p_at = f"{p_at}.{kinds[0]}"
        else:
            kinds, sub = ["downwardAPI"], projection
        if kinds[0] == "serviceAccountToken":
            new_paths = [sub.path]
        elif kinds[0] == "downwardAPI":
            new_paths = [item.path for item in sub.items]
            for k, item in enumerate(sub.items):
                field_path = item.field_ref.field_path if item.field_ref else ""
                if item.field_ref and field_path.split("[")[0] not in DOWNWARD_FIELDS:
                    f.error(f"{p_at}.items[{k}].fieldRef.fieldPath",
                            f'Unsupported value: "{_short(field_path)}": supported values: '
                            + ", ".join(f'"{x}"' for x in DOWNWARD_FIELDS))
                elif item.field_ref is None:
                    f.error(f"{p_at}.items[{k}].fieldRef", "Required value: the local runtime "
                            "mounts pod fields (fieldRef), not container resources")
        else:
            _items(sub.items or [], f"{p_at}.items", f)
            new_paths = [i.path for i in sub.items or []]
        for path in new_paths:
            if path in paths:
                f.error(p_at, f'Invalid value: "{_short(path)}": conflicting duplicate paths')
            paths.add(path)


def _items(items: Iterable[KeyToPath], at: str, f: Findings) -> None:
    for k, item in enumerate(items):
        if problem := _config_key(item.key):
            f.error(f"{at}[{k}].key", f'Invalid value: "{_short(item.key)}": {problem}')
        if not item.path:
            f.error(f"{at}[{k}].path", "Required value")
        elif (problem := _descending_path(item.path)) or item.path.startswith(".."):
            f.error(f"{at}[{k}].path", f'Invalid value: "{_short(item.path)}": '
                    f"{problem or 'must not start with ..'}")
        _mode(item.mode, f"{at}[{k}].mode", f)


def _mode(mode: int | None, at: str, f: Findings) -> None:
    if mode is not None and not 0 <= mode <= MAX_FILE_MODE:
        f.error(at, f"Invalid value: {mode:#o}: must be a number between 0 and 0777 (octal),"
                " both inclusive")


def _data(data: Mapping[str, object], at: str, f: Findings) -> None:
    for key in data:
        if problem := _config_key(key):
            f.error(f"{at}[{key}]", f'Invalid value: "{_short(key)}": {problem}')


def check_config_map(cm: ConfigMap, f: Findings) -> None:
    _data(cm.data, "data", f)
    _data(cm.binary_data, "binaryData", f)
    for key in set(cm.data) & set(cm.binary_data):
        f.error(f"binaryData[{key}]", f'Invalid value: "{key}": duplicate of key in data')
    if sum(len(v) for v in cm.files().values()) > MAX_DATA_BYTES:
        f.error("data", f"Too long: must have at most {MAX_DATA_BYTES} bytes")


def check_secret(secret: Secret, f: Findings) -> None:
    _data(secret.data, "data", f)
    _data(secret.string_data, "stringData", f)
    if sum(len(v) for v in secret.values().values()) > MAX_DATA_BYTES:
        f.error("data", f"Too long: must have at most {MAX_DATA_BYTES} bytes")
    if secret.type == "kubernetes.io/tls":
        keys = set(secret.data) | set(secret.string_data)
        for key in ("tls.crt", "tls.key"):
            if key not in keys:
                f.error(f"data[{key}]", "Required value",
                        "type kubernetes.io/tls needs tls.crt and tls.key")


__all__ = ["MAX_REPLICAS", "check_annotations", "check_config_map", "check_deployment",
           "check_labels", "check_secret", "check_service"]
