"""The objects Flagger makes for a Canary that targets a Deployment, built as its source builds them.

- ``<target>-primary``: a copy of the target with the selector label's value suffixed ``-primary``
  on the selector and the pod template (every other pod label and annotation is kept, which is
  what lets KServe's pod webhook still recognise an InferenceService's pods)
  (pkg/canary/deployment_controller.go ``createPrimaryDeployment``, ``Promote``);
- three Services: ``<service.name>`` (apex) and ``<service.name>-primary`` selecting the primary's
  pods, ``<service.name>-canary`` selecting the target's (pkg/router/kubernetes_default.go);
- for the ``gatewayapi`` provider, an HTTPRoute ``<service.name>`` that splits
  ``service.hosts`` between the primary and canary Services by weight (pkg/router/gateway_api.go).

https://github.com/fluxcd/flagger/tree/main/pkg
"""
from __future__ import annotations

import copy
from typing import Any

from .base import ns, owner_ref

SELECTOR_LABELS = ("app", "name", "app.kubernetes.io/name")  # Flagger's default -selector-labels


class CanaryConfigError(ValueError):
    """The Canary or its target cannot be handled as written; the message is Flagger's where it has one."""


def selector_label(deployment: dict[str, Any]) -> tuple[str, str]:
    """(label, value) Flagger keys on: the first of `SELECTOR_LABELS` in the target's selector."""
    match = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    for label in SELECTOR_LABELS:
        if label in match:
            return label, match[label]
    name = deployment["metadata"]["name"]
    raise CanaryConfigError(f"deployment {name}.{ns(deployment)} spec.selector.matchLabels must contain one of "
                            f"{list(SELECTOR_LABELS)}")


def service_name(canary: dict[str, Any]) -> str:
    """``spec.service.name``, which defaults to the target's name."""
    return (canary["spec"].get("service") or {}).get("name") or canary["spec"]["targetRef"]["name"]


def primary_labels(labels: dict[str, str], label: str, value: str) -> dict[str, str]:
    """The labels with the selector label's value replaced by ``<value>-primary`` (util.go ``makePrimaryLabels``)."""
    return {**labels, label: f"{value}-primary"}


def primary_deployment(canary: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """A new ``<target>-primary`` Deployment running the target's current template."""
    label, value = selector_label(target)
    replicas = int(target["spec"].get("replicas") or 0) or 1
    spec = {"replicas": replicas, "selector": {"matchLabels": {label: f"{value}-primary"}},
            "template": primary_template(target)}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            # Flagger's default -include-label-prefix is empty: the Deployment object gets only the selector
            # label (its pod template keeps every label, see `primary_template`).
            "metadata": {"name": f"{target['metadata']['name']}-primary", "namespace": ns(canary),
                         "labels": {label: f"{value}-primary"}, "ownerReferences": [owner_ref(canary)]},
            "spec": spec}


def primary_template(target: dict[str, Any]) -> dict[str, Any]:
    """The target's pod template with the selector label made ``-primary`` (what Promote copies over)."""
    label, value = selector_label(target)
    template = copy.deepcopy(target["spec"]["template"])
    metadata = template.setdefault("metadata", {})
    metadata["labels"] = primary_labels(metadata.get("labels") or {}, label, value)
    return template


def services(canary: dict[str, Any], target: dict[str, Any]) -> list[dict[str, Any]]:
    """The apex, ``-primary`` and ``-canary`` Services."""
    label, value = selector_label(target)
    service = canary["spec"].get("service") or {}
    port = int(service.get("port") or 80)
    ports = [{"name": service.get("portName") or "http", "port": port, "protocol": "TCP",
              "targetPort": service.get("targetPort") or port}]
    name = service_name(canary)

    def make(suffix: str, selected: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": f"{name}{suffix}", "namespace": ns(canary), "labels": {label: f"{name}{suffix}"},
                             "ownerReferences": [owner_ref(canary)]},
                "spec": {"type": "ClusterIP", "selector": {label: selected}, "ports": copy.deepcopy(ports)}}

    return [make("", f"{value}-primary"), make("-primary", f"{value}-primary"), make("-canary", value)]


def http_route(canary: dict[str, Any], primary_weight: int, canary_weight: int) -> dict[str, Any]:
    """The weighted HTTPRoute of the ``gatewayapi`` provider."""
    service = canary["spec"].get("service") or {}
    name, port = service_name(canary), int(service.get("port") or 80)
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": ns(canary), "ownerReferences": [owner_ref(canary)]},
            "spec": {"parentRefs": copy.deepcopy(service.get("gatewayRefs") or []),
                     "hostnames": list(service.get("hosts") or []),
                     "rules": [{"backendRefs": [
                         {"group": "", "kind": "Service", "name": f"{name}-primary", "port": port,
                          "weight": primary_weight},
                         {"group": "", "kind": "Service", "name": f"{name}-canary", "port": port,
                          "weight": canary_weight}]}]}}


def route_weights(route: dict[str, Any] | None, canary: dict[str, Any]) -> tuple[int, int]:
    """(primary, canary) weights the HTTPRoute sends now (router ``GetRoutes``); (100, 0) before it exists."""
    if route is None:
        return 100, 0
    name = service_name(canary)
    refs = {ref["name"]: int(ref.get("weight", 1)) for rule in route["spec"].get("rules") or []
            for ref in rule.get("backendRefs") or []}
    return refs.get(f"{name}-primary", 100), refs.get(f"{name}-canary", 0)
