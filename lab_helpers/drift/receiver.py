"""The inference logger's sink: accepts CloudEvents in binary HTTP mode and stores them for the drift job.

KServe's agent POSTs one event per request and one per 200 response, attributes in ``Ce-*`` headers and
the protocol payload as the body (https://github.com/kserve/kserve/blob/master/pkg/logger/worker.go).
Each event becomes one row of a SQLite table keyed by (namespace, InferenceService, ``ce-id``, type),
so a retried event is stored once and a request meets its response by id. `read_window` turns a time
window of them back into one row per instance: its input features and its prediction, for V1
(``instances`` / ``predictions``) and V2 (``inputs`` / ``outputs`` tensors) payloads.

An event that is not a binary-mode inference event is answered 400 naming what is wrong and counted in
``drift_receiver_events_rejected_total{reason}``; a failing store is answered 500 and counted; the
service itself keeps running. ``GET /events`` serves a window of stored events, so the drift job reads
them over HTTP on either target and needs no shared volume. The data directory is ``--data-dir`` (env
``DRIFT_DATA_DIR``, default ``/data``): an emptyDir in manifests/drift/10-receiver.yaml (the events
live as long as the pod; swap in a PersistentVolumeClaim to keep them), the pod's own directory
(``$LAB_POD_ROOT/data``) on the local target.

    python -m lab_helpers.drift.receiver --data-dir /data --port 8080
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from ..runtime.pod import PORTS_ENV, listen_port, pod_path

log = logging.getLogger("lab.drift.receiver")

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
KINDS = {REQUEST_TYPE: "request", RESPONSE_TYPE: "response"}
REQUIRED = ("Ce-Id", "Ce-Source", "Ce-Specversion", "Ce-Type", "Ce-Inferenceservicename", "Ce-Namespace")
STORE_FILE = "events.sqlite"
DATA_DIR_ENV = "DRIFT_DATA_DIR"
CONTAINER_PORT = 8080
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    namespace TEXT NOT NULL, isvc TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, time REAL NOT NULL,
    source TEXT, component TEXT, endpoint TEXT, metadata TEXT, content_type TEXT, body BLOB NOT NULL,
    PRIMARY KEY (namespace, isvc, id, kind));
CREATE INDEX IF NOT EXISTS events_window ON events (namespace, isvc, time);
"""
_FRACTION = re.compile(r"(\.\d{6})\d+")


class MalformedEvent(ValueError):
    """A request that is not a binary-mode KServe inference event; `reason` labels the metric."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True)
class InferenceEvent:
    namespace: str
    isvc: str
    id: str
    kind: str  # "request" or "response"
    time: float
    source: str
    component: str
    endpoint: str
    metadata: str
    content_type: str
    body: bytes


def _parse_time(value: str) -> float:
    """An RFC 3339 timestamp (Go writes nanoseconds; Python reads up to microseconds) as epoch seconds."""
    try:
        return datetime.fromisoformat(_FRACTION.sub(r"\1", value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise MalformedEvent("bad_time", f"Ce-Time {value!r} is not an RFC 3339 timestamp") from None


def parse_event(headers: Any, body: bytes, received_at: float) -> InferenceEvent:
    """Validate one binary-mode event (`headers` a case-insensitive mapping) and return what is stored."""
    content_type = headers.get("Content-Type", "")
    if content_type.startswith("application/cloudevents"):
        raise MalformedEvent("structured_mode", "structured-mode CloudEvent: this sink takes binary mode "
                                                "(attributes in Ce-* headers, the payload as the body)")
    missing = [name for name in REQUIRED if not headers.get(name)]
    if missing:
        raise MalformedEvent("missing_attribute", f"missing CloudEvent header(s): {', '.join(missing)}")
    if headers["Ce-Specversion"] != "1.0":
        raise MalformedEvent("specversion", f"Ce-Specversion {headers['Ce-Specversion']!r}: only 1.0 is accepted")
    kind = KINDS.get(headers["Ce-Type"])
    if kind is None:
        raise MalformedEvent("unknown_type", f"Ce-Type {headers['Ce-Type']!r} is not an inference event "
                                             f"({REQUEST_TYPE} or {RESPONSE_TYPE})")
    try:
        json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise MalformedEvent("payload_not_json", "the body is not a JSON inference payload (V1 or V2 protocol)") \
            from None
    occurred = _parse_time(headers["Ce-Time"]) if headers.get("Ce-Time") else received_at
    return InferenceEvent(headers["Ce-Namespace"], headers["Ce-Inferenceservicename"], headers["Ce-Id"], kind,
                          occurred, headers["Ce-Source"], headers.get("Ce-Component", ""),
                          headers.get("Ce-Endpoint", ""), headers.get("Ce-Metadata", "{}"), content_type, body)


class EventStore:
    """The SQLite file of stored events; a replayed event (same id and type) is stored once."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL: no fsync per event; a power cut may lose the last ones
        self.db.executescript(_SCHEMA)

    def window(self, isvc: str, since: float, until: float, namespace: str | None) -> list[tuple]:
        return stored_events(self.path, isvc, since, until, namespace)

    def add(self, event: InferenceEvent) -> None:
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                            (event.namespace, event.isvc, event.id, event.kind, event.time, event.source,
                             event.component, event.endpoint, event.metadata, event.content_type, event.body))


