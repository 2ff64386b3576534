"""Turn what a user hands to ``apply`` (files, folders, YAML text, dicts) into documents.

Both targets (the local daemon and the Kubernetes client) call `load_documents`, so a manifest
means the same thing everywhere. Each document carries an origin such as
``manifests/serving/iris-inferenceservice.yaml#1 (InferenceService iris)`` so any later error
can say which document it is about. Only PyYAML is needed here.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

from lab_helpers import paths
from lab_helpers.errors import ManifestError

# `$$` is matched first so an escaped `$${X}` is skipped whole (Kubernetes reduces `$$` to `$`
# itself); only the exact `${NAME}` form is a placeholder, `$NAME` and `${X:-y}` are left alone.
_PLACEHOLDER = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

# Kinds that live outside namespaces: never given a default namespace. Core Kubernetes kinds plus
# the cluster-scoped kinds of the stack this lab installs (KServe, KEDA, cert-manager, Cilium).
CLUSTER_SCOPED_KINDS = frozenset({
    "Namespace", "Node", "PersistentVolume", "StorageClass", "CSIDriver", "CSINode",
    "VolumeAttachment", "RuntimeClass", "PriorityClass", "IngressClass",
    "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "APIService",
    "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "CertificateSigningRequest",
    "GatewayClass", "ClusterServingRuntime", "ClusterStorageContainer", "LocalModelCache",
    "LocalModelNode", "LocalModelNodeGroup", "ClusterTriggerAuthentication", "ClusterIssuer",
    "CiliumClusterwideNetworkPolicy",
})

_YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class Document:
    """One Kubernetes object to apply, and where it came from (for error messages)."""

    obj: dict[str, Any]
    origin: str


def is_cluster_scoped(kind: str) -> bool:
    """True for kinds that have no namespace (Namespace, ClusterServingRuntime, ...)."""
    return kind in CLUSTER_SCOPED_KINDS


class _Loader(yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader):  # type: ignore[misc]
    """Safe loader that keeps timestamps as strings and rejects duplicate keys.

    Kubernetes objects are JSON: a date-like annotation must stay a string, and a key given
    twice (two ``resources:`` blocks) is an error in kubectl, not "the last one wins".
    """

    yaml_implicit_resolvers: ClassVar[dict[Any, list[Any]]] = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"found duplicate key {key_node.value!r}", key_node.start_mark)
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def load_documents(source: str | Path | Mapping[str, Any] | Iterable[Mapping[str, Any]],
                   variables: Mapping[str, str] | None = None,
                   namespace: str | None = None) -> list[Document]:
    """Read `source` into documents, fill ``${VAR}`` placeholders and default namespaces.

    `source` is a YAML file, a folder (its ``*.yaml``/``*.yml`` files, recursively, sorted by
    path), YAML text, a dict, or a list of dicts. A relative path is looked up in the current
    directory, then in the repo root (notebooks run from ``notebooks/``). Empty documents are
    skipped and ``kind: List`` is flattened into its items.

    Placeholders are filled from `variables`, then the environment; an unset one raises
    ManifestError naming the document and field. In files and text they are filled in the text
    before parsing (so ``replicas: ${N}`` gives a number); in dicts, in string keys and values.
    Namespaced kinds without ``metadata.namespace`` get `namespace` when it is given.
    """
    lookup = _Variables(variables)
    if isinstance(source, Mapping):
        documents = [_from_object(source, "<dict>#1", lookup)]
    elif isinstance(source, Path) or (isinstance(source, str) and _looks_like_path(source)):
        documents = _from_path(_resolve(Path(source)), lookup)
    elif isinstance(source, str):
        documents = _from_text(source, "<string>", lookup)
    elif isinstance(source, Iterable):
        documents = [_from_object(item, f"<list>#{index}", lookup)
                     for index, item in enumerate(source, start=1)]
    else:
        raise ManifestError(repr(source)[:80], "", "expected a YAML file or folder path, YAML text, "
                            f"a dict or a list of dicts, got {type(source).__name__}")
    flattened = [item for document in documents for item in _flatten(document)]
    if namespace:
        for document in flattened:
            _default_namespace(document.obj, namespace)
    return flattened


class _Variables:
    """Placeholder values: the caller's first, then the environment."""

    def __init__(self, variables: Mapping[str, str] | None):
        self._given = {name: str(value) for name, value in (variables or {}).items()}

    def get(self, name: str) -> str | None:
        return self._given[name] if name in self._given else os.environ.get(name)

    def fill(self, text: str, missing: list[str]) -> str:
        """Fill known placeholders; unknown ones stay in place and are appended to `missing`."""
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None:  # `$$` escape
                return match.group(0)
            value = self.get(name)
            if value is None:
                missing.append(name)
                return match.group(0)
            return value
        return _PLACEHOLDER.sub(replace, text)


def _looks_like_path(text: str) -> bool:
    """A one-line string with no `key: value` in it names a file; anything else is YAML."""
    stripped = text.strip()
    return bool(stripped) and "\n" not in stripped and ": " not in stripped \
        and not stripped.startswith(("{", "[", "-", "#"))


def _resolve(path: Path) -> Path:
    candidates = [path] if path.is_absolute() else [path, paths.REPO_ROOT / path]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise ManifestError(str(path), "", "no such file or folder (relative paths are looked up in "
                        f"the current directory {Path.cwd()}, then the repo root {paths.REPO_ROOT})")


