"""KubernetesLab against kmock: apply (dry run first), reads, errors, events, waits, inference."""
from __future__ import annotations

import io
import time
from pathlib import Path

import kmock
import pytest
from kube_fixtures import (  # noqa: F401  (cluster, empty_cluster are pytest fixtures)
    MockCluster,
    cluster,
    empty_cluster,
    is_dry_run_apply,
    is_real_apply,
    status,
    write_kubeconfig,
)

from lab_helpers.errors import Conflict, Forbidden, LabError, ManifestError, NotFound, NotReady, TargetUnavailable
from lab_helpers.kube.client import KubernetesLab

MULTI_DOC = """\
apiVersion: v1
kind: ServiceAccount
metadata: {name: models}
---
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: iris}
spec:
  predictor:
    serviceAccountName: models
    model: {modelFormat: {name: sklearn}, storageUri: "${MODEL_URI}"}
---
apiVersion: serving.kserve.io/v1alpha1
kind: ClusterServingRuntime
metadata: {name: custom-triton, namespace: ignored-for-cluster-kinds}
spec: {supportedModelFormats: [{name: onnx, version: "1"}], containers: [{name: kserve-container, image: t}]}
"""

ISVC = {"metadata": {"name": "iris", "namespace": "lab", "generation": 1}, "spec": {}}


def _condition(type_: str, status_: str, reason: str = "") -> dict:
    return {"type": type_, "status": status_, **({"reason": reason} if reason else {})}


# ---------------------------------------------------------------- connection


def test_no_kubeconfig_says_how_to_point_the_lab_at_a_cluster(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(TargetUnavailable) as caught:
        KubernetesLab()
    message = str(caught.value)
    assert "no kubeconfig found" in message and str(tmp_path / ".kube" / "config") in message
    assert "KUBECONFIG" in message and "--context" in message and "kubectl config get-contexts" in message


def test_unknown_context_lists_the_contexts_there_are(tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9", context="kind-lab")
    with pytest.raises(TargetUnavailable, match=r"context 'basecamp' is not in kubeconfig .*\(it has: kind-lab\)"):
        KubernetesLab(context="basecamp", kubeconfig=str(kubeconfig))


def test_unreachable_cluster_is_target_unavailable(tmp_path: Path) -> None:
    closed = write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:1")
    with pytest.raises(TargetUnavailable, match=r"cannot reach the Kubernetes API of context 'kmock'"):
        KubernetesLab(kubeconfig=str(closed))


def test_rejected_credentials_say_log_in_again(cluster: MockCluster) -> None:
    cluster.server["get /version"] << 401 << status(401, "Unauthorized", "Unauthorized")
    with pytest.raises(TargetUnavailable, match=r"rejected your credentials \(401\)"):
        cluster.lab()


# ---------------------------------------------------------------- apply


def test_apply_dry_runs_every_document_then_applies_in_order(cluster: MockCluster, tmp_path: Path) -> None:
    manifest = tmp_path / "serving.yaml"
    manifest.write_text(MULTI_DOC)
    applied = cluster.lab().apply(manifest, variables={"MODEL_URI": "s3://models/iris"})

    paths = [(r.params.get("dryRun"), r.url.path) for r in cluster.requests(kmock.method.PATCH)]
    documents = ["/api/v1/namespaces/lab/serviceaccounts/models",
                 "/apis/serving.kserve.io/v1beta1/namespaces/lab/inferenceservices/iris",
                 "/apis/serving.kserve.io/v1alpha1/clusterservingruntimes/custom-triton"]
    assert paths == [("All", p) for p in documents] + [(None, p) for p in documents]
    for request in cluster.requests(kmock.method.PATCH):
        assert request.headers["Content-Type"] == "application/apply-patch+yaml"
        assert request.params["fieldManager"] == "serving-lab" and request.params["force"] == "true"
    assert [o["kind"] for o in applied] == ["ServiceAccount", "InferenceService", "ClusterServingRuntime"]
    stored = cluster.stored("InferenceService", "lab", "iris")
    assert stored["spec"]["predictor"]["model"]["storageUri"] == "s3://models/iris"
    assert stored["metadata"]["namespace"] == "lab"
    assert "namespace" not in cluster.stored("ClusterServingRuntime", None, "custom-triton")["metadata"]


def test_an_invalid_document_applies_nothing(cluster: MockCluster) -> None:
    cluster.server[is_dry_run_apply, kmock.name("broken")] << 422 << status(
        422, "Invalid", 'InferenceService.serving.kserve.io "broken" is invalid',
        kind="InferenceService", name="broken",
        causes=[{"reason": "FieldValueRequired", "message": "Required value",
                 "field": "spec.predictor.model.modelFormat"},
                {"reason": "FieldValueInvalid", "message": "Invalid value: 'v3'",
                 "field": "spec.predictor.model.protocolVersion"}])
    good = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}}
    broken = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
              "metadata": {"name": "broken"}, "spec": {"predictor": {"model": {"protocolVersion": "v3"}}}}
    with pytest.raises(ManifestError) as caught:
        cluster.lab().apply([good, broken, good | {"metadata": {"name": "later"}}])

    error = caught.value
    assert error.document == "<list>#2 (InferenceService broken)"
    assert error.path == "spec.predictor.model.modelFormat"
    assert "Required value" in error.expected and "spec.predictor.model.protocolVersion" in error.expected
    assert "nothing from this apply was applied" in str(error)
    assert not cluster.requests(is_real_apply)
    assert cluster.stored("ConfigMap", "lab", "settings") is None


