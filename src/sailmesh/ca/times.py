"""Instants the CA accepts: timezone-aware, at X.509's one-second resolution.

Owns: turning a caller's `now` into the exact instant a certificate will carry.
Must not know: where `now` came from (the CA never reads a clock).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sailmesh.ca.errors import CAError

# Certificates start this long before `now`, so a peer whose clock runs slightly behind the
# CA's still accepts a certificate issued a moment ago.
CLOCK_SKEW = timedelta(minutes=1)


def x509_instant(value: datetime, name: str = "now") -> datetime:
    """`value` in UTC without microseconds: RFC 5280 §4.1.2.5 times have whole seconds, so
    what a function returns equals what the certificate says."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise CAError(f"{name} must be timezone-aware (e.g. datetime.now(UTC)), got {value!r}")
    return value.astimezone(UTC).replace(microsecond=0)
