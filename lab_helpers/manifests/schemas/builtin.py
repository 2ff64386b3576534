"""Kubernetes' own kinds (Namespace, Secret, Deployment, Job, Ingress, ...): schemas from kubernetes-validate.

The kubernetes-validate package ships each Kubernetes release's OpenAPI as JSON Schema; its
strict variant rejects unknown fields, as ``kubectl apply`` with strict field validation does.
One release is pinned so every machine checks the same rules. That OpenAPI leaves out checks the
API server does in Go code (an image for every container, a Job's restart policy, quantity
syntax, ...); `_SERVER_RULES` adds the ones learners run into, each where the API server applies it.
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from lab_helpers.manifests.schemas import Schema

if TYPE_CHECKING:
    from referencing import Registry

K8S_VERSION = "1.37.0"
"""The Kubernetes release whose schemas are used: the newest kubernetes-validate 1.37.0 ships."""

_DEFINITIONS = f"kubernetes-json-schema/v{K8S_VERSION}-local-strict/_definitions.json"
_DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"  # the file's own $id


def ref(definition: str) -> str:
    """``$ref`` to one of the release's definitions, e.g. ``io.k8s.api.apps.v1.Deployment``."""
    return f"{_DEFINITIONS_ID}#/$defs/{definition}"


OBJECT_META = ref("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
QUANTITY_PATTERN = (r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]"
                    r"|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
"""resource.Quantity's syntax, as CRDs generated from Go types spell it."""


def _enum(*values: str) -> Schema:
    return {"enum": list(values)}


def _pod_template(*restart_policies: str, required: bool = False) -> Schema:
    """A pod template whose restartPolicy must be one of `restart_policies`."""
    spec: Schema = {"properties": {"restartPolicy": _enum(*restart_policies)}}
    if required:
        spec["required"] = ["restartPolicy"]
    return {"properties": {"spec": spec}}


_PROTOCOL = {"properties": {"protocol": _enum("TCP", "UDP", "SCTP")}}
# definition -> extra schema it must also satisfy (added to its allOf, so its own checks stay).
_SERVER_RULES: dict[str, Schema] = {
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"pattern": QUANTITY_PATTERN},
    "io.k8s.api.core.v1.Container": {"required": ["name", "image"], "properties": {
        "imagePullPolicy": _enum("Always", "Never", "IfNotPresent")}},
    "io.k8s.api.core.v1.ContainerPort": _PROTOCOL,
    "io.k8s.api.core.v1.ServicePort": _PROTOCOL,
    "io.k8s.api.core.v1.ServiceSpec": {"properties": {
        "type": _enum("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")}},
    "io.k8s.api.core.v1.PodSpec": {"properties": {"restartPolicy": _enum("Always", "OnFailure", "Never")}},
    "io.k8s.api.apps.v1.DeploymentSpec": {"properties": {"replicas": {"minimum": 0},
                                                         "template": _pod_template("Always")}},
    # A Job's pods must not restart forever: Kubernetes rejects the pod default `Always`.
    "io.k8s.api.batch.v1.JobSpec": {"properties": {"template": _pod_template("Never", "OnFailure", required=True)}},
    "io.k8s.api.networking.v1.NetworkPolicySpec": {"properties": {
        "policyTypes": {"items": _enum("Ingress", "Egress")}}},
}


def versions(group: str, kind: str) -> dict[str, str] | None:
    """Served version -> ``$ref`` of its schema, for a kind Kubernetes defines; None otherwise."""
    return _index().get((group, kind))


@functools.cache
def registry() -> Registry:
    """Where every ``$ref`` above resolves: the release's definitions with `_SERVER_RULES` added."""
    from referencing import Registry, Resource

    return Resource.from_contents(_definitions()) @ Registry()


@functools.cache
def _index() -> dict[tuple[str, str], dict[str, str]]:
    index: dict[tuple[str, str], dict[str, str]] = {}
    for name, node in _definitions()["$defs"].items():
        for gvk in node.get("x-kubernetes-group-version-kind", ()):
            index.setdefault((gvk["group"], gvk["kind"]), {})[gvk["version"]] = ref(name)
    return index


@functools.cache
def _definitions() -> Schema:
    # Imported on first use: kubernetes_validate imports jsonschema, about a second (see validation).
    from kubernetes_validate.utils import schema_contents

    contents = schema_contents(_DEFINITIONS, K8S_VERSION)
    for name, rule in _SERVER_RULES.items():
        node = contents["$defs"][name]
        node["allOf"] = [*node.get("allOf", []), rule]
    return contents