def test_strict_field_validation_error_names_the_unknown_field(cluster: MockCluster) -> None:
    cluster.server[is_dry_run_apply] << 400 << status(
        400, "BadRequest", '.spec.predictor.autoScaling.authModes: field not declared in schema')
    with pytest.raises(ManifestError) as caught:
        cluster.lab().apply({"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
                             "metadata": {"name": "iris"}, "spec": {}})
    assert caught.value.path == "spec.predictor.autoScaling.authModes"
    assert cluster.requests(is_dry_run_apply)[0].params["fieldValidation"] == "Strict"


def test_unknown_kind_is_rejected_before_any_request(cluster: MockCluster) -> None:
    lab = cluster.lab()
    before = len(cluster.requests())
    with pytest.raises(ManifestError) as caught:
        lab.apply({"apiVersion": "serving.kserve.io/v1beta1", "kind": "Inferenceservice",
                   "metadata": {"name": "iris"}})
    assert caught.value.path == "kind" and "did you mean InferenceService" in caught.value.expected
    with pytest.raises(ManifestError, match=r"field apiVersion: apiVersion 'apps/v1' is not in the API group"):
        lab.apply({"apiVersion": "apps/v1", "kind": "InferenceService", "metadata": {"name": "iris"}})
    assert len(cluster.requests()) == before


def test_documents_in_a_namespace_created_by_the_same_apply_are_applied(cluster: MockCluster) -> None:
    configmaps_in_team_a = (kmock.resource("", "v1", "configmaps"), kmock.namespace("team-a"))
    cluster.server[is_dry_run_apply, *configmaps_in_team_a] << 404 << status(
        404, "NotFound", 'namespaces "team-a" not found', name="team-a", kind="namespaces")
    applied = cluster.lab().apply([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "team-a"}},
    ])
    assert [o["kind"] for o in applied] == ["Namespace", "ConfigMap"]
    assert cluster.stored("ConfigMap", "team-a", "settings") is not None


def test_a_missing_namespace_says_how_to_create_it(cluster: MockCluster) -> None:
    cluster.server[is_dry_run_apply] << 404 << status(
        404, "NotFound", 'namespaces "lab" not found', name="lab", kind="namespaces")
    with pytest.raises(NotFound, match=r"namespace 'lab' does not exist .*kubectl create namespace lab"):
        cluster.lab().apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}})


