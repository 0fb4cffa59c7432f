"""Key material for the CA and its workloads: generation, PEM encoding and decoding.

Owns: the table of key types sailmesh issues (ECDSA P-256, RSA 2048 like Istio's default),
which signature hash goes with which signing key, and turning PEM bytes into keys with
errors that name their source. Must not know: certificates' contents, Envoy, files.

Randomness: key generation draws from OpenSSL's CSPRNG and cannot be injected; callers that
need byte-identical output pass a pre-made key instead (see `issue_workload_cert(key=...)`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sailmesh.ca.errors import CAError

KeyType = Literal["ecdsa-p256", "rsa-2048"]
KEY_TYPES: tuple[KeyType, ...] = get_args(KeyType)

# The key types a CA may sign with. Ed25519 and friends are left out on purpose: Istio does
# not use them, and RFC 8446 peers (and Envoy's BoringSSL) vary in accepting them.
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

_GENERATORS: dict[KeyType, Callable[[], PrivateKey]] = {
    "ecdsa-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    # 65537 is the only public exponent cryptography recommends (and what Istio uses).
    "rsa-2048": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
}

# RFC 5758 §3.2: ECDSA signatures use the hash that matches the curve size.
_EC_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}

# Below this, RSA signing keys are refused: RFC 8446 peers and CA/B Forum rules require 2048.
_MIN_RSA_BITS = 2048


def generate_key(key_type: KeyType) -> PrivateKey:
    """A new private key of `key_type` ("ecdsa-p256" or "rsa-2048")."""
    try:
        generate = _GENERATORS[key_type]
    except KeyError:
        raise CAError(f"unknown key type {key_type!r}: use one of {', '.join(KEY_TYPES)}") from None
    return generate()


def key_type_of(key: PrivateKey) -> str:
    """A short description such as "ecdsa-p256", "ecdsa-p384" or "rsa-3072"."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"ecdsa-p{key.curve.key_size}"
    return f"rsa-{key.key_size}"


def signature_hash(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
    """The hash a CA holding `key` signs certificates with."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return _EC_HASHES[key.curve.name]()
    return hashes.SHA256()


def private_key_pem(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM: what Envoy's SDS `private_key` and Istio's secrets carry."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_der(key: PrivateKey) -> bytes:
    """The SubjectPublicKeyInfo DER of `key`: compared with a certificate's to pair them."""
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_signing_key(data: bytes, source: str) -> PrivateKey:
    """Parse an unencrypted PEM private key (PKCS#1, SEC1 or PKCS#8) usable for signing.

    `source` names where the bytes came from (a `cacerts` key or a file) for error messages.
    """
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        # cryptography raises TypeError when a password is needed.
        raise CAError(f"{source} is an encrypted private key; provide it unencrypted") from None
    except ValueError:
        # Not chained: the parser's message could quote the input.
        raise CAError(f"{source} is not a PEM private key") from None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name not in _EC_HASHES:
            raise CAError(f"{source}: elliptic curve {key.curve.name} is not supported")
        return key
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < _MIN_RSA_BITS:
            raise CAError(f"{source}: RSA key of {key.key_size} bits is too small (minimum 2048)")
        return key
    raise CAError(f"{source}: only ECDSA and RSA keys can sign, not {type(key).__name__}")
