"""xDS: serve Envoy its config over ADS (LDS, RDS, CDS, EDS, SDS), per proxy node.

Owns the ADS gRPC server (``server``), per-node immutable snapshots (``cache``), the
sans-IO per-stream protocol state (``stream``) and the Envoy bootstrap (``bootstrap``).
Must not translate: it serves whatever typed resources it is handed, per node id.

Errors: ``XdsError`` (misuse of this API). A proxy rejecting config is not an error here;
it is a NACK, visible in ``XdsServer.status`` and as an ``XdsEvent``.
"""

from . import type_urls
from .bootstrap import envoy_argv, envoy_binary, envoy_bootstrap
from .cache import Resources, Snapshot, SnapshotCache
from .errors import XdsError
from .server import NodeStatus, XdsEvent, XdsServer
from .stream import TypeStatus

__all__ = [
    "NodeStatus",
    "Resources",
    "Snapshot",
    "SnapshotCache",
    "TypeStatus",
    "XdsError",
    "XdsEvent",
    "XdsServer",
    "envoy_argv",
    "envoy_binary",
    "envoy_bootstrap",
    "type_urls",
]
