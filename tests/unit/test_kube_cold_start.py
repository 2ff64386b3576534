"""A cold start on the kubernetes target (kmock): the same moments from cluster-shaped events, pod status and the
kubelet-timestamped log; the client's wait stands in for the hold, which the add-on does not record."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import httpx
import pytest

from lab_helpers.errors import NotFound
from lab_helpers.scaling.cold_trials import ScaleToZeroService, cold_request

from kube_fixtures import MockCluster, cluster  # noqa: F401  (cluster is a pytest fixture)

ROUTE = {"metadata": {"name": "iris-s2z", "namespace": "lab"},
         "spec": {"target": {"service": "iris-s2z-predictor", "port": 80},
                  "rules": [{"hosts": ["iris-s2z-lab.example.com"]}]}}
SERVICE = ScaleToZeroService("iris-s2z", "iris-s2z", "iris-s2z", "iris-s2z")


def second(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def event(name: str, kind: str, obj: str, reason: str, message: str, at: float) -> dict:
    return {"metadata": {"name": name, "namespace": "lab"}, "reason": reason, "message": message, "type": "Normal",
            "involvedObject": {"kind": kind, "name": obj, "namespace": "lab"},
            "firstTimestamp": second(at), "lastTimestamp": second(at)}


def wake_up(cluster: MockCluster, at: float) -> None:
    """What KEDA, the ReplicaSet controller and the kubelet record for one wake-up starting at `at`."""
    cluster.put("Deployment", {"metadata": {"name": "iris-s2z-predictor", "namespace": "lab", "uid": "u-d",
                                            "ownerReferences": [{"kind": "InferenceService", "name": "iris-s2z",
                                                                 "uid": "u-i", "controller": True}]}})
    cluster.put("ReplicaSet", {"metadata": {"name": "iris-s2z-predictor-7f", "namespace": "lab", "uid": "u-rs",
                                            "labels": {"serving.kserve.io/inferenceservice": "iris-s2z"},
                                            "ownerReferences": [{"kind": "Deployment", "uid": "u-d"}]}})
    cluster.put("Pod", {"metadata": {"name": "iris-s2z-predictor-7f-x", "namespace": "lab", "uid": "u-p",
                                     "labels": {"serving.kserve.io/inferenceservice": "iris-s2z"},
                                     "ownerReferences": [{"kind": "ReplicaSet", "uid": "u-rs"}]},
                        "status": {"phase": "Running",
                                   "initContainerStatuses": [{"name": "storage-initializer", "state": {"terminated": {
                                       "startedAt": second(at + 1), "finishedAt": second(at + 2)}}}],
                                   "containerStatuses": [{"name": "kserve-container", "state": {"running": {
                                       "startedAt": second(at + 2)}}}],
                                   "conditions": [{"type": "Ready", "status": "True",
                                                   "lastTransitionTime": second(at + 5)}]}})
    cluster.put("InferenceService", {"metadata": {"name": "iris-s2z", "namespace": "lab", "uid": "u-i"}})
    cluster.put("Event", event("e1", "ScaledObject", "iris-s2z", "KEDAScaleTargetActivated",
                               "Scaled apps/v1.Deployment lab/iris-s2z-predictor from 0 to 1", at))
    cluster.put("Event", event("e2", "ReplicaSet", "iris-s2z-predictor-7f", "SuccessfulCreate",
                               "Created pod: iris-s2z-predictor-7f-x", at + 1))
    cluster.server["get /api/v1/namespaces/lab/pods/iris-s2z-predictor-7f-x/log"] << (
        f"{second(at + 4)[:-1]}.250000000Z 2026-12-02 00:00:00.000 1 kserve INFO Registering model: iris-s2z\n"
    ).encode()


def test_a_cold_request_is_taken_apart_from_what_the_cluster_recorded(cluster: MockCluster,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cluster.put("InterceptorRoute", ROUTE)
    monkeypatch.setenv("LAB_INTERCEPTOR_URL", "http://interceptor.test")
    seen: list[httpx.Request] = []

    def interceptor(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        wake_up(cluster, time.time())          # the cluster wakes while the request is held
        return httpx.Response(200, json={"outputs": [{"name": "output-0", "data": [1]}]})

    with httpx.Client(transport=httpx.MockTransport(interceptor)) as client:
        answer, timeline, pod = cold_request(cluster.lab(), client, SERVICE, {"inputs": []})
    assert seen[0].headers["Host"] == "iris-s2z-lab.example.com"
    assert seen[0].url == "http://interceptor.test/v2/models/iris-s2z/infer"
    assert (answer["status"], answer["prediction"], pod) == (200, [1], "iris-s2z-predictor-7f-x")
    assert list(timeline.spans()) == ["request sent", "scale decision", "pod created", "storage initializer started",
                                      "storage initializer finished", "runtime process started", "model loaded",
                                      "ready", "response"]
    assert timeline.runtime_s == pytest.approx(4.0)   # storage initializer start -> Ready, whole seconds


def test_the_log_of_a_pod_that_is_gone_names_the_pod(cluster: MockCluster) -> None:
    with pytest.raises(NotFound, match="Pod lab/iris-s2z-predictor-7f-x not found"):
        cluster.lab().container_log("iris-s2z-predictor-7f-x", "kserve-container")
