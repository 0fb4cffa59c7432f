"""Istio's `sidecar.istio.io/userVolume` and `sidecar.istio.io/userVolumeMount` pod
annotations: volumes and mounts the injector adds to the istio-proxy container.

Owns: reading the two annotations. Each is JSON, either a list of objects with a `name`
(`[{"name": "certs", "mountPath": "/etc/certs"}]`) or a map from name to the object
(`{"certs": {"mountPath": "/etc/certs"}}`); Istio's users write both. A mount names a
volume of either annotation or of the pod's own `spec.volumes`. This is how DestinationRule
file paths (`clientCertificate`, `privateKey`, `caCertificates`) reach the sidecar.
Must not know: how volumes are materialised (meshd.planner).
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import ValidationError

from sailmesh.resources.core import PodTemplate, Volume, VolumeMount

USER_VOLUME = "sidecar.istio.io/userVolume"
USER_VOLUME_MOUNT = "sidecar.istio.io/userVolumeMount"
_M = TypeVar("_M", Volume, VolumeMount)


class UserVolumeError(ValueError):
    """A malformed annotation; `annotation` is the key it is about."""

    def __init__(self, annotation: str, message: str) -> None:
        super().__init__(message)
        self.annotation = annotation


def _objects(template: PodTemplate, key: str) -> list[dict[str, Any]]:
    raw = template.metadata.annotations.get(key)
    if raw is None or not raw.strip():
        return []
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UserVolumeError(key, f"not valid JSON: {exc.msg} at character {exc.pos}") from exc
    if isinstance(value, dict):
        items = []
        for name, body in value.items():
            if not isinstance(body, dict):
                raise UserVolumeError(key, f"entry {name!r} must be an object")
            items.append({**body, "name": name})
        return items
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return value
    raise UserVolumeError(key, "must be a JSON list of objects or a map from name to object")


def _lenient(body: dict[str, Any]) -> dict[str, Any]:
    # Istio's own examples write `readonly` (the injector passes the JSON on as YAML, and
    # Kubernetes then ignores the unknown key); taken here as the readOnly it was meant as.
    out = dict(body)
    if "readonly" in out:
        out.setdefault("readOnly", out.pop("readonly"))
    if "configmap" in out:
        out.setdefault("configMap", out.pop("configmap"))
    return out


def user_volumes(template: PodTemplate) -> tuple[list[Volume], list[VolumeMount]]:
    """The extra volumes and the istio-proxy mounts a pod template asks for.
    Raises UserVolumeError naming the annotation and what is wrong."""
    volumes = _models(template, USER_VOLUME, Volume, "volume")
    mounts = _models(template, USER_VOLUME_MOUNT, VolumeMount, "mount")
    known = {v.name for v in volumes} | {v.name for v in template.spec.volumes}
    for m in mounts:
        if m.name not in known:
            raise UserVolumeError(USER_VOLUME_MOUNT, f"mount {m.name!r} names no volume of "
                                  f"{USER_VOLUME} or spec.volumes")
    return volumes, mounts


def _models(template: PodTemplate, key: str, model: type[_M], what: str) -> list[_M]:
    out: list[_M] = []
    for i, body in enumerate(_objects(template, key)):
        try:
            out.append(model.model_validate(_lenient(body)))
        except ValidationError as exc:
            raise UserVolumeError(key, f"{what} {i} ({body.get('name', '?')}): "
                                  f"{_first(exc)}") from exc
    return out


def _first(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else err["msg"]


__all__ = ["USER_VOLUME", "USER_VOLUME_MOUNT", "UserVolumeError", "user_volumes"]
