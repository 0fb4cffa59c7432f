"""The router annotations a Route owner sets, read as openshift/router's
haproxy-config.template and its helpers read them, with what the router does with a value
it cannot use (it ignores it, or clips it; OpenShift only logs that).

Owns: the patterns and parsing of `haproxy.router.openshift.io/balance`, `timeout`,
`timeout-tunnel`, `ip_allowlist` (or the older `ip_whitelist`), `hsts_header`,
`rewrite-target`, `disable_cookies` and `router.openshift.io/cookie_name`, and the list of
annotations whose value is not used as written (for `analyze`). Rendering into HAProxy
lines is `sailmesh.router.route_options`'. Must not know: HAProxy syntax, files.

Facts (openshift/router): values must match the whole pattern (`firstMatch`); times are
`[1-9][0-9]*(us|ms|s|m|h|d)?` (no unit: ms) and are clipped to 2147483647ms; an IP list is
addresses and CIDRs separated by spaces, invalid entries are dropped, and a value with
leading or trailing spaces, or with no valid entry, is ignored — then every client is
allowed; `disable_cookies` is Go's ParseBool.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from sailmesh.resources.openshift import Route

ANN = "haproxy.router.openshift.io/"
BALANCE = re.compile(r"roundrobin|leastconn|source|random")
TIME_SPEC = re.compile(r"[1-9][0-9]*(us|ms|s|m|h|d)?")
COOKIE_NAME = re.compile(r"[a-zA-Z0-9_-]+")
HSTS = re.compile(r"(?i)(?:(?:includeSubDomains|preload)\s*[;]\s*)*max-age\s*=\s*(?:\d+|\"\d+\")"
                  r"(?:\s*[;]\s*(?:includeSubDomains|preload))*")
MAX_TIMEOUT = "2147483647ms"
_MAX_TIMEOUT_MS = 2147483647
_UNIT_MS = {"us": 0.001, "ms": 1, "": 1, "s": 1000, "m": 60_000, "h": 3_600_000,
            "d": 86_400_000}
_TRUE = ("1", "t", "T", "TRUE", "true", "True")  # Go's strconv.ParseBool


@dataclass(frozen=True)
class RouteSettings:
    balance: str  # "" for the router's default
    timeout: str  # "" when unset or ignored
    timeout_tunnel: str
    allowlist: tuple[str, ...]  # empty: every client
    hsts: str
    cookies: bool
    cookie_name: str
    rewrite_target: str  # the annotation as written ("" when unset or ignored)
    ignored: tuple[tuple[str, str], ...]  # (annotation, what the router does instead)


def route_settings(route: Route) -> RouteSettings:
    ann = route.metadata.annotations
    ignored: list[tuple[str, str]] = []

    def matched(name: str, pattern: re.Pattern[str], why: str) -> str:
        value = ann.get(name)
        if value is None:
            return ""
        if pattern.fullmatch(value):
            return value
        ignored.append((name, f'"{value}" {why}'))
        return ""

    balance = matched(ANN + "balance", BALANCE, "is not one of roundrobin, leastconn, source, "
                      "random: the router uses its default")
    timeouts = []
    for name in (ANN + "timeout", ANN + "timeout-tunnel"):
        value = matched(name, TIME_SPEC, "is not a time such as 30s, 5m or 500 (ms): the "
                        "router's default timeout applies")
        if value and _milliseconds(value) > _MAX_TIMEOUT_MS:
            ignored.append((name, f'"{value}" is above HAProxy\'s largest timeout: clipped to '
                            f"{MAX_TIMEOUT}"))
            value = MAX_TIMEOUT
        timeouts.append(value)
    allowlist = _allowlist(ann, ignored)
    hsts = matched(ANN + "hsts_header", HSTS, "is not max-age=N with optional "
                   "includeSubDomains and preload: no Strict-Transport-Security is sent")
    termination = route.spec.tls.termination if route.spec.tls else ""
    if hsts and termination not in ("edge", "reencrypt"):
        ignored.append((ANN + "hsts_header", "applies to edge and reencrypt Routes only"))
        hsts = ""
    cookie_name = matched("router.openshift.io/cookie_name", COOKIE_NAME,
                          "is not letters, digits, _ and -: the router names the cookie")
    target = ann.get(ANN + "rewrite-target", "")
    if target and not target.startswith("/"):
        ignored.append((ANN + "rewrite-target", f'"{target}" does not start with /: the path '
                        "is not rewritten"))
        target = ""
    return RouteSettings(balance, timeouts[0], timeouts[1], allowlist, hsts,
                         ann.get(ANN + "disable_cookies", "") not in _TRUE, cookie_name,
                         target, tuple(ignored))


def _milliseconds(value: str) -> float:
    m = TIME_SPEC.fullmatch(value)
    assert m is not None
    unit = m.group(1) or ""
    return int(value[: len(value) - len(unit)]) * _UNIT_MS[unit]


def _allowlist(ann: dict[str, str], ignored: list[tuple[str, str]]) -> tuple[str, ...]:
    name = ANN + "ip_allowlist" if ANN + "ip_allowlist" in ann else ANN + "ip_whitelist"
    value = ann.get(name)
    if value is None:
        return ()
    if not value.strip() or value != value.strip():
        ignored.append((name, "has leading or trailing spaces or is empty: the router ignores "
                        "it and every client is allowed"))
        return ()
    valid, bad = [], []
    for item in value.split():
        try:
            if "/" in item:
                ipaddress.ip_network(item, strict=False)
            else:
                ipaddress.ip_address(item)
        except ValueError:
            bad.append(item)
            continue
        valid.append(item)
    if bad:
        ignored.append((name, f"{', '.join(bad)}: not addresses or CIDRs, dropped"
                        + ("" if valid else "; no entry is left and every client is allowed")))
    return tuple(valid)


def sanitize_rewrite_target(value: str) -> str:
    """openshift/router's rewritetarget.SanitizeInput: the annotation keeps the meaning it
    had before the router quoted it. An unescaped `#` ends it (and then no `\\1` is
    added); unescaped quotes are dropped, an escaped `'` stays; an odd run of `%` is
    doubled; single backslashes go and double ones become one; `\\1` (the rest of the
    path) is appended. The result is in HAProxy's single-quote syntax."""
    value, comment = _each_unescaped(value, "#", stop=True)
    value, _ = _each_unescaped(value, '"')
    value, _ = _each_unescaped(value, "'", escaped_form="'\\\\''")
    value = re.sub(r"%+", lambda m: m.group(0) * 2 if len(m.group(0)) % 2 else m.group(0), value)
    value = re.sub(r"\\+", lambda m: "" if len(m.group(0)) == 1 else m.group(0), value)
    value = value.replace("\\\\", "\\")
    return value if comment else value + "\\1"


def _each_unescaped(value: str, char: str, escaped_form: str = "",
                    stop: bool = False) -> tuple[str, bool]:
    """One pass of openshift/router's processRunes for one character: unescaped, it is
    dropped (or, with `stop`, ends the value); escaped (after a lone backslash), it is
    kept, or written as `escaped_form`. Returns the text and whether it stopped."""
    out: list[str] = []
    escaped = False
    for ch in value:
        if ch == char and not escaped:
            if stop:
                return "".join(out), True
            continue
        out.append(escaped_form if ch == char and escaped_form else ch)
        escaped = ch == "\\" and not escaped
    return "".join(out), False


__all__ = ["MAX_TIMEOUT", "RouteSettings", "route_settings", "sanitize_rewrite_target"]
