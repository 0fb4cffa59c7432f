"""`-f` arguments → sources: (name, text) pairs, or the reason one could not be read.

Owns: the rules of kubectl's `-f`: a file, a directory (its *.yaml, *.yml and *.json files,
sorted by name; subdirectories too when recursive, as `-R`) or `-` (stdin, named STDIN);
reading at most one byte over the API server's request limit, so that a huge input is
refused by its size without being read whole. Must not know: YAML, kinds, the store.
An unreadable path is not an exception: it becomes a `Source` with `error` set, so that
the loader reports it at its place among the other inputs' problems (in the CLI or in the
daemon, which receives the sources over the control socket).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
# kube-apiserver refuses request bodies over 3 MiB ("Request entity too large").
MAX_REQUEST_BYTES = 3 * 1024 * 1024
STDIN_NAME = "STDIN"


@dataclass(frozen=True)
class Source:
    """One input: its name as the user gave it (a path or STDIN), and its text or why it
    could not be read."""

    name: str
    text: str | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "text": self.text, "error": self.error}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Source:
        name, text, error = data.get("name"), data.get("text"), data.get("error")
        if not isinstance(name, str) or not isinstance(text, str | None) \
                or not isinstance(error, str | None) or (text is None) == (error is None):
            raise ValueError("a source is {name, text} or {name, error}")
        return cls(name, text, error)


def read_sources(paths: Sequence[str], *, recursive: bool = False) -> list[Source]:
    out: list[Source] = []
    for path in paths:
        if path == "-":
            out.append(Source(STDIN_NAME, sys.stdin.read(MAX_REQUEST_BYTES + 1)))
        elif os.path.isdir(path):
            try:
                files = _manifests_in(path, recursive)
            except OSError as exc:
                out.append(Source(path, error=f"cannot read: {exc}"))
                continue
            out += [_read_file(f) for f in files]
        else:
            out.append(_read_file(path))
    return out


def _manifests_in(directory: str, recursive: bool) -> list[str]:
    if not recursive:
        return [os.path.join(directory, e) for e in sorted(os.listdir(directory))
                if e.endswith(MANIFEST_SUFFIXES)]
    out: list[str] = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        out += [os.path.join(root, f) for f in sorted(files) if f.endswith(MANIFEST_SUFFIXES)]
    return out


def _read_file(path: str) -> Source:
    try:
        with open(path, encoding="utf-8") as fh:
            return Source(path, fh.read(MAX_REQUEST_BYTES + 1))
    except FileNotFoundError:
        return Source(path, error=f'the path "{path}" does not exist')
    except (OSError, UnicodeDecodeError) as exc:
        return Source(path, error=f"cannot read: {exc}")
