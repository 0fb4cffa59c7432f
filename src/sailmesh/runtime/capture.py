"""Transparent TCP capture for sidecars: what Istio's istio-init container does, done in
the pod's own network namespace before any container of the pod starts.

`render_capture` is pure: a CapturePlan in, `iptables-restore` input for the `nat` table
out. `apply_capture` is the one IO edge: it loads that text inside the pod's namespace.
The rules follow istio-iptables in REDIRECT mode (tools/istio-iptables, the rules an
injected pod shows in `iptables -t nat -S`):

    PREROUTING -p tcp      → ISTIO_INBOUND: excluded ports RETURN, the rest
                             → ISTIO_IN_REDIRECT (REDIRECT to the inbound port, 15006)
    OUTPUT -p tcp          → ISTIO_OUTPUT, first match wins:
      -s 127.0.0.6 -o lo                     RETURN  (Envoy's inbound passthrough source)
      ! -d 127.0.0.1 -o lo, proxy uid/gid    → ISTIO_IN_REDIRECT (the proxy calling its
                                               own pod through a service VIP: inbound)
      -o lo, not the proxy                   RETURN  (the app talking to itself)
      proxy uid/gid                          RETURN  (the proxy's own upstream calls)
      -d 127.0.0.1                           RETURN
      -d <excluded CIDR>                     RETURN
      everything else                        → ISTIO_REDIRECT (REDIRECT to 15001)

Two istio-iptables rules are left out on purpose: `--dport 15008 -j RETURN` (the HBONE
tunnel port, unused without ambient/HBONE) and `--dport 22 -j RETURN` (older releases
exempted ssh; there is no sshd in a local pod). Only IPv4: pods have IPv4 addresses only.

Must not know about plans' origin, processes or Istio resources.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from sailmesh.runtime.errors import PodRuntimeError
from sailmesh.runtime.network import run_command
from sailmesh.runtime.plans import CapturePlan

# Envoy binds this source address for inbound passthrough connections to the app
# (Istio's InboundPassthroughBindIpv4); they must leave without being captured again.
INBOUND_PASSTHROUGH_SOURCE = "127.0.0.6/32"
LOCALHOST = "127.0.0.1/32"
CHAINS = ("ISTIO_INBOUND", "ISTIO_IN_REDIRECT", "ISTIO_OUTPUT", "ISTIO_REDIRECT")


def _check_port(what: str, port: int) -> None:
    if not 1 <= port <= 65535:
        raise PodRuntimeError(f"capture {what} {port} is not a TCP port; use 1-65535")


def validate_capture(plan: CapturePlan) -> None:
    """Raise PodRuntimeError naming the field if the plan cannot be rendered."""
    if plan.proxy_uid <= 0:
        # uid 0 would exempt every root application process: nothing would be captured.
        raise PodRuntimeError(f"capture proxy_uid {plan.proxy_uid} must be a positive uid")
    _check_port("inbound_port", plan.inbound_port)
    _check_port("outbound_port", plan.outbound_port)
    for port in plan.exclude_inbound_ports:
        _check_port("exclude_inbound_ports entry", port)
    for port in plan.include_inbound_ports or ():
        _check_port("include_inbound_ports entry", port)
    for cidr in plan.exclude_outbound_cidrs:
        try:
            ipaddress.IPv4Network(cidr, strict=False)
        except ValueError as exc:
            raise PodRuntimeError(
                f"capture exclude_outbound_cidrs entry {cidr!r} is not an IPv4 CIDR"
                f" (pods are IPv4-only): {exc}"
            ) from exc


def _inbound_rules(plan: CapturePlan) -> list[str]:
    if plan.include_inbound_ports is None:
        # istio-iptables `-b '*'`: user exclusions RETURN, everything else is captured.
        rules = [f"-A ISTIO_INBOUND -p tcp --dport {p} -j RETURN" for p in plan.exclude_inbound_ports]
        rules.append("-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT")
    else:
        # istio-iptables `-b 8080,9080`: only the listed ports; exclusions do not apply.
        rules = [
            f"-A ISTIO_INBOUND -p tcp --dport {p} -j ISTIO_IN_REDIRECT" for p in plan.include_inbound_ports
        ]
    return rules


def _owner_rules(match: str, proxy_id: int) -> list[str]:
    # Istio writes this triple once for --uid-owner and once for --gid-owner.
    return [
        f"-A ISTIO_OUTPUT ! -d {LOCALHOST} -o lo -m owner --{match}-owner {proxy_id} -j ISTIO_IN_REDIRECT",
        f"-A ISTIO_OUTPUT -o lo -m owner ! --{match}-owner {proxy_id} -j RETURN",
        f"-A ISTIO_OUTPUT -m owner --{match}-owner {proxy_id} -j RETURN",
    ]


def _lines(plan: CapturePlan) -> Iterable[str]:
    yield "*nat"
    for builtin in ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"):
        yield f":{builtin} ACCEPT [0:0]"
    for chain in CHAINS:
        yield f":{chain} - [0:0]"
    # istio-iptables: an empty inbound include list (`-b ''`) disables inbound capture,
    # so PREROUTING does not jump at all.
    if plan.include_inbound_ports != ():
        yield "-A PREROUTING -p tcp -j ISTIO_INBOUND"
    yield "-A OUTPUT -p tcp -j ISTIO_OUTPUT"
    yield from _inbound_rules(plan)
    yield f"-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports {plan.inbound_port}"
    yield f"-A ISTIO_OUTPUT -s {INBOUND_PASSTHROUGH_SOURCE} -o lo -j RETURN"
    # The proxy runs with gid == uid (istio-proxy is 1337:1337), so the gid rules use it too.
    yield from _owner_rules("uid", plan.proxy_uid)
    yield from _owner_rules("gid", plan.proxy_uid)
    yield f"-A ISTIO_OUTPUT -d {LOCALHOST} -j RETURN"
    for cidr in plan.exclude_outbound_cidrs:
        network = ipaddress.IPv4Network(cidr, strict=False)
        yield f"-A ISTIO_OUTPUT -d {network} -j RETURN"
    yield "-A ISTIO_OUTPUT -j ISTIO_REDIRECT"
    yield f"-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports {plan.outbound_port}"
    yield "COMMIT"


def render_capture(plan: CapturePlan) -> str:
    """The `iptables-restore` input (nat table only) that installs `plan`."""
    validate_capture(plan)
    return "\n".join(_lines(plan)) + "\n"


def apply_capture(netns: str, plan: CapturePlan) -> None:
    """Install the capture rules in a pod namespace. The namespace is fresh, so a plain
    restore (which flushes the nat table it names) is all istio-init's setup amounts to.
    `-w`: wait for the xtables lock (legacy backend) rather than fail while other pods
    are being set up in parallel."""
    run_command(["ip", "netns", "exec", netns, "iptables-restore", "-w", "5"], stdin=render_capture(plan))
