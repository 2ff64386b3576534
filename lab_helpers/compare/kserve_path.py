"""Path (b): the InferenceService on the custom Triton runtime of notebook 11, deployed and timed from the apply.

Time to first ready counts from applying the InferenceService to its first answer through the ingress (the
local gateway, or `$LAB_INGRESS_URL` on a cluster): the controller's reconcile, the storage initializer, the
runtime's start and the route. A `digits` left from an earlier run is deleted first, so the deploy is cold.

Resident memory is the predictor's: on the local target the pod's Triton process tree (the lab's entrypoint
wrapper, a Python process a cluster's image does not have, left out); on a cluster the kserve-container's
`container_memory_rss` from Prometheus (cAdvisor), if the cluster's Prometheus has it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psutil

from ..errors import LabError, NotFound
from ..paths import lab_home, manifests_dir
from ..progress import Dots
from .models import MODEL
from .servers import tree_rss

RUNTIME_MANIFEST = manifests_dir() / "triton" / "00-triton-servingruntime.yaml"
SERVICE_MANIFEST = manifests_dir() / "triton" / "10-digits-triton.yaml"
POD_LABEL = "serving.kserve.io/inferenceservice"
CONTAINER = "kserve-container"
POLL_S = 0.2


@dataclass(frozen=True)
class KServeDeployment:
    """Where path (b) answers and how long it took from the apply to its first answer."""

    url: str
    host: str
    ready_s: float


def predictor_pods(lab: Any) -> list[dict[str, Any]]:
    return lab.list("Pod", labels={POD_LABEL: MODEL})


def remove_previous(lab: Any, timeout: float) -> None:
    """Delete an earlier `digits` and wait until it and its pods are gone, so the next deploy starts cold."""
    lab.delete("InferenceService", MODEL)
    deadline = time.monotonic() + timeout
    dots = Dots(f"removing the previous InferenceService {MODEL}")
    while True:
        try:
            lab.get("InferenceService", MODEL)
            gone = False
        except NotFound:
            gone = not predictor_pods(lab)
        if gone:
            dots.done("gone")
            return
        if time.monotonic() > deadline:
            dots.done("timed out")
            raise LabError(f"InferenceService {MODEL} or its pods still exist {timeout:.0f} s after the delete "
                           "(runbook: runbooks/service-not-ready.md)")
        dots.tick()
        time.sleep(POLL_S)


def deploy(lab: Any, triton_uri: str, probe: dict[str, Any], timeout: float) -> KServeDeployment:
    """Apply the runtime and the InferenceService, wait for Ready and a first answer to `probe`; timed."""
    lab.apply(RUNTIME_MANIFEST)
    remove_previous(lab, timeout)
    started = time.monotonic()
    lab.apply(SERVICE_MANIFEST, {"DIGITS_ONNX_URI": triton_uri})
    lab.wait_ready("InferenceService", MODEL, timeout=timeout)
    deadline = started + timeout
    while True:   # Ready may come a moment before the route answers (the ingress programs it after)
        try:
            lab.infer(MODEL, probe)
            break
        except LabError:
            if time.monotonic() > deadline:
                raise
            time.sleep(POLL_S)
    ready_s = time.monotonic() - started
    url, host = lab.endpoint(MODEL)
    return KServeDeployment(url, host, ready_s)


def local_rss(lab: Any) -> int:
    """RSS of the Triton process trees of the ready predictor pods (local target), wrapper left out."""
    from ..local.kubelet import running_container

    total = 0
    for pod in predictor_pods(lab):
        record = (((pod.get("status") or {}).get("lab") or {}).get("containers") or {}).get(CONTAINER)
        pod_dir = lab_home() / "pods" / pod["metadata"]["namespace"] / pod["metadata"]["name"]
        process = running_container(record, pod_dir) if record else None
        if process is None:
            continue
        try:
            total += sum(tree_rss(child) for child in process.children())
        except psutil.Error:
            pass
    if not total:
        raise LabError(f"no running Triton process found for the pods of InferenceService {MODEL}")
    return total


def cluster_rss(prom: Any, namespace: str) -> float | None:
    """The predictor containers' RSS from cAdvisor through Prometheus, None if it has no such series."""
    query = (f'sum(container_memory_rss{{namespace="{namespace}", pod=~"{MODEL}-predictor-.*", '
             f'container="{CONTAINER}"}})')
    try:
        frame = prom.query(query)
    except LabError:
        return None
    return float(frame["value"].iloc[0]) if len(frame) else None


def serving_rss(lab: Any) -> float | None:
    """Path (b)'s resident memory in bytes on either target (None where the cluster does not report it)."""
    if lab.target == "local":
        return float(local_rss(lab))
    try:
        prom = lab.prom
    except LabError:   # no Prometheus reachable: the table says n/a rather than failing the run
        return None
    return cluster_rss(prom, lab.namespace)


def control_plane_rss() -> int | None:
    """The local target's control plane + gateway process (one asyncio process), for scale; None if not running."""
    from ..local.control import running

    info = running()
    if not info:
        return None
    try:
        return psutil.Process(info["pid"]).memory_info().rss
    except psutil.Error:
        return None
