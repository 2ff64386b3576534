"""Notebook 14's steps against either target: the shapes deployed, then each one run and timed as a `ShapeRun`.

Every run scores the same raw records (iris flowers measured in millimetres, `raw_rows`) so the
table compares shapes, not inputs. Online runs go through the ingress like any caller; the batch
Job and its input file are the cluster's (file:// under the lab's home on the local target,
``$LAB_BATCH_URI`` (s3://...) on a cluster).
"""
from __future__ import annotations

import asyncio
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from ..errors import LabError
from ..paths import lab_home, manifests_dir
from ..progress import Dots
from ..runtime.transformer_features import FeatureSpec, raw_record
from .batch_scorer import LABEL_COLUMN, format_rows
from .measure import ShapeRun, requested_cores, timed_calls
from .objects import read_bytes, scored_uri, write_bytes
from .streaming import Event, consume

SHAPES = manifests_dir() / "shapes"
TRANSFORMED, CUSTOM, JOB = "iris-shapes", "iris-custom", "iris-batch-score"
BATCH_URI_ENV = "LAB_BATCH_URI"
SUMMARY = re.compile(r"scored (\d+) rows in ([0-9.]+) s")


def iris_spec() -> FeatureSpec:
    """The iris model's feature columns and labels, as the shapes manifests pass them to their images."""
    from ..models.training import load_dataset

    dataset = load_dataset("iris")
    return FeatureSpec(tuple(dataset.X_train.columns), dataset.target_names)


def raw_rows(count: int) -> list[dict[str, float]]:
    """`count` raw records (the iris test split in millimetres, repeated as needed), the same every run."""
    from ..models.training import load_dataset

    features = load_dataset("iris").X_test.to_dict("records")
    return [raw_record(features[i % len(features)]) for i in range(count)]


def deploy(lab: Any, timeout: float = 300) -> None:
    """iris-shapes (transformer + mlserver predictor) and iris-custom (custom predictor), both Ready."""
    uri = lab.model_uri("iris", alias="champion")
    lab.apply(SHAPES / "10-iris-transformer.yaml", {"IRIS_STORAGE_URI": uri})
    lab.apply(SHAPES / "20-iris-custom-predictor.yaml", {"IRIS_STORAGE_URI": uri})
    for name in (TRANSFORMED, CUSTOM):
        lab.wait_ready("InferenceService", name, timeout=timeout)


def component_cores(lab: Any, isvc: str) -> float:
    """CPU requested by an InferenceService's component Deployments (predictor, and transformer if any)."""
    deployments = lab.list("Deployment", labels={"serving.kserve.io/inferenceservice": isvc})
    return requested_cores(d["spec"]["template"] for d in deployments
                           for _ in range(int(d["spec"].get("replicas") or 1)))


def online(lab: Any, shape: str, isvc: str, path: str, body: dict[str, Any], rows_per_call: int,
           calls: int) -> ShapeRun:
    """`calls` requests one after another through the ingress, each `rows_per_call` rows."""
    base, host = lab.endpoint(isvc)
    with httpx.Client(base_url=base, headers={"Host": host}, timeout=30) as client:
        def call() -> None:
            client.post(path, json=body).raise_for_status()

        call()  # one warm-up: connection set up, caches warm
        seconds, latencies = timed_calls(call, calls)
    return ShapeRun(shape, calls * rows_per_call, seconds, latencies, component_cores(lab, isvc))


def batch_input_uri(lab: Any) -> str:
    if lab.target == "local":
        return (lab_home() / "shapes" / "rows.csv").as_uri()
    uri = os.environ.get(BATCH_URI_ENV)
    if not uri:
        raise LabError(f"set {BATCH_URI_ENV} to an s3:// URI the batch Job may read and write (e.g. "
                       "s3://lab-batch/iris/rows.csv); see manifests/shapes/30-iris-batch-job.yaml")
    return uri


