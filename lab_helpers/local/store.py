"""The local target's API-server storage: every object and event in sqlite, so a killed daemon loses nothing."""
from __future__ import annotations

import json
import os
import sqlite3
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable

from ..errors import NotFound

CLUSTER = ""  # namespace value of cluster-scoped objects


# Spec fields another owner writes through a subresource: an apply that leaves one out keeps the stored
# value, as server-side apply keeps a field that another field manager owns (`kubectl scale`, the HPA,
# KEDA or Flagger own Deployment.spec.replicas when KServe's autoscaler class says so).
RETAINED_SPEC_FIELDS: dict[str, tuple[str, ...]] = {"Deployment": ("replicas",)}
# The API server's defaults for those fields when a new object leaves them out.
SPEC_DEFAULTS: dict[str, dict[str, Any]] = {"Deployment": {"replicas": 1}}


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    """A MicroTime, as an Event's ``eventTime`` carries it. The local kubelet also stamps container
    start/finish and pod condition transitions with it, where the API server keeps whole seconds: a
    simplification that lets notebook 05 take a one-second cold start apart."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def private_file(path: Path) -> Path:
    """Create `path` (if missing) readable and writable by this user only, like the API token.

    For sqlite databases: SQLite gives the -wal, -shm and -journal files it creates beside a
    database the database file's permissions; ones left by an earlier version are made private here.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for file in (path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal"))):
        if file.exists():
            os.chmod(file, 0o600)
    return path


def labels_match(obj: dict[str, Any], selector: dict[str, str] | None) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in (selector or {}).items())


