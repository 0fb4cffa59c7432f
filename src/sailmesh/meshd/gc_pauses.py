"""When meshd's cyclic garbage collector may pause it: not in the middle of a change.

CPython's full (generation 2) collection walks every object the collector tracks, with the
GIL held: the event loop and every worker thread stop. At 1,000 Services and 30 proxies
meshd holds enough of them (the store's snapshot, the model, the last push's translations)
that one took 80-190 ms, and one came on its own every second or third change
(bench/control_plane.py, 1000x30), in the middle of a push.

Owns: freezing (gc.freeze) what a push leaves behind once it is done, so that the automatic
collections look only at what was made since; and the full collection of everything, which
is what frees garbage cycles among frozen objects, run only while meshd is idle (no push for
IDLE_S) and at most every FULL_EVERY_S, or after FORCE_FULL_S whatever happens. Objects
without cycles are freed by reference counting as before, frozen or not.
Must not know: what a push is made of.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

IDLE_S = 2.0
FULL_EVERY_S = 60.0
FORCE_FULL_S = 600.0
CHECK_S = 1.0


class CollectorPauses:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._pushed_at = clock()
        self._full_at = clock()

    def settle(self) -> None:
        """After a push (and after start-up): what is alive now is long-lived, frozen.

        The young generations are collected first, so that cycles that are already garbage
        are freed now rather than kept until the next full collection."""
        gc.collect(1)
        gc.freeze()
        self._pushed_at = self._clock()

    def full_due(self) -> bool:
        now = self._clock()
        since_full = now - self._full_at
        idle = now - self._pushed_at >= IDLE_S
        return since_full >= FORCE_FULL_S or (idle and since_full >= FULL_EVERY_S)

    def full_collection(self) -> int:
        """Collect everything, frozen objects included, and freeze what stays; the number
        of unreachable objects found."""
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        self._full_at = self._clock()
        log.info("full garbage collection: %d unreachable objects, %.0f ms", found,
                 (time.perf_counter() - started) * 1000)
        return found

    async def run_forever(self, quiet: asyncio.Lock) -> None:
        """Run the full collections when due, holding `quiet` (no push runs meanwhile)."""
        while True:
            await asyncio.sleep(CHECK_S)
            if self.full_due():
                async with quiet:
                    self.full_collection()


__all__ = ["CollectorPauses"]
