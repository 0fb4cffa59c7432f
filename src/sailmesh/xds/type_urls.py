"""The five xDS resource types sailmesh serves, and the rules that differ between them.

Owns: which types are wildcard (the proxy subscribes to every resource), and the order
in which types are pushed on an ADS stream. The URLs themselves are defined once in
`translate.type_urls`. Must not know how resources are built or what is inside them.
"""

from typing import Final

from sailmesh.translate.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET

__all__ = ["ADS_ORDER", "CLUSTER", "ENDPOINT", "LISTENER", "ROUTE", "SECRET", "SHORT_NAMES",
           "WILDCARD", "short_name"]

# Envoy xDS protocol, "Eventual consistency considerations": CDS first, then EDS for those
# clusters, then LDS, then RDS for the new listeners. Secrets are fetched by name once a
# listener or cluster references them, so SDS goes last.
ADS_ORDER: Final[tuple[str, ...]] = (CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET)

# xDS protocol: LDS and CDS are wildcard (Envoy subscribes to all of them; a resource that
# leaves the snapshot is removed); RDS, EDS and SDS serve only the names the client asked for.
WILDCARD: Final[frozenset[str]] = frozenset({LISTENER, CLUSTER})

SHORT_NAMES: Final[dict[str, str]] = {
    LISTENER: "LDS",
    ROUTE: "RDS",
    CLUSTER: "CDS",
    ENDPOINT: "EDS",
    SECRET: "SDS",
}


def short_name(type_url: str) -> str:
    """``LDS``/``RDS``/... for log lines; the full URL for anything else."""
    return SHORT_NAMES.get(type_url, type_url)
