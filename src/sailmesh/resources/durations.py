"""Go's time.Duration syntax, which Istio's APIs use for every duration ("24h", "1h30m",
"0.5s", "250ms"). Owns: parsing it. Must not know: what a duration is for."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def duration_seconds(text: str) -> float:
    """Seconds in a Go duration; ValueError naming the accepted form otherwise."""
    value = text.strip()
    parts = _PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"invalid duration {text!r}; use e.g. 24h, 90m, 1h30m, 30s or 250ms")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
