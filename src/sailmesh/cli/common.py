"""Shared CLI plumbing: kubectl's namespace flags, the state dir, talking to the daemon.

`-n/--namespace` and `-A` may come before or after the subcommand, as with kubectl;
`hoist_global_flags` moves them after it so every subcommand parses them itself.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from sailmesh.meshd import control
from sailmesh.meshd.paths import Home

F = TypeVar("F", bound=Callable[..., Any])

# Flags that kubectl accepts anywhere on the line, with whether they take a value.
_GLOBAL_FLAGS = {"-n": True, "--namespace": True, "-A": False, "--all-namespaces": False}


def hoist_global_flags(argv: Sequence[str]) -> list[str]:
    """Move `-n X` / `-A` to the end (before a `--` separator), wherever they appear.

    kubectl accepts `kubectl -n test apply -f x` and `kubectl create -n ns secret tls ...`:
    its flags are global. Click's are per command, so the leaf command must see them.
    """
    args = list(argv)
    tail: list[str] = []
    if "--" in args:
        cut = args.index("--")
        args, tail = args[:cut], args[cut:]
    moved: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        tok = args[i]
        name = tok.split("=", 1)[0]
        if name in _GLOBAL_FLAGS:
            width = 2 if _GLOBAL_FLAGS[name] and "=" not in tok else 1
            moved.extend(args[i : i + width])
            i += width
            continue
        if tok.startswith("-n") and len(tok) > 2 and not tok.startswith("--"):
            moved.append(tok)  # -ntest
        else:
            rest.append(tok)
        i += 1
    return rest + moved + tail


_TRUE = frozenset({"1", "t", "true"})
_FALSE = frozenset({"0", "f", "false"})


def bool_flag_values(command: click.Command, args: Sequence[str]) -> list[str]:
    """Accept kubectl's `--flag=true` / `--flag=false` on click's on/off flags.

    kubectl's boolean flags take an optional `=VALUE` (Go's strconv.ParseBool), so
    `delete ... --ignore-not-found=true` is common in tutorials; click's flags take none.
    `--flag=true` becomes `--flag`; `--flag=false` becomes the flag's `--no-` form or
    nothing. A bare `--flag` never consumes the next word. Arguments after `--` are the
    command's own and are left alone.
    """
    on: dict[str, list[str]] = {}
    for param in _leaf_params(command):
        if isinstance(param, click.Option) and param.is_flag and not param.count:
            off = list(param.secondary_opts[:1])
            for opt in param.opts:
                if opt.startswith("--"):
                    on[opt] = off
    out: list[str] = []
    for i, tok in enumerate(args):
        if tok == "--":
            return out + list(args[i:])
        name, sep, value = tok.partition("=")
        if sep and name in on:
            if value.lower() in _TRUE:
                out.append(name)
                continue
            if value.lower() in _FALSE:
                out.extend(on[name])
                continue
            raise click.UsageError(
                f'invalid argument "{value}" for "{name}" flag: strconv.ParseBool: '
                f'parsing "{value}": invalid syntax')
        out.append(tok)
    return out


def _leaf_params(command: click.Command) -> list[click.Parameter]:
    params = list(command.params)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            params.extend(_leaf_params(sub))
    return params


def namespace_option(f: F) -> F:
    return click.option(
        "-n", "--namespace", default=None, help="Namespace (default: default)."
    )(f)


def all_namespaces_option(f: F) -> F:
    return click.option(
        "-A", "--all-namespaces", "all_namespaces", is_flag=True, help="List across all namespaces."
    )(f)


def home() -> Home:
    return Home.from_env()


def daemon_call(op: str, **args: Any) -> dict[str, Any] | None:
    """The daemon's answer, or None when the mesh is not running."""
    h = home()
    if not h.control_socket.exists():
        return None
    try:
        return control.call(h.control_socket, op, **args)
    except control.RequestTooLarge:
        raise
    except control.ControlError as exc:
        if "not running" in str(exc):
            return None
        raise click.ClickException(str(exc)) from exc


def require_daemon(op: str, **args: Any) -> dict[str, Any]:
    reply = daemon_call(op, **args)
    if reply is None:
        raise click.ClickException("the mesh is not running; start it with `sailctl up -d`")
    return reply


def print_report(lines: Sequence[Sequence[str]], code: int) -> None:
    """A `store.applying.Report`'s lines, each on its stream; exits with its code when not 0."""
    for stream, text in lines:
        click.echo(text, err=stream == "err")
    if code:
        sys.exit(code)
