"""Stored objects whose shape changed between versions of this code, brought up to date at daemon start.

Like a storage-version migration on a cluster: the store records its schema version (`meta.schema`),
and each step rewrites what an older control plane wrote, so a daemon started after a `git pull`
adopts the pods an older one left running instead of failing on their old status.
"""
from __future__ import annotations

from typing import Callable

from .store import Store

SCHEMA_KEY = "schema"


def _pod_status_v2(store: Store) -> None:
    """status.lab {pid, port, createTime} of the one runtime container -> {ports: {8080: port}, containers: {...}}."""
    for pod in store.list("Pod"):
        lab = (pod.get("status") or {}).get("lab") or {}
        if "port" not in lab:
            continue
        container = ((pod.get("spec") or {}).get("containers") or [{}])[0].get("name", "kserve-container")
        migrated = {"ports": {"8080": lab["port"]}, "containers": {}}
        if lab.get("pid"):
            migrated["containers"][container] = {"pid": lab["pid"], "createTime": lab.get("createTime")}
        store.set_status("Pod", pod["metadata"].get("namespace", ""), pod["metadata"]["name"],
                         {**pod["status"], "lab": migrated, "initialized": True})


# Step n brings schema n to n + 1; a fresh store starts at the newest version.
STEPS: list[Callable[[Store], None]] = [_pod_status_v2]
CURRENT = len(STEPS) + 1


def migrate(store: Store) -> list[str]:
    """Run the steps this store has not had; returns their names (for the daemon's log)."""
    value = store.meta_value(SCHEMA_KEY)
    version = int(value) if value else (1 if store.kinds() else CURRENT)
    done = []
    for step in STEPS[version - 1:]:
        step(store)
        done.append(step.__name__)
    store.set_meta_value(SCHEMA_KEY, str(CURRENT))
    return done

