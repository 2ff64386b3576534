"""Who owns Deployment.spec.replicas follows KServe's autoscaler class; children KServe no longer wants are pruned."""
import asyncio
import copy

import pytest

from lab_helpers.local.catalogue import BUILTIN_RUNTIMES, CHARTS, crd_object
from lab_helpers.local.controllers.autoscaling import HorizontalPodAutoscalerController
from lab_helpers.local.controllers.base import Context, TemporaryError
from lab_helpers.local.controllers.kserve import InferenceServiceController
from lab_helpers.local.store import Store


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "store.sqlite")
    for runtime in BUILTIN_RUNTIMES:
        store.apply(copy.deepcopy(runtime))
    store.apply({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                 "metadata": {"name": "kserve", "namespace": "kserve"}, "spec": {}})
    store.set_status("HelmRelease", "kserve", "kserve", {  # installed: KServe's controller runs
        "conditions": [{"type": "Ready", "status": "True"}], "history": [{"chartName": "kserve-resources"}]})
    for crd in CHARTS["keda"].crds:
        store.apply(crd_object(crd, "keda"))
    return store


def isvc(store, autoscaler: str | None, min_replicas: int = 1, labels=None):
    annotations = {"serving.kserve.io/deploymentMode": "Standard"}
    if autoscaler:
        annotations["serving.kserve.io/autoscalerClass"] = autoscaler
    return store.apply({
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": "iris", "namespace": "lab", "annotations": annotations, "labels": labels or {}},
        "spec": {"predictor": {"minReplicas": min_replicas, "maxReplicas": 4,
                               "model": {"modelFormat": {"name": "mlflow"}, "protocolVersion": "v2",
                                         "storageUri": "file:///m"}}}})


def reconcile(store, controller):
    asyncio.run(controller.reconcile(store.get("InferenceService", "lab", "iris")))
    return store.get("Deployment", "lab", "iris-predictor")


@pytest.mark.parametrize("autoscaler", ["external", "keda", "hpa", None])
def test_an_autoscaler_written_count_survives_kserve_reconciles(store, tmp_path, autoscaler):
    controller = InferenceServiceController(Context(store, tmp_path))
    isvc(store, autoscaler)
    assert reconcile(store, controller)["spec"]["replicas"] == 1  # the API server's default on create
    store.scale("Deployment", "lab", "iris-predictor", 3)         # KEDA / the HPA / Flagger, via scale
    isvc(store, autoscaler, min_replicas=2)                        # a spec change: KServe writes the Deployment
    assert reconcile(store, controller)["spec"]["replicas"] == 3
    assert reconcile(store, controller)["spec"]["replicas"] == 3


def test_class_none_resets_replicas_to_min(store, tmp_path):
    controller = InferenceServiceController(Context(store, tmp_path))
    isvc(store, "none", min_replicas=2)
    assert reconcile(store, controller)["spec"]["replicas"] == 2
    store.scale("Deployment", "lab", "iris-predictor", 5)
    assert reconcile(store, controller)["spec"]["replicas"] == 2


def test_the_autoscaler_child_follows_the_class_and_unwanted_children_are_pruned(store, tmp_path):
    controller = InferenceServiceController(Context(store, tmp_path))
    kinds = ("HorizontalPodAutoscaler", "ScaledObject", "Ingress")

    def children():
        return {kind: [o["metadata"]["name"] for o in store.list(kind, "lab")] for kind in kinds}

    isvc(store, "hpa")
    reconcile(store, controller)
    assert children() == {"HorizontalPodAutoscaler": ["iris-predictor"], "ScaledObject": [], "Ingress": ["iris"]}
    isvc(store, "keda", min_replicas=0)
    reconcile(store, controller)
    assert children() == {"HorizontalPodAutoscaler": [], "ScaledObject": ["iris-predictor"], "Ingress": ["iris"]}
    scaled = store.get("ScaledObject", "lab", "iris-predictor")["spec"]
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (0, 4)
    isvc(store, "external", labels={"networking.kserve.io/visibility": "cluster-local"})
    reconcile(store, controller)
    assert children() == {"HorizontalPodAutoscaler": [], "ScaledObject": [], "Ingress": []}
    reasons = [e["reason"] for e in store.events([("InferenceService", "lab", "iris")])]
    assert {"HorizontalPodAutoscalerDeleted", "ScaledObjectDeleted", "IngressDeleted"} <= set(reasons)
    status = store.get("InferenceService", "lab", "iris")["status"]  # no Ingress, and IngressReady all the same
    assert {c["type"]: c["status"] for c in status["conditions"]}["IngressReady"] == "True"
    assert status["url"] == "http://iris-predictor.lab.svc.cluster.local"


