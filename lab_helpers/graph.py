"""Walk the object graph a controller built, by ownerReferences: InferenceService -> Deployment -> pods..."""
from __future__ import annotations

from typing import Any

from .api import Lab
from .errors import LabError

# Kinds KServe (Standard mode) and Kubernetes create beneath an InferenceService.
CHILD_KINDS = ("Deployment", "ReplicaSet", "Pod", "Service", "Ingress", "HTTPRoute", "HorizontalPodAutoscaler",
               "ScaledObject")


def object_graph(lab: Lab, kind: str, name: str, namespace: str | None = None) -> list[tuple[int, dict[str, Any]]]:
    """(depth, object) pairs, parents before children, siblings by kind then name."""
    root = lab.get(kind, name, namespace)
    everything: list[dict[str, Any]] = []
    for child_kind in CHILD_KINDS:
        try:
            everything += lab.list(child_kind, namespace)
        except LabError:
            continue  # a kind this target does not serve (e.g. ReplicaSet on the local target)
    out: list[tuple[int, dict[str, Any]]] = []

    def visit(obj: dict[str, Any], depth: int) -> None:
        out.append((depth, obj))
        uid = obj["metadata"]["uid"]
        children = [o for o in everything
                    if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or [])]
        for child in sorted(children, key=lambda o: (CHILD_KINDS.index(o["kind"]), o["metadata"]["name"])):
            visit(child, depth + 1)

    visit(root, 0)
    return out


def describe_graph(graph: list[tuple[int, dict[str, Any]]]) -> str:
    """An indented tree with each object's readiness, for printing in a notebook."""
    lines = []
    for depth, obj in graph:
        status = obj.get("status") or {}
        conditions = {c["type"]: c["status"] for c in status.get("conditions") or []}
        state = (conditions.get("Ready") or conditions.get("Available") or conditions.get("AbleToScale")
                 or ("-" if not conditions else "?"))
        lines.append(f"{'  ' * depth}{obj['kind']}/{obj['metadata']['name']}  ready={state}")
    return "\n".join(lines)
