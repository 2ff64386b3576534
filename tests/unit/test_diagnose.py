"""`diagnose_service` names each fault's cause from what a cluster shows, and the runbook (pure, then kmock)."""
from __future__ import annotations

from typing import Any

import pytest

from lab_helpers.diagnosis import (CAUSES, RUNBOOKS, ContainerExit, container_exits, diagnose, diagnose_service,
                                   diagnosed_reasons, pod_status_column, storage_cause)
from lab_helpers.paths import REPO_ROOT

from kube_fixtures import MockCluster, cluster  # noqa: F401  (cluster is a pytest fixture)

ISVC_LABEL = "serving.kserve.io/inferenceservice"


def isvc(ready: bool = False, failure: dict[str, Any] | None = None, fmt: str = "sklearn") -> dict[str, Any]:
    conditions = [{"type": "PredictorReady", "status": str(ready),
                   **({} if ready else {"reason": "MinimumReplicasUnavailable"})},
                  {"type": "Ready", "status": str(ready), **({} if ready else {"reason": "PredictorNotReady"})}]
    model_status: dict[str, Any] = {"transitionStatus": "UpToDate" if ready else "BlockedByFailedLoad",
                                    "states": {"activeModelState": "Loaded" if ready else "FailedToLoad",
                                               "targetModelState": "Loaded"}}
    if failure:
        model_status["lastFailureInfo"] = failure
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": "wine-incident", "namespace": "lab"},
            "spec": {"predictor": {"model": {"modelFormat": {"name": fmt}}}},
            "status": {"conditions": conditions, "modelStatus": model_status}}


def looping(name: str, exit_code: int, reason: str, message: str = "", restarts: int = 2) -> dict[str, Any]:
    """A container status as a kubelet shows it between restarts: waiting, with its last exit beside."""
    return {"name": name, "ready": False, "restartCount": restarts,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s restarting failed container"}},
            "lastState": {"terminated": {"exitCode": exit_code, "reason": reason, "message": message}}}


def pod(init: list[dict[str, Any]] | None = None, main: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "wine-incident-predictor-7d9f-abcde", "namespace": "lab",
                         "labels": {ISVC_LABEL: "wine-incident"}},
            "status": {"phase": "Pending" if init else "Running", "initContainerStatuses": init or [],
                       "containerStatuses": main or []}}


