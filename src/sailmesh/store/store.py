"""The persisted set of applied resources: sailmesh's API server storage.

Owns: one YAML file per resource under `<state>/resources/<Kind>/<namespace>/<name>.yaml`,
written atomically (temp file + rename) under an exclusive lock, Secrets with mode 0600;
creation timestamps (set once, kept on update — Istio's "oldest wins" rules read them).
Must not know: Envoy, translation, the running mesh.

The CLI writes here and then asks the running daemon to sync; the daemon only reads. A
whole apply is one transaction: every object is validated before the first file is written.
The store is a `ConfigSource`: `watch` callbacks run after every write made through this
object (another process's writes reach the daemon as its `sync` request). Parsed files are
kept while their size and mtime stay the same, so a snapshot re-reads only what changed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import yaml

from sailmesh.model.snapshot import Snapshot, fingerprint
from sailmesh.resources.base import Resource
from sailmesh.resources.kinds import KINDS

Change = Literal["created", "configured", "unchanged", "deleted"]
# The store reads back what it wrote (safe_dump): libyaml's safe loader when present.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class StoreError(Exception):
    """Base of the store's errors (unreadable state dir, corrupt file)."""


class AlreadyExists(StoreError):
    """`create` of objects that exist (kubectl's AlreadyExists): every one, in input order."""

    def __init__(self, resources: Sequence[Resource]) -> None:
        self.resources = list(resources)
        super().__init__("; ".join(
            f'{r.kind} "{r.name}" already exists' + (f' in namespace "{r.namespace}"' if r.NAMESPACED else "")
            for r in self.resources))


class NotFound(StoreError):
    """`replace` or `delete` of objects that do not exist (kubectl's NotFound): every
    missing `(kind, namespace, name)`, in input order."""

    def __init__(self, keys: Sequence[tuple[str, str, str]]) -> None:
        self.keys = list(keys)
        super().__init__("; ".join(
            f'{kind} "{name}" not found' + (f' in namespace "{ns}"' if ns else "")
            for kind, ns, name in self.keys))


