"""OpenShift's service CA operator: serving certificates for annotated Services and the CA
bundle for annotated ConfigMaps, decided from a snapshot.

Owns: every rule of the operator's serving-cert and CA-bundle controllers that a user can
see — which Service asks for a certificate, the names it covers, the Secret it gets
(name, type, keys, annotations, owner), the Service's signed-by and error annotations,
when a certificate is re-issued, and the ConfigMap injection; also the garbage
collection Kubernetes does for such a Secret once its Service is gone. Signing is
injected (`Signer`); the result is data (objects to write, keys to delete). Must not
know: files, HAProxy, the store.

Facts (openshift/service-ca-operator, pkg/controller/api and servingcert):
- Service annotation `service.beta.openshift.io/serving-cert-secret-name` (or the older
  `service.alpha.openshift.io/…`; beta wins) names a Secret of type kubernetes.io/tls with
  `tls.crt` (the certificate, then the CA) and `tls.key`, for `<svc>.<ns>.svc` and
  `<svc>.<ns>.svc.cluster.local`; a headless Service also gets `*.<svc>.<ns>.svc` and
  `*.<svc>.<ns>.svc.cluster.local`. The Secret is annotated with the originating
  Service's UID and name (with the prefix of the annotation used), and with the
  certificate's expiry (RFC 3339) under both prefixes; its owner is the Service.
- The Service is annotated `…/serving-cert-signed-by: <CA common name>` (both prefixes);
  a failure sets `…/serving-cert-generation-error` and `…-error-num` instead.
- A Secret not issued by the current CA is re-issued, unless it belongs to another
  Service (different originating UID): that is the error "secret ns/name does not have
  corresponding service UID …", and the Secret is left alone.
- A deleted Secret is issued again. A ConfigMap annotated `…/inject-cabundle: "true"`
  (either prefix, any case) gets data `service-ca.crt` = the CA bundle, and only that.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from cryptography import x509

from sailmesh.model.snapshot import Snapshot
from sailmesh.resources.base import Resource
from sailmesh.resources.core import ConfigMap, Secret, Service
from sailmesh.resources.kinds import KINDS

BETA = "service.beta.openshift.io/"
ALPHA = "service.alpha.openshift.io/"
SECRET_NAME = "serving-cert-secret-name"
SIGNED_BY = "serving-cert-signed-by"
ERROR = "serving-cert-generation-error"
ERROR_NUM = "serving-cert-generation-error-num"
ORIGIN_UID = "originating-service-uid"
ORIGIN_NAME = "originating-service-name"
EXPIRY = "expiry"
INJECT_CABUNDLE = "inject-cabundle"
BUNDLE_KEY = "service-ca.crt"
CLUSTER_DOMAIN = "cluster.local"
# The service CA's name: `openshift-service-serving-signer@<unix time of creation>`.
SIGNER_NAME = "openshift-service-serving-signer"
MAX_RETRIES = 10  # the serving-cert controller stops retrying a Service after 10 failures


class Signer(Protocol):
    name: str  # the CA's common name (what `serving-cert-signed-by` records)
    key_id: bytes  # its SubjectKeyIdentifier (how "issued by the current CA" is told)
    bundle: str  # its certificate, PEM

    def issue(self, dns_names: Sequence[str], service_uid: str,
              now: datetime) -> IssuedServingCert: ...


class IssuedServingCert(Protocol):
    chain_pem: bytes
    key_pem: bytes
    not_after: datetime


@dataclass
class Changes:
    apply: list[Resource] = field(default_factory=list)
    delete: list[tuple[str, str, str]] = field(default_factory=list)


def service_hostname(service: str, namespace: str) -> str:
    """`<svc>.<ns>.svc`: the name a serving certificate is for, and the name a reencrypt
    Route without destinationCACertificate checks."""
    return f"{service}.{namespace}.svc"


def serving_names(svc: Service) -> list[str]:
    """The certificate's DNS names, sorted (the first is its CN, as the operator does)."""
    base = service_hostname(svc.name, svc.namespace)
    names = {base, f"{base}.{CLUSTER_DOMAIN}"}
    if svc.spec.cluster_ip == "None":
        names |= {f"*.{base}", f"*.{base}.{CLUSTER_DOMAIN}"}
    return sorted(names)


def is_service_ca(cert: x509.Certificate) -> bool:
    """A self-signed CA named as OpenShift names its service CA."""
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return (cert.subject == cert.issuer and bool(names)
            and str(names[0].value).startswith(SIGNER_NAME + "@"))


