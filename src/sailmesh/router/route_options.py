"""A Route's own settings for its HAProxy backend: `spec.httpHeaders` and the router
annotations a Route owner sets, read exactly as openshift/router's haproxy-config.template
and its template helpers read them.

Owns, per backend:
- `haproxy.router.openshift.io/balance`: roundrobin | leastconn | source | random; else
  roundrobin with several active Services, random (HTTP) or source (passthrough).
- `haproxy.router.openshift.io/timeout` → `timeout server` (passthrough: `timeout tunnel`,
  which `…/timeout-tunnel` overrides); `…/timeout-tunnel` → `timeout tunnel` on HTTP
  backends. Values match `[1-9][0-9]*(us|ms|s|m|h|d)?` (no unit: ms); a value beyond
  HAProxy's largest timeout is clipped to 2147483647ms; anything else is ignored.
- `haproxy.router.openshift.io/ip_allowlist` (or the older `ip_whitelist`): addresses and
  CIDRs separated by spaces; invalid entries are dropped, a value with leading or trailing
  spaces or no valid entry is ignored; up to 61 entries inline (HAProxy's 64 words per
  line), more from a file; `tcp-request content reject` for any other source.
- `haproxy.router.openshift.io/hsts_header` on edge/reencrypt Routes →
  `http-response set-header Strict-Transport-Security '<value>'`.
- `haproxy.router.openshift.io/disable_cookies` and `router.openshift.io/cookie_name`.
- `haproxy.router.openshift.io/rewrite-target` (a value starting with /): the Route's path
  prefix is replaced before the request goes to the pods.
- `spec.httpHeaders.actions`: request then response actions in order, as
  `http-request|http-response set-header NAME '<value>'` or `del-header NAME`; values
  single-quoted with `'` written as `'\\''` (HAProxy's quoting), so no value can break
  the configuration.
Must not know: Kubernetes objects other than the Route, files, processes.
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
MAX_INLINE_ALLOWLIST = 64 - 3  # HAProxy's words per line, minus `acl allowlist src`


@dataclass(frozen=True)
class BackendOptions:
    balance: str
    lines: tuple[str, ...] = ()  # directives after `balance`, before the servers
    header_lines: tuple[str, ...] = ()  # httpHeaders and HSTS (HTTP backends)
    cookie: str | None = None  # cookie name; None: cookies disabled
    allowlist: tuple[str, ...] = ()  # entries written to a file (more than fit a line)


def backend_options(route: Route, termination: str, active_services: int,
                    default_cookie: str, allowlist_file: str) -> BackendOptions:
    ann = route.metadata.annotations
    passthrough = termination == "passthrough"
    balance = _first(BALANCE, ann.get(ANN + "balance")) or (
        "roundrobin" if active_services > 1 else "source" if passthrough else "random")
    lines: list[str] = []
    entries = _ip_list(ann.get(ANN + "ip_allowlist") or ann.get(ANN + "ip_whitelist") or "")
    to_file: tuple[str, ...] = ()
    if entries:
        if len(entries) <= MAX_INLINE_ALLOWLIST:
            lines.append(f"acl allowlist src {' '.join(entries)}")
        else:
            lines.append(f"acl allowlist src -f {allowlist_file}")
            to_file = tuple(entries)
        lines.append("tcp-request content reject if !allowlist")
    if passthrough:
        if tunnel := _timeout(ann.get(ANN + "timeout-tunnel"), ann.get(ANN + "timeout")):
            lines.append(f"timeout tunnel  {tunnel}")
        return BackendOptions(balance, tuple(lines), allowlist=to_file)
    if server := _timeout(ann.get(ANN + "timeout")):
        lines.append(f"timeout server  {server}")
    if tunnel := _timeout(ann.get(ANN + "timeout-tunnel")):
        lines.append(f"timeout tunnel  {tunnel}")
    headers: list[str] = []
    target = ann.get(ANN + "rewrite-target", "")
    if target.startswith("/"):
        # The Route's path prefix is replaced; "/" also takes the slash after it.
        prefix = route.spec.path or ""
        pattern = f"^{prefix}/?(.*)$" if target == "/" else f"^{prefix}(.*)$"
        # The sanitized target is already in HAProxy's single-quote syntax.
        headers.append(f"http-request replace-path {quote(pattern)} "
                       f"'{sanitize_rewrite_target(target)}'")
    if termination in ("edge", "reencrypt") and (
            hsts := _first(HSTS, ann.get(ANN + "hsts_header"))):
        headers.append(f"http-response set-header Strict-Transport-Security {quote(hsts)}")
    actions = route.spec.http_headers.actions if route.spec.http_headers else None
    if actions is not None:
        for phase, items in (("http-request", actions.request),
                             ("http-response", actions.response)):
            for h in items:
                if h.action.type == "Set" and h.action.set is not None:
                    headers.append(f"{phase} set-header {h.name} {quote(h.action.set.value)}")
                else:
                    headers.append(f"{phase} del-header {h.name}")
    cookie = None
    if ann.get(ANN + "disable_cookies", "").lower() not in ("true", "1", "t"):
        cookie = _first(COOKIE_NAME, ann.get("router.openshift.io/cookie_name")) or default_cookie
    return BackendOptions(balance, tuple(lines), tuple(headers), cookie, to_file)


def sanitize_rewrite_target(value: str) -> str:
    """openshift/router's rewritetarget.SanitizeInput: the annotation keeps the meaning it
    had before the router quoted it. An unescaped `#` ends it (and then no `\\1` is
    added); unescaped quotes are dropped, an escaped `'` stays; an odd run of `%` is
    doubled; single backslashes go and double ones become one; `\\1` (the rest of the
    path) is appended."""
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
    out, escaped = [], False
    for ch in value:
        if ch == char and not escaped:
            if stop:
                return "".join(out), True
            continue
        out.append(escaped_form if ch == char and escaped_form else ch)
        escaped = ch == "\\" and not escaped
    return "".join(out), False


def quote(value: str) -> str:
    """HAProxy single quotes; a `'` inside becomes `'\\''` (close, escaped quote, open)."""
    return "'" + value.replace("'", "'\\''") + "'"


def _first(pattern: re.Pattern[str], *values: str | None) -> str:
    """openshift/router's firstMatch: the first value the whole pattern matches."""
    return next((v for v in values if v and pattern.fullmatch(v)), "")


def _timeout(*values: str | None) -> str:
    """firstMatch on the time pattern, then clipHAProxyTimeoutValue."""
    value = _first(TIME_SPEC, *values)
    if not value:
        return ""
    m = TIME_SPEC.fullmatch(value)
    assert m is not None
    unit = m.group(1) or ""
    if int(value[: len(value) - len(unit)]) * _UNIT_MS[unit] > _MAX_TIMEOUT_MS:
        return MAX_TIMEOUT
    return value


def _ip_list(value: str) -> list[str]:
    """openshift/router's parseIPList: space-separated addresses and CIDRs."""
    if not value.strip() or value != value.strip():
        return []
    valid = []
    for item in value.split():
        try:
            if "/" in item:
                ipaddress.ip_network(item, strict=False)
            else:
                ipaddress.ip_address(item)
        except ValueError:
            continue
        valid.append(item)
    return valid


__all__ = ["BackendOptions", "backend_options", "quote", "sanitize_rewrite_target"]