STORAGE_FAILED = {"reason": "ModelLoadFailed", "exitCode": 1}
# What each fault leaves on a cluster: (InferenceService, pods, a log the failed container wrote).
SCENES = {
    "model-artifact-missing": (
        isvc(failure={**STORAGE_FAILED, "message": "Failed to fetch model. No model found in s3://b/wine/model-v2."}),
        [pod(init=[looping("storage-initializer", 1, "Error",
                           "Failed to fetch model. No model found in s3://b/wine/model-v2.")])], ""),
    "framework-runtime-mismatch": (
        isvc(failure={"reason": "NoSupportingRuntime",
                      "message": "Specified runtime kserve-xgbserver does not support specified framework/version"}),
        [], ""),
    "resource-limits-too-low": (
        isvc(failure={"reason": "ModelLoadFailed", "exitCode": 137, "message": ""}),
        [pod(init=[{"name": "storage-initializer", "ready": True, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
             main=[looping("kserve-container", 137, "OOMKilled")])], ""),
    # The storage initializer's termination message left empty: the cause is read from its log instead.
    "storage-backend-not-accessible": (
        isvc(failure={**STORAGE_FAILED, "message": ""}),
        [pod(init=[looping("storage-initializer", 1, "Error")])],
        "INFO Copying contents\nERROR Failed to connect to HTTP endpoint '127.0.0.1'."),
}
EXPECTED = {"model-artifact-missing": ("ModelLoadFailed", "runbooks/model-load-failed.md"),
            "framework-runtime-mismatch": ("NoSupportingRuntime", "runbooks/no-supporting-runtime.md"),
            "resource-limits-too-low": ("OOMKilled", "runbooks/oom-killed.md"),
            "storage-backend-not-accessible": ("ModelLoadFailed", "runbooks/model-load-failed.md")}


@pytest.mark.parametrize("cause", CAUSES)
def test_each_fault_is_named_with_its_reason_and_runbook(cause: str) -> None:
    service, pods, log = SCENES[cause]
    events = [{"type": "Warning", "reason": "InternalError", "message": "the reconcile said so",
               "involvedObject": {"kind": "InferenceService", "name": "wine-incident"}}]
    found = diagnose_service(service, pods, events, log_tail=lambda pod, container: log)
    assert (found.cause, found.reason, found.runbook) == (cause, *EXPECTED[cause])
    assert not found.ready
    assert found.evidence[0].startswith("status: PredictorReady=False (MinimumReplicasUnavailable) Ready=False")
    assert not any(cause in line for line in found.evidence if not line.startswith("status")), "facts only"
    assert "event Warning InternalError InferenceService/wine-incident: the reconcile said so" in found.evidence
    text = str(found)
    assert f"InferenceService lab/wine-incident: cause: {cause}" in text and f"runbook: {EXPECTED[cause][1]}" in text


def test_the_failed_container_is_in_the_evidence_with_its_exit() -> None:
    service, pods, _ = SCENES["resource-limits-too-low"]
    found = diagnose_service(service, pods, [])
    assert ("pod wine-incident-predictor-7d9f-abcde container kserve-container: exit code 137 (OOMKilled), "
            "2 restart(s), now CrashLoopBackOff: (no message)") in found.evidence


def test_a_healthy_service_has_no_cause() -> None:
    found = diagnose_service(isvc(ready=True), [pod(main=[{"name": "kserve-container", "ready": True,
                                                           "state": {"running": {}}}])], [])
    assert (found.ready, found.cause, found.reason) == (True, None, "Ready")
    assert str(found).startswith("InferenceService lab/wine-incident: Ready")


def test_a_failure_none_of_the_four_explain_keeps_its_reason_and_says_so() -> None:
    failure = {"reason": "ModelLoadFailed", "exitCode": 1, "message": "ModuleNotFoundError: No module named 'x'"}
    found = diagnose_service(isvc(failure=failure), [pod(main=[looping("kserve-container", 1, "Error",
                                                                       failure["message"])])], [])
    assert (found.cause, found.reason, found.runbook) == (None, "ModelLoadFailed", "runbooks/model-load-failed.md")
    assert "cause: not one of model-artifact-missing" in str(found)
    triton = diagnose_service(isvc(failure=failure, fmt="onnx"), [], [])
    assert triton.runbook == "runbooks/runtime-not-loading-model.md"


def test_a_service_with_no_status_yet_falls_back_to_its_conditions() -> None:
    found = diagnose_service({"kind": "InferenceService", "metadata": {"name": "w"}}, [], [])
    assert (found.cause, found.reason, found.runbook) == (None, "NotReady", "runbooks/service-not-ready.md")


@pytest.mark.parametrize("message, cause", [
    ("Local path file:///m/model-v2 does not exist.", "model-artifact-missing"),
    ("HTTP resource not found at 'http://x/m.joblib'.", "model-artifact-missing"),
    ("Failed to connect to S3 endpoint 'minio'.", "storage-backend-not-accessible"),
    ("Invalid AWS credentials. Verify AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.", "storage-backend-not-accessible"),
    ("Access denied to S3 resource 'mlflow'. Verify permissions.", "storage-backend-not-accessible"),
    ("Failed to unpack archive file m.tar. The file format is not valid.", None),
])
def test_storage_initializer_messages_name_their_cause(message: str, cause: str | None) -> None:
    assert storage_cause(message) == cause


def test_a_container_that_succeeded_or_never_failed_is_no_exit() -> None:
    healthy = pod(init=[{"name": "storage-initializer", "state": {"terminated": {"exitCode": 0}}}],
                  main=[{"name": "kserve-container", "state": {"running": {}}, "lastState": {}}])
    assert container_exits([healthy]) == []
    exit_ = container_exits([pod(main=[looping("kserve-container", 137, "")])])[0]
    assert isinstance(exit_, ContainerExit) and exit_.oom_killed and not exit_.init


def test_every_reason_a_diagnosis_can_carry_has_a_runbook_file() -> None:
    assert {"OOMKilled", "ModelLoadFailed", "NoSupportingRuntime", "RuntimeUnhealthy", "NotReady"} <= \
        diagnosed_reasons()
    assert all((REPO_ROOT / RUNBOOKS[reason]).is_file() for reason in diagnosed_reasons())


@pytest.mark.parametrize("cause", CAUSES)
def test_lab_diagnose_reads_status_pods_events_and_logs_on_a_cluster(cluster: MockCluster, cause: str) -> None:
    service, pods, log = SCENES[cause]
    cluster.put("InferenceService", service)
    for p in pods:
        cluster.put("Pod", p)
        cluster.server[f"get /api/v1/namespaces/lab/pods/{p['metadata']['name']}/log"] << log.encode()
    cluster.put("Pod", dict(pod(main=[looping("kserve-container", 137, "OOMKilled")]),
                            metadata={"name": "other", "namespace": "lab", "labels": {ISVC_LABEL: "other"}}))
    found = cluster.lab().diagnose("wine-incident")
    assert (found.cause, found.reason) == (cause, EXPECTED[cause][0])


@pytest.mark.parametrize("status, column", [
    ({"phase": "Pending", "initContainerStatuses": [looping("storage-initializer", 1, "Error")]},
     "Init:CrashLoopBackOff"),
    ({"phase": "Pending", "initContainerStatuses": [{"name": "storage-initializer", "state": {"terminated": {
        "exitCode": 1, "reason": "Error"}}}]}, "Init:Error"),
    ({"phase": "Pending", "initContainerStatuses": [{"name": "storage-initializer", "state": {"running": {}}}]},
     "Init:0/1"),
    ({"phase": "Running", "initContainerStatuses": [{"name": "storage-initializer", "state": {"terminated": {
        "exitCode": 0, "reason": "Completed"}}}], "containerStatuses": [looping("kserve-container", 137, "OOMKilled")]},
     "CrashLoopBackOff"),
    ({"phase": "Running", "containerStatuses": [{"name": "kserve-container", "state": {"running": {}}}]}, "Running"),
])
def test_the_pod_reads_as_kubectl_get_pods_shows_it(status: dict[str, Any], column: str) -> None:
    assert pod_status_column({"metadata": {"name": "p"}, "status": status}) == column


def test_the_evidence_shows_each_pod_as_kubectl_lists_it() -> None:
    service, pods, _ = SCENES["model-artifact-missing"]
    assert "pod wine-incident-predictor-7d9f-abcde: Init:CrashLoopBackOff (kubectl get pods)" in \
        diagnose_service(service, pods, []).evidence


def test_events_of_a_predecessor_under_the_same_name_are_left_out() -> None:
    service = dict(isvc(), metadata={"name": "wine-incident", "namespace": "lab", "uid": "new",
                                     "creationTimestamp": "2026-12-03T02:00:10Z"})
    live = pod(main=[looping("kserve-container", 137, "OOMKilled")])

    def event(kind: str, name: str, uid: str, at: str, message: str) -> dict[str, Any]:
        return {"type": "Warning", "reason": "R", "message": message, "lastTimestamp": at,
                "involvedObject": {"kind": kind, "name": name, "uid": uid}}
    events = [event("InferenceService", "wine-incident", "old", "2026-12-03T02:00:00Z", "old service"),
              event("Pod", "wine-incident-predictor-0ld-xxxxx", "p0", "2026-12-03T02:00:01Z", "old pod"),
              event("ReplicaSet", "wine-incident-predictor-0ld", "r0", "2026-12-03T02:00:02Z", "old replicaset"),
              event("InferenceService", "wine-incident", "new", "2026-12-03T02:00:12Z", "this service"),
              event("Pod", live["metadata"]["name"], "p1", "2026-12-03T02:00:13Z", "this pod"),
              event("ReplicaSet", "wine-incident-predictor-n3w", "r1", "2026-12-03T02:00:11Z", "this replicaset")]
    shown = [line for line in diagnose_service(service, [live], events, last_events=9).evidence
             if line.startswith("event")]
    assert [line.rsplit(": ", 1)[1] for line in shown] == ["this service", "this pod", "this replicaset"]


def test_a_reason_without_its_own_page_gets_the_page_of_its_kind() -> None:
    """Flagger writes reason Failed on a rolled-back Canary: the canary runbook, not the InferenceService default."""
    canary = {"kind": "Canary", "metadata": {"name": "iris-rollout", "namespace": "lab"},
              "status": {"phase": "Failed", "conditions": [
                  {"type": "Promoted", "status": "False", "reason": "Failed",
                   "message": "Canary analysis failed, Deployment scaled to zero."}]}}
    found = diagnose(canary, [])
    assert (found.reason, found.runbook) == ("Failed", "runbooks/canary-rollback-triggered.md")
    isvc = {"kind": "InferenceService", "metadata": {"name": "iris"},
            "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Failed"}]}}
    assert diagnose(isvc, []).runbook == "runbooks/service-not-ready.md"