def test_applying_an_object_read_back_with_get_works(cluster: MockCluster) -> None:
    lab = cluster.lab()
    lab.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "1"}})
    current = lab.get("ConfigMap", "settings")
    current["metadata"]["managedFields"] = [{"manager": "serving-lab", "operation": "Apply"}]
    current["data"]["a"] = "2"
    lab.apply(current)
    assert "managedFields" not in cluster.requests(is_real_apply)[-1].data["metadata"]
    assert cluster.stored("ConfigMap", "lab", "settings")["data"] == {"a": "2"}


def test_s3_credentials_manifest_gives_a_service_account_with_annotated_secret(cluster: MockCluster) -> None:
    cluster.lab().apply("manifests/serving/s3-credentials.yaml", variables={
        "NAMESPACE": "lab", "S3_ENDPOINT": "minio.minio.svc.cluster.local:9000", "S3_USE_HTTPS": "0",
        "S3_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "lab-reader", "AWS_SECRET_ACCESS_KEY": "s3cr3t+/key"})
    secret = cluster.stored("Secret", "lab", "s3-credentials")
    assert secret["metadata"]["annotations"]["serving.kserve.io/s3-endpoint"] == "minio.minio.svc.cluster.local:9000"
    assert secret["metadata"]["annotations"]["serving.kserve.io/s3-usehttps"] == "0"
    assert secret["stringData"] == {"AWS_ACCESS_KEY_ID": "lab-reader", "AWS_SECRET_ACCESS_KEY": "s3cr3t+/key"}
    assert cluster.stored("ServiceAccount", "lab", "kserve-s3")["secrets"] == [{"name": "s3-credentials"}]


# ---------------------------------------------------------------- read, delete, errors


def test_list_filters_by_labels_and_fills_kind(cluster: MockCluster) -> None:
    for name, app in (("a", "iris"), ("b", "wine")):
        cluster.put("Pod", {"metadata": {"name": name, "namespace": "lab", "labels": {"app": app}}})
    pods = cluster.lab().list("Pod", labels={"app": "iris"})
    assert [(p["kind"], p["apiVersion"], p["metadata"]["name"]) for p in pods] == [("Pod", "v1", "a")]
    assert cluster.requests(kmock.action.LIST)[-1].params["labelSelector"] == "app=iris"


def test_delete_is_idempotent(cluster: MockCluster) -> None:
    cluster.put("ConfigMap", {"metadata": {"name": "settings", "namespace": "lab"}})
    lab = cluster.lab()
    lab.delete("ConfigMap", "settings")
    lab.delete("ConfigMap", "settings")
    assert cluster.stored("ConfigMap", "lab", "settings") is None
    assert len(cluster.requests(kmock.method.DELETE)) == 2


def test_get_missing_object_is_not_found(cluster: MockCluster) -> None:
    with pytest.raises(NotFound, match=r"^InferenceService lab/iris not found on context 'kmock'$"):
        cluster.lab().get("InferenceService", "iris")


def test_kind_not_served_says_its_crd_is_missing(empty_cluster: MockCluster) -> None:
    with pytest.raises(NotFound, match=r"Canary \(flagger.app/v1beta1\) is not served .*CRD canaries.flagger.app "
                                       r"is missing.*doctor"):
        empty_cluster.lab().list("Canary")


def test_forbidden_names_verb_resource_and_rbac(cluster: MockCluster) -> None:
    cluster.server[kmock.action.LIST, kmock.resource("", "v1", "pods")] << 403 << status(
        403, "Forbidden", 'pods is forbidden: User "alice" cannot list resource "pods" in API group "" '
                          'in the namespace "lab"', kind="pods")
    with pytest.raises(Forbidden) as caught:
        cluster.lab().list("Pod")
    message = str(caught.value)
    assert message.startswith("cannot list pods in namespace lab")
    assert "RBAC" in message and "`kubectl auth can-i list pods -n lab`" in message and 'User "alice"' in message


def test_conflict_is_explained(cluster: MockCluster) -> None:
    cluster.put("InferenceService", ISVC)
    cluster.server[kmock.method.DELETE] << 409 << status(
        409, "Conflict", 'Operation cannot be fulfilled on inferenceservices.serving.kserve.io "iris": '
                         'the object has been modified; please apply your changes to the latest version')
    with pytest.raises(Conflict, match=r"^delete InferenceService lab/iris conflicts with the cluster's state: "
                                       r"Operation cannot be fulfilled"):
        cluster.lab().delete("InferenceService", "iris")


def test_unknown_kind_names_close_matches(cluster: MockCluster) -> None:
    with pytest.raises(LabError, match=r"unknown kind 'ScaledObjects': did you mean ScaledObject"):
        cluster.lab().get("ScaledObjects", "x")


# ---------------------------------------------------------------- events


def _event(name: str, kind: str, obj: str, when: str, reason: str, type_: str = "Normal") -> dict:
    return {"metadata": {"name": name, "namespace": "lab"}, "type": type_, "reason": reason,
            "message": f"{reason} on {obj}", "lastTimestamp": when,
            "involvedObject": {"kind": kind, "name": obj, "namespace": "lab"}}


def _put_isvc_family(cluster: MockCluster) -> None:
    label = {"serving.kserve.io/inferenceservice": "iris"}
    cluster.put("Deployment", {"metadata": {"name": "iris-predictor", "namespace": "lab", "labels": label}})
    cluster.put("ReplicaSet", {"metadata": {"name": "iris-predictor-5d8f", "namespace": "lab", "labels": label}})
    cluster.put("Pod", {"metadata": {"name": "iris-predictor-5d8f-x2", "namespace": "lab", "labels": label}})
    cluster.put("Pod", {"metadata": {"name": "wine-predictor-1-a", "namespace": "lab",
                                     "labels": {"serving.kserve.io/inferenceservice": "wine"}}})
    for event in (
        _event("e4", "Pod", "iris-predictor-5d8f-x2", "2026-08-01T10:00:09Z", "BackOff", "Warning"),
        _event("e1", "InferenceService", "iris", "2026-08-01T10:00:00Z", "InferenceServiceReady"),
        _event("e3", "ReplicaSet", "iris-predictor-5d8f", "2026-08-01T10:00:02Z", "SuccessfulCreate"),
        _event("e2", "Deployment", "iris-predictor", "2026-08-01T10:00:01Z", "ScalingReplicaSet"),
        _event("e5", "Pod", "wine-predictor-1-a", "2026-08-01T10:00:03Z", "Pulled"),
        _event("e6", "InferenceService", "wine", "2026-08-01T10:00:04Z", "InferenceServiceReady"),
    ):
        cluster.put("Event", event)


def test_events_of_an_inference_service_include_its_deployment_replicasets_and_pods(cluster: MockCluster) -> None:
    _put_isvc_family(cluster)
    lab = cluster.lab()
    assert [e["metadata"]["name"] for e in lab.events("InferenceService", "iris")] == ["e1", "e2", "e3", "e4"]
    assert [e["metadata"]["name"] for e in lab.events("InferenceService", "iris", children=False)] == ["e1"]


def test_events_of_a_deployment_follow_owner_references(cluster: MockCluster) -> None:
    cluster.put("Deployment", {"metadata": {"name": "web", "namespace": "lab", "uid": "u-d"}})
    cluster.put("ReplicaSet", {"metadata": {"name": "web-1", "namespace": "lab", "uid": "u-rs",
                                            "ownerReferences": [{"kind": "Deployment", "uid": "u-d"}]}})
    cluster.put("Pod", {"metadata": {"name": "web-1-a", "namespace": "lab", "uid": "u-p",
                                     "ownerReferences": [{"kind": "ReplicaSet", "uid": "u-rs"}]}})
    cluster.put("Pod", {"metadata": {"name": "other", "namespace": "lab", "uid": "u-o"}})
    cluster.put("Event", _event("p", "Pod", "web-1-a", "2026-08-01T10:00:02.500000Z", "Started"))
    cluster.put("Event", _event("d", "Deployment", "web", "2026-08-01T10:00:01Z", "ScalingReplicaSet"))
    cluster.put("Event", _event("o", "Pod", "other", "2026-08-01T10:00:00Z", "Started"))
    cluster.put("Event", _event("r", "ReplicaSet", "web-1", "2026-08-01T10:00:02Z", "SuccessfulCreate"))
    assert [e["metadata"]["name"] for e in cluster.lab().events("Deployment", "web")] == ["d", "r", "p"]


# ---------------------------------------------------------------- wait


def test_wait_returns_when_a_watch_event_makes_it_ready(cluster: MockCluster) -> None:
    cluster.put("InferenceService", ISVC | {"status": {"observedGeneration": 1, "conditions": [
        _condition("PredictorReady", "False", "MinimumReplicasUnavailable"), _condition("Ready", "False")]}})
    progress = io.StringIO()
    lab = cluster.lab(progress=progress, progress_after=0)
    timer = cluster.patch_status_later(0.5, "InferenceService", "lab", "iris", {"observedGeneration": 1,
                                       "url": "http://iris-lab.example.com", "conditions": [
                                           _condition("PredictorReady", "True"), _condition("Ready", "True")]})
    started = time.monotonic()
    ready = lab.wait_for("InferenceService", "iris", "Ready", timeout=20)
    timer.join()
    assert time.monotonic() - started < 10
    assert ready["status"]["url"] == "http://iris-lab.example.com"
    watches = cluster.requests(kmock.action.WATCH)
    assert watches and watches[0].params["fieldSelector"] == "metadata.name=iris"
    assert "InferenceService lab/iris: PredictorReady=False (MinimumReplicasUnavailable) Ready=False" \
        in progress.getvalue()


def test_wait_lists_again_when_the_watched_version_is_gone(cluster: MockCluster) -> None:
    cluster.put("InferenceService", ISVC | {"status": {"conditions": [_condition("Ready", "False")]}})
    cluster.server[kmock.action.WATCH][:1] << 410 << status(410, "Expired", "too old resource version: 1 (7)")
    timer = cluster.patch_status_later(0.5, "InferenceService", "lab", "iris",
                                       {"conditions": [_condition("Ready", "True")]})
    assert cluster.lab(progress=io.StringIO()).wait_for("InferenceService", "iris", timeout=20)
    timer.join()
    assert len(cluster.requests(kmock.action.LIST)) == 2 and len(cluster.requests(kmock.action.WATCH)) == 2


def test_wait_ignores_a_ready_condition_from_an_older_generation(cluster: MockCluster) -> None:
    cluster.put("InferenceService", {"metadata": {"name": "iris", "namespace": "lab", "generation": 2},
                                     "status": {"observedGeneration": 1, "conditions": [_condition("Ready", "True")]}})
    with pytest.raises(NotReady):
        cluster.lab(progress=io.StringIO()).wait_for("InferenceService", "iris", timeout=1)


def test_wait_timeout_raises_a_diagnosis_with_reason_events_and_runbook(cluster: MockCluster) -> None:
    _put_isvc_family(cluster)
    cluster.put("InferenceService", ISVC | {"status": {
        "conditions": [_condition("PredictorReady", "False", "ProgressDeadlineExceeded"),
                       _condition("Ready", "False")],
        "modelStatus": {"transitionStatus": "BlockedByFailedLoad", "lastFailureInfo": {
            "reason": "ModelLoadFailed", "message": "No such file: /mnt/models/model.joblib", "exitCode": 1}}}})
    started = time.monotonic()
    with pytest.raises(NotReady) as caught:
        cluster.lab(progress=io.StringIO()).wait_for("InferenceService", "iris", timeout=1.5)
    assert 1.5 <= time.monotonic() - started < 8
    diagnosis = caught.value.diagnosis
    assert (diagnosis.reason, diagnosis.runbook) == ("ModelLoadFailed", "runbooks/model-load-failed.md")
    assert "No such file" in diagnosis.message
    assert [e["reason"] for e in diagnosis.events] == ["InferenceServiceReady", "ScalingReplicaSet",
                                                       "SuccessfulCreate", "BackOff"]
    assert "runbook: runbooks/model-load-failed.md" in str(caught.value)


def test_wait_timeout_still_diagnoses_when_rbac_hides_events(cluster: MockCluster) -> None:
    cluster.put("InferenceService", ISVC | {"status": {"conditions": [
        _condition("PredictorReady", "False", "ProgressDeadlineExceeded")]}})
    cluster.server[kmock.action.LIST, kmock.resource("", "v1", "events")] << 403 << status(
        403, "Forbidden", 'events is forbidden: User "alice" cannot list resource "events"', kind="events")
    with pytest.raises(NotReady) as caught:
        cluster.lab(progress=io.StringIO()).wait_for("InferenceService", "iris", timeout=1)
    assert caught.value.diagnosis.reason == "ProgressDeadlineExceeded"
    assert "(events not shown: cannot list events in namespace lab" in caught.value.diagnosis.message


def test_wait_for_an_object_that_never_appears_says_so(cluster: MockCluster) -> None:
    with pytest.raises(NotReady) as caught:
        cluster.lab(progress=io.StringIO()).wait_for("InferenceService", "ghost", timeout=1)
    assert caught.value.diagnosis.reason == "NotFound"
    assert "does not exist after 1s" in caught.value.diagnosis.message


# ---------------------------------------------------------------- endpoint and infer


@pytest.fixture
def served_iris(cluster: MockCluster, monkeypatch: pytest.MonkeyPatch) -> MockCluster:
    """An InferenceService whose URL routes through kmock acting as the ingress gateway."""
    cluster.put("InferenceService", ISVC | {"status": {"url": "http://iris-lab.example.com",
                                                       "conditions": [_condition("Ready", "True")]}})
    monkeypatch.setenv("LAB_INGRESS_URL", cluster.url + "/")
    return cluster


def test_endpoint_is_ingress_url_and_host_from_status_url(served_iris: MockCluster) -> None:
    assert served_iris.lab().endpoint("iris") == (served_iris.url, "iris-lab.example.com")


def test_endpoint_without_ingress_url_says_how_to_set_it(served_iris: MockCluster,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAB_INGRESS_URL")
    with pytest.raises(TargetUnavailable, match=r"LAB_INGRESS_URL=http://127.0.0.1:8080.*port_forward"):
        served_iris.lab().endpoint("iris")


def test_infer_v2_posts_to_the_model_with_the_host_header(served_iris: MockCluster) -> None:
    answer = {"model_name": "iris", "outputs": [{"name": "predict", "shape": [1], "datatype": "INT64", "data": [0]}]}
    served_iris.server["post /v2/models/iris/infer"] << answer
    payload = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]}
    assert served_iris.lab().infer("iris", payload) == answer
    sent = served_iris.requests("post /v2/models/iris/infer")[0]
    assert sent.headers["Host"] == "iris-lab.example.com" and sent.data == payload


def test_infer_v1_uses_predict_and_quotes_the_server_error(served_iris: MockCluster) -> None:
    served_iris.server["post /v1/models/iris:predict"] << 400 << {"error": "expected 4 features, got 3"}
    with pytest.raises(LabError, match=r'answered 400: \{"error": "expected 4 features, got 3"\}'):
        served_iris.lab().infer("iris", {"instances": [[1, 2, 3]]}, protocol="v1")


def test_infer_before_the_service_has_a_url_diagnoses_it(cluster: MockCluster,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_INGRESS_URL", cluster.url)
    cluster.put("InferenceService", ISVC | {"status": {"conditions": [
        _condition("IngressReady", "False", "NoIngress")]}})
    with pytest.raises(NotReady, match=r"NoIngress"):
        cluster.lab().infer("iris", {"inputs": []})