def test_keda_without_its_crd_is_a_temporary_error(store, tmp_path):
    for crd in CHARTS["keda"].crds:
        store.delete("CustomResourceDefinition", "", crd.name)
    isvc(store, "keda")
    with pytest.raises(TemporaryError, match='no matches for kind "ScaledObject"'):
        asyncio.run(InferenceServiceController(Context(store, tmp_path)).reconcile(
            store.get("InferenceService", "lab", "iris")))


def test_the_hpa_holds_its_target_within_its_bounds(store, tmp_path):
    controller = InferenceServiceController(Context(store, tmp_path))
    isvc(store, "hpa", min_replicas=0)  # KServe raises an HPA's minReplicas 0 to 1
    reconcile(store, controller)
    hpa = store.get("HorizontalPodAutoscaler", "lab", "iris-predictor")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 4)
    clock = iter(range(0, 10_000, 15))  # each reconcile one sync period later
    hpa_controller = HorizontalPodAutoscalerController(Context(store, tmp_path), clock=lambda: float(next(clock)))
    # 0 stays 0: an HPA whose target is at zero disables itself (ScalingDisabled), which is what lets
    # KEDA own 0 <-> 1 (https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#implicit-maintenance-mode-deactivation)
    store.scale("Deployment", "lab", "iris-predictor", 0)
    asyncio.run(hpa_controller.reconcile(store.get("HorizontalPodAutoscaler", "lab", "iris-predictor")))
    assert store.get("Deployment", "lab", "iris-predictor")["spec"]["replicas"] == 0
    status = store.get("HorizontalPodAutoscaler", "lab", "iris-predictor")["status"]
    assert {c["type"]: c["reason"] for c in status["conditions"]}["ScalingActive"] == "ScalingDisabled"
    for written, held in ((1, 1), (3, 3), (9, 4)):
        store.scale("Deployment", "lab", "iris-predictor", written)
        result = asyncio.run(hpa_controller.reconcile(store.get("HorizontalPodAutoscaler", "lab", "iris-predictor")))
        assert store.get("Deployment", "lab", "iris-predictor")["spec"]["replicas"] == held
        assert result.requeue_after == 15.0
    status = store.get("HorizontalPodAutoscaler", "lab", "iris-predictor")["status"]
    assert status["desiredReplicas"] == 4
    assert {c["type"]: c["reason"] for c in status["conditions"]}["ScalingActive"] == "FailedGetResourceMetric"


def test_the_hpa_scales_on_the_pods_measured_cpu(store, tmp_path):
    """Two pods at 160 % of their 100m request against an 80 % target: twice the pods, then back after a dip."""
    controller = InferenceServiceController(Context(store, tmp_path))
    isvc(store, "hpa")
    reconcile(store, controller)
    deploy = store.get("Deployment", "lab", "iris-predictor")
    store.scale("Deployment", "lab", "iris-predictor", 2)
    for name in ("p1", "p2"):
        store.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": name, "namespace": "lab", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "iris-predictor",
                 "uid": deploy["metadata"]["uid"], "controller": True}]},
            "spec": {"containers": [{"name": "kserve-container", "resources": {"requests": {"cpu": "100m"}}}]}})
        store.set_status("Pod", "lab", name, {"phase": "Running"})
    now, used = [0.0], {"p1": 0.0, "p2": 0.0}
    hpa_controller = HorizontalPodAutoscalerController(Context(store, tmp_path), clock=lambda: now[0],
                                                       cpu_seconds=lambda pod: used[pod["metadata"]["name"]])

    def sync(seconds: float, cores: float) -> int:
        now[0] += seconds
        for name in used:
            used[name] += cores * seconds
        asyncio.run(hpa_controller.reconcile(store.get("HorizontalPodAutoscaler", "lab", "iris-predictor")))
        return store.get("Deployment", "lab", "iris-predictor")["spec"]["replicas"]

    assert sync(0, 0) == 2                   # first reading: no rate yet
    assert sync(15, 0.16) == 4               # 160 % / 80 % = 2.0 -> ceil(2 * 2)
    hpa = store.get("HorizontalPodAutoscaler", "lab", "iris-predictor")
    assert {c["type"]: c["reason"] for c in hpa["status"]["conditions"]}["ScalingActive"] == "ValidMetricFound"
    assert sync(15, 0.0) == 4                # idle, but 4 was recommended inside the 300 s window
    assert sync(300, 0.0) == 1               # the window has passed: down to minReplicas
    reasons = [e["message"] for e in store.events([("HorizontalPodAutoscaler", "lab", "iris-predictor")])]
    assert reasons[-2:] == ["New size: 4; reason: cpu resource utilization (percentage of request) above target",
                            "New size: 1; reason: cpu resource utilization (percentage of request) below target"]
