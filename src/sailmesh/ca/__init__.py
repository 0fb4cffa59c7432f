"""The mesh CA: roots and plug-in CAs, SPIFFE workload certificates, rotation schedule.

Pure apart from `storage` (the root's files): time arrives as `now`, randomness as `rng`,
and nothing here knows Envoy or xDS. Every refusal is a `CAError`.

    authority.py  CertificateAuthority (self-signed root, Istio's `cacerts` plug-in CA)
    workload.py   issue_workload_cert -> IssuedCert (X.509-SVID), spiffe_id
    rotation.py   renewal_time, RotationSchedule
    storage.py    load_or_create_root (state dir, key 0600)
    keys.py, spiffe.py, times.py, errors.py  key material, SPIFFE grammar, instants, CAError
"""

from sailmesh.ca.authority import CertificateAuthority, PemLayout
from sailmesh.ca.errors import CAError
from sailmesh.ca.keys import KEY_TYPES, KeyType
from sailmesh.ca.rotation import RotationSchedule, renewal_time
from sailmesh.ca.spiffe import check_spiffe_id, spiffe_id
from sailmesh.ca.storage import load_or_create_root
from sailmesh.ca.workload import DEFAULT_TTL, MAX_TTL, IssuedCert, issue_workload_cert

__all__ = [
    "DEFAULT_TTL",
    "KEY_TYPES",
    "MAX_TTL",
    "CAError",
    "CertificateAuthority",
    "IssuedCert",
    "KeyType",
    "PemLayout",
    "RotationSchedule",
    "check_spiffe_id",
    "issue_workload_cert",
    "load_or_create_root",
    "renewal_time",
    "spiffe_id",
]
