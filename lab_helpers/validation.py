"""Check every document against its schema before anything is applied.

Where a kind's schema comes from:

- Kinds defined by the CRD files in ``shared_dir()/crds`` (KServe, Flux, KEDA, Flagger,
  Prometheus Operator, Cilium): the ``openAPIV3Schema`` of the served version named by the
  document's apiVersion. Another kind in one of those API groups, or a version not served, is an
  error. The files are read on first use and kept for the life of the process.
- Core kinds (Namespace, Secret, Deployment, Job, NetworkPolicy, ...): `builtin_schemas`.
- Anything else: the structural check every Kubernetes object passes (apiVersion, kind,
  metadata.name, spec a mapping). So, when ``shared_dir()`` is absent (a clone without the
  reference data), CRD kinds get only this structural check.

Every object's ``metadata`` is checked as ObjectMeta, with the kind's name rule (a DNS-1123
name; DNS-1035 for Service and InferenceService). CRD schemas are in Kubernetes' OpenAPI
dialect and are translated to JSON Schema draft 4: ``x-kubernetes-int-or-string`` becomes
integer-or-string, ``nullable`` allows null, and an object with listed properties rejects
unknown fields unless it carries ``x-kubernetes-preserve-unknown-fields`` (what
``kubectl apply`` does with strict field validation). Not checked: CEL rules
(``x-kubernetes-validations``), list-map key uniqueness, string formats, admission webhooks.
"""
from __future__ import annotations

import functools
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from lab_helpers import builtin_schemas, paths
from lab_helpers.builtin_schemas import CORE_SCHEMAS, STRUCTURAL_ONLY, Schema
from lab_helpers.errors import ManifestError
from lab_helpers.manifests import Document, format_field_path

if TYPE_CHECKING:
    from jsonschema import Draft4Validator
    from jsonschema.exceptions import ValidationError

_lock = threading.RLock()

# JSON Schema keywords that mean the same in Kubernetes' OpenAPI dialect and draft 4.
_SAME_KEYWORDS = frozenset({
    "type", "enum", "pattern", "required", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "minItems", "maxItems",
    "uniqueItems", "minProperties", "maxProperties",
})
_TYPE_WORDS = {"string": "a string", "integer": "an integer", "number": "a number",
               "boolean": "true or false", "object": "a mapping of fields", "array": "a list",
               "null": "null"}
_PATTERN_WORDS = {
    **{rule.pattern: rule.description for rule in (builtin_schemas.DNS1123_SUBDOMAIN,
                                                   builtin_schemas.DNS1123_LABEL,
                                                   builtin_schemas.DNS1035_LABEL)},
    builtin_schemas.QUANTITY_PATTERN: "a quantity such as 2, 500m, 512Mi or 1Gi",
    builtin_schemas.LABEL_VALUE_PATTERN: "a label value: letters, digits, '-', '_' and '.', "
                                         "starting and ending with a letter or digit",
}


@dataclass(frozen=True)
class _CrdSchemas:
    by_kind: dict[tuple[str, str], dict[str, Schema]]
    """(API group, kind) -> {served version: openAPIV3Schema}"""
    groups: frozenset[str]
    """API groups the CRDs define: any other kind in them is an error, not a structural check."""


def validate_documents(docs: Iterable[Document]) -> None:
    """Validate all documents; raise ManifestError for the first invalid one.

    Callers apply nothing unless this returns. The other invalid documents, if any, are
    listed as notes on the exception so one round of fixes covers them all.
    """
    failures: list[ManifestError] = []
    for doc in docs:
        try:
            validate(doc.obj, doc.origin)
        except ManifestError as error:
            failures.append(error)
    if failures:
        first = failures[0]
        for other in failures[1:]:
            first.add_note(f"also invalid: {other.document}: field {other.path or '<root>'}: {other.expected}")
        raise first


