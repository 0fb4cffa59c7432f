"""Workload certificate rotation (meshd/rotation.py) on a fake clock: when it looks, what it
renews, what it publishes."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sailmesh.ca import CAError, IssuedCert
from sailmesh.meshd.identity import MeshIdentity, PodKey
from sailmesh.meshd.planner import PlannedPod
from sailmesh.meshd.rotation import (
    CHECK_EVERY_S,
    RETRY_MAX_S,
    CertificateRotation,
    wait_seconds,
)
from sailmesh.model.snapshot import Snapshot
from sailmesh.resources.operator import MeshConfig
from sailmesh.runtime.plans import PodPlan
from sailmesh.translate import type_urls
from sailmesh.translate.identity import ROOT_CA, WORKLOAD_CERT

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WEB: PodKey = ("test", "web-0")


def _pods(*keys: PodKey, router: bool = False) -> dict[PodKey, PlannedPod]:
    return {k: PlannedPod(PodPlan(k[0], k[1], {}, ()), deployment=k[1].rsplit("-", 1)[0],
                          service_account="web-sa", container_ports={}, router=router,
                          sidecar=not router)
            for k in keys}


@pytest.mark.parametrize(("due_in", "wait"), [
    (None, CHECK_EVERY_S),  # nothing scheduled: look again later
    (10.0, 10.0),  # sleep until the renewal
    (3600.0, CHECK_EVERY_S),  # never longer than the check period
    (0.0, 0.0),  # due now: renew at once
    (-5.0, 0.0),  # overdue: renew at once
])
def test_wait_before_renewing(due_in: float | None, wait: float) -> None:
    due_at = None if due_in is None else T0 + timedelta(seconds=due_in)
    assert wait_seconds(due_at, T0) == wait


class Schedule:
    """A stand-in for MeshIdentity: certificates due at set instants; a renewal is due
    again `renew_every` later."""

    def __init__(self, due: dict[PodKey, datetime], renew_every: timedelta) -> None:
        self.at = due
        self.renew_every = renew_every
        self.issued: list[tuple[PodKey, str, datetime]] = []

    def next_due(self) -> datetime | None:
        return min(self.at.values(), default=None)

    def due(self, now: datetime) -> list[PodKey]:
        return sorted(k for k, t in self.at.items() if t <= now)

    def forget(self, pod: PodKey) -> None:
        del self.at[pod]

    def certificate(self, pod: PodKey, service_account: str, now: datetime) -> IssuedCert:
        self.issued.append((pod, service_account, now))
        self.at[pod] = now + self.renew_every
        return IssuedCert(b"chain", b"key", b"root", len(self.issued), now, now, "spiffe://x")


class Stop(Exception):
    pass


def _run(schedule: Schedule, pods: dict[PodKey, PlannedPod], resources: dict[str, Any],
         woken: list[bool], ticks: int) -> tuple[list[tuple[datetime, float]], list[str]]:
    """Runs rotation for `ticks` sleeps on a fake clock; `woken` says which sleeps a push
    ends early (False: the sleep runs out). Returns (clock, seconds) of every sleep and the
    nodes published."""
    now = [T0]
    sleeps: list[tuple[datetime, float]] = []
    published: list[str] = []

    async def woken_within(event: asyncio.Event, seconds: float) -> bool:
        if len(sleeps) == ticks:
            raise Stop
        sleeps.append((now[0], seconds))
        if event.is_set():
            return True
        if woken and woken.pop(0):  # a push 1 s into the sleep
            now[0] += timedelta(seconds=1)
            rotation.wake()
            return True
        now[0] += timedelta(seconds=seconds)
        return False

    def publish(node_id: str, res: Mapping[str, Any]) -> None:
        resources[node_id] = res
        published.append(f"{node_id}@{(now[0] - T0).total_seconds():g}")

    rotation = CertificateRotation(schedule, asyncio.Lock(), lambda: pods, resources,
                                   publish, clock=lambda: now[0], woken_within=woken_within)

    async def main() -> None:
        with pytest.raises(Stop):
            await rotation.run_forever()

    asyncio.run(main())
    return sleeps, published


def test_sleeps_until_each_renewal_in_steps_of_at_most_the_check_period() -> None:
    schedule = Schedule({WEB: T0 + timedelta(seconds=70)}, renew_every=timedelta(seconds=45))
    sleeps, published = _run(schedule, _pods(WEB), {"sidecar~web-0.test": {}}, [], ticks=5)
    assert [(int((t - T0).total_seconds()), s) for t, s in sleeps] == [
        (0, 30.0), (30, 30.0), (60, 10.0),  # renewed at 70 s, next due at 115 s
        (70, 30.0), (100, 15.0)]  # renewed at 115 s
    assert published == ["sidecar~web-0.test@70", "sidecar~web-0.test@115"]
    assert schedule.issued == [(WEB, "web-sa", T0 + timedelta(seconds=70)),
                               (WEB, "web-sa", T0 + timedelta(seconds=115))]


def test_an_overdue_certificate_renews_without_sleeping() -> None:
    schedule = Schedule({WEB: T0 - timedelta(seconds=1)}, renew_every=timedelta(seconds=45))
    sleeps, published = _run(schedule, _pods(WEB), {"sidecar~web-0.test": {}}, [], ticks=1)
    assert published == ["sidecar~web-0.test@0"]
    assert sleeps == [(T0, 30.0)]  # the first sleep comes after the renewal


def test_a_push_ends_the_sleep_and_the_wait_is_worked_out_again() -> None:
    schedule = Schedule({WEB: T0 + timedelta(seconds=20)}, renew_every=timedelta(seconds=45))
    sleeps, published = _run(schedule, _pods(WEB), {"sidecar~web-0.test": {}}, [True], ticks=3)
    # Woken after 1 s: nothing renewed for the wake, and the next sleep is the 19 s left.
    assert [(int((t - T0).total_seconds()), s) for t, s in sleeps] == [
        (0, 20.0), (1, 19.0), (20, 30.0)]
    assert published == ["sidecar~web-0.test@20"]


def test_renewals_wait_for_a_running_push() -> None:
    schedule = Schedule({WEB: T0}, renew_every=timedelta(hours=1))
    resources: dict[str, Any] = {"sidecar~web-0.test": {}}
    published: list[str] = []

    async def main() -> None:
        lock = asyncio.Lock()
        rotation = CertificateRotation(schedule, lock, lambda: _pods(WEB), resources,
                                       lambda n, _r: published.append(n), clock=lambda: T0)
        async with lock:  # a push runs
            task = asyncio.ensure_future(rotation.run_forever())
            await asyncio.sleep(0.05)
            assert published == []
        await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(main())
    assert published == ["sidecar~web-0.test"]


def test_a_renewal_publishes_new_secrets_beside_the_proxy_s_other_resources(
        tmp_path: Path) -> None:
    identity = MeshIdentity(tmp_path, rng=random.Random(7))
    assert identity.configure(Snapshot(), MeshConfig(), T0) == []
    first = identity.certificate(WEB, "web-sa", T0)
    identity.certificate(("test", "gone-0"), "web-sa", T0)  # its pod was deleted
    identity.certificate(("test", "new-0"), "web-sa", T0)  # planned, never given config
    listeners = {"virtualInbound": object()}
    resources: dict[str, Any] = {
        "router~web-0.test": {type_urls.LISTENER: listeners,
                              type_urls.SECRET: {"kubernetes://site": "site secret"}}}
    published: dict[str, Any] = {}

    def publish(node_id: str, res: Mapping[str, Any]) -> None:
        published[node_id] = res

    rotation = CertificateRotation(identity, asyncio.Lock(),
                                   lambda: _pods(WEB, ("test", "new-0"), router=True),
                                   resources, publish)
    renewal = identity.schedule.renewal_of(WEB)
    assert renewal is not None and T0 < renewal < first.not_after
    assert rotation.renew_due(renewal - timedelta(seconds=1)) == []
    assert published == {}
    # The other two fall due at their own (jittered) times.
    latest = max(renewal, *(identity.schedule.renewal_of(("test", n)) or T0
                            for n in ("gone-0", "new-0")))
    assert rotation.renew_due(latest) == [WEB]
    new = identity.certs[WEB]
    assert new.serial != first.serial and new.not_before >= first.not_before
    sent = published["router~web-0.test"]
    assert sent[type_urls.LISTENER] is listeners  # only the secrets change
    assert set(sent[type_urls.SECRET]) == {"kubernetes://site", WORKLOAD_CERT, ROOT_CA}
    chain = sent[type_urls.SECRET][WORKLOAD_CERT].tls_certificate.certificate_chain.inline_bytes
    assert chain == new.cert_chain_pem
    # The others' certificates are forgotten: no identity outlives its proxy.
    assert set(identity.certs) == {WEB}


class FailingCA(Schedule):
    """A CA that cannot sign its first `failures` certificates (an unreadable key, a plugged
    CA past its end), then signs again."""

    def __init__(self, due: dict[PodKey, datetime], renew_every: timedelta, failures: int) -> None:
        super().__init__(due, renew_every)
        self.failures = failures
        self.attempts: list[datetime] = []

    def certificate(self, pod: PodKey, service_account: str, now: datetime) -> IssuedCert:
        self.attempts.append(now)
        if len(self.attempts) <= self.failures:
            raise CAError("the CA's signing key is unreadable")
        return super().certificate(pod, service_account, now)


def _seconds(times: list[datetime]) -> list[float]:
    return [(t - T0).total_seconds() for t in times]


def test_a_failing_ca_is_retried_with_a_bounded_back_off_then_rotation_resumes() -> None:
    """Before the back-off, an overdue certificate the CA could not sign was retried at once,
    again and again, holding the sync lock: no sleep at all between the attempts."""
    schedule = FailingCA({WEB: T0 - timedelta(seconds=1)}, timedelta(seconds=45), failures=7)
    sleeps, published = _run(schedule, _pods(WEB), {"sidecar~web-0.test": {}}, [], ticks=9)
    # 1 s, doubling, at most RETRY_MAX_S (30 s) between attempts; the 8th is signed. Signed
    # again, the back-off is over: the next renewal comes at its own time (91 + 45 s).
    assert RETRY_MAX_S == 30
    assert _seconds(schedule.attempts) == [0, 1, 3, 7, 15, 31, 61, 91, 136]
    assert [s for _, s in sleeps] == [1, 2, 4, 8, 16, 30, 30, 30, 15]
    assert published == ["sidecar~web-0.test@91", "sidecar~web-0.test@136"]


def test_a_push_during_the_back_off_does_not_retry_early() -> None:
    schedule = FailingCA({WEB: T0}, timedelta(seconds=45), failures=2)
    sleeps, _ = _run(schedule, _pods(WEB), {"sidecar~web-0.test": {}}, [False, True], ticks=4)
    # The second back-off (2 s, from 1 s) is woken at 2 s: the 1 s left is still waited.
    assert [(int((t - T0).total_seconds()), s) for t, s in sleeps] == [
        (0, 1.0), (1, 2.0), (2, 1.0), (3, 30.0)]
    assert _seconds(schedule.attempts) == [0, 1, 3]


def test_a_failing_renewal_is_logged_and_shown_until_the_ca_signs_again(
        caplog: pytest.LogCaptureFixture) -> None:
    schedule = FailingCA({WEB: T0}, timedelta(hours=1), failures=2)
    rotation = CertificateRotation(schedule, asyncio.Lock(), lambda: _pods(WEB),
                                   {"sidecar~web-0.test": {}}, lambda n, r: None)
    with caplog.at_level("INFO", logger="sailmesh.meshd"):
        assert rotation.renew_due(T0) == []
        assert rotation.renew_due(T0 + timedelta(seconds=1)) == []
        assert ("cannot renew the certificate of test/web-0: the CA's signing key is unreadable;"
                " retrying in 2 s") in caplog.text
        assert rotation.renew_due(T0 + timedelta(seconds=3)) == [WEB]
    assert rotation.status() == []
    assert "renewed the workload certificate of test/web-0; the CA signs again" in caplog.text


def test_a_failing_renewal_is_shown_with_the_pod_and_the_next_try() -> None:
    schedule = FailingCA({WEB: T0}, timedelta(hours=1), failures=2)
    rotation = CertificateRotation(schedule, asyncio.Lock(), lambda: _pods(WEB),
                                   {"sidecar~web-0.test": {}}, lambda n, r: None)
    rotation.renew_due(T0)
    rotation.renew_due(T0 + timedelta(seconds=1))
    assert rotation.status() == [{
        "namespace": "test", "pod": "web-0", "error": "the CA's signing key is unreadable",
        "since": T0.isoformat(), "retryAt": (T0 + timedelta(seconds=3)).isoformat()}]
    assert rotation.renew_due(T0 + timedelta(seconds=3)) == [WEB]
    assert rotation.status() == []
