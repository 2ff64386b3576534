"""Deployment and Service controllers (the ReplicaSet controller and endpoints controller, folded)."""
from __future__ import annotations

import secrets
from typing import Any

from ..pods import pod_ready
from ..store import labels_match
from .base import DONE, Controller, Loop, Result, condition, ns, owned_by, spec_hash

TEMPLATE_HASH = "pod-template-hash"


class DeploymentController(Controller):
    """Keeps `spec.replicas` pods of the current template; rolls a new template out before removing the old."""

    kinds = ("Deployment",)
    owns = ("Pod",)

    async def reconcile(self, deploy: dict[str, Any]) -> Result:
        spec = deploy["spec"]
        desired = int(spec.get("replicas", 1))
        template = spec["template"]
        current_hash = spec_hash(template)
        pods = [p for p in self.store.list("Pod", ns(deploy)) if owned_by(p, deploy)]
        current = [p for p in pods if p["metadata"].get("labels", {}).get(TEMPLATE_HASH) == current_hash]
        old = [p for p in pods if p not in current]
        ready_current = [p for p in current if pod_ready(p)]

        for _ in range(desired - len(current)):
            self._create_pod(deploy, template, current_hash)
        if len(current) > desired:  # scale down: drop pods that are not ready first
            for pod in sorted(current, key=pod_ready)[: len(current) - desired]:
                self._delete_pod(deploy, pod, "scaled down")
        if old and len(ready_current) >= desired:
            for pod in old:
                self._delete_pod(deploy, pod, "replaced by the new template")

        ready = len([p for p in pods if pod_ready(p)])
        available = ready >= desired if desired else True
        rolled = not old
        prev = (deploy.get("status") or {}).get("conditions")
        status = {
            "observedGeneration": deploy["metadata"].get("generation", 1),
            "replicas": len(pods), "updatedReplicas": len(current), "readyReplicas": ready,
            "availableReplicas": ready, "unavailableReplicas": max(desired - ready, 0),
            "conditions": [
                condition("Available", available, "MinimumReplicasAvailable" if available
                          else "MinimumReplicasUnavailable",
                          "Deployment has minimum availability." if available
                          else "Deployment does not have minimum availability.", prev),
                condition("Progressing", True, "NewReplicaSetAvailable" if rolled and available else "ReplicaSetUpdated",
                          f'ReplicaSet "{deploy["metadata"]["name"]}-{current_hash}" '
                          + ("has successfully progressed." if rolled and available else "is progressing."), prev),
            ],
        }
        self.store.set_status("Deployment", ns(deploy), deploy["metadata"]["name"], status)
        return DONE

    def _create_pod(self, deploy: dict[str, Any], template: dict[str, Any], template_hash: str) -> None:
        meta = template.get("metadata") or {}
        name = f"{deploy['metadata']['name']}-{template_hash}-{secrets.token_hex(3)[:5]}"
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": ns(deploy),
                            "labels": {**(meta.get("labels") or {}), TEMPLATE_HASH: template_hash},
                            "annotations": dict(meta.get("annotations") or {})},
               "spec": template["spec"]}
        self.ensure_child(deploy, pod)

    def _delete_pod(self, deploy: dict[str, Any], pod: dict[str, Any], why: str) -> None:
        self.store.delete("Pod", ns(pod), pod["metadata"]["name"])
        self.store.record_event(deploy, "SuccessfulDelete", f"Deleted pod {pod['metadata']['name']} ({why})")


def endpoints(store, service: dict[str, Any]) -> list[tuple[dict[str, Any], bool]]:
    """Pods the Service selects, with their readiness (the EndpointSlice of the local target)."""
    selector = service["spec"].get("selector") or {}
    if not selector:
        return []
    return [(p, pod_ready(p)) for p in store.list("Pod", ns(service)) if labels_match(p, selector)]


class GarbageCollector(Loop):
    """Deletes objects whose owner is gone, as the Kubernetes garbage collector does (background cascade)."""

    name = "garbage-collector"

    def __init__(self, store):
        self.store = store

    def wants(self, kind: str, deleted: bool) -> bool:
        return deleted  # only a deletion can orphan something

    async def sync(self) -> Result:
        self.collect()
        return DONE

    def collect(self) -> int:
        uids = self.store.all_uids()
        removed = 0
        for obj in self.store.iter_all():
            refs = obj["metadata"].get("ownerReferences") or []
            if refs and not any(r.get("uid") in uids for r in refs):
                self.store.delete(obj["kind"], ns(obj), obj["metadata"]["name"])
                removed += 1
        return removed
