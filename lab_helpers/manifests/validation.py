"""Check every document against its schema before anything is applied.

Where a kind's schema comes from (all of it shipped with the package, see `lab_helpers.manifests.schemas`):

- Kubernetes' own kinds (Namespace, Secret, Deployment, Job, NetworkPolicy, ...): the strict
  schemas of the kubernetes-validate package for Kubernetes `builtin.K8S_VERSION`, with the
  API server's coded rules learners run into (`schemas.builtin`).
- Kinds of the upstream CRDs the lab uses (KServe, Flux, KEDA, Flagger, Prometheus Operator,
  Cilium, Gateway API): the structural schema of the served version named by the document's
  apiVersion (`schemas.packaged`), translated by `schemas.dialect`. Another kind in one of those
  API groups, or a version not served, is an error.
- Anything else: the structural check every Kubernetes object passes (apiVersion, kind,
  metadata.name, spec a mapping).

Every object's ``metadata`` is checked as ObjectMeta with the kind's name rule (`schemas.names`:
a DNS-1123 name; DNS-1035 for Service and InferenceService). Not checked: CEL rules
(``x-kubernetes-validations``), list-map key uniqueness, string formats, admission webhooks.
"""
from __future__ import annotations

import functools
import threading
from collections.abc import Iterable
from difflib import get_close_matches
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab_helpers.errors import ManifestError
from lab_helpers.manifests.loading import Document, format_field_path
from lab_helpers.manifests.schemas import Schema, builtin, dialect, names, packaged

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

_lock = threading.RLock()

# In the order a message names them.
_TYPE_WORDS = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
               "object": "a mapping of fields", "array": "a list", "null": "null"}
_PATTERN_WORDS = {
    **{rule.pattern: rule.description for rule in (names.DNS1123_SUBDOMAIN, names.DNS1123_LABEL,
                                                   names.DNS1035_LABEL)},
    builtin.QUANTITY_PATTERN: "a quantity such as 2, 500m, 512Mi or 1Gi",
    names.LABEL_VALUE_PATTERN: "a label value: letters, digits, '-', '_' and '.', "
                               "starting and ending with a letter or digit",
}


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


def _validator(api_version: str, kind: str, origin: str) -> Draft202012Validator:
    group, _, version = api_version.rpartition("/")
    crd_dir = packaged.DIRECTORY
    versions = _served(crd_dir, group, kind)
    if versions is None:
        crds = _crds(crd_dir)
        if group in crds.groups:
            known = sorted(k for g, k in crds.by_kind if g == group)
            raise ManifestError(origin, "kind", f"no schema for kind {kind} in apiVersion {api_version} "
                                f"(kinds of {group}: {', '.join(known)})")
        return _compiled(crd_dir, group, kind, None)
    if version not in versions:
        served = ", ".join(f"{group}/{v}" if group else v for v in versions)
        raise ManifestError(origin, "apiVersion", f"{api_version} is not served for {kind}; "
                            f"served: {served}")
    return _compiled(crd_dir, group, kind, version)


def _crds(crd_dir: Path) -> packaged.CrdSchemas:
    with _lock:
        return packaged.load(crd_dir)


def _served(crd_dir: Path, group: str, kind: str) -> dict[str, Any] | None:
    """Served version -> its schema source, built-in kinds first; None for a kind without a schema."""
    crd = _crds(crd_dir).by_kind.get((group, kind))
    with _lock:
        return builtin.versions(group, kind) or (crd.versions if crd else None)


@functools.cache
def _compiled(crd_dir: Path, group: str, kind: str, version: str | None) -> Draft202012Validator:
    """Validator for one kind and version; `version` None means the structural check only."""
    # Imported on first use, not with this module: importing jsonschema takes about a second
    # (its optional format checkers build parsers), which processes that never validate skip.
    from jsonschema import Draft202012Validator

    with _lock:
        source = None if version is None else _served(crd_dir, group, kind)[version]
        if source is None:  # every Kubernetes object has this shape
            schema: Schema = {"type": "object", "properties": {"spec": {"type": "object"}}}
        elif isinstance(source, str):  # a built-in kind: a $ref into the release's definitions
            schema = {"$ref": source}
        else:
            schema = dialect.to_json_schema(source)
        schema.setdefault("properties", {}).update(
            apiVersion={"type": "string"}, kind={"type": "string"}, metadata=names.metadata(kind))
        top = ["apiVersion", "kind", "metadata"]
        schema["required"] = top + [field for field in schema.get("required", []) if field not in top]
        return Draft202012Validator(schema, registry=builtin.registry())


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
    if kind in ("anyOf", "oneOf") and (types := _only_types(expected)):
        return path, f"expected {_type_words(types)}, got {_shown(instance)}"
    if kind == "type":
        parent = error.parent
        types = (parent is not None and parent.validator in ("anyOf", "oneOf") and _only_types(parent.validator_value)
                 or ([expected] if isinstance(expected, str) else expected))
        quote = (f' (quote it in YAML: "{_yaml_scalar(instance)}")'
                 if "string" in types and isinstance(instance, (bool, int, float)) else "")
        return path, f"expected {_type_words(types)}, got {_shown(instance)}{quote}"
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


def _only_types(branches: list[Schema]) -> list[str]:
    """The types of ``anyOf: [{type: integer}, {type: string}]``, to report them all, not one branch.

    Empty when a branch says more than its type.
    """
    if not all(set(branch) == {"type"} for branch in branches):
        return []
    return [t for branch in branches for t in ([branch["type"]] if isinstance(branch["type"], str) else branch["type"])]


def _type_words(types: list[str]) -> str:
    """``an integer or a string``; null is named only alone: Kubernetes' own schemas let nearly
    every field be null, and "or null" would only distract from the type wanted."""
    wanted = set(types) - {"null"} or {"null"}
    return " or ".join(words for t, words in _TYPE_WORDS.items() if t in wanted)


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
