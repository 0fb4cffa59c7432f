"""Diagnostics: the one way model building and translation report problems.

Owns: the `Diagnostic` record and the codes of cross-resource problems the model finds.
Must not know: Envoy, output formatting. Nothing here logs; callers decide what to show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    ref: str  # "Kind ns/name" of the resource the user must look at
    field: str | None  # path inside that resource, e.g. "spec.servers[1].hosts"
    message: str
    code: str  # stable, e.g. "GW0101"

    def __str__(self) -> str:
        where = f" {self.field}" if self.field else ""
        return f"{self.severity} {self.code} {self.ref}{where}: {self.message}"


# Codes found while building the model (cross-resource problems).
GATEWAY_HOST_CONFLICT = "GW0101"
VS_GATEWAY_NOT_FOUND = "VS0201"
VS_UNKNOWN_DESTINATION = "VS0202"
VS_DESTINATION_PORT_AMBIGUOUS = "VS0203"
VS_DESTINATION_PORT_UNKNOWN = "VS0204"
SERVICE_ENTRY_HOST_CONFLICT = "SE0601"
