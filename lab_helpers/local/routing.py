"""The ingress controller of the local target: Ingress objects + ready pods -> the gateway's route table."""
from __future__ import annotations

from typing import Any

from ..gateway.routes import Backend, Route, RouteTarget
from .controllers.base import ns
from .controllers.workloads import TEMPLATE_HASH, endpoints
from .kubelet import Kubelet
from .store import Store


def build_routes(store: Store, kubelet: Kubelet) -> list[Route]:
    routes: list[Route] = []
    for ingress in store.list("Ingress"):
        for rule in ingress["spec"].get("rules") or []:
            targets = []
            for path in (rule.get("http") or {}).get("paths") or []:
                backend = ((path.get("backend") or {}).get("service") or {})
                service = store.find("Service", ns(ingress), backend.get("name", ""))
                if service is None:
                    continue
                targets.append(RouteTarget(service=service["metadata"]["name"], namespace=ns(service),
                                           revision=_revision(store, service), backends=_backends(store, kubelet,
                                                                                                  service)))
            if rule.get("host") and targets:
                routes.append(Route(host=rule["host"], targets=targets[:1]))
    return routes


def _revision(store: Store, service: dict[str, Any]) -> str:
    hashes = sorted({p["metadata"].get("labels", {}).get(TEMPLATE_HASH, "") for p, _ in endpoints(store, service)})
    return hashes[-1] if hashes and hashes[-1] else "stable"


def _backends(store: Store, kubelet: Kubelet, service: dict[str, Any]) -> list[Backend]:
    out = []
    for pod, ready in endpoints(store, service):
        url = kubelet.endpoint(pod)
        if url:
            out.append(Backend(url=url, ready=ready))
    return out
