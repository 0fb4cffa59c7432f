"""Workload certificate rotation: renew each proxy's certificate when it is due and push it
over SDS. Only the secrets change, so Envoy keeps its listeners and connections (new
handshakes use the new certificate).

Owns: when to look (the timing rules below) and what a renewal publishes. Must not know:
when a certificate is due (the identity's schedule decides: half of its lifetime, with
jitter), how resources reach Envoy (the daemon's `publish`).

Timing rules:
1. Sleep until the earliest scheduled renewal, but never longer than `CHECK_EVERY_S`;
   with nothing scheduled, look again after `CHECK_EVERY_S`.
2. A renewal already due runs at once, without sleeping.
3. A push (`wake`) may have changed the schedule (new proxies, a new CA, a shorter TTL):
   the sleep ends and the wait is worked out again; nothing is renewed for the wake itself.
4. Renewals run under the daemon's sync lock, so they never interleave with a push.
5. A due pod whose proxy is gone (no pod, or never given resources) is forgotten, not
   renewed; one that the CA cannot sign for is logged (naming the pod), stays due, and is
   shown by `status` until a renewal of it succeeds.
6. After a pass in which the CA failed, the next pass waits `RETRY_FIRST_S`, doubling
   with each failing pass up to `RETRY_MAX_S`, however overdue the certificates are and
   whatever wakes it: a CA that cannot sign must not turn rotation into a loop holding the
   sync lock. The first pass without a failure ends the back-off (a recovered CA resumes
   rotation at its next retry).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sailmesh.ca import CAError, IssuedCert
from sailmesh.meshd.planner import PlannedPod
from sailmesh.meshd.pod_views import PodKey, proxy_node_id
from sailmesh.translate import type_urls
from sailmesh.translate.identity import identity_secrets

log = logging.getLogger("sailmesh.meshd")

CHECK_EVERY_S = 30.0
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0

Resources = Mapping[str, Mapping[str, Any]]


class RenewingIdentities(Protocol):
    """The part of `MeshIdentity` rotation uses."""

    def next_due(self) -> datetime | None: ...

    def due(self, now: datetime) -> list[PodKey]: ...

    def forget(self, pod: PodKey) -> None: ...

    def certificate(self, pod: PodKey, service_account: str, now: datetime) -> IssuedCert: ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def _woken_within(event: asyncio.Event, seconds: float) -> bool:
    """True when `event` is set within `seconds`, False when the time runs out."""
    try:
        await asyncio.wait_for(event.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


def wait_seconds(due_at: datetime | None, now: datetime) -> float:
    """How long to sleep before renewing (rules 1 and 2): 0 renews at once."""
    if due_at is None:
        return CHECK_EVERY_S
    return min(max((due_at - now).total_seconds(), 0.0), CHECK_EVERY_S)


@dataclass(frozen=True)
class Failure:
    """A certificate the CA could not renew: why, since when, and when rotation retries."""

    error: str
    since: datetime
    retry_at: datetime


class CertificateRotation:
    """Runs the timing rules over `identity`. `pods` and `resources` are the daemon's
    current planned pods and the last resources given to each proxy (by node id);
    `publish(node_id, resources)` hands a proxy its renewed resources."""

    def __init__(self, identity: RenewingIdentities, lock: asyncio.Lock,
                 pods: Callable[[], Mapping[PodKey, PlannedPod]],
                 resources: Mapping[str, Resources],
                 publish: Callable[[str, Resources], None],
                 clock: Callable[[], datetime] = _utc_now,
                 woken_within: Callable[[asyncio.Event, float], Awaitable[bool]] = _woken_within,
                 ) -> None:
        self._identity = identity
        self._lock = lock
        self._pods = pods
        self._resources = resources
        self._publish = publish
        self._clock = clock
        self._woken_within = woken_within
        self._wake = asyncio.Event()
        self._retry_in = 0.0  # the back-off after a failing pass (rule 6); 0: none
        self._retry_at: datetime | None = None
        self.failures: dict[PodKey, Failure] = {}

    def wake(self) -> None:
        """The schedule may have changed (rule 3)."""
        self._wake.set()

    async def run_forever(self) -> None:
        while True:
            now = self._clock()
            delay = wait_seconds(self._identity.next_due(), now)
            if self._retry_at is not None:  # rule 6
                delay = max(delay, (self._retry_at - now).total_seconds())
            self._wake.clear()
            if delay > 0 and await self._woken_within(self._wake, delay):
                continue  # a push changed the schedule: recompute
            async with self._lock:
                self.renew_due(self._clock())

    def renew_due(self, now: datetime) -> list[PodKey]:
        """Renew and publish every certificate due at `now`; returns the pods renewed."""
        renewed = []
        failed: dict[PodKey, str] = {}
        pods = self._pods()
        for key in self._identity.due(now):
            pod = pods.get(key)
            node_id = proxy_node_id(key, pod) if pod else ""
            if pod is None or node_id not in self._resources:  # the proxy is gone
                self._identity.forget(key)
                self.failures.pop(key, None)
                continue
            try:
                cert = self._identity.certificate(key, pod.service_account, now)
            except CAError as exc:
                failed[key] = str(exc)
                continue
            secrets = identity_secrets(cert.cert_chain_pem, cert.key_pem, cert.root_pem)
            resources = dict(self._resources[node_id])
            resources[type_urls.SECRET] = {**resources.get(type_urls.SECRET, {}), **secrets}
            self._publish(node_id, resources)
            renewed.append(key)
            if self.failures.pop(key, None) is not None:
                log.info("renewed the workload certificate of %s/%s; the CA signs again", *key)
            else:
                log.info("renewed the workload certificate of %s/%s", *key)
        self._back_off(failed, now)
        return renewed

    def _back_off(self, failed: Mapping[PodKey, str], now: datetime) -> None:
        """Rule 6: the wait before the next pass after `failed` (none: no wait)."""
        if not failed:
            self._retry_in, self._retry_at = 0.0, None
            return
        self._retry_in = min(max(self._retry_in * 2, RETRY_FIRST_S), RETRY_MAX_S)
        self._retry_at = now + timedelta(seconds=self._retry_in)
        for key, error in failed.items():
            before = self.failures.get(key)
            self.failures[key] = Failure(error, before.since if before else now, self._retry_at)
            log.error("cannot renew the certificate of %s/%s: %s; retrying in %g s",
                      *key, error, self._retry_in)

    def status(self) -> list[dict[str, str]]:
        """The certificates the CA could not renew, for `sailctl status`."""
        return [{"namespace": ns, "pod": name, "error": f.error, "since": f.since.isoformat(),
                 "retryAt": f.retry_at.isoformat()}
                for (ns, name), f in sorted(self.failures.items())]