def validate(obj: Any, origin: str) -> None:
    """Raise ManifestError naming `origin`, the field path and what was expected."""
    if not isinstance(obj, dict):
        raise ManifestError(origin, "", f"expected a mapping (a Kubernetes object), got {_shown(obj)}")
    for field in ("apiVersion", "kind"):
        value = obj.get(field)
        if not isinstance(value, str) or not value:
            raise ManifestError(origin, field, "required field is missing" if value is None
                                else f"expected a non-empty string, got {_shown(value)}")
    from jsonschema.exceptions import best_match  # see _compiled for why it is imported here

    error = best_match(_validator(obj["apiVersion"], obj["kind"], origin).iter_errors(obj))
    if error is not None:
        path, expected = _explain(error)
        raise ManifestError(origin, format_field_path(path), expected)


def _validator(api_version: str, kind: str, origin: str) -> Draft4Validator:
    group, _, version = api_version.rpartition("/")
    crd_dir = _crd_dir()
    crds = _crd_schemas(crd_dir)
    versions = CORE_SCHEMAS.get((group, kind)) or crds.by_kind.get((group, kind))
    if versions is None:
        if group in crds.groups:
            known = sorted(k for g, k in crds.by_kind if g == group)
            raise ManifestError(origin, "kind", f"no schema for kind {kind} in apiVersion {api_version} "
                                f"(kinds of {group}: {', '.join(known)})")
        return _compiled(None, group, kind, None)
    if version not in versions:
        served = ", ".join(f"{group}/{v}" if group else v for v in versions)
        raise ManifestError(origin, "apiVersion", f"{api_version} is not served for {kind}; "
                            f"served: {served}")
    return _compiled(crd_dir, group, kind, version)


def _crd_dir() -> Path | None:
    shared = paths.shared_dir()
    return shared / "crds" if shared is not None and (shared / "crds").is_dir() else None


def _crd_schemas(crd_dir: Path | None) -> _CrdSchemas:
    with _lock:
        return _read_crds(crd_dir)


@functools.cache
def _read_crds(crd_dir: Path | None) -> _CrdSchemas:
    """Served versions' schemas of every CRD in `crd_dir` (multi-document files included)."""
    by_kind: dict[tuple[str, str], dict[str, Schema]] = {}
    if crd_dir is None:
        return _CrdSchemas(by_kind, frozenset())
    loader = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
    for file in sorted(p for p in crd_dir.iterdir() if p.suffix in (".yaml", ".yml")):
        for crd in yaml.load_all(file.read_text(encoding="utf-8"), Loader=loader):
            if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            by_kind[(spec["group"], spec["names"]["kind"])] = {
                version["name"]: version["schema"]["openAPIV3Schema"]
                for version in spec["versions"] if version.get("served")}
    return _CrdSchemas(by_kind, frozenset(group for group, _ in by_kind))


@functools.cache
def _compiled(crd_dir: Path | None, group: str, kind: str, version: str | None) -> Draft4Validator:
    """Validator for one kind and version; `version` None means the structural check only."""
    # Imported on first use, not with this module: importing jsonschema takes about a second
    # (its optional format checkers build parsers), which processes that never validate skip.
    from jsonschema import Draft4Validator

    with _lock:
        if version is None:
            source = STRUCTURAL_ONLY
        elif (group, kind) in CORE_SCHEMAS:
            source = CORE_SCHEMAS[(group, kind)][version]
        else:
            source = _read_crds(crd_dir).by_kind[(group, kind)][version]
        schema = _to_json_schema(source)
        schema.setdefault("properties", {}).update(
            apiVersion={"type": "string"}, kind={"type": "string"},
            metadata=_to_json_schema(builtin_schemas.object_meta(builtin_schemas.name_rule(kind))))
        top = ["apiVersion", "kind", "metadata"]
        schema["required"] = top + [field for field in schema.get("required", []) if field not in top]
        return Draft4Validator(schema)


