"""A Route's own settings as lines of its HAProxy backend: `spec.httpHeaders` and the
router annotations (read by `sailmesh.model.route_settings`), placed as openshift/router's
haproxy-config.template places them.

Owns, per backend:
- `balance` (default: roundrobin with several active Services, else random for HTTP and
  source for passthrough);
- `timeout server` / `timeout tunnel` (passthrough: `timeout tunnel` from timeout-tunnel,
  else timeout);
- the allowlist: up to 61 entries inline (HAProxy's 64 words per line), more from a file;
  `tcp-request content reject` for any other source;
- `http-request replace-path` for rewrite-target, `Strict-Transport-Security` for
  hsts_header, the affinity cookie's name or none;
- `spec.httpHeaders.actions`: request then response actions in order, as
  `http-request|http-response set-header NAME '<value>'` or `del-header NAME`; values
  single-quoted with `'` written as `'\\''` (HAProxy's quoting), so no value can break
  the configuration.
Must not know: Kubernetes objects other than the Route, files, processes.
"""

from __future__ import annotations

from dataclasses import dataclass

from sailmesh.model.route_settings import route_settings, sanitize_rewrite_target
from sailmesh.resources.openshift import Route

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
    settings = route_settings(route)
    passthrough = termination == "passthrough"
    balance = settings.balance or (
        "roundrobin" if active_services > 1 else "source" if passthrough else "random")
    lines: list[str] = []
    to_file: tuple[str, ...] = ()
    if entries := settings.allowlist:
        if len(entries) <= MAX_INLINE_ALLOWLIST:
            lines.append(f"acl allowlist src {' '.join(entries)}")
        else:
            lines.append(f"acl allowlist src -f {allowlist_file}")
            to_file = entries
        lines.append("tcp-request content reject if !allowlist")
    if passthrough:
        if tunnel := settings.timeout_tunnel or settings.timeout:
            lines.append(f"timeout tunnel  {tunnel}")
        return BackendOptions(balance, tuple(lines), allowlist=to_file)
    if settings.timeout:
        lines.append(f"timeout server  {settings.timeout}")
    if settings.timeout_tunnel:
        lines.append(f"timeout tunnel  {settings.timeout_tunnel}")
    headers: list[str] = []
    if target := settings.rewrite_target:
        # The Route's path prefix is replaced; "/" also takes the slash after it.
        prefix = route.spec.path or ""
        pattern = f"^{prefix}/?(.*)$" if target == "/" else f"^{prefix}(.*)$"
        # The sanitized target is already in HAProxy's single-quote syntax.
        headers.append(f"http-request replace-path {quote(pattern)} "
                       f"'{sanitize_rewrite_target(target)}'")
    if settings.hsts:
        headers.append(f"http-response set-header Strict-Transport-Security "
                       f"{quote(settings.hsts)}")
    actions = route.spec.http_headers.actions if route.spec.http_headers else None
    if actions is not None:
        for phase, items in (("http-request", actions.request),
                             ("http-response", actions.response)):
            for h in items:
                if h.action.type == "Set" and h.action.set is not None:
                    headers.append(f"{phase} set-header {h.name} {quote(h.action.set.value)}")
                else:
                    headers.append(f"{phase} del-header {h.name}")
    cookie = (settings.cookie_name or default_cookie) if settings.cookies else None
    return BackendOptions(balance, tuple(lines), tuple(headers), cookie, to_file)


def quote(value: str) -> str:
    """HAProxy single quotes; a `'` inside becomes `'\\''` (close, escaped quote, open)."""
    return "'" + value.replace("'", "'\\''") + "'"


__all__ = ["BackendOptions", "backend_options", "quote"]
