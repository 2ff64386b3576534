"""The local KServe controller's pure parts: runtime selection and the predictor Deployment it builds."""
import pytest

from lab_helpers.local.catalogue import BUILTIN_RUNTIMES
from lab_helpers.local.controllers.kserve import (RuntimeProblem, host_of, model_status, predictor_condition,
                                                  predictor_deployment, readiness_failures, select_runtime)
from lab_helpers.local.store import Store


class FakeStore:
    def __init__(self, cluster_runtimes, runtimes=()):
        self.objects = {("ClusterServingRuntime", r["metadata"]["name"]): r for r in cluster_runtimes}
        self.objects.update({("ServingRuntime", r["metadata"]["name"]): r for r in runtimes})

    def find(self, kind, namespace, name):
        return self.objects.get((kind, name))

    def list(self, kind, namespace=None):
        return [o for (k, _), o in sorted(self.objects.items()) if k == kind]


STORE = FakeStore(BUILTIN_RUNTIMES)


def isvc(model, name="iris", namespace="lab"):
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": name, "namespace": namespace, "uid": "u1"}, "spec": {"predictor": {"model": model}}}


@pytest.mark.parametrize("model, runtime", [
    ({"modelFormat": {"name": "mlflow"}, "protocolVersion": "v2"}, "kserve-mlserver"),
    ({"modelFormat": {"name": "sklearn"}}, "kserve-sklearnserver"),              # v1 by default
    ({"modelFormat": {"name": "sklearn"}, "protocolVersion": "v2"}, "kserve-mlserver"),  # priority 2 beats 1
    ({"modelFormat": {"name": "onnx"}, "protocolVersion": "v2"}, "kserve-tritonserver"),
    ({"modelFormat": {"name": "sklearn"}, "protocolVersion": "v2", "runtime": "kserve-sklearnserver"},
     "kserve-sklearnserver"),
])
def test_runtime_selection_follows_format_protocol_and_priority(model, runtime):
    assert select_runtime(STORE, "lab", model)["metadata"]["name"] == runtime


@pytest.mark.parametrize("model, reason", [
    ({"modelFormat": {"name": "mlflow"}}, "NoSupportingRuntime"),                  # v1 implied
    ({"modelFormat": {"name": "mlflow", "version": "3"}, "protocolVersion": "v2"}, "NoSupportingRuntime"),
    ({"modelFormat": {"name": "pytorch"}, "protocolVersion": "v2"}, "NoSupportingRuntime"),  # autoSelect false
    ({"modelFormat": {"name": "mlflow"}, "runtime": "kserve-nosuch"}, "RuntimeNotRecognized"),
    ({"modelFormat": {"name": "mlflow"}, "protocolVersion": "v1", "runtime": "kserve-mlserver"}, "NoSupportingRuntime"),
])
def test_runtime_problems_carry_kserve_reasons(model, reason):
    with pytest.raises(RuntimeProblem) as info:
        select_runtime(STORE, "lab", model)
    assert info.value.reason == reason


def test_disabled_runtime_and_runtime_without_kserve_container():
    disabled = {"kind": "ServingRuntime", "metadata": {"name": "mine"},
                "spec": {"disabled": True, "supportedModelFormats": [{"name": "mlflow"}], "protocolVersions": ["v2"],
                         "containers": [{"name": "server", "image": "x/mlserver"}]}}
    with pytest.raises(RuntimeProblem, match="RuntimeDisabled"):
        select_runtime(FakeStore([], [disabled]), "lab", {"modelFormat": {"name": "mlflow"}, "runtime": "mine"})
    broken = {**disabled, "spec": {**disabled["spec"], "disabled": False}}
    with pytest.raises(RuntimeProblem, match="InvalidPredictorSpec"):
        predictor_deployment(isvc({"modelFormat": {"name": "mlflow"}}), broken, owns_replicas=False)