def batch_job(lab: Any, rows: list[dict[str, float]], batch_size: int, concurrency: int,
              timeout: float = 180) -> tuple[ShapeRun, list[str]]:
    """The batch Job over `rows`: its input written, the Job run to Complete, the scored file read back.

    Latency per row is the whole Job's (a row's label exists once the file is written); the
    throughput is the scorer's own (rows over its scoring time, from its last log line)."""
    uri = batch_input_uri(lab)
    write_bytes(uri, format_rows(rows))
    if any(j["metadata"]["name"] == JOB for j in lab.list("Job")):  # a Job's template is immutable: run anew
        lab.delete("Job", JOB)
        _wait_gone(lab, "Job", JOB, timeout)
    started = time.perf_counter()
    lab.apply(SHAPES / "30-iris-batch-job.yaml", {"BATCH_INPUT_URI": uri, "BATCH_SIZE": str(batch_size),
                                                  "BATCH_CONCURRENCY": str(concurrency)})
    job = lab.wait_for("Job", JOB, "Complete", timeout=timeout)
    wall = time.perf_counter() - started
    [pod] = [p for p in lab.list("Pod", labels={"batch.kubernetes.io/job-name": JOB})
             if p["status"].get("phase") == "Succeeded"]
    found = SUMMARY.search(lab.container_log(pod["metadata"]["name"], "scorer"))
    if found is None:
        raise LabError(f"Job {JOB} completed but its log has no summary line (lab_helpers/shapes/batch_scorer.py)")
    labels = [row[LABEL_COLUMN] for row in _read_scored(scored_uri(uri))]
    cores = component_cores(lab, TRANSFORMED) + requested_cores([job["spec"]["template"]])
    return ShapeRun("batch: Job -> iris-shapes", int(found.group(1)), float(found.group(2)),
                    tuple([wall] * len(rows)), cores), labels


def _read_scored(uri: str) -> list[dict[str, Any]]:
    import csv
    import io

    return list(csv.DictReader(io.StringIO(read_bytes(uri).decode())))


def _wait_gone(lab: Any, kind: str, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    dots = Dots(f"waiting for {kind} {name} to be deleted")
    while any(o["metadata"]["name"] == name for o in lab.list(kind)):
        if time.monotonic() > deadline:
            raise LabError(f"{kind} {name} still exists {timeout:.0f} s after it was deleted")
        dots.tick()
        time.sleep(0.5)
    dots.done("gone")


def in_process(lab: Any, rows: list[dict[str, float]]) -> tuple[ShapeRun, list[str]]:
    """The same rows scored inside this process: the model loaded from the registry, one predict call."""
    import mlflow.pyfunc
    import pandas as pd

    spec = iris_spec()
    model = mlflow.pyfunc.load_model(lab.model_uri("iris", alias="champion"))
    started = time.perf_counter()
    labels = [spec.label(i) for i in model.predict(pd.DataFrame(spec.columns({"instances": rows})))]
    seconds = time.perf_counter() - started
    return ShapeRun("batch: in-process", len(rows), seconds, tuple([seconds] * len(rows)), 1.0), labels


def stream(lab: Any, shape: str, events: list[Event], max_batch: int, max_wait_s: float) -> tuple[ShapeRun, int]:
    """The events through iris-shapes by one consumer, one per request or in micro-batches: the run, and the
    number of requests it took."""
    base, host = lab.endpoint(TRANSFORMED)
    # A notebook kernel runs an event loop already: the stream gets its own, on a thread.
    with ThreadPoolExecutor(1) as pool:
        run = pool.submit(asyncio.run, consume(events, base, TRANSFORMED, host, max_batch=max_batch,
                                               max_wait_s=max_wait_s)).result()
    return ShapeRun(shape, len(events), run.seconds, run.latencies, component_cores(lab, TRANSFORMED)), run.requests


def predictor_gone(lab: Any, timeout: float = 30) -> tuple[httpx.Response, dict[str, str]]:
    """Delete iris-shapes' predictor pod and call the service at once: the transformer's answer while its
    predictor has no ready pod, and the InferenceService's conditions once KServe has seen it.

    The Deployment replaces the pod by itself; nothing here waits for that."""
    [pod] = lab.list("Pod", labels={"app": f"isvc.{TRANSFORMED}-predictor"})
    lab.delete("Pod", pod["metadata"]["name"])
    deadline, conditions = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        status = lab.get("InferenceService", TRANSFORMED).get("status") or {}
        conditions = {c["type"]: c["status"] for c in status.get("conditions") or []}
        if conditions.get("PredictorReady") == "False":
            break
        time.sleep(0.2)
    base, host = lab.endpoint(TRANSFORMED)
    response = httpx.post(f"{base}/v1/models/{TRANSFORMED}:predict", json={"instances": raw_rows(1)},
                          headers={"Host": host}, timeout=30)
    return response, conditions