class Store:
    """Objects keyed by (kind, namespace, name) with resourceVersion, generation and uid like the API server.

    `spec` changes bump `metadata.generation`; status is written separately (the status subresource),
    so a controller writing status never races a user's apply of spec.
    """

    def __init__(self, path: Path):
        self.db = sqlite3.connect(str(private_file(path)), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS objects (kind TEXT, namespace TEXT, name TEXT, body TEXT,"
                        " PRIMARY KEY (kind, namespace, name))")
        self.db.execute("CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT,"
                        " kind TEXT, namespace TEXT, name TEXT)")
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        row = self.db.execute("SELECT value FROM meta WHERE key='rv'").fetchone()
        self._rv = int(row[0]) if row else 0
        # callables(kind, namespace, name, obj, deleted), told after every change (obj: as written, or as it was)
        self.listeners: list[Callable[..., None]] = []
        # awaitables of whoever reacts to changes (the controller manager): done once what they woke has run
        self.settlers: list[Callable[[], Awaitable[None]]] = []

    async def settled(self) -> None:
        """Wait until the reactions to the writes so far have run (the API answers a write after this)."""
        for settle in self.settlers:
            await settle()

    def _next_rv(self) -> str:
        self._rv += 1
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('rv', ?)", (str(self._rv),))
        return str(self._rv)

    def _changed(self, kind: str, namespace: str, name: str, obj: dict[str, Any] | None, deleted: bool = False) -> None:
        for listener in self.listeners:
            listener(kind, namespace, name, obj, deleted)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        row = self.db.execute("SELECT body FROM objects WHERE kind=? AND namespace=? AND name=?",
                              (kind, namespace, name)).fetchone()
        if row is None:
            where = f" in namespace {namespace}" if namespace else ""
            raise NotFound(f'{kind} "{name}" not found{where}')
        return json.loads(row[0])

    def find(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.get(kind, namespace, name)
        except NotFound:
            return None

    def list(self, kind: str, namespace: str | None = None,
             labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
        if namespace is None:
            rows = self.db.execute("SELECT body FROM objects WHERE kind=? ORDER BY namespace, name", (kind,))
        else:
            rows = self.db.execute("SELECT body FROM objects WHERE kind=? AND namespace=? ORDER BY name",
                                   (kind, namespace))
        return [o for o in (json.loads(r[0]) for r in rows) if labels_match(o, labels)]

    def kinds(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT kind FROM objects ORDER BY kind")]

    def _write(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        meta["resourceVersion"] = self._next_rv()
        self.db.execute("INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?)",
                        (obj["kind"], meta.get("namespace", CLUSTER), meta["name"], json.dumps(obj)))
        self._changed(obj["kind"], meta.get("namespace", CLUSTER), meta["name"], obj)
        return obj

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace the desired state (everything but status), keeping identity and status."""
        meta = obj.setdefault("metadata", {})
        namespace = meta.get("namespace", CLUSTER)
        current = self.find(obj["kind"], namespace, meta["name"])
        obj = json.loads(json.dumps(obj))
        spec = obj.get("spec")
        if current is None:
            meta = obj["metadata"]
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_iso(), generation=1)
            obj.pop("status", None)
            if isinstance(spec, dict):
                for field, value in SPEC_DEFAULTS.get(obj["kind"], {}).items():
                    spec.setdefault(field, value)
            return self._write(obj)
        if isinstance(spec, dict):
            for field in RETAINED_SPEC_FIELDS.get(obj["kind"], ()):
                if field not in spec and field in (current.get("spec") or {}):
                    spec[field] = current["spec"][field]
        meta = obj["metadata"]
        old_meta = current["metadata"]
        meta.update(uid=old_meta["uid"], creationTimestamp=old_meta["creationTimestamp"])
        meta.setdefault("ownerReferences", old_meta.get("ownerReferences"))
        if meta.get("ownerReferences") is None:
            meta.pop("ownerReferences")
        desired = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
        before = {k: v for k, v in current.items() if k not in ("metadata", "status")}
        meta["generation"] = old_meta.get("generation", 1) + (desired != before)
        same_meta = all(meta.get(k) == old_meta.get(k) for k in ("labels", "annotations", "ownerReferences"))
        if desired == before and same_meta:
            return current
        if "status" in current:
            obj["status"] = current["status"]
        else:
            obj.pop("status", None)
        return self._write(obj)

    def set_status(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any] | None:
        """Write status only if it changed; returns the object (None if it is gone)."""
        current = self.find(kind, namespace, name)
        if current is None:
            return None
        if current.get("status") == status:
            return current
        current["status"] = status
        return self._write(current)

    def scale(self, kind: str, namespace: str, name: str, replicas: int) -> dict[str, Any]:
        """The scale subresource: write `spec.replicas` alone (raises NotFound)."""
        current = self.get(kind, namespace, name)
        if current["spec"].get("replicas") == replicas:
            return current
        current["spec"]["replicas"] = int(replicas)
        current["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        return self._write(current)

    def meta_value(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta_value(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        gone = self.find(kind, namespace, name)
        if gone is None:
            return False
        self.db.execute("DELETE FROM objects WHERE kind=? AND namespace=? AND name=?", (kind, namespace, name))
        self._next_rv()
        self._changed(kind, namespace, name, gone, deleted=True)
        return True

    def all_uids(self) -> set[str]:
        return {json.loads(r[0])["metadata"]["uid"] for r in self.db.execute("SELECT body FROM objects")}

    def iter_all(self) -> Iterable[dict[str, Any]]:
        return [json.loads(r[0]) for r in self.db.execute("SELECT body FROM objects")]

    # events -------------------------------------------------------------------------------------
    def record_event(self, obj: dict[str, Any], reason: str, message: str, type_: str = "Normal") -> None:
        """Like the API server's Event objects; repeats of the last event of an object are counted, not added."""
        meta = obj["metadata"]
        key = (obj["kind"], meta.get("namespace", CLUSTER), meta["name"])
        last = self.db.execute("SELECT id, body FROM events WHERE kind=? AND namespace=? AND name=? "
                               "ORDER BY id DESC LIMIT 1", key).fetchone()
        if last:
            body = json.loads(last[1])
            if body["reason"] == reason and body["message"] == message and body["type"] == type_:
                body["count"] += 1
                body["lastTimestamp"] = now_iso()
                self.db.execute("UPDATE events SET body=? WHERE id=?", (json.dumps(body), last[0]))
                return
        event = {
            "type": type_, "reason": reason, "message": message, "count": 1,
            "firstTimestamp": now_iso(), "lastTimestamp": now_iso(), "eventTime": now_micro(),
            "involvedObject": {"kind": key[0], "namespace": key[1] or None, "name": key[2],
                               "uid": meta.get("uid")},
        }
        self.db.execute("INSERT INTO events (body, kind, namespace, name) VALUES (?, ?, ?, ?)",
                        (json.dumps(event), *key))

    def last_event(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """The newest event of an object: what it was last told (controllers compare before telling again)."""
        meta = obj["metadata"]
        row = self.db.execute("SELECT body FROM events WHERE kind=? AND namespace=? AND name=? ORDER BY id DESC "
                              "LIMIT 1", (obj["kind"], meta.get("namespace", CLUSTER), meta["name"])).fetchone()
        return json.loads(row[0]) if row else None

    def events(self, refs: Iterable[tuple[str, str, str]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for kind, namespace, name in refs:
            rows = self.db.execute("SELECT id, body FROM events WHERE kind=? AND namespace=? AND name=?",
                                   (kind, namespace, name))
            out += [(r[0], json.loads(r[1])) for r in rows]
        return [body for _, body in sorted(out, key=lambda pair: (pair[1]["lastTimestamp"], pair[0]))]
