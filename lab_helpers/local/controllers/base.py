"""The one shape of every local control loop, and what the loops share (children, owner references, conditions).

After controller-runtime's ``Reconcile(ctx, req) → Result{RequeueAfter}``: a `Controller` reconciles
one object of its `kinds`, level-triggered from what the store holds now, and returns a `Result`
saying when it wants to run again; a `Loop` does the same for a whole-world job (the kubelet, the
route table, the garbage collector). The `Manager` (``local/manager.py``) decides when each runs:
on a change of what it watches, at its requeue time, or after a failure with backoff.

Errors: raise `TemporaryError` (or any exception) to be retried with per-object backoff; raise
`PermanentError` when retrying cannot help until the object changes (the controller has written
the reason into status first). No controller keeps state that a daemon restart would lose: what it
must remember lives in status, annotations or the events of the object.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..store import CLUSTER, Store, now_iso


@dataclass
class Context:
    store: Store
    home: Path


@dataclass(frozen=True)
class Result:
    """When to reconcile again without a change: None = only when something it watches changes."""

    requeue_after: float | None = None


DONE = Result()


class TemporaryError(Exception):
    """Worth retrying soon (a dependency not there yet): the manager requeues with backoff."""


class PermanentError(Exception):
    """Retrying cannot help until the object changes; status already says why. Not requeued."""

    def __init__(self, reason: str, message: str):
        self.reason, self.message = reason, message
        super().__init__(f"{reason}: {message}")


def ns(obj: dict[str, Any]) -> str:
    return obj["metadata"].get("namespace", CLUSTER)


def ref_of(obj: dict[str, Any]) -> tuple[str, str, str]:
    return obj["kind"], ns(obj), obj["metadata"]["name"]


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
    """Reconciles one object of `kinds` at a time.

    The manager calls `reconcile` when the object changes, when an object of `owns` whose controller
    owner reference names it changes (controller-runtime's ``Owns``), when any object of `watches`
    changes (then for every object of `kinds`), and at the requeue time the last call returned.
    """

    kinds: tuple[str, ...] = ()
    owns: tuple[str, ...] = ()
    watches: tuple[str, ...] = ()

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.store = ctx.store

    async def reconcile(self, obj: dict[str, Any]) -> Result:
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

    def ensure_children(self, owner: dict[str, Any], kinds: Iterable[str],
                        wanted: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Make the owner's children of `kinds` exactly `wanted`: create or update those, delete the rest.

        The rest are children it made earlier and no longer wants (an Ingress once the service became
        cluster-local, a ScaledObject after the autoscaler class changed), deleted as the upstream
        reconcilers delete them, with an event naming why.
        """
        stored = [self.ensure_child(owner, child) for child in wanted]
        keep = {ref_of(child) for child in stored}
        for kind in kinds:
            for child in self.store.list(kind, ns(owner) or None):
                if owned_by(child, owner) and ref_of(child) not in keep:
                    self.store.delete(*ref_of(child))
                    self.store.record_event(owner, f"{kind}Deleted",
                                            f"Deleted {kind} {child['metadata']['name']}: no longer wanted by "
                                            f"the {owner['kind']}'s spec")
        return stored


class Loop:
    """A whole-world control loop (kubelet, route table, garbage collector), woken by `watches` ("*" = any kind)."""

    name: str = ""
    watches: tuple[str, ...] = ()

    def wants(self, kind: str, deleted: bool) -> bool:
        """Whether a change of an object of `kind` (a deletion if `deleted`) should wake this loop."""
        return "*" in self.watches or kind in self.watches

    async def sync(self) -> Result:
        raise NotImplementedError
