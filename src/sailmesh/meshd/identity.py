"""Citadel's job in the daemon: which CA signs, one workload certificate per proxy, renewal
on schedule, and the trust bundle published as ConfigMap `istio-ca-root-cert`.

Owns: choosing the CA (Istio's plug-in Secret `istio-system/cacerts` when present, else the
self-signed root kept in the state dir), the certificate of every proxy keyed by pod, its
renewal time, and the `status` view of both. Time is always passed in; keys never leave
this object except as SDS secrets. Must not know: xDS streams, pods, translation.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes

from sailmesh.ca import (
    DEFAULT_TTL,
    MAX_TTL,
    CAError,
    CertificateAuthority,
    IssuedCert,
    KeyType,
    RotationSchedule,
    issue_workload_cert,
    load_or_create_root,
    spiffe_id,
)
from sailmesh.model.snapshot import Snapshot
from sailmesh.resources.base import Resource
from sailmesh.resources.core import ConfigMap, Namespace, Secret
from sailmesh.resources.durations import duration_seconds
from sailmesh.resources.kinds import KINDS
from sailmesh.resources.operator import MeshConfig

PLUGIN_SECRET = "cacerts"
ROOT_CONFIGMAP = "istio-ca-root-cert"
ROOT_CONFIGMAP_KEY = "root-cert.pem"
TTL_KEY = "SECRET_TTL"  # meshConfig.defaultConfig.proxyMetadata.SECRET_TTL, as in Istio

PodKey = tuple[str, str]  # (namespace, pod)


@dataclass(frozen=True)
class Problem:
    ref: str
    field: str | None
    message: str


def workload_ttl(mesh: MeshConfig) -> tuple[timedelta, Problem | None]:
    """The workload certificate TTL from meshConfig.defaultConfig.proxyMetadata.SECRET_TTL."""
    raw = ((mesh.default_config or {}).get("proxyMetadata") or {}).get(TTL_KEY)
    if raw is None:
        return DEFAULT_TTL, None
    field = f"spec.meshConfig.defaultConfig.proxyMetadata.{TTL_KEY}"
    try:
        ttl = timedelta(seconds=duration_seconds(str(raw)))
    except ValueError as exc:
        return DEFAULT_TTL, Problem("IstioOperator", field, f"{exc}; using {DEFAULT_TTL}")
    if not timedelta(seconds=1) <= ttl <= MAX_TTL:
        return DEFAULT_TTL, Problem("IstioOperator", field,
                                    f"{raw} is outside 1s..{MAX_TTL.days}d; using {DEFAULT_TTL}")
    return ttl, None


class MeshIdentity:
    def __init__(self, state_dir: Path, key_type: KeyType = "ecdsa-p256",
                 rng: random.Random | None = None) -> None:
        self.state_dir = state_dir
        self.key_type: KeyType = key_type
        self.ca: CertificateAuthority | None = None
        self.source = ""
        self._plugin_digest: str | None = None
        self.certs: dict[PodKey, IssuedCert] = {}
        self.issued_at: dict[PodKey, datetime] = {}
        self.schedule: RotationSchedule[PodKey] = RotationSchedule(rng or random.SystemRandom())
        self.ttl = DEFAULT_TTL
        self.trust_domain = "cluster.local"

    # --- the CA ----------------------------------------------------------------------------

    def configure(self, snap: Snapshot, mesh: MeshConfig, now: datetime) -> list[Problem]:
        """Pick the CA for this snapshot. A broken `cacerts` keeps the CA in use (fail closed:
        no identity is issued by an unintended CA) and is reported. A change of CA or trust
        domain drops every certificate, so each proxy gets one from the new CA."""
        problems: list[Problem] = []
        self.ttl, ttl_problem = workload_ttl(mesh)
        if ttl_problem:
            problems.append(ttl_problem)
        if mesh.trust_domain != self.trust_domain:
            self.trust_domain = mesh.trust_domain
            self._drop_all()
        plugin = snap.get(Secret, mesh.root_namespace, PLUGIN_SECRET)
        if plugin is not None:
            values = plugin.values()
            digest = hashlib.sha256(repr(sorted(values.items())).encode()).hexdigest()
            if digest != self._plugin_digest:
                try:
                    self.ca = CertificateAuthority.from_plugin(values)
                except CAError as exc:
                    problems.append(Problem(
                        f"Secret {mesh.root_namespace}/{PLUGIN_SECRET}", "data",
                        f"plug-in CA rejected, {'keeping the CA in use' if self.ca else 'no CA'}: {exc}"))
                    return problems
                self._plugin_digest = digest
                self.source = f"plug-in CA (Secret {mesh.root_namespace}/{PLUGIN_SECRET})"
                self._drop_all()
            return problems
        if self.ca is None or self._plugin_digest is not None:
            self.ca = load_or_create_root(self.state_dir, mesh.trust_domain, self.key_type, now)
            self._plugin_digest = None
            self.source = f"self-signed root ({self.state_dir / 'ca'})"
            self._drop_all()
        return problems

    def root_pem(self) -> bytes:
        if self.ca is None:
            raise CAError("no CA configured yet")
        return self.ca.root_pem

    def root_configmaps(self, snap: Snapshot, namespaces: set[str]) -> list[Resource]:
        """ConfigMap `istio-ca-root-cert` for every namespace whose copy is missing or stale."""
        if self.ca is None:
            return []
        root = self.ca.root_pem.decode()
        out: list[Resource] = []
        for ns in sorted(namespaces | {n.name for n in snap.of_kind(Namespace)}):
            current = snap.get(ConfigMap, ns, ROOT_CONFIGMAP)
            if current is not None and current.data.get(ROOT_CONFIGMAP_KEY) == root:
                continue
            out.append(KINDS["ConfigMap"].model_validate({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": ROOT_CONFIGMAP, "namespace": ns,
                             "labels": {"istio.io/config": "true"}},
                "data": {ROOT_CONFIGMAP_KEY: root}}))
        return out

    # --- workload certificates -------------------------------------------------------------

    def certificate(self, pod: PodKey, service_account: str, now: datetime) -> IssuedCert:
        """The pod's current certificate, issued now if it has none, its identity changed,
        or it has reached its renewal time."""
        if self.ca is None:
            raise CAError("no CA configured yet")
        want = spiffe_id(self.trust_domain, pod[0], service_account)
        cert = self.certs.get(pod)
        renew_at = self.schedule.renewal_of(pod)
        # A shorter TTL in meshConfig applies at once, not only at the next renewal.
        too_long = cert is not None and cert.not_after - self.issued_at[pod] > self.ttl
        if (cert is None or cert.spiffe_id != want or too_long
                or (renew_at is not None and renew_at <= now)):
            cert = issue_workload_cert(self.ca, spiffe_id=want, ttl=self.ttl, now=now)
            self.certs[pod] = cert
            self.issued_at[pod] = now
            # Renew at half of the time left from now (with jitter); not from not_before,
            # which is backdated for clock skew and would make short TTLs renew late.
            self.schedule.track(pod, now, cert.not_after)
        return cert

    def due(self, now: datetime) -> list[PodKey]:
        return self.schedule.due(now)

    def next_due(self) -> datetime | None:
        return self.schedule.next_due()

    def forget(self, pod: PodKey) -> None:
        self.certs.pop(pod, None)
        self.issued_at.pop(pod, None)
        self.schedule.forget(pod)

    def keep_only(self, pods: set[PodKey]) -> None:
        for gone in set(self.certs) - pods:
            self.forget(gone)

    def _drop_all(self) -> None:
        self.keep_only(set())

    # --- status ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        if self.ca is None:
            return {"configured": False}
        root = self.ca.root
        return {
            "configured": True,
            "source": self.source,
            "trustDomain": self.trust_domain,
            "keyType": self.ca.key_type,
            "root": {
                "subject": root.subject.rfc4514_string(),
                "notBefore": root.not_valid_before_utc.isoformat(),
                "notAfter": root.not_valid_after_utc.isoformat(),
                "sha256": root.fingerprint(hashes.SHA256()).hex(":"),
            },
            "signer": self.ca.signing_cert.subject.rfc4514_string(),
            "workloadTTLSeconds": self.ttl.total_seconds(),
            "identities": [
                {
                    "namespace": pod[0], "pod": pod[1], "spiffeId": cert.spiffe_id,
                    "serial": format(cert.serial, "x"),
                    "issued": self.issued_at[pod].isoformat(),
                    "notAfter": cert.not_after.isoformat(),
                    "renewal": (r.isoformat() if (r := self.schedule.renewal_of(pod)) else None),
                }
                for pod, cert in sorted(self.certs.items())
            ],
        }
