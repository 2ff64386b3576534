"""Kubernetes' OpenAPI schema dialect (CRD ``openAPIV3Schema``) translated to JSON Schema 2020-12.

``x-kubernetes-int-or-string`` becomes integer-or-string, ``nullable`` allows null, OpenAPI 3.0's
boolean ``exclusiveMinimum``/``exclusiveMaximum`` become bounds, and an object with listed
properties rejects unknown fields unless it carries ``x-kubernetes-preserve-unknown-fields``
(what ``kubectl apply`` does with strict field validation). Other ``x-kubernetes-*`` rules (CEL
validations, list-map keys) and string formats are left out: JSON Schema cannot say them.
"""
from __future__ import annotations

from lab_helpers.manifests.schemas import Schema

# Keywords that mean the same in both dialects.
_SAME_KEYWORDS = frozenset({
    "type", "enum", "pattern", "required", "minimum", "maximum", "multipleOf", "minLength",
    "maxLength", "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties",
})
_EXCLUSIVE_BOUNDS = (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum"))


def to_json_schema(node: Schema, strict: bool = True) -> Schema:
    """Translate one schema node and its children.

    `strict` is off inside anyOf/allOf/oneOf/not: Kubernetes lets those repeat a subset of the
    fields as extra constraints, so they must not reject the fields they do not repeat.
    """
    out: Schema = {key: value for key, value in node.items() if key in _SAME_KEYWORDS}
    for bound, exclusive in _EXCLUSIVE_BOUNDS:
        if node.get(exclusive) is True and bound in out:
            out[exclusive] = out.pop(bound)
    if "properties" in node:
        out["properties"] = {name: to_json_schema(child, strict) for name, child in node["properties"].items()}
    if "items" in node:
        out["items"] = to_json_schema(node["items"], strict)
    additional = node.get("additionalProperties")
    if isinstance(additional, dict):
        out["additionalProperties"] = to_json_schema(additional, strict)
    elif additional is not None:
        out["additionalProperties"] = additional
    for junctor in ("anyOf", "allOf", "oneOf"):
        if junctor in node:
            out[junctor] = [to_json_schema(child, strict=False) for child in node[junctor]]
    if "not" in node:
        out["not"] = to_json_schema(node["not"], strict=False)
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
