"""Cold-start trials: let the service reach zero, send one request, take its timeline apart; warm ones beside it.

Each trial waits until the predictor has no pod at all (KEDA's cooldown, then the pod's deletion),
sends one request through the interceptor and, once it is answered, reads the records that place
each moment (`coldstart.cold_timeline`): the events, the woken pod, its model server's log, the
interceptor's hold. Then `warm` requests go the same way, and as many straight to the pod (past the
gateway and the interceptor) for contrast. Works on both targets: only `Lab` verbs are used.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pandas as pd

from ..api import Lab
from ..inference import infer_path
from ..manifests.loading import load_documents
from ..paths import manifests_dir
from ..progress import Dots
from .coldstart import MOMENTS, Timeline, cold_timeline
from .stamps import event_epoch

ISVC_LABEL = "serving.kserve.io/inferenceservice"
RUNTIME_PORT = 8080  # the model server's port in the pod (KServe's default for kserve-container)
STAMP_SLACK_S = 1.0  # events stamped in whole seconds may carry a time up to a second before the send


@dataclass(frozen=True)
class ScaleToZeroService:
    """An InferenceService scaled 0 <-> 1 by a ScaledObject, reached through an InterceptorRoute."""

    inference_service: str
    scaled_object: str
    route: str
    model: str
    namespace: str | None = None


def scale_to_zero_objects(name: str, variables: dict[str, str]) -> list[dict[str, Any]]:
    """``manifests/autoscaling/iris-s2z.yaml`` as `name`: the InferenceService, its InterceptorRoute (Host
    ``<name>-<namespace>.example.com``) and its ScaledObject, so a benchmark or test runs beside the notebook's."""
    objects = [copy.deepcopy(doc.obj) for doc in load_documents(manifests_dir() / "autoscaling" / "iris-s2z.yaml",
                                                                 variables)]
    for obj in objects:
        obj["metadata"]["name"] = name
    route, scaled = objects[1], objects[2]
    route["spec"]["target"]["service"] = scaled["spec"]["scaleTargetRef"]["name"] = f"{name}-predictor"
    route["spec"]["rules"][0]["hosts"] = [f"{name}-{variables['NAMESPACE']}.example.com"]
    scaled["spec"]["triggers"][0]["metadata"]["interceptorRoute"] = name
    return objects


def wait_for_zero(lab: Lab, service: ScaleToZeroService, timeout: float) -> float:
    """Block until the predictor wants 0 replicas and no pod of it is left; the seconds waited."""
    started = time.monotonic()
    dots = Dots(f"waiting for {service.inference_service} to scale to zero")
    while True:
        deployment = lab.get("Deployment", f"{service.inference_service}-predictor", service.namespace)
        pods = lab.list("Pod", service.namespace, labels={ISVC_LABEL: service.inference_service})
        if deployment["spec"].get("replicas") == 0 and not pods:
            dots.done("at zero")
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            dots.done("still running")
            raise TimeoutError(f"{service.inference_service} still has {len(pods)} pod(s) after {timeout:.0f} s: is "
                               f"ScaledObject {service.scaled_object}'s cooldown longer than that, or is something "
                               "still sending requests? (runbooks/scale-to-zero-failing.md)")
        dots.tick()
        time.sleep(0.25)


def _timed_post(client: httpx.Client, base: str, host: str, path: str, payload: dict[str, Any],
                timeout: float) -> dict[str, Any]:
    """One request on a kept-alive connection, so a warm figure is the path's and not a TCP handshake's."""
    sent = time.time()
    response = client.post(base + path, json=payload, headers={"Host": host}, timeout=timeout)
    answered = time.time()
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    outputs = body.get("outputs") or [{}]
    return {"sent": sent, "answered": answered, "status": response.status_code, "total_s": answered - sent,
            "prediction": outputs[0].get("data")}