def requested_secret(svc: Service) -> tuple[str, str] | None:
    """(annotation prefix, Secret name) a Service asks for; the beta annotation wins."""
    for prefix in (BETA, ALPHA):
        name = svc.metadata.annotations.get(prefix + SECRET_NAME)
        if name:
            return prefix, name
    return None


def wants_ca_bundle(cm: ConfigMap) -> bool:
    ann = cm.metadata.annotations
    return any(ann.get(p + INJECT_CABUNDLE, "").lower() == "true" for p in (BETA, ALPHA))


def reconcile(snap: Snapshot, signer: Signer, now: datetime) -> Changes:
    """What the operator would write now: Secrets issued or re-issued, Services annotated,
    ConfigMaps given the bundle, Secrets of deleted Services collected."""
    out = Changes()
    services = list(snap.of_kind(Service))
    for svc in services:
        _serve(snap, svc, signer, now, out)
    for cm in snap.of_kind(ConfigMap):
        if wants_ca_bundle(cm) and (cm.data != {BUNDLE_KEY: signer.bundle} or cm.binary_data):
            out.apply.append(_copy(cm, data={BUNDLE_KEY: signer.bundle}, binary_data={}))
    uids = {svc.metadata.uid for svc in services if svc.metadata.uid}
    for sec in snap.of_kind(Secret):
        owners = [o for o in sec.metadata.owner_references or []
                  if o.kind == "Service" and o.api_version == "v1" and o.uid]
        if owners and all(o.uid not in uids for o in owners):
            out.delete.append(sec.key)
    return out


def _serve(snap: Snapshot, svc: Service, signer: Signer, now: datetime, out: Changes) -> None:
    wanted = requested_secret(svc)
    uid = svc.metadata.uid
    if wanted is None or not uid:
        return
    prefix, name = wanted
    ann = svc.metadata.annotations
    existing = snap.get(Secret, svc.namespace, name)
    if existing is not None:
        if issued_by(existing, signer.key_id):
            return
        if _failures(svc) >= MAX_RETRIES:
            return
        theirs = existing.metadata.annotations
        if uid not in (theirs.get(BETA + ORIGIN_UID), theirs.get(ALPHA + ORIGIN_UID)):
            error = (f"secret {svc.namespace}/{name} does not have corresponding service UID "
                     f"{uid}")
            if ann.get(BETA + ERROR) != error:
                num = str(_failures(svc) + 1)
                out.apply.append(_annotate(svc, {BETA + ERROR: error, ALPHA + ERROR: error,
                                                 BETA + ERROR_NUM: num, ALPHA + ERROR_NUM: num}))
            return
    issued = signer.issue(serving_names(svc), uid, now)
    expiry = issued.not_after.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.apply.append(KINDS["Secret"].model_validate({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {
            "name": name, "namespace": svc.namespace,
            "annotations": {prefix + ORIGIN_UID: uid, prefix + ORIGIN_NAME: svc.name,
                            ALPHA + EXPIRY: expiry, BETA + EXPIRY: expiry},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": svc.name,
                                 "uid": uid}],
        },
        "data": {"tls.crt": base64.b64encode(issued.chain_pem).decode(),
                 "tls.key": base64.b64encode(issued.key_pem).decode()},
    }))
    signed = {ALPHA + SIGNED_BY: signer.name, BETA + SIGNED_BY: signer.name}
    cleared = {k: v for k, v in ann.items()
               if k not in {p + s for p in (ALPHA, BETA) for s in (ERROR, ERROR_NUM)}}
    if cleared | signed != ann:
        out.apply.append(_copy(svc, metadata=svc.metadata.model_copy(
            update={"annotations": cleared | signed})))


def issued_by(secret: Secret, key_id: bytes) -> bool:
    """Whether the Secret's first certificate names `key_id` as its authority key."""
    pem = secret.values().get("tls.crt", b"")
    try:
        cert = x509.load_pem_x509_certificates(pem)[0]
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except (ValueError, IndexError, x509.ExtensionNotFound):
        return False
    return aki.key_identifier == key_id


def _failures(svc: Service) -> int:
    ann = svc.metadata.annotations
    raw = ann.get(BETA + ERROR_NUM) or ann.get(ALPHA + ERROR_NUM) or "0"
    return int(raw) if raw.isdigit() else 0


def _annotate(svc: Service, extra: dict[str, str]) -> Resource:
    meta = svc.metadata.model_copy(update={"annotations": {**svc.metadata.annotations, **extra}})
    return _copy(svc, metadata=meta)


def _copy(r: Resource, **update: object) -> Resource:
    return r.model_copy(update=update)


__all__ = ["SIGNER_NAME", "Changes", "Signer", "is_service_ca", "reconcile", "requested_secret",
           "service_hostname", "serving_names", "wants_ca_bundle"]
