"""When to renew workload certificates: Istio's rule, and a schedule of who is due.

Owns: the renewal instant of one certificate (a fraction of its lifetime, with jitter so
many proxies do not renew at the same instant) and `RotationSchedule`, the per-identity table
of next renewals. Must not know: the clock (callers pass `now`), randomness sources (callers
pass `rng`), certificates' contents, SDS.

Istio's agent renews when `SECRET_GRACE_PERIOD_RATIO` (0.5) of the lifetime remains, moved
by a uniform jitter of up to `SECRET_GRACE_PERIOD_RATIO_JITTER` (0.01) of the lifetime either
way. Here `fraction` counts the elapsed part (0.5 either way round).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from sailmesh.ca.errors import CAError

DEFAULT_FRACTION = 0.5
DEFAULT_JITTER = 0.01

K = TypeVar("K", bound=Hashable)

_RESOLUTION = timedelta(microseconds=1)


def _check_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise CAError(f"{name} must be timezone-aware, got {value!r}")


def renewal_time(
    not_before: datetime,
    not_after: datetime,
    *,
    fraction: float = DEFAULT_FRACTION,
    jitter: float,
    rng: random.Random,
) -> datetime:
    """`not_before + lifetime * (fraction ± jitter)`, the jitter uniform in [-jitter, +jitter].

    Bounds are checked, not clamped: `fraction - jitter >= 0` and `fraction + jitter < 1`, so
    the result is never before issuance and always strictly before expiry.
    """
    _check_aware(not_before, "not_before")
    _check_aware(not_after, "not_after")
    lifetime = not_after - not_before
    if lifetime <= timedelta(0):
        raise CAError(f"not_after ({not_after}) must be later than not_before ({not_before})")
    if jitter < 0:
        raise CAError(f"jitter must not be negative, got {jitter}")
    if not (fraction - jitter >= 0 and fraction + jitter < 1):
        raise CAError(
            f"fraction {fraction} ± jitter {jitter} must stay within [0, 1): renewal would fall "
            "before issuance or at/after expiry"
        )
    ratio = fraction + jitter * (2 * rng.random() - 1)
    when = not_before + lifetime * ratio
    # Rounding to whole microseconds can reach not_after for microsecond lifetimes.
    return min(when, not_after - _RESOLUTION)


@dataclass
class RotationSchedule(Generic[K]):
    """Next renewal per identity key (e.g. a proxy id or SPIFFE id). No clock inside:
    `due(now)` answers for the instant it is given.

    Keys stay in the schedule until `forget`; renewing a key means calling `track` (or `set`)
    again with the new certificate's lifetime.
    """

    rng: random.Random
    fraction: float = DEFAULT_FRACTION
    jitter: float = DEFAULT_JITTER
    _next: dict[K, tuple[datetime, int]] = field(default_factory=dict, init=False, repr=False)
    _order: itertools.count[int] = field(default_factory=itertools.count, init=False, repr=False)

    def track(self, key: K, not_before: datetime, not_after: datetime) -> datetime:
        """Schedule `key` for renewal within the lifetime given; returns the instant."""
        when = renewal_time(not_before, not_after, fraction=self.fraction, jitter=self.jitter, rng=self.rng)
        self.set(key, when)
        return when

    def set(self, key: K, when: datetime) -> None:
        """Schedule `key` at exactly `when` (replacing any earlier entry)."""
        _check_aware(when, "when")
        self._next[key] = (when, next(self._order))

    def forget(self, key: K) -> None:
        self._next.pop(key, None)

    def renewal_of(self, key: K) -> datetime | None:
        entry = self._next.get(key)
        return entry[0] if entry else None

    def due(self, now: datetime) -> list[K]:
        """Keys whose renewal time is at or before `now`, earliest first (ties: oldest entry)."""
        _check_aware(now, "now")
        ready = [(entry, key) for key, entry in self._next.items() if entry[0] <= now]
        return [key for _, key in sorted(ready, key=lambda item: item[0])]

    def next_due(self) -> datetime | None:
        """The earliest scheduled renewal: how long a driver may sleep."""
        return min((when for when, _ in self._next.values()), default=None)

    def __len__(self) -> int:
        return len(self._next)

    def __contains__(self, key: object) -> bool:
        return key in self._next
