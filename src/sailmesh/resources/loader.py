"""YAML / JSON text → typed resources, every problem placed at file:line and field.

Owns: splitting input into objects (multi-document YAML, `kind: List`), kind and
apiVersion dispatch through `kinds.KINDS`, metadata defaults (namespace, IstioOperator's
name), turning pydantic errors into `Problem`s with YAML field paths and did-you-mean
hints, duplicate detection, and running `validation.validate` on every object.
An input with any error is rejected whole (`ResourceError` lists every problem);
warnings are returned beside the resources. The tolerant mode (`analyze`, as istioctl
analyze) rejects nothing: errors are returned beside the resources, an object that breaks
only single-object rules is kept, and one whose fields do not fit the model is kept without
the list entries (or fields) that do not fit, when that leaves a valid object.
Must not know: the store, what is already applied, Envoy. The only IO is `load_paths`
reading the files (and stdin) it is named, through `sailmesh.sources` (which the CLI also
uses to send them to the daemon, whose `load_sources` call gives the same answer). Parsing
text into documents that know each field's line is `documents`'s job.

Every accepted object keeps its `Origin` (file and YAML node), so that later stages that
find a problem in a field (`analyze`) can point at its line. Readers that only look at
what they know (`analyze -f` over any Kubernetes manifests) ask for unknown kinds to be
set aside as `Skipped` objects instead of failing.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

from sailmesh.resources import describe
from sailmesh.resources.base import Resource
from sailmesh.resources.documents import (
    Document,
    Path,
    duplicate_keys,
    line_of,
    parse_json,
    parse_yaml,
    yaml_problem,
)
from sailmesh.resources.errors import Problem, ResourceError
from sailmesh.resources.kinds import KINDS
from sailmesh.resources.names import did_you_mean
from sailmesh.resources.validation import validate
from sailmesh.resources.yaml_limits import (
    MAX_OBJECT_BYTES,
    InputLimitError,
    check_request_size,
)
from sailmesh.sources import MANIFEST_SUFFIXES, Source, read_sources

# istioctl installs an IstioOperator without a name as `installed-state` in istio-system.
_DEFAULT_NAMES = {"IstioOperator": "installed-state"}
_DEFAULT_NAMESPACES = {"IstioOperator": "istio-system"}


@dataclass(frozen=True)
class Origin:
    """Where one object was read: its file and YAML node (None for JSON or code)."""

    source: str
    node: yaml.Node | None
    prefix: Path = ()

    def line(self, field: str | None = None) -> int | None:
        """The line of `field` (`spec.servers[0].tls`), or of the object when None.

        Falls back to the deepest part of the path that exists in the YAML."""
        path = describe.parse_path(field) if field else ()
        return line_of(self.node, self.prefix + path) if self.node is not None else None

    def where(self, field: str | None = None) -> str:
        """`file:line`, or just the file when the line is unknown."""
        line = self.line(field)
        return f"{self.source}:{line}" if line is not None else self.source


@dataclass(frozen=True)
class Skipped:
    """An object of a kind the loader does not model, set aside on request (raw data)."""

    origin: Origin
    kind: str
    api_version: str
    data: dict[str, Any]

    @property
    def where(self) -> str:
        return self.origin.where()


@dataclass(frozen=True)
class LoadResult:
    resources: tuple[Resource, ...]
    warnings: tuple[Problem, ...]
    # resource.key → where it was read (objects built in code have none).
    origins: dict[tuple[str, str, str], Origin] = field(default_factory=dict)
    skipped: tuple[Skipped, ...] = ()
    errors: tuple[Problem, ...] = ()  # tolerant mode only (strict mode raises them)


def load_text(text: str, source: str = "-", namespace: str | None = None, *,
              skip_unknown_kinds: bool = False, tolerant: bool = False) -> LoadResult:
    """Parse one input. `namespace` is `--namespace` when given (None: "default").

    `skip_unknown_kinds`: objects of kinds not in `KINDS` become `LoadResult.skipped`
    instead of errors (an apiVersion that a known kind does not accept is still an error).
    `tolerant`: never raise; errors go to `LoadResult.errors` (see the module docstring).
    """
    session = _Session(namespace, skip_unknown_kinds, tolerant)
    session.add_text(text, source)
    return session.result()


def load_paths(paths: Sequence[str], namespace: str | None, *, recursive: bool = False,
               skip_unknown_kinds: bool = False, tolerant: bool = False) -> LoadResult:
    """Files, directories (their *.yaml|*.yml|*.json, sorted; subdirectories too when
    `recursive`) and "-" (stdin). `skip_unknown_kinds` and `tolerant` as in `load_text`."""
    return load_sources(read_sources(paths, recursive=recursive), namespace,
                        skip_unknown_kinds=skip_unknown_kinds, tolerant=tolerant)


def load_sources(sources: Sequence[Source], namespace: str | None, *,
                 skip_unknown_kinds: bool = False, tolerant: bool = False) -> LoadResult:
    """Inputs already read (`sailmesh.sources.read_sources`), as `load_paths` loads them."""
    session = _Session(namespace, skip_unknown_kinds, tolerant)
    for source in sources:
        if source.error is not None:
            session.problems.append(Problem(source.name, None, None, None, source.error))
        else:
            session.add_text(source.text or "", source.name)
    return session.result()


def load_object(obj: dict[str, Any], source: str, namespace: str | None) -> Resource:
    """One object built in code (e.g. by `sailctl create secret tls`); warnings are dropped."""
    session = _Session(namespace)
    session.add_document(Document(source, copy.deepcopy(obj), None, ()))
    result = session.result()
    if len(result.resources) != 1:
        raise ResourceError([Problem(source, None, None, None, "expected exactly one object")])
    return result.resources[0]


class _Session:
    """Accumulates resources and problems over every text of one apply."""

    def __init__(self, namespace: str | None, skip_unknown_kinds: bool = False,
                 tolerant: bool = False) -> None:
        self.namespace = namespace
        self.skip_unknown_kinds = skip_unknown_kinds
        self.tolerant = tolerant
        self.resources: list[Resource] = []
        self.problems: list[Problem] = []
        self.seen: dict[tuple[str, str, str], str] = {}
        self.origins: dict[tuple[str, str, str], Origin] = {}
        self.skipped: list[Skipped] = []

    def result(self) -> LoadResult:
        # Reading order: by input, then by line (pydantic reports in model-field order).
        order = {source: i for i, source in enumerate(dict.fromkeys(p.source for p in self.problems))}
        problems = sorted(self.problems, key=lambda p: (order[p.source], p.line or 0))
        errors = tuple(p for p in problems if p.is_error)
        if errors and not self.tolerant:
            raise ResourceError(problems)
        return LoadResult(tuple(self.resources), tuple(p for p in problems if not p.is_error),
                          dict(self.origins), tuple(self.skipped), errors)

    def add_text(self, text: str, source: str) -> None:
        documents: list[Document] | None
        try:
            check_request_size(len(text.encode("utf-8", "surrogatepass")))
            documents = parse_yaml(text, source)
        except InputLimitError as exc:
            self.problems.append(Problem(source, exc.line, None, None, str(exc)))
            return
        except yaml.YAMLError as exc:
            try:
                documents = parse_json(text, source)
            except InputLimitError as limit:
                self.problems.append(Problem(source, None, None, None, str(limit)))
                return
            if documents is None:
                self.problems.append(yaml_problem(exc, source))
                return
        for doc in documents:
            self.problems.extend(duplicate_keys(doc))
            self.add_document(doc)

    def add_document(self, doc: Document) -> None:
        data = doc.data
        if data is None:
            return  # an empty document, e.g. a trailing `---`
        if not isinstance(data, dict):
            msg = f"expected an object (apiVersion, kind, metadata, ...), got {describe.got(data)}"
            self.problems.append(doc.problem((), msg))
            return
        kind = data.get("kind")
        if isinstance(kind, str) and kind.endswith("List") and "items" in data:
            items = data["items"]
            if not isinstance(items, list):
                self.problems.append(doc.problem(("items",), f"expected a list, got {describe.got(items)}"))
                return
            for index in range(len(items)):
                self.add_document(doc.item(index))
            return
        size = len(json.dumps(data, default=str))
        if size > MAX_OBJECT_BYTES:
            ref = _raw_ref(data.get("kind"), data.get("metadata"), self.namespace or "default")
            self.problems.append(doc.problem((), f"object is too large: {size} bytes, limit is"
                                             f" {MAX_OBJECT_BYTES}", ref))
            return
        resource = self._build(doc, data)
        if resource is None:
            return
        where = f"{doc.source}:{doc.line(('metadata', 'name')) or '?'}"
        if resource.key in self.seen:
            self.problems.append(
                doc.problem(
                    ("metadata", "name"),
                    f"duplicate object {resource.ref}: also defined at {self.seen[resource.key]}",
                    resource.ref,
                )
            )
            return
        self.seen[resource.key] = where
        self.origins[resource.key] = Origin(doc.source, doc.node, doc.prefix)
        for problem in validate(resource):
            path = describe.parse_path(problem.field or "")
            field = describe.render_path(doc.prefix + path) or None
            self.problems.append(
                Problem(
                    doc.source,
                    doc.line(path),
                    problem.ref,
                    field,
                    problem.message,
                    problem.severity,
                    problem.hint,
                )
            )
        self.resources.append(resource)

    def _build(self, doc: Document, data: dict[str, Any]) -> Resource | None:
        """Dispatch on kind, default the metadata, run the model; None after a problem."""
        api_version, kind = data.get("apiVersion"), data.get("kind")
        meta = data.get("metadata")
        ref = _raw_ref(kind, meta, self.namespace or "default")
        start = len(self.problems)
        if not isinstance(api_version, str) or not api_version:
            self.problems.append(doc.problem(("apiVersion",), "apiVersion not set", ref))
        if not isinstance(kind, str) or not kind:
            self.problems.append(doc.problem(("kind",), "kind not set", ref))
        if len(self.problems) > start or not (isinstance(api_version, str)
                                              and isinstance(kind, str)):
            return None
        cls = KINDS.get(kind)
        if cls is None and self.skip_unknown_kinds:
            self.skipped.append(Skipped(Origin(doc.source, doc.node, doc.prefix), kind,
                                        api_version, data))
            return None
        if cls is None or api_version not in cls.API_VERSIONS:
            msg = f'no matches for kind "{kind}" in version "{api_version}"'
            if cls is None:
                guess = did_you_mean(kind, KINDS)
                hint = f'did you mean "{guess}"?' if guess else "known kinds: " + ", ".join(KINDS)
                self.problems.append(doc.problem(("kind",), msg, ref, hint=hint))
            else:
                hint = "accepted apiVersions: " + ", ".join(cls.API_VERSIONS)
                self.problems.append(doc.problem(("apiVersion",), msg, ref, hint=hint))
            return None
        if meta is None:
            meta = data["metadata"] = {}
        if not isinstance(meta, dict):
            self.problems.append(doc.problem(("metadata",), "metadata must be an object", ref))
            return None
        meta.setdefault("name", _DEFAULT_NAMES.get(kind))
        if not meta.get("name"):
            self.problems.append(
                doc.problem(
                    ("metadata", "name"),
                    "resource name may not be empty",
                    ref,
                    hint="set metadata.name",
                )
            )
            return None
        if not self._namespace(doc, cls, meta, ref):
            return None
        ref = _raw_ref(kind, meta, meta.get("namespace") if cls.NAMESPACED else None)
        try:
            return cls.model_validate(data, by_alias=True, by_name=False)
        except ValidationError as exc:
            failed = describe.validation_errors(exc, cls, data)
            for path, message, advice in failed:
                self.problems.append(doc.problem(path, message, ref, hint=advice))
            return self._salvage(cls, data, [p for p, _, _ in failed]) if self.tolerant else None

    @staticmethod
    def _salvage(cls: type[Resource], data: dict[str, Any], paths: list[Path]) -> Resource | None:
        """Tolerant mode: the object without what does not fit the model (the problems are
        already reported), so that the rest of it is still analyzed; None when that fails."""
        trimmed = copy.deepcopy(data)
        for _ in range(_SALVAGE_ROUNDS):
            found = {_removable(trimmed, p) for p in paths}
            targets = {t for t in found if t is not None}
            if len(targets) < len(found):
                return None
            # Later list entries first, so that removing one does not shift the next one.
            for path in sorted(targets, reverse=True):  # type: ignore[type-var]
                _remove(trimmed, path)
            try:
                return cls.model_validate(trimmed, by_alias=True, by_name=False)
            except ValidationError as exc:
                paths = [p for p, _, _ in describe.validation_errors(exc, cls, trimmed)]
        return None

    def _namespace(self, doc: Document, cls: type[Resource], meta: dict[str, Any], ref: str) -> bool:
        given = meta.get("namespace")
        if not cls.NAMESPACED:
            meta.pop("namespace", None)  # as kubectl: cluster-scoped objects have none
            return True
        if given and self.namespace and given != self.namespace:
            # kubectl's wording, so that users recognise the rule.
            self.problems.append(
                doc.problem(
                    ("metadata", "namespace"),
                    f'the namespace from the provided object "{given}" does not match the'
                    f" namespace \"{self.namespace}\". You must pass '--namespace={given}'"
                    " to perform this operation.",
                    ref,
                )
            )
            return False
        if not given:
            meta["namespace"] = self.namespace or _DEFAULT_NAMESPACES.get(cls.KIND, "default")
        return True


# A field removed in one round may leave its list entry invalid in the next.
_SALVAGE_ROUNDS = 4


def _removable(data: Any, path: Path) -> Path | None:
    """What to drop for a field that does not fit: the field itself when it is there (an
    unknown field, a value of the wrong type); for a missing required field, the list entry
    around it (a route without destination, a server without port); None when neither."""
    if _step_path(data, path) is not _MISSING:
        return path
    last_index = max((i for i, part in enumerate(path) if isinstance(part, int)), default=None)
    return path[:last_index + 1] if last_index is not None else None


_MISSING = object()


def _step_path(node: Any, path: Path) -> Any:
    for part in path:
        in_dict = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_dict or in_list):
            return _MISSING
        node = node[part]
    return node


def _remove(data: Any, path: Path) -> None:
    parent = _step_path(data, path[:-1])
    if isinstance(parent, (dict, list)) and path:
        del parent[path[-1]]  # type: ignore[arg-type]


def _raw_ref(kind: Any, meta: Any, namespace: str | None) -> str:
    """`Kind ns/name` from unvalidated data, as far as it goes (namespace None: cluster-scoped)."""
    kind = kind if isinstance(kind, str) and kind else "object"
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        return kind
    given = meta.get("namespace")
    if namespace is not None:
        return f"{kind} {given if isinstance(given, str) and given else namespace}/{meta['name']}"
    return f"{kind} {meta['name']}"


__all__ = ["MANIFEST_SUFFIXES", "LoadResult", "Origin", "Skipped", "load_object", "load_paths",
           "load_sources", "load_text"]