@dataclass(frozen=True)
class Outcome:
    ref: str
    kind: str
    name: str
    change: Change

    def kubectl_line(self) -> str:
        # kubectl prints `deployment.apps/httpbin created`; we print the kind in lower case.
        return f"{self.kind.lower()}/{self.name} {self.change}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "resources"
        self._watchers: list[Callable[[], None]] = []
        # Path → (mtime and size, the resource, its JSON as `Snapshot.of` hashes it).
        self._parsed: dict[str, tuple[tuple[int, int], Resource, bytes]] = {}

    # --- paths ---------------------------------------------------------------------------

    def _path(self, kind: str, namespace: str, name: str) -> Path:
        return self.dir / kind / (namespace or "_cluster") / f"{name}.yaml"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.root / "store.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # --- reading -------------------------------------------------------------------------

    def _read(self, path: str, st: os.stat_result | None = None) -> Resource:
        return self._read_entry(path, st)[1]

    def _read_entry(self, path: str, st: os.stat_result | None = None
                    ) -> tuple[tuple[int, int], Resource, bytes]:
        try:
            st = st or os.stat(path)
            stamp = (st.st_mtime_ns, st.st_size)
            cached = self._parsed.get(path)
            if cached is not None and cached[0] == stamp:
                return cached
            doc = yaml.load(Path(path).read_text(), Loader=_LOADER)
            r = KINDS[doc["kind"]].model_validate(doc)
        except Exception as exc:  # a corrupt state file must name itself
            raise StoreError(f"{path}: unreadable stored resource ({exc})") from exc
        entry = self._parsed[path] = (stamp, r, fingerprint(r))
        return entry

    def _files(self) -> list[tuple[str, os.stat_result]]:
        """Every `<Kind>/<namespace>/<name>.yaml` with its stat, in (kind, namespace, name)
        order."""
        found: list[tuple[tuple[str, str, str], str, os.stat_result]] = []
        for kind in _subdirs(str(self.dir)):
            for ns in _subdirs(kind.path):
                with os.scandir(ns.path) as files:
                    found += [((kind.name, ns.name, f.name), f.path, f.stat()) for f in files
                              if f.name.endswith(".yaml") and f.is_file()]
        return [(path, st) for _, path, st in sorted(found, key=lambda row: row[0])]

    def _entries(self) -> list[tuple[tuple[int, int], Resource, bytes]]:
        if not self.dir.is_dir():
            return []
        files = self._files()
        out = [self._read_entry(path, st) for path, st in files]
        live = {path for path, _ in files}
        self._parsed = {p: v for p, v in self._parsed.items() if p in live}
        return out

    def list(self) -> list[Resource]:
        return [r for _, r, _ in self._entries()]

    def get(self, kind: str, namespace: str, name: str) -> Resource | None:
        path = self._path(kind, namespace if KINDS[kind].NAMESPACED else "", name)
        return self._read(str(path)) if path.exists() else None

    def snapshot(self) -> Snapshot:
        """Files unchanged since the last read (same mtime and size) are not parsed, and
        their JSON is not made, again."""
        entries = self._entries()
        prints = {id(r): fp for _, r, fp in entries}
        return Snapshot.of((r for _, r, _ in entries), lambda r: prints[id(r)])

    def watch(self, on_change: Callable[[], None]) -> Callable[[], None]:
        self._watchers.append(on_change)
        return lambda: self._watchers.remove(on_change)

    def _changed(self) -> None:
        for notify in list(self._watchers):
            notify()

    # --- writing -------------------------------------------------------------------------

    def apply(self, resources: Iterable[Resource], *, create_only: bool = False,
              must_exist: bool = False, dry_run: bool = False) -> list[Outcome]:
        """Create or update every resource, or none. `create_only` refuses existing ones
        (kubectl create), `must_exist` missing ones (kubectl replace); `dry_run` answers
        what would change and writes nothing (the API server's dry run)."""
        resources = list(resources)
        with self._locked():
            plans: list[tuple[Path, Resource, Change]] = []
            existing: list[Resource] = []
            missing: list[tuple[str, str, str]] = []
            for r in resources:
                path = self._path(r.kind, r.namespace if r.NAMESPACED else "", r.name)
                old = self._read(str(path)) if path.exists() else None
                if old is not None and create_only:
                    existing.append(r)
                if old is None and must_exist:
                    missing.append(r.key)
                if r.NAMESPACED and r.kind != "Namespace":
                    self._require_namespace(r, resources)
                stamped = _stamp(r, old)
                change: Change = (
                    "created" if old is None else "unchanged" if old == stamped else "configured"
                )
                plans.append((path, stamped, change))
            if existing:
                raise AlreadyExists(existing)
            if missing:
                raise NotFound(missing)
            for path, r, change in plans:
                if change != "unchanged" and not dry_run:
                    _atomic_write(path, _dump(r), secret=r.kind == "Secret")
        if not dry_run and any(change != "unchanged" for _, _, change in plans):
            self._changed()
        return [Outcome(r.ref, r.kind, r.name, change) for _, r, change in plans]

    def delete(self, keys: Iterable[tuple[str, str, str]], *, ignore_missing: bool = False,
               dry_run: bool = False) -> list[Outcome]:
        """Delete every `(kind, namespace, name)`, or none: a missing one is `NotFound`
        unless `ignore_missing`; `dry_run` answers what would be deleted."""
        keys = list(keys)
        with self._locked():
            paths = []
            missing = []
            for kind, namespace, name in keys:
                ns = namespace if KINDS[kind].NAMESPACED else ""
                path = self._path(kind, ns, name)
                if not path.exists():
                    if not ignore_missing:
                        missing.append((kind, ns, name))
                    continue
                paths.append((path, kind, ns, name))
            if missing:
                raise NotFound(missing)
            outcomes = []
            for path, kind, ns, name in paths:
                if not dry_run:
                    path.unlink()
                if kind == "Namespace" and not dry_run:
                    # Deleting a namespace deletes everything in it, as in Kubernetes.
                    for inner in self.dir.glob(f"*/{name}/*.yaml"):
                        inner.unlink()
                ref = f"{kind} {ns}/{name}" if ns else f"{kind} {name}"
                outcomes.append(Outcome(ref, kind, name, "deleted"))
        if outcomes and not dry_run:
            self._changed()
        return outcomes

    def _require_namespace(self, r: Resource, batch: list[Resource]) -> None:
        if r.namespace in ("default", "istio-system"):
            return
        if self._path("Namespace", "", r.namespace).exists():
            return
        if any(b.kind == "Namespace" and b.name == r.namespace for b in batch):
            return
        raise StoreError(f'namespaces "{r.namespace}" not found ({r.ref})')


def _subdirs(path: str) -> list[os.DirEntry[str]]:
    with os.scandir(path) as entries:
        return [e for e in entries if e.is_dir()]


def _stamp(r: Resource, old: Resource | None) -> Resource:
    """The API server's part: creation time and UID, set once and kept by updates."""
    created = (old.metadata.creation_timestamp if old else None) or _now()
    uid = (old.metadata.uid if old else None) or r.metadata.uid or str(uuid.uuid4())
    meta = r.metadata.model_copy(update={"creation_timestamp": created, "uid": uid})
    return r.model_copy(update={"metadata": meta})


def _dump(r: Resource) -> str:
    return yaml.safe_dump(
        r.model_dump(by_alias=True, exclude_unset=True, mode="json"), sort_keys=False
    )


def _atomic_write(path: Path, text: str, *, secret: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(fd, 0o600 if secret else 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