def _to_json_schema(node: Schema, strict: bool = True) -> Schema:
    """Translate one Kubernetes OpenAPI schema node (and its children) to JSON Schema draft 4.

    `strict` is off inside anyOf/allOf/oneOf/not: Kubernetes lets those repeat a subset of the
    fields as extra constraints, so they must not reject the fields they do not repeat.
    """
    out: Schema = {key: value for key, value in node.items() if key in _SAME_KEYWORDS}
    if "properties" in node:
        out["properties"] = {name: _to_json_schema(child, strict) for name, child in node["properties"].items()}
    if "items" in node:
        out["items"] = _to_json_schema(node["items"], strict)
    additional = node.get("additionalProperties")
    if isinstance(additional, dict):
        out["additionalProperties"] = _to_json_schema(additional, strict)
    elif additional is not None:
        out["additionalProperties"] = additional
    for junctor in ("anyOf", "allOf", "oneOf"):
        if junctor in node:
            out[junctor] = [_to_json_schema(child, strict=False) for child in node[junctor]]
    if "not" in node:
        out["not"] = _to_json_schema(node["not"], strict=False)
    if node.get("x-kubernetes-int-or-string") and "anyOf" not in node:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if (strict and "properties" in node and additional is None
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def _explain(error: ValidationError) -> tuple[list[str | int], str]:
    """(field path, what was expected) for a human, from a jsonschema error."""
    path: list[str | int] = list(error.absolute_path)
    kind, expected, instance = error.validator, error.validator_value, error.instance
    if kind == "required":
        missing = next(field for field in expected if field not in instance)
        return [*path, missing], "required field is missing"
    if kind == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        unknown = next(field for field in instance if field not in known)
        guess = get_close_matches(str(unknown), known, n=1)
        hint = f"did you mean {guess[0]!r}?" if guess else f"fields allowed here: {', '.join(known)}"
        return [*path, unknown], f"unknown field ({hint})"
    if kind in ("anyOf", "oneOf") and _only_types(expected):
        types = [branch["type"] for branch in expected]
        return path, f"expected {' or '.join(_TYPE_WORDS[t] for t in types)}, got {_shown(instance)}"
    if kind == "type":
        parent = error.parent
        alternatives = parent is not None and parent.validator in ("anyOf", "oneOf") \
            and _only_types(parent.validator_value)
        types = ([branch["type"] for branch in parent.validator_value] if alternatives
                 else [expected] if isinstance(expected, str) else expected)
        words = " or ".join(_TYPE_WORDS[t] for t in types)
        quote = (f' (quote it in YAML: "{_yaml_scalar(instance)}")'
                 if "string" in types and isinstance(instance, (bool, int, float)) else "")
        return path, f"expected {words}, got {_shown(instance)}{quote}"
    if kind == "enum":
        return path, f"expected one of {', '.join(repr(v) for v in expected)}, got {_shown(instance)}"
    if kind == "pattern":
        return path, f"expected {_PATTERN_WORDS.get(expected, 'a string matching ' + expected)}, got {_shown(instance)}"
    if kind in ("minLength", "maxLength"):
        bound = "at least" if kind == "minLength" else "at most"
        return path, f"expected {bound} {expected} characters, got {len(instance)}"
    if kind in ("minItems", "maxItems"):
        bound = "at least" if kind == "minItems" else "at most"
        return path, f"expected {bound} {expected} item(s), got {len(instance)}"
    if kind in ("minimum", "maximum"):
        bound = ">=" if kind == "minimum" else "<="
        return path, f"expected a number {bound} {expected}, got {instance}"
    return path, error.message


def _only_types(branches: list[Schema]) -> bool:
    """True for ``anyOf: [{type: integer}, {type: string}]``: report both types, not one branch."""
    return all(set(branch) == {"type"} and isinstance(branch["type"], str) for branch in branches)


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "null (an empty value)" if value is None else type(value).__name__


def _yaml_scalar(value: bool | int | float) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
