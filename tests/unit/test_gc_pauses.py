"""meshd's garbage collector policy: what a push leaves is frozen, full collections run idle."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from sailmesh.meshd import gc_pauses
from sailmesh.meshd.gc_pauses import CollectorPauses


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> Node:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.collect()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_what_a_push_leaves_is_not_walked_by_automatic_collections() -> None:
    pauses = CollectorPauses()
    kept = cycle()
    alive = weakref.ref(kept)
    pauses.settle()
    assert gc.get_freeze_count() > 0
    del kept
    gc.collect()  # the full collection CPython runs on its own
    assert alive() is not None, "a frozen cycle is not collected by gc.collect()"
    assert pauses.full_collection() >= 2
    assert alive() is None
    assert gc.get_freeze_count() > 0, "what stays after a full collection is frozen again"


def test_garbage_cycles_of_the_push_itself_are_freed_when_it_settles() -> None:
    young = weakref.ref(cycle())
    CollectorPauses().settle()
    assert young() is None


def test_full_collections_wait_for_idle_time_or_a_long_busy_spell() -> None:
    clock = Clock()
    pauses = CollectorPauses(clock)
    clock.now += gc_pauses.FULL_EVERY_S
    pauses.settle()
    assert not pauses.full_due(), "a push just ended"
    clock.now += gc_pauses.IDLE_S
    assert pauses.full_due()
    pauses.full_collection()
    full_at = clock.now
    clock.now += gc_pauses.IDLE_S
    assert not pauses.full_due(), "one ran less than FULL_EVERY_S ago"
    # Pushes every second: never idle, yet a full collection comes after FORCE_FULL_S.
    while clock.now < full_at + gc_pauses.FORCE_FULL_S - 1:
        assert not pauses.full_due()
        clock.now += 1
        pauses.settle()
    clock.now += 1
    assert pauses.full_due()


def test_a_full_collection_never_runs_while_a_push_holds_the_lock(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gc_pauses, "CHECK_S", 0.01)
    clock = Clock()
    pauses = CollectorPauses(clock)
    clock.now += gc_pauses.FORCE_FULL_S
    ran: list[bool] = []
    lock = asyncio.Lock()
    monkeypatch.setattr(pauses, "full_collection", lambda: ran.append(lock.locked()))

    async def push_then_idle() -> None:
        async with lock:
            task = asyncio.ensure_future(pauses.run_forever(lock))
            await asyncio.sleep(0.05)
            assert not ran
        await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(push_then_idle())
    assert ran and all(ran), "ran, and only while holding the lock itself"
