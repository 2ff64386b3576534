"""The rules for ``metadata`` that Kubernetes enforces in code, not in its OpenAPI schema.

ObjectMeta's schema says only that a name is a string; the API server (or, for an
InferenceService, KServe's webhook) also wants a DNS name of bounded length, and label values
of a fixed alphabet. `metadata` layers these on ObjectMeta's own schema for every kind.
"""
from __future__ import annotations

from dataclasses import dataclass

from lab_helpers.manifests.schemas import Schema, builtin

LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"


@dataclass(frozen=True)
class NameRule:
    """What Kubernetes (or the kind's admission webhook) accepts as a name."""

    pattern: str
    max_length: int
    description: str

    def schema(self) -> Schema:
        return {"type": "string", "pattern": self.pattern, "maxLength": self.max_length}


DNS1123_SUBDOMAIN = NameRule(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", 253,
    "a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', starting and ending "
    "with a letter or digit")
DNS1123_LABEL = NameRule(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", 63,
    "a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit")
DNS1035_LABEL = NameRule(
    r"^[a-z]([-a-z0-9]*[a-z0-9])?$", 63,
    "a DNS-1035 label: lowercase letters, digits and '-', starting with a letter and ending "
    "with a letter or digit")

# Names that end up in DNS as a single label. Services: Kubernetes' own rule; InferenceService:
# KServe's webhook (IsvcNameFmt) since the name becomes part of Service names and the host.
_NAME_RULES = {"Namespace": DNS1123_LABEL, "Service": DNS1035_LABEL, "InferenceService": DNS1035_LABEL}


def name_rule(kind: str) -> NameRule:
    return _NAME_RULES.get(kind, DNS1123_SUBDOMAIN)


def metadata(kind: str) -> Schema:
    """``metadata`` of a top-level object of `kind`: ObjectMeta (strict, so ``lables`` fails) plus the name rules."""
    return {"$ref": builtin.OBJECT_META, "type": "object", "required": ["name"], "properties": {
        "name": name_rule(kind).schema(),
        "namespace": DNS1123_LABEL.schema(),
        "labels": {"additionalProperties": {"pattern": LABEL_VALUE_PATTERN, "maxLength": 63}},
    }}