def test_predictor_deployment_shape():
    model = {"modelFormat": {"name": "mlflow"}, "protocolVersion": "v2", "storageUri": "file:///m",
             "resources": {"limits": {"memory": "1Gi"}}, "ports": [{"containerPort": 8080, "name": "http1"}]}
    deploy = predictor_deployment(isvc(model), STORE.find("ClusterServingRuntime", "", "kserve-mlserver"),
                                  owns_replicas=False)
    assert deploy["metadata"]["name"] == "iris-predictor"
    pod = deploy["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["storage-initializer"]
    assert pod["initContainers"][0]["args"] == ["file:///m", "/mnt/models"]
    assert pod["volumes"] == [{"name": "kserve-provision-location", "emptyDir": {}}]
    main = pod["containers"][0]
    assert main["name"] == "kserve-container" and main["resources"]["limits"]["memory"] == "1Gi"
    assert main["ports"] == [{"containerPort": 8080, "name": "http1"}]
    # kserve-mlserver is configured by environment: the chart's variables, templated, plus the model's name.
    env = {e["name"]: e["value"] for e in main["env"]}
    assert env["MLSERVER_MODEL_IMPLEMENTATION"] == "mlserver_mlflow.MLflowRuntime"
    assert (env["MLSERVER_MODEL_NAME"], env["MLSERVER_HTTP_PORT"], env["MODELS_DIR"]) == ("iris", "8080", "/mnt/models")
    assert main["image"] == "docker.io/seldonio/mlserver:1.7.1" and "command" not in main
    assert main["readinessProbe"]["httpGet"] == {"path": "/v2/models/iris/ready", "port": 8080}
    assert "replicas" not in deploy["spec"]  # the default class (hpa) leaves replicas to the HPA
    assert deploy["spec"]["selector"]["matchLabels"] == {"app": "isvc.iris-predictor"}
    assert host_of(isvc(model)) == "iris-lab.example.com"


def test_model_status_reports_the_last_crash_until_ready_again():
    crashed = {"metadata": {"name": "p"}, "status": {"containerStatuses": [
        {"ready": False, "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "message": "x"}},
         "state": {"running": {}}}]}}
    status = model_status([crashed], ready=False)
    assert status["lastFailureInfo"]["reason"] == "ModelLoadFailed" and status["lastFailureInfo"]["exitCode"] == 137
    assert status["lastFailureInfo"]["message"].startswith("OOMKilled")
    assert model_status([], ready=False)["states"]["activeModelState"] == "Pending"


def pod(name: str, ready: bool) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "lab"},
            "status": {"conditions": [{"type": "Ready", "status": str(ready)}],
                       "containerStatuses": [{"name": "kserve-container", "ready": ready,
                                              "state": {"running": {}}, "lastState": {}}]}}


def deployment(available: bool, replicas: int = 1) -> dict:
    reason = "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable"
    return {"spec": {"replicas": replicas}, "status": {"conditions": [
        {"type": "Available", "status": str(available), "reason": reason, "message": "from the Deployment"}]}}


def test_predictor_readiness_follows_the_pods_that_exist_now_not_a_stale_deployment_status():
    # The pod was just deleted: the Deployment still says Available until its own loop runs again.
    assert predictor_condition(deployment(True), []) == (
        False, "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
    assert predictor_condition(deployment(True), [pod("p1", False)])[0] is False
    assert predictor_condition(deployment(True), [pod("p1", True)]) == (True, "", "")
    assert predictor_condition(deployment(False), [pod("p1", True)]) == (
        False, "MinimumReplicasUnavailable", "from the Deployment")
    assert predictor_condition(deployment(True, replicas=0), []) == (True, "", "")  # scaled to zero on purpose


def test_a_runtime_that_lost_readiness_says_why_in_model_status(tmp_path):
    store = Store(tmp_path / "store.sqlite")
    serving, unloaded, starting = (store.apply(pod(name, ready)) for name, ready in
                                   (("p0", True), ("p1", False), ("p2", False)))
    for stored in (serving, unloaded, starting):  # the kubelet writes status
        store.set_status("Pod", "lab", stored["metadata"]["name"], pod(stored["metadata"]["name"], False)["status"])
    store.record_event(unloaded, "Started", "Started container kserve-container")
    store.record_event(unloaded, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 404",
                       "Warning")
    store.record_event(starting, "Started", "Started container kserve-container")  # still loading: no failure
    pods = store.list("Pod", "lab")
    assert readiness_failures(store, pods) == {"p1": "Readiness probe failed: HTTP probe failed with statuscode: 404"}
    status = model_status(pods, ready=False, unready=readiness_failures(store, pods))
    assert status["lastFailureInfo"] == {
        "reason": "RuntimeUnhealthy", "location": "p1",
        "message": "container kserve-container is running but not ready: Readiness probe failed: HTTP probe failed "
                   "with statuscode: 404"}
    assert status["transitionStatus"] == "InProgress" and status["copies"] == {"totalCopies": 0}
    assert "lastFailureInfo" not in model_status(pods, ready=False, unready={})
