"""The self-signed root on disk: `<state>/ca/root-cert.pem` (0644) and `root-key.pem` (0600).

Owns: the only file IO of the ca package — creating the root on first start and reusing it
afterwards, like istiod reusing `istio-ca-secret`. Must not know: workloads, Envoy, what the
state dir holds besides `ca/`.

Files are written atomically (temp file, fsync, rename) with their final mode set before any
byte is written, so the key is never readable by others, not even for a moment.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from sailmesh.ca.authority import CertificateAuthority, PemLayout
from sailmesh.ca.errors import CAError
from sailmesh.ca.keys import KeyType, private_key_pem

CA_DIR = "ca"
ROOT_CERT = "root-cert.pem"
ROOT_KEY = "root-key.pem"
_DIR_MODE = 0o700
_CERT_MODE = 0o644
_KEY_MODE = 0o600
# The root is its own CA certificate and its own trust bundle.
_LAYOUT = PemLayout(cert=ROOT_CERT, key=ROOT_KEY, roots=ROOT_CERT)


def load_or_create_root(
    state_dir: Path, trust_domain: str, key_type: KeyType, now: datetime
) -> CertificateAuthority:
    """The root CA stored under `state_dir/ca/`, created on the first call.

    An existing root is reused as it is: `trust_domain` and `key_type` only shape a new one
    (compare `ca.key_type` to notice a change). A lone cert or key file is an error rather
    than a reason to overwrite: the other half may be a backup being restored.
    """
    ca_dir = Path(state_dir) / CA_DIR
    ca_dir.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
    # mkdir's mode is filtered by the umask and ignored for an existing directory.
    os.chmod(ca_dir, _DIR_MODE)
    cert_path, key_path = ca_dir / ROOT_CERT, ca_dir / ROOT_KEY

    if cert_path.exists() and key_path.exists():
        return _load(ca_dir, cert_path, key_path)
    if cert_path.exists() or key_path.exists():
        present, absent = (cert_path, key_path) if cert_path.exists() else (key_path, cert_path)
        raise CAError(
            f"{present} exists but {absent} does not: restore the missing file, or remove {present} "
            "to create a new root (every workload certificate then changes trust)"
        )

    ca = CertificateAuthority.self_signed(trust_domain, key_type, now)
    # Key first: a crash in between leaves a lone key, reported above, never a lone cert.
    _write_atomic(key_path, private_key_pem(ca.signing_key), _KEY_MODE)
    _write_atomic(cert_path, ca.signing_cert.public_bytes(serialization.Encoding.PEM), _CERT_MODE)
    return ca


def _load(ca_dir: Path, cert_path: Path, key_path: Path) -> CertificateAuthority:
    # A key readable by group or others (e.g. after a careless restore) is tightened back.
    if stat.S_IMODE(key_path.stat().st_mode) != _KEY_MODE:
        os.chmod(key_path, _KEY_MODE)
    values = {ROOT_CERT: cert_path.read_bytes(), ROOT_KEY: key_path.read_bytes()}
    try:
        return CertificateAuthority.from_plugin(values, layout=_LAYOUT)
    except CAError as exc:
        raise CAError(f"{ca_dir}: {exc}") from exc


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            # mkstemp creates 0600; the final mode is set before writing, so never wider.
            os.fchmod(out.fileno(), mode)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
