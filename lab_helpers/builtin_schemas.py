"""Hand-written schemas for the core Kubernetes kinds the lab applies, and name rules.

Core kinds have no CRD to read, so these give the required fields and the types learners get
wrong (numbers where strings are needed, misspelled fields). They are written in the same
OpenAPI dialect as CRD schemas, so `validation` treats both alike. Objects marked
``x-kubernetes-preserve-unknown-fields`` list only some of their fields; the top level of each
kind lists all of them, so a misspelled ``spec`` is still caught.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Schema = dict[str, Any]

_STRING: Schema = {"type": "string"}
_INTEGER: Schema = {"type": "integer"}
_BOOLEAN: Schema = {"type": "boolean"}
_INT_OR_STRING: Schema = {"x-kubernetes-int-or-string": True}
QUANTITY_PATTERN = (r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]"
                    r"|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"


@dataclass(frozen=True)
class NameRule:
    """What Kubernetes (or the kind's admission webhook) accepts as a name."""

    pattern: str
    max_length: int
    description: str


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


def _partial(properties: dict[str, Schema] | None = None, required: tuple[str, ...] = ()) -> Schema:
    """An object of which only the listed fields are checked; others pass."""
    schema: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                      "properties": properties or {}}
    if required:
        schema["required"] = list(required)
    return schema


