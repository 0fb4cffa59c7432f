"""ClusterIP services as iptables NAT rules in the node namespace (what kube-proxy's
iptables mode does on a Kubernetes node).

Chains, all in the `nat` table of `<instance>-node`, never in the host:
    PREROUTING  → SAILMESH-SERVICES     DNAT vip:port → endpoint, random balancing
    OUTPUT      → SAILMESH-SERVICES     (the same for commands run in the node namespace)
    POSTROUTING → SAILMESH-POSTROUTING  MASQUERADE hairpin traffic (a pod reaching itself
                                        through its own service)

Each reconcile rewrites both chains in one `iptables-restore --noflush` transaction:
declaring a chain in a restore file flushes it, so the new rule set replaces the old one
atomically and no packet sees a half-built table.

Balancing follows kube-proxy: with n endpoints, rule i (0-based) matches with probability
1/(n-i), so each endpoint gets 1/n of new connections and the last rule always matches.

Must not know about pods, Istio or where endpoints come from.
"""

from __future__ import annotations

from collections.abc import Sequence

from sailmesh.runtime.network import run_command
from sailmesh.runtime.plans import ServiceRule

SERVICES_CHAIN = "SAILMESH-SERVICES"
POSTROUTING_CHAIN = "SAILMESH-POSTROUTING"
_PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}


def render_jumps() -> str:
    """Restore text that creates the chains and hooks them in; run once per node."""
    return "\n".join(
        [
            "*nat",
            f":{SERVICES_CHAIN} - [0:0]",
            f":{POSTROUTING_CHAIN} - [0:0]",
            f"-A PREROUTING -j {SERVICES_CHAIN}",
            f"-A OUTPUT -j {SERVICES_CHAIN}",
            f"-A POSTROUTING -j {POSTROUTING_CHAIN}",
            "COMMIT",
            "",
        ]
    )


def refused(rule: ServiceRule) -> str | None:
    """Why `rule` cannot become iptables rules, or None. Validation refuses such services
    at apply; this keeps one that slipped through (an old state dir) from failing the
    whole restore transaction, and with it every other service."""
    if rule.protocol.upper() not in _PROTOCOLS:
        return f"protocol {rule.protocol!r}; use one of {', '.join(_PROTOCOLS)}"
    ports = [rule.port, *(port for _ip, port in rule.endpoints)]
    bad = [p for p in ports if not (isinstance(p, int) and 1 <= p <= 65535)]
    return f"port {bad[0]!r} is not in 1..65535" if bad else None


def render_rules(rules: Sequence[ServiceRule]) -> str:
    """Restore text that replaces the content of both chains with `rules`; rules that
    `refused` names are left out (they cost only their own service)."""
    lines = ["*nat", f":{SERVICES_CHAIN} - [0:0]", f":{POSTROUTING_CHAIN} - [0:0]"]
    hairpin: set[str] = set()
    usable = [r for r in rules if refused(r) is None]
    for rule in sorted(usable, key=lambda r: (r.vip, r.port, r.protocol)):
        proto = _PROTOCOLS[rule.protocol.upper()]
        # No endpoints: no rule. The node's `unreachable <service CIDR>` route then
        # rejects the connection at once, as kube-proxy's REJECT rule would.
        n = len(rule.endpoints)
        match = f"-A {SERVICES_CHAIN} -d {rule.vip}/32 -p {proto} -m {proto} --dport {rule.port}"
        for i, (ip, port) in enumerate(rule.endpoints):
            balance = (
                f" -m statistic --mode random --probability {1.0 / (n - i):.10f}"
                if i < n - 1
                else ""
            )
            lines.append(f"{match}{balance} -j DNAT --to-destination {ip}:{port}")
            hairpin.add(ip)
    for ip in sorted(hairpin):
        # After DNAT a pod that called its own service would receive a packet whose source
        # is its own address, which it drops as martian; rewrite the source to the node.
        lines.append(
            f"-A {POSTROUTING_CHAIN} -s {ip}/32 -d {ip}/32 -m conntrack --ctstate DNAT"
            " -j MASQUERADE"
        )
    lines += ["COMMIT", ""]
    return "\n".join(lines)


class KubeProxy:
    """Applies service rules to one node namespace."""

    def __init__(self, node_netns: str) -> None:
        self.node_netns = node_netns
        self._applied: str | None = None  # the rules last restored, as restore text

    def _restore(self, text: str) -> None:
        run_command(
            ["ip", "netns", "exec", self.node_netns, "iptables-restore", "-w", "--noflush"],
            stdin=text,
        )

    def install(self) -> None:
        self._restore(render_jumps())
        self._applied = None  # the chains are (re)created: the next apply restores them

    def apply(self, rules: Sequence[ServiceRule]) -> None:
        """Make the chains hold `rules`. Rules equal to the last ones restored are not
        restored again (every push asks, most change no endpoint)."""
        text = render_rules(rules)
        if text == self._applied:
            return
        self._applied = None  # a failed restore leaves the chains unknown
        self._restore(text)
        self._applied = text

    def dump(self) -> str:
        return run_command(
            ["ip", "netns", "exec", self.node_netns, "iptables-save", "-t", "nat"]
        )
