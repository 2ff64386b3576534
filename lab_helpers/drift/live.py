"""The drift lesson on a running target: send a phase of traffic, run the drift job now, read the logged rows.

All of it through `Lab` verbs, so it runs alike on both targets: requests through the ingress, the job
as a Job of its CronJob (``kubectl create job --from=cronjob/...``), the receiver's ``GET /events``
through ``lab.pod_url`` (a port-forward on a cluster).
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pandas as pd

from ..api import Lab
from ..inference import infer_path, post
from .receiver import read_window
from .replay import v2_batches

CRONJOB = "prediction-drift"
RECEIVER_LABELS = {"app.kubernetes.io/name": "drift-receiver"}
RECEIVER_PORT = 8080


def send(lab: Lab, isvc: str, rows: pd.DataFrame, batch: int = 50) -> tuple[float, float]:
    """Send `rows` in V2 batches; (first send, last answer) in epoch seconds. Raises on a non-200 answer."""
    base, host = lab.endpoint(isvc)
    started = time.time()
    for payload in v2_batches(rows, batch):
        response = post(base, host, infer_path(isvc), payload)
        if response.status_code != 200:
            raise RuntimeError(f"{isvc} answered {response.status_code}: {response.text[:200]}")
    return started, time.time()


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_now(lab: Lab, variables: dict[str, str], reference: tuple[float, float], since: float,
              timeout: float = 120.0) -> dict:
    """Run the drift job once over [`since`, now) against the `reference` window; the finished Job."""
    window_s = int(time.time() - since) + 1
    lab.apply("manifests/drift/40-drift-cronjob.yaml", {
        **variables, "DRIFT_WINDOW": f"{window_s}s",
        "DRIFT_REFERENCE_WINDOW": f"{iso(reference[0] - 1)}/{iso(reference[1] + 1)}"})
    job = lab.run_cronjob_now(CRONJOB)
    return lab.wait_for("Job", job["metadata"]["name"], "Complete", timeout=timeout)


def logged(lab: Lab, isvc: str, span: tuple[float, float], features: list[str] | None = None,
           namespace: str | None = None) -> pd.DataFrame:
    """The rows the receiver stored for `isvc` in `span` (inputs and prediction per row). A one-tensor V2
    request logs its columns as ``input-0_<j>``; `features` names them back."""
    pods = lab.list("Pod", namespace, labels=RECEIVER_LABELS)
    if not pods:
        raise LookupError("no drift-receiver pod: apply manifests/drift/10-receiver.yaml "
                          "(see runbooks/inference-logger-sink.md)")
    # From the first send (no earlier: the phase before ends there) to a second after the last answer (the
    # logger sends asynchronously, so a response event can arrive just after the answer).
    since, until = (datetime.fromtimestamp(t, timezone.utc) for t in (span[0], span[1] + 1))
    with lab.pod_url(pods[0]["metadata"]["name"], RECEIVER_PORT, namespace) as url:
        frame = read_window(url, isvc, since, until, namespace or lab.namespace)
    if features:
        frame = frame.rename(columns={f"input-0_{j}": name for j, name in enumerate(features)})
    return frame


def verdict_after(lab: Lab, isvc: str, after: float, timeout: float = 60.0) -> dict[str, float]:
    """The drift job's gauges for `isvc` once Prometheus has a push newer than `after` (the Pushgateway keeps
    the last push, so an older verdict would otherwise be read as this run's)."""
    selector = f'inference_service="{isvc}"'
    lab.prom.wait_for_series(f"lab_prediction_drift_last_run_timestamp_seconds{{{selector}}} > {after}",
                             timeout=timeout)
    values = {}
    for name in ("p_value", "psi", "window_rows"):
        frame = lab.prom.query(f"lab_prediction_drift_{name}{{{selector}}}")
        values[name] = float(frame["value"].iloc[0]) if len(frame) else float("nan")
    return values
