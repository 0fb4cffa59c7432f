"""`sailctl ca`: the mesh's certificate authority — where its root comes from, the root's
validity, and the workload identities issued to running proxies with their renewal times.

Owns: presenting the daemon's CA status (or, with the mesh down, the stored root). Must not
know: how certificates are issued (see `sailmesh.meshd.identity`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from sailmesh.cli.common import daemon_call, home, namespace_option
from sailmesh.cli.output import emit, fail, table


def _stored_root() -> dict[str, Any]:
    path = home().root / "ca" / "root-cert.pem"
    if not path.exists():
        fail("the mesh has no CA yet: `sailctl up` creates its root (or plugs in Secret "
             "istio-system/cacerts)")
    root = x509.load_pem_x509_certificate(path.read_bytes())
    key = root.public_key()
    key_type = f"rsa-{key.key_size}" if isinstance(key, rsa.RSAPublicKey) else "ecdsa-p256"
    return {
        "configured": True, "running": False, "source": f"self-signed root ({path.parent})",
        "keyType": key_type,
        "root": {"subject": root.subject.rfc4514_string(),
                 "notBefore": root.not_valid_before_utc.isoformat(),
                 "notAfter": root.not_valid_after_utc.isoformat(),
                 "sha256": root.fingerprint(hashes.SHA256()).hex(":")},
        "identities": [],
    }


def _when(iso: str | None, now: datetime) -> str:
    if not iso:
        return "-"
    t = datetime.fromisoformat(iso)
    delta = (t - now).total_seconds()
    rel = f"in {_span(delta)}" if delta >= 0 else f"{_span(-delta)} ago"
    return f"{t.strftime('%Y-%m-%d %H:%M:%S')} ({rel})"


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


@click.command("ca")
@namespace_option
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default=None)
def ca(namespace: str | None, output: str | None) -> None:
    """Show the mesh CA: its root, its expiry and the identities issued (-n filters)."""
    status = daemon_call("status")
    info: dict[str, Any] = dict(status["ca"]) if status and status.get("ca", {}).get("configured") \
        else _stored_root()
    info.setdefault("running", status is not None)
    if namespace:
        info["identities"] = [i for i in info.get("identities", []) if i["namespace"] == namespace]
    if output:
        emit(info, output)
        return
    now = datetime.now(UTC)
    root = info["root"]
    click.echo(f"source:        {info['source']}")
    if info.get("trustDomain"):
        click.echo(f"trust domain:  {info['trustDomain']}")
    click.echo(f"root:          {root['subject']} ({info['keyType']})")
    click.echo(f"valid:         {_when(root['notBefore'], now)} → {_when(root['notAfter'], now)}")
    click.echo(f"sha256:        {root['sha256']}")
    if info.get("signer") and info["signer"] != root["subject"]:
        click.echo(f"signing as:    {info['signer']}")
    if "workloadTTLSeconds" in info:
        click.echo(f"workload TTL:  {_span(info['workloadTTLSeconds'])}")
    if not info.get("running"):
        click.echo("\nthe mesh is not running: no workload certificates are issued")
        return
    rows = [[i["namespace"], i["pod"], i["spiffeId"], i["serial"][:16], _when(i["notAfter"], now),
             _when(i.get("renewal"), now)] for i in info.get("identities", [])]
    click.echo("")
    click.echo(table(["NAMESPACE", "POD", "IDENTITY", "SERIAL", "EXPIRES", "RENEWAL"], rows))