def _woken_pod(lab: Lab, service: ScaleToZeroService, sent: float) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The Ready pod created for this request, and its ``SuccessfulCreate`` event."""
    events = lab.events("InferenceService", service.inference_service, service.namespace)
    created = {e["message"].split()[-1]: e for e in events
               if e.get("reason") == "SuccessfulCreate" and event_epoch(e) >= sent - STAMP_SLACK_S}
    pods = [p for p in lab.list("Pod", service.namespace, labels={ISVC_LABEL: service.inference_service})
            if p["metadata"]["name"] in created]
    if not pods:
        raise LookupError(f"no pod of {service.inference_service} was created after the request was sent: the "
                          "service was not at zero, or the pod is already gone (runbooks/scale-to-zero-failing.md)")
    pod = min(pods, key=lambda p: event_epoch(created[p["metadata"]["name"]]))
    return pod, created[pod["metadata"]["name"]]


def _activation(lab: Lab, service: ScaleToZeroService, sent: float) -> dict[str, Any] | None:
    events = [e for e in lab.events("ScaledObject", service.scaled_object, service.namespace, children=False)
              if e.get("reason") == "KEDAScaleTargetActivated" and event_epoch(e) >= sent - STAMP_SLACK_S]
    return events[0] if events else None


def _hold(lab: Lab, host: str, sent: float) -> dict[str, Any] | None:
    holds = lab.interceptor_holds()
    if holds is None:
        return None
    return next((h for h in holds if h["host"] == host and h["held_at"] >= sent and h["outcome"] == "forwarded"),
                None)


def cold_request(lab: Lab, client: httpx.Client, service: ScaleToZeroService, payload: dict[str, Any],
                 timeout: float = 120.0) -> tuple[dict[str, Any], Timeline, str]:
    """One request to the service at zero: its answer, its timeline, and the pod that woke for it."""
    base, host = lab.interceptor_endpoint(service.route, service.namespace)
    answer = _timed_post(client, base, host, infer_path(service.model), payload, timeout)
    if answer["status"] != 200:
        return answer, Timeline({"request sent": answer["sent"], "response": answer["answered"]}), ""
    pod, created = _woken_pod(lab, service, answer["sent"])
    name = pod["metadata"]["name"]
    timeline = cold_timeline(sent=answer["sent"], answered=answer["answered"], pod=pod,
                             activation=_activation(lab, service, answer["sent"]), pod_created=created,
                             runtime_log=lab.container_log(name, "kserve-container", service.namespace),
                             model=service.model, hold=_hold(lab, host, answer["sent"]))
    return answer, timeline, name


def warm_requests(lab: Lab, client: httpx.Client, service: ScaleToZeroService, payload: dict[str, Any], pod: str,
                  count: int) -> list[dict[str, Any]]:
    """`count` requests through the interceptor, then `count` straight to the pod's model server."""
    base, host = lab.interceptor_endpoint(service.route, service.namespace)
    path = infer_path(service.model)
    rows = [{"kind": "warm", **_timed_post(client, base, host, path, payload, 30.0)} for _ in range(count)]
    with lab.pod_url(pod, RUNTIME_PORT, service.namespace) as direct:
        rows += [{"kind": "warm, direct to pod", **_timed_post(client, direct, host, path, payload, 30.0)}
                 for _ in range(count)]
    return rows


def run_trials(lab: Lab, service: ScaleToZeroService, payload: dict[str, Any], trials: int = 3, warm: int = 20,
               zero_timeout: float = 300.0, request_timeout: float = 120.0) -> pd.DataFrame:
    """One row per request: ``trial``, ``kind`` (cold / warm / warm, direct to pod), ``status``, ``total_s``,
    for cold ones ``runtime_s``, ``overhead_s`` and one column per moment (seconds since the previous one)."""
    if trials < 1:
        raise ValueError(f"trials must be at least 1, got {trials}")
    rows: list[dict[str, Any]] = []
    with httpx.Client() as client:
        for trial in range(1, trials + 1):
            wait_for_zero(lab, service, zero_timeout)
            answer, timeline, pod = cold_request(lab, client, service, payload, request_timeout)
            rows.append({"trial": trial, "kind": "cold", **answer, "runtime_s": timeline.runtime_s,
                         "overhead_s": timeline.overhead_s, **timeline.spans()})
            if answer["status"] == 200 and warm:
                rows += [{"trial": trial, **row} for row in warm_requests(lab, client, service, payload, pod, warm)]
    frame = pd.DataFrame(rows)
    return frame[[c for c in ("trial", "kind", "status", "total_s", "runtime_s", "overhead_s", "prediction",
                              *MOMENTS, "sent", "answered") if c in frame.columns]]