def make_app(store: EventStore) -> web.Application:
    registry = CollectorRegistry()
    stored = Counter("drift_receiver_events_stored", "Inference events stored", ("type",), registry=registry)
    rejected = Counter("drift_receiver_events_rejected", "Events answered 400, by what was wrong", ("reason",),
                       registry=registry)
    store_errors = Counter("drift_receiver_store_errors", "Events answered 500: the store failed", registry=registry)

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            event = parse_event(request.headers, body, datetime.now().timestamp())
        except MalformedEvent as error:
            rejected.labels(error.reason).inc()
            return web.json_response({"error": str(error), "reason": error.reason}, status=400)
        try:
            store.add(event)
        except sqlite3.Error as error:
            store_errors.inc()
            log.error("cannot store event %s of %s/%s: %s", event.id, event.namespace, event.isvc, error)
            return web.json_response({"error": f"store failed: {error}"}, status=500)
        stored.labels(event.kind).inc()
        return web.json_response({"stored": event.id, "type": event.kind})

    async def events(request: web.Request) -> web.Response:
        try:
            isvc, since, until = (request.query["isvc"], float(request.query["since"]),
                                  float(request.query["until"]))
        except (KeyError, ValueError):
            return web.json_response({"error": "GET /events needs isvc, and since and until in epoch seconds"},
                                     status=400)
        rows = store.window(isvc, since, until, request.query.get("namespace"))
        return web.json_response({"events": rows})

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.add_routes([web.get("/metrics", metrics), web.get("/healthz", healthz),
                    web.get("/events", events), web.post("/{tail:.*}", receive)])
    return app


def _tensor_columns(tensor: dict[str, Any]) -> dict[str, np.ndarray]:
    """A V2 tensor as columns: one when it is one value per instance, else ``<name>_<j>``."""
    shape = tensor.get("shape") or [len(tensor["data"])]
    values = np.asarray(tensor["data"]).reshape(shape[0], -1)
    if values.shape[1] == 1:
        return {tensor["name"]: values[:, 0]}
    return {f"{tensor['name']}_{j}": values[:, j] for j in range(values.shape[1])}


def inputs_frame(payload: dict[str, Any]) -> pd.DataFrame:
    """One row per instance of a V1 (``instances``) or V2 (``inputs``) request; V1 lists as ``feature_<j>``."""
    if "instances" in payload:
        instances = payload["instances"]
        if instances and isinstance(instances[0], dict):
            return pd.DataFrame(instances)
        return pd.DataFrame([np.atleast_1d(i) for i in instances]).add_prefix("feature_")
    columns: dict[str, np.ndarray] = {}
    for tensor in payload.get("inputs") or []:
        columns.update(_tensor_columns(tensor))
    return pd.DataFrame(columns)


