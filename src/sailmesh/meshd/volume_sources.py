"""The files of projected and downwardAPI volumes, as the kubelet writes them.

Owns: turning a `projected` volume's sources (configMap, secret, downwardAPI) and a
`downwardAPI` volume into one directory's files. Pure: the snapshot and the pod's metadata
in, file contents out. Must not know how volumes are mounted (runtime) or any Istio rule.

Kubernetes facts reproduced:
- A projected volume is the union of its sources' files; a missing ConfigMap or Secret is
  an error unless the source says `optional: true` (then it adds nothing); with `items`,
  only the listed keys appear, at their paths (a missing key of an optional source is
  left out).
- downwardAPI files: `metadata.name`, `.namespace`, `.uid` as plain text;
  `metadata.labels` / `.annotations` as `key="value"` lines sorted by key;
  `metadata.labels['k']` / `metadata.annotations['k']` as the one value.
- serviceAccountToken sources are refused with the reason: a token is signed by the
  Kubernetes API server, which does not exist here, and nothing could verify it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sailmesh.model.snapshot import Snapshot
from sailmesh.resources.core import (
    ConfigMap,
    DownwardAPIVolumeFile,
    KeyToPath,
    ProjectedVolumeSource,
    Secret,
)


class VolumeSourceError(Exception):
    """A projected or downwardAPI volume cannot be filled; the message says why."""


@dataclass(frozen=True)
class PodMeta:
    namespace: str
    name: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]

    @property
    def uid(self) -> str:
        """A stable UID per pod (Kubernetes gives each pod a random one at creation)."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sailmesh:pod/{self.namespace}/{self.name}"))


def _quoted_lines(values: Mapping[str, str]) -> str:
    return "\n".join(f"{k}={json.dumps(v)}" for k, v in sorted(values.items()))


def _field(meta: PodMeta, path: str) -> str:
    for prefix, values in (("metadata.labels", meta.labels),
                           ("metadata.annotations", meta.annotations)):
        if path == prefix:
            return _quoted_lines(values)
        if path.startswith(prefix + "['") and path.endswith("']"):
            return values.get(path[len(prefix) + 2:-2], "")
    simple = {"metadata.name": meta.name, "metadata.namespace": meta.namespace,
              "metadata.uid": meta.uid}
    if path not in simple:
        raise VolumeSourceError(f"fieldRef.fieldPath {path!r} is not a pod field a volume "
                                "can hold")
    return simple[path]


def downward_files(items: Sequence[DownwardAPIVolumeFile], meta: PodMeta) -> dict[str, bytes]:
    files = {}
    for item in items:
        if item.field_ref is None:
            raise VolumeSourceError(f"downwardAPI item {item.path!r}: only fieldRef is "
                                    "supported (container resources are not limited here)")
        files[item.path] = _field(meta, item.field_ref.field_path).encode()
    return files


def _keyed(files: Mapping[str, bytes] | None, items: Sequence[KeyToPath] | None,
           optional: bool, what: str) -> dict[str, bytes]:
    if files is None:
        if optional:
            return {}
        raise VolumeSourceError(f"{what} not found")
    if not items:
        return dict(files)
    missing = [i.key for i in items if i.key not in files]
    if missing and not optional:
        raise VolumeSourceError(f"{what}: key {missing[0]!r} not found")
    return {i.path: files[i.key] for i in items if i.key in files}


def projected_files(snap: Snapshot, source: ProjectedVolumeSource,
                    meta: PodMeta) -> dict[str, bytes]:
    """Every file of a projected volume, by path."""
    out: dict[str, bytes] = {}
    for projection in source.sources:
        if projection.config_map is not None:
            cm_src = projection.config_map
            cm = snap.get(ConfigMap, meta.namespace, cm_src.name)
            out.update(_keyed(cm.files() if cm is not None else None, cm_src.items,
                              bool(cm_src.optional), f'configmap "{cm_src.name}"'))
        elif projection.secret is not None:
            sec_src = projection.secret
            sec = snap.get(Secret, meta.namespace, sec_src.name)
            out.update(_keyed(sec.values() if sec is not None else None, sec_src.items,
                              bool(sec_src.optional), f'secret "{sec_src.name}"'))
        elif projection.downward_api is not None:
            out.update(downward_files(projection.downward_api.items, meta))
        elif projection.service_account_token is not None:
            raise VolumeSourceError(
                f"projected serviceAccountToken {projection.service_account_token.path!r}: "
                "service account tokens are signed by a Kubernetes API server, which this "
                "machine does not have; sidecars here get their identity over their own "
                "pod's channel instead (no token needed): remove this source")
    return out