def _complete(properties: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    """An object whose every field is listed: anything else is an unknown field."""
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def _list(items: Schema, min_items: int = 0) -> Schema:
    schema: Schema = {"type": "array", "items": items}
    if min_items:
        schema["minItems"] = min_items
    return schema


def _map(values: Schema) -> Schema:
    return {"type": "object", "additionalProperties": values}


def _enum(*values: str) -> Schema:
    return {"type": "string", "enum": list(values)}


def object_meta(rule: NameRule) -> Schema:
    """metadata of a top-level object: every ObjectMeta field, so a typo such as ``lables`` fails."""
    return _complete({
        "name": {"type": "string", "pattern": rule.pattern, "maxLength": rule.max_length},
        "generateName": _STRING,
        "namespace": {"type": "string", "pattern": DNS1123_LABEL.pattern,
                      "maxLength": DNS1123_LABEL.max_length},
        "labels": _map({"type": "string", "pattern": LABEL_VALUE_PATTERN, "maxLength": 63}),
        "annotations": _map(_STRING),
        "uid": _STRING,
        "resourceVersion": _STRING,
        "generation": _INTEGER,
        "selfLink": _STRING,
        # kubectl --dry-run -o yaml prints `creationTimestamp: null`
        "creationTimestamp": {"type": "string", "nullable": True},
        "deletionTimestamp": {"type": "string", "nullable": True},
        "deletionGracePeriodSeconds": _INTEGER,
        "finalizers": _list(_STRING),
        "ownerReferences": _list(_partial({"apiVersion": _STRING, "kind": _STRING, "name": _STRING,
                                           "uid": _STRING}, ("apiVersion", "kind", "name", "uid"))),
        "managedFields": _list(_partial()),
    }, required=("name",))


def _top_level(extra: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    """The object itself: apiVersion, kind, metadata (filled in per kind by `validation`) + `extra`."""
    return _complete({"apiVersion": _STRING, "kind": _STRING, "metadata": {"type": "object"}, **extra},
                     required=("apiVersion", "kind", "metadata", *required))


STRUCTURAL_ONLY = _partial({"apiVersion": _STRING, "kind": _STRING, "metadata": {"type": "object"},
                            "spec": _partial()}, ("apiVersion", "kind", "metadata"))
"""For kinds without a known schema: the shape every Kubernetes object has."""

_QUANTITY: Schema = {**_INT_OR_STRING, "pattern": QUANTITY_PATTERN}
_LABEL_SELECTOR = _partial({
    "matchLabels": _map(_STRING),
    "matchExpressions": _list(_partial({"key": _STRING, "operator": _enum("In", "NotIn", "Exists", "DoesNotExist"),
                                        "values": _list(_STRING)}, ("key", "operator"))),
})
_PROTOCOL = _enum("TCP", "UDP", "SCTP")
_CONTAINER = _partial({
    "name": _STRING,
    "image": _STRING,
    "command": _list(_STRING),
    "args": _list(_STRING),
    "workingDir": _STRING,
    "env": _list(_partial({"name": _STRING, "value": _STRING}, ("name",))),
    "ports": _list(_partial({"containerPort": _INTEGER, "name": _STRING, "protocol": _PROTOCOL},
                            ("containerPort",))),
    "resources": _partial({"limits": _map(_QUANTITY), "requests": _map(_QUANTITY)}),
    "imagePullPolicy": _enum("Always", "Never", "IfNotPresent"),
}, ("name", "image"))


def _pod_template(restart_policy: Schema, restart_required: bool) -> Schema:
    spec = _partial({
        "containers": _list(_CONTAINER, min_items=1),
        "initContainers": _list(_CONTAINER),
        "restartPolicy": restart_policy,
        "serviceAccountName": _STRING,
        "volumes": _list(_partial({"name": _STRING}, ("name",))),
    }, ("containers", "restartPolicy") if restart_required else ("containers",))
    return _partial({"metadata": _partial({"labels": _map(_STRING), "annotations": _map(_STRING)}),
                     "spec": spec}, ("spec",))


# A Job's pods must not restart forever: Kubernetes rejects the default `Always`.
_JOB_SPEC = _partial({
    "template": _pod_template(_enum("Never", "OnFailure"), restart_required=True),
    "backoffLimit": _INTEGER, "completions": _INTEGER, "parallelism": _INTEGER,
    "activeDeadlineSeconds": _INTEGER, "ttlSecondsAfterFinished": _INTEGER,
}, ("template",))
_NETWORK_POLICY_PEER = _partial({"podSelector": _LABEL_SELECTOR, "namespaceSelector": _LABEL_SELECTOR,
                                 "ipBlock": _partial({"cidr": _STRING, "except": _list(_STRING)}, ("cidr",))})
_NETWORK_POLICY_PORT = _partial({"protocol": _PROTOCOL, "port": _INT_OR_STRING, "endPort": _INTEGER})
_INGRESS_BACKEND = _partial({
    "service": _partial({"name": _STRING, "port": _partial({"number": _INTEGER, "name": _STRING})}, ("name",)),
    "resource": _partial({"apiGroup": _STRING, "kind": _STRING, "name": _STRING}, ("kind", "name")),
})
_STATUS = _partial()

# (API group, kind) -> {served version: schema}; the core group is "".
CORE_SCHEMAS: dict[tuple[str, str], dict[str, Schema]] = {
    ("", "Namespace"): {"v1": _top_level({"spec": _partial({"finalizers": _list(_STRING)}), "status": _STATUS})},
    ("", "ServiceAccount"): {"v1": _top_level({
        "automountServiceAccountToken": _BOOLEAN,
        "imagePullSecrets": _list(_partial({"name": _STRING})),
        "secrets": _list(_partial()),
    })},
    ("", "Secret"): {"v1": _top_level({"type": _STRING, "data": _map(_STRING), "stringData": _map(_STRING),
                                      "immutable": _BOOLEAN})},
    ("", "ConfigMap"): {"v1": _top_level({"data": _map(_STRING), "binaryData": _map(_STRING),
                                         "immutable": _BOOLEAN})},
    ("", "Service"): {"v1": _top_level({"spec": _partial({
        "type": _enum("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"),
        "selector": _map(_STRING),
        "ports": _list(_partial({"port": _INTEGER, "targetPort": _INT_OR_STRING, "name": _STRING,
                                 "protocol": _PROTOCOL, "nodePort": _INTEGER}, ("port",))),
        "clusterIP": _STRING,
        "externalName": _STRING,
    }), "status": _STATUS})},
    ("apps", "Deployment"): {"v1": _top_level({"spec": _partial({
        "replicas": {"type": "integer", "minimum": 0},
        "selector": _LABEL_SELECTOR,
        "template": _pod_template(_enum("Always"), restart_required=False),
        "strategy": _partial({"type": _enum("RollingUpdate", "Recreate")}),
        "minReadySeconds": _INTEGER,
        "revisionHistoryLimit": _INTEGER,
        "progressDeadlineSeconds": _INTEGER,
        "paused": _BOOLEAN,
    }, ("selector", "template")), "status": _STATUS}, required=("spec",))},
    ("batch", "Job"): {"v1": _top_level({"spec": _JOB_SPEC, "status": _STATUS}, required=("spec",))},
    ("batch", "CronJob"): {"v1": _top_level({"spec": _partial({
        "schedule": _STRING,
        "timeZone": _STRING,
        "jobTemplate": _partial({"metadata": _partial(), "spec": _JOB_SPEC}, ("spec",)),
        "concurrencyPolicy": _enum("Allow", "Forbid", "Replace"),
        "suspend": _BOOLEAN,
        "startingDeadlineSeconds": _INTEGER,
        "successfulJobsHistoryLimit": _INTEGER,
        "failedJobsHistoryLimit": _INTEGER,
    }, ("schedule", "jobTemplate")), "status": _STATUS}, required=("spec",))},
    ("networking.k8s.io", "NetworkPolicy"): {"v1": _top_level({"spec": _partial({
        "podSelector": _LABEL_SELECTOR,
        "policyTypes": _list(_enum("Ingress", "Egress")),
        "ingress": _list(_partial({"from": _list(_NETWORK_POLICY_PEER), "ports": _list(_NETWORK_POLICY_PORT)})),
        "egress": _list(_partial({"to": _list(_NETWORK_POLICY_PEER), "ports": _list(_NETWORK_POLICY_PORT)})),
    }, ("podSelector",)), "status": _STATUS}, required=("spec",))},
    ("networking.k8s.io", "Ingress"): {"v1": _top_level({"spec": _partial({
        "ingressClassName": _STRING,
        "defaultBackend": _INGRESS_BACKEND,
        "tls": _list(_partial({"hosts": _list(_STRING), "secretName": _STRING})),
        "rules": _list(_partial({"host": _STRING, "http": _partial({"paths": _list(_partial({
            "path": _STRING,
            "pathType": _enum("Exact", "Prefix", "ImplementationSpecific"),
            "backend": _INGRESS_BACKEND,
        }, ("pathType", "backend")), min_items=1)}, ("paths",))})),
    }), "status": _STATUS})},
}
