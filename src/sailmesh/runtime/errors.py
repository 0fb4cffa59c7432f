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
    """A container names an image that has no local mapping and gives no command, or a
    command that is not on this machine. `reason` is the container's waiting reason as the
    kubelet would report it: `ImagePullBackOff` (the image cannot be had here) or
    `RunContainerError` (the command cannot be started)."""

    def __init__(self, message: str, *, container: str = "", image: str = "",
                 reason: str = "ImagePullBackOff") -> None:
        super().__init__(message)
        self.container = container
        self.image = image
        self.reason = reason


class ContainerConfigError(PodRuntimeError):
    """A container uses a field that the local runtime does not support (the kubelet's
    waiting reason `CreateContainerConfigError`)."""

    def __init__(self, message: str, *, container: str = "") -> None:
        super().__init__(message)
        self.container = container


class CommandError(PodRuntimeError):
    """An external command (ip, iptables-restore, ...) exited with an error."""