def predictions_of(payload: dict[str, Any]) -> list[Any]:
    """One prediction per instance: V1 ``predictions``, or the first V2 output tensor's rows."""
    if "predictions" in payload:
        return list(payload["predictions"])
    outputs = payload.get("outputs") or []
    if not outputs:
        return []
    first = outputs[0]
    shape = first.get("shape") or [len(first["data"])]
    values = np.asarray(first["data"]).reshape(shape[0], -1)
    return [row[0] if values.shape[1] == 1 else list(row) for row in values.tolist()]


def stored_events(path: Path, isvc: str, since: float, until: float,
                  namespace: str | None = None) -> list[tuple[str, str, float, str]]:
    """(id, kind, time, body) of the events of `isvc` with since <= time < until, oldest first."""
    if not path.exists():
        raise FileNotFoundError(f"no event store at {path} (has the receiver stored any event yet?)")
    query = "SELECT id, kind, time, body FROM events WHERE isvc = ? AND time >= ? AND time < ?"
    params: list[Any] = [isvc, since, until]
    if namespace is not None:
        query, params = query + " AND namespace = ?", [*params, namespace]
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return [(i, k, t, bytes(b).decode()) for i, k, t, b in db.execute(query + " ORDER BY time", params)]


def _fetch_events(url: str, isvc: str, since: float, until: float,
                  namespace: str | None) -> list[tuple[str, str, float, str]]:
    """The same rows from a running receiver's ``GET /events`` (the drift job on a cluster reads them so)."""
    query = {"isvc": isvc, "since": since, "until": until, **({"namespace": namespace} if namespace else {})}
    response = httpx.get(f"{url.rstrip('/')}/events", params=query, timeout=60)
    response.raise_for_status()
    return [tuple(row) for row in response.json()["events"]]


def read_window(store: Path | str, isvc: str, since: datetime, until: datetime,
                namespace: str | None = None) -> pd.DataFrame:
    """The instances logged for `isvc` with since <= time < until: ``id``, ``time``, inputs, ``prediction``.

    `store` is the receiver's URL (``http://drift-receiver.<ns>``), its data directory or its SQLite
    file. A request without its response (mode ``request``, a non-200 answer, a dropped event) has no
    prediction; a response alone (mode ``response``) has no inputs. An exchange whose counts of
    instances and predictions differ is left out and logged. An empty window is an empty frame with
    the ``id``, ``time`` and ``prediction`` columns.
    """
    if str(store).startswith(("http://", "https://")):
        rows = _fetch_events(str(store), isvc, since.timestamp(), until.timestamp(), namespace)
    else:
        path = Path(store)
        rows = stored_events(path / STORE_FILE if path.is_dir() else path, isvc, since.timestamp(),
                             until.timestamp(), namespace)
    exchanges: dict[str, dict[str, Any]] = {}
    for event_id, kind, when, body in rows:
        exchanges.setdefault(event_id, {"time": when})[kind] = json.loads(body)
    frames = []
    for event_id, exchange in exchanges.items():
        inputs = inputs_frame(exchange["request"]) if "request" in exchange else pd.DataFrame()
        predictions = predictions_of(exchange["response"]) if "response" in exchange else None
        if predictions is not None and len(inputs) and len(predictions) != len(inputs):
            log.warning("exchange %s of %s: %d instances but %d predictions, left out", event_id, isvc,
                        len(inputs), len(predictions))
            continue
        count = len(inputs) if len(inputs) else len(predictions or [])
        frame = inputs.reset_index(drop=True) if len(inputs) else pd.DataFrame(index=range(count))
        frame.insert(0, "id", event_id)
        frame.insert(1, "time", pd.to_datetime(round(exchange["time"] * 1e6), unit="us", utc=True))
        frame["prediction"] = predictions if predictions is not None else None
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["id", "time", "prediction"])
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get(DATA_DIR_ENV, "/data"))
    parser.add_argument("--port", type=int, default=CONTAINER_PORT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    path = pod_path(args.data_dir) / STORE_FILE
    log.info("storing inference events in %s", path)
    web.run_app(make_app(EventStore(path)), host="127.0.0.1" if os.environ.get(PORTS_ENV) else "0.0.0.0",
                port=listen_port(args.port), access_log=None)


if __name__ == "__main__":
    main()
