"""Renewal instants (Istio: 50% of the lifetime, with jitter) and the rotation schedule."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from ca_material import NOW

from sailmesh.ca import CAError, RotationSchedule, renewal_time

DAY = timedelta(hours=24)


@pytest.mark.parametrize(
    ("lifetime", "fraction", "jitter"),
    [
        (DAY + timedelta(minutes=1), 0.5, 0.01),  # a default workload cert (backdated 1 min)
        (timedelta(seconds=10), 0.5, 0.2),  # the short TTLs rotation tests use
        (timedelta(days=90), 0.8, 0.19),
        (timedelta(microseconds=3), 0.5, 0.49),
        (timedelta(microseconds=1), 0.99, 0.0),
    ],
)
def test_renewal_stays_within_its_bounds_for_many_seeds(lifetime, fraction, jitter):
    not_before, not_after = NOW, NOW + lifetime
    low = not_before + lifetime * (fraction - jitter) - timedelta(microseconds=1)
    high = not_before + lifetime * (fraction + jitter) + timedelta(microseconds=1)
    seen = set()
    for seed in range(2000):
        when = renewal_time(not_before, not_after, fraction=fraction, jitter=jitter, rng=random.Random(seed))
        assert not_before <= when < not_after, seed
        assert low <= when <= high, seed
        seen.add(when)
    if jitter and lifetime >= timedelta(seconds=1):
        # The jitter is used, and across its whole range.
        assert len(seen) > 1000
        spread = (max(seen) - min(seen)) / (lifetime * 2 * jitter)
        assert spread > 0.95


def test_no_jitter_is_exactly_half():
    assert renewal_time(NOW, NOW + DAY, jitter=0.0, rng=random.Random(0)) == NOW + DAY / 2


def test_same_seed_same_instant():
    a = renewal_time(NOW, NOW + DAY, jitter=0.01, rng=random.Random(7))
    b = renewal_time(NOW, NOW + DAY, jitter=0.01, rng=random.Random(7))
    assert a == b


@pytest.mark.parametrize(
    ("fraction", "jitter", "lifetime", "message"),
    [
        (0.5, 0.5, DAY, "within"),  # could land on expiry
        (0.1, 0.2, DAY, "within"),  # could land before issuance
        (1.0, 0.0, DAY, "within"),
        (0.5, -0.1, DAY, "jitter must not be negative"),
        (0.5, 0.01, timedelta(0), "must be later than"),
        (0.5, 0.01, -DAY, "must be later than"),
    ],
)
def test_renewal_rejects(fraction, jitter, lifetime, message):
    with pytest.raises(CAError, match=message):
        renewal_time(NOW, NOW + lifetime, fraction=fraction, jitter=jitter, rng=random.Random(0))


def test_renewal_rejects_naive_datetimes():
    with pytest.raises(CAError, match="not_before must be timezone-aware"):
        renewal_time(NOW.replace(tzinfo=None), NOW + DAY, jitter=0.0, rng=random.Random(0))


def test_schedule_due_in_order_and_stays_until_renewed():
    schedule: RotationSchedule[str] = RotationSchedule(random.Random(1), jitter=0.0)
    assert schedule.due(NOW) == [] and schedule.next_due() is None
    schedule.track("b", NOW, NOW + timedelta(hours=2))  # renews at +1h
    schedule.track("a", NOW, NOW + timedelta(hours=4))  # renews at +2h
    schedule.set("c", NOW + timedelta(hours=1))  # same instant as b, added later
    assert len(schedule) == 3 and "a" in schedule
    assert schedule.next_due() == NOW + timedelta(hours=1)
    assert schedule.due(NOW + timedelta(minutes=59)) == []
    assert schedule.due(NOW + timedelta(hours=1)) == ["b", "c"]
    assert schedule.due(NOW + timedelta(hours=3)) == ["b", "c", "a"]
    # Renewing b: its new certificate moves it to the back.
    new = schedule.track("b", NOW + timedelta(hours=1), NOW + timedelta(hours=9))
    assert new == NOW + timedelta(hours=5) == schedule.renewal_of("b")
    assert schedule.due(NOW + timedelta(hours=3)) == ["c", "a"]
    schedule.forget("c")
    schedule.forget("missing")
    assert schedule.due(NOW + timedelta(days=1)) == ["a", "b"]
    assert schedule.renewal_of("c") is None


def test_schedule_uses_its_rng_and_bounds():
    schedule: RotationSchedule[tuple[str, str]] = RotationSchedule(random.Random(3))
    key = ("test", "httpbin")
    for _ in range(500):
        when = schedule.track(key, NOW, NOW + DAY)
        assert NOW + DAY * 0.49 <= when <= NOW + DAY * 0.51


def test_schedule_rejects_naive_now():
    schedule: RotationSchedule[str] = RotationSchedule(random.Random(0))
    with pytest.raises(CAError, match="now must be timezone-aware"):
        schedule.due(NOW.replace(tzinfo=None))