def _label(path: Path) -> str:
    """Repo-relative path when inside the repo: short, and the same on every machine."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(paths.REPO_ROOT).as_posix()
    except ValueError:
        return str(resolved)


def _from_path(path: Path, lookup: _Variables) -> list[Document]:
    if path.is_dir():
        files = sorted((p for p in path.rglob("*") if p.suffix in _YAML_SUFFIXES and p.is_file()
                        and not any(part.startswith(".") for part in p.relative_to(path).parts)),
                       key=lambda p: p.relative_to(path).as_posix())
        if not files:
            raise ManifestError(_label(path), "", "folder holds no *.yaml or *.yml files")
        return [document for file in files for document in _from_path(file, lookup)]
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ManifestError(_label(path), "", f"cannot read the file: {error}") from error
    return _from_text(text, _label(path), lookup)


def _from_text(text: str, label: str, lookup: _Variables) -> list[Document]:
    missing: list[str] = []
    filled = lookup.fill(text, missing)
    try:
        parsed = list(yaml.load_all(filled, Loader=_Loader))
    except yaml.MarkedYAMLError as error:
        if missing:  # an unfilled placeholder may be what broke the syntax: name it first
            raise _unset(label, "", missing[0]) from error
        mark = error.problem_mark or error.context_mark
        where = f"{label}, line {mark.line + 1}, column {mark.column + 1}" if mark else label
        context = f" ({error.context})" if error.context else ""
        raise ManifestError(where, "", f"invalid YAML: {error.problem}{context}") from error
    except yaml.YAMLError as error:
        raise ManifestError(label, "", f"invalid YAML: {error}") from error
    documents = [_document(obj, f"{label}#{index}")
                 for index, obj in enumerate(parsed, start=1) if obj is not None]
    if missing:
        # Placeholders left only in comments vanished in parsing and are fine; any still in a
        # value is reported with its document and field.
        for document in documents:
            _check_filled(document.obj, document.origin, set(missing), [])
    return documents


def _from_object(obj: Any, label: str, lookup: _Variables) -> Document:
    if not isinstance(obj, Mapping):
        raise ManifestError(label, "", f"expected a mapping (a Kubernetes object), got {type(obj).__name__}")
    # _fill_object builds new containers, so the caller's dict is never modified
    return _document(_fill_object(obj, lookup, _origin(label, obj), []), label)


def _fill_object(value: Any, lookup: _Variables, origin: str, path: list[str | int]) -> Any:
    """Copy of `value` with placeholders filled in every string key and value."""
    if isinstance(value, str):
        missing: list[str] = []
        filled = lookup.fill(value, missing)
        if missing:
            raise _unset(origin, format_field_path(path), missing[0])
        return filled
    if isinstance(value, Mapping):
        return {_fill_object(key, lookup, origin, [*path, key]): _fill_object(item, lookup, origin, [*path, key])
                for key, item in value.items()}
    if isinstance(value, list):
        return [_fill_object(item, lookup, origin, [*path, index]) for index, item in enumerate(value)]
    return value


def _check_filled(value: Any, origin: str, missing: set[str], path: list[str | int]) -> None:
    if isinstance(value, str):
        for match in _PLACEHOLDER.finditer(value):
            if match.group(1) in missing:
                raise _unset(origin, format_field_path(path), match.group(1))
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_filled(key, origin, missing, [*path, key])
            _check_filled(item, origin, missing, [*path, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_filled(item, origin, missing, [*path, index])


def _unset(origin: str, field: str, name: str) -> ManifestError:
    return ManifestError(origin, field, f"variable ${{{name}}} is not set: pass "
                         f"variables={{'{name}': ...}} or set it in the environment")


def _document(obj: Any, label: str) -> Document:
    if not isinstance(obj, dict):
        raise ManifestError(label, "", f"expected a mapping (a Kubernetes object), got {type(obj).__name__}")
    return Document(obj, _origin(label, obj))


def _origin(label: str, obj: Mapping[str, Any]) -> str:
    kind = obj.get("kind")
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    described = " ".join(str(part) for part in (kind, name) if part)
    return f"{label} ({described})" if described else label


def _flatten(document: Document) -> list[Document]:
    """A ``kind: List`` stands for its items (what ``kubectl get -o yaml`` prints)."""
    if document.obj.get("kind") != "List":
        return [document]
    items = document.obj.get("items") or []
    if not isinstance(items, list):
        raise ManifestError(document.origin, "items", f"expected a list, got {type(items).__name__}")
    label = document.origin.split(" (", 1)[0]
    return [flat for index, item in enumerate(items)
            for flat in _flatten(_document(item, f"{label} items[{index}]"))]


def _default_namespace(obj: dict[str, Any], namespace: str) -> None:
    kind = obj.get("kind")
    if isinstance(kind, str) and is_cluster_scoped(kind):
        return
    metadata = obj.setdefault("metadata", {})
    if isinstance(metadata, dict) and not metadata.get("namespace"):
        metadata["namespace"] = namespace


def format_field_path(parts: Iterable[str | int]) -> str:
    """``spec.containers[0].env`` style; keys with dots or slashes are bracketed."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", str(part)):
            text += f".{part}" if text else str(part)
        else:
            text += f'["{part}"]'
    return text
