"""The self-signed roots on disk: `<state>/ca/root-cert.pem` (0644) and `root-key.pem` (0600)
for the mesh; the same two files under `<state>/web-ca/` for the offline internet's root, with
`ca-certificates.crt`, the system trust store pods see.

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
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from sailmesh.ca.authority import CertificateAuthority, PemLayout
from sailmesh.ca.errors import CAError
from sailmesh.ca.keys import KeyType, private_key_pem
from sailmesh.ca.web import WEB_CA_DIR, new_web_root

CA_DIR = "ca"
ROOT_CERT = "root-cert.pem"
ROOT_KEY = "root-key.pem"
TRUST_BUNDLE = "ca-certificates.crt"
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
    return _load_or_create(Path(state_dir) / CA_DIR,
                           lambda: CertificateAuthority.self_signed(trust_domain, key_type, now))


def load_or_create_web_root(state_dir: Path, now: datetime) -> CertificateAuthority:
    """The offline internet's root under `state_dir/web-ca/` (see web.py), created on the
    first call and reused afterwards, with the same rules as the mesh's root."""
    return _load_or_create(Path(state_dir) / WEB_CA_DIR, lambda: new_web_root(now))


def write_trust_bundle(state_dir: Path, web_root: CertificateAuthority,
                       system_bundle: Path) -> Path:
    """`state_dir/web-ca/ca-certificates.crt`: the host's system roots (if it has any)
    followed by the offline internet's root; what pods see as their system trust store."""
    host = system_bundle.read_bytes() if system_bundle.is_file() else b""
    if host and not host.endswith(b"\n"):
        host += b"\n"
    path = Path(state_dir) / WEB_CA_DIR / TRUST_BUNDLE
    _write_atomic(path, host + web_root.root_pem, _CERT_MODE)
    return path


def _load_or_create(ca_dir: Path, create: Callable[[], CertificateAuthority]) -> CertificateAuthority:
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
            "to create a new root (every certificate it signed then changes trust)"
        )

    ca = create()
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
