"""The runtime's exception tree; every failure the runtime reports is one of these.

    PodRuntimeError            a pod, node or service rule could not be set up or torn down
    ├── ImageError             a container image has no local equivalent and no command
    ├── ContainerConfigError   a container field the local runtime cannot honour (e.g. valueFrom)
    └── CommandError           an external tool (ip, iptables-restore, mount) failed

Messages say what failed and what to do about it. This module knows nothing else.
"""

from __future__ import annotations


class PodRuntimeError(RuntimeError):
    """Base class of every error raised by sailmesh.runtime."""


class ImageError(PodRuntimeError):
    """A container names an image that has no local mapping and gives no command."""


class ContainerConfigError(PodRuntimeError):
    """A container uses a field that the local runtime does not support."""


class CommandError(PodRuntimeError):
    """An external command (ip, iptables-restore, ...) exited with an error."""
