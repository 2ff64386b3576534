"""The HTTP add-on's operator for the deprecated HTTPScaledObject: it writes the ScaledObject for you.

As the add-on's operator does (https://github.com/kedacore/http-add-on, operator/controllers/http and
pkg/k8s/scaledobject.go): one ScaledObject named like the HTTPScaledObject, owned by it, scaling its
``scaleTargetRef`` between ``replicas.min`` and ``replicas.max`` with ``scaledownPeriod`` as the
cooldown, a fixed 15 s polling interval, and an ``external-push`` trigger naming the
HTTPScaledObject. With ``httpscaledobject.keda.sh/skip-scaledobject-creation: "true"`` it writes
none (and deletes the one it wrote), so you can pair your own ScaledObject with it. Routing of the
HTTPScaledObject's hosts through the interceptor is the routing loop's job.
"""
from __future__ import annotations

from typing import Any

from .base import DONE, Controller, Result, ns

SKIP_SCALED_OBJECT = "httpscaledobject.keda.sh/skip-scaledobject-creation"
SCALER_ADDRESS = "keda-add-ons-http-external-scaler.keda:9090"
POLLING_INTERVAL = 15


def scaled_object_for(httpso: dict[str, Any]) -> dict[str, Any]:
    """The ScaledObject the add-on's operator writes for an HTTPScaledObject."""
    spec, meta = httpso["spec"], httpso["metadata"]
    ref = spec["scaleTargetRef"]
    so_spec: dict[str, Any] = {
        "scaleTargetRef": {key: ref[key] for key in ("apiVersion", "kind", "name") if key in ref},
        "pollingInterval": POLLING_INTERVAL,
        "advanced": {"restoreToOriginalReplicaCount": True},
        "triggers": [{"type": "external-push", "metadata": {"scalerAddress": SCALER_ADDRESS,
                                                            "httpScaledObject": meta["name"]}}]}
    replicas = spec.get("replicas") or {}
    for source, target in (("min", "minReplicaCount"), ("max", "maxReplicaCount")):
        if source in replicas:
            so_spec[target] = replicas[source]
    for source, target in (("scaledownPeriod", "cooldownPeriod"), ("initialCooldownPeriod", "initialCooldownPeriod")):
        if source in spec:
            so_spec[target] = spec[source]
    metadata = {"name": meta["name"], "namespace": ns(httpso)}
    for field in ("labels", "annotations"):
        if meta.get(field):
            metadata[field] = dict(meta[field])
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": metadata, "spec": so_spec}


class HTTPScaledObjectController(Controller):
    kinds = ("HTTPScaledObject",)
    owns = ("ScaledObject",)

    async def reconcile(self, httpso: dict[str, Any]) -> Result:
        skip = (httpso["metadata"].get("annotations") or {}).get(SKIP_SCALED_OBJECT) == "true"
        self.ensure_children(httpso, ("ScaledObject",), [] if skip else [scaled_object_for(httpso)])
        return DONE
