"""What every local controller shares: the store, events, owner references, condition helpers."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..store import CLUSTER, Store, now_iso


@dataclass
class Context:
    store: Store
    home: Path
    wake: Callable[[], None]


def ns(obj: dict[str, Any]) -> str:
    return obj["metadata"].get("namespace", CLUSTER)


def owner_ref(owner: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    return any(r.get("uid") == owner["metadata"]["uid"] for r in obj["metadata"].get("ownerReferences") or [])


def spec_hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:10]


def condition(type_: str, ok: bool, reason: str = "", message: str = "",
              previous: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A Kubernetes condition; lastTransitionTime only moves when the status flips."""
    status = "True" if ok else "False"
    old = next((c for c in previous or [] if c.get("type") == type_), None)
    since = old["lastTransitionTime"] if old and old.get("status") == status else now_iso()
    cond = {"type": type_, "status": status, "lastTransitionTime": since}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def is_true(obj: dict[str, Any] | None, type_: str = "Ready") -> bool:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c.get("status") == "True"
    return False


class Controller:
    """One control loop: `reconcile` is called for every object of `kinds` on each pass (level-triggered)."""

    kinds: tuple[str, ...] = ()

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.store = ctx.store

    async def reconcile(self, obj: dict[str, Any]) -> None:
        raise NotImplementedError

    def ensure_child(self, owner: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
        """Create or update a child object owned by `owner`, with an event when it is created."""
        child["metadata"]["ownerReferences"] = [owner_ref(owner)]
        existed = self.store.find(child["kind"], ns(child), child["metadata"]["name"]) is not None
        stored = self.store.apply(child)
        if not existed:
            self.store.record_event(owner, f"{child['kind']}Created" if child["kind"] != "Pod" else "SuccessfulCreate",
                                    f"Created {child['kind']} {child['metadata']['name']}")
        return stored
