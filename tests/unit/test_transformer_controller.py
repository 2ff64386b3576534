"""The local KServe controller with spec.transformer and with a custom predictor: what it builds, the status
it writes."""
import asyncio

from test_replica_ownership import store  # noqa: F401  (a pytest fixture: a Store with KServe installed)

from lab_helpers.local.controllers.base import Context
from lab_helpers.local.controllers.kserve import InferenceServiceController
from lab_helpers.local.controllers.kserve_children import transformer_container

TRANSFORMER = {"containers": [{"name": "kserve-container", "image": "serving-lab/transformer:0.1",
                               "args": ["--predictor_protocol=v2"]}]}
MODEL = {"modelFormat": {"name": "mlflow"}, "protocolVersion": "v2", "storageUri": "file:///m"}


def apply_isvc(store, spec):
    return store.apply({"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
                        "metadata": {"name": "iris", "namespace": "lab",
                                     "annotations": {"serving.kserve.io/deploymentMode": "Standard"}},
                        "spec": spec})


def reconcile(store, tmp_path):
    asyncio.run(InferenceServiceController(Context(store, tmp_path)).reconcile(
        store.get("InferenceService", "lab", "iris")))
    return store.get("InferenceService", "lab", "iris")


def available(store, name, ok=True):
    store.set_status("Deployment", "lab", name, {"conditions": [
        {"type": "Available", "status": "True" if ok else "False",
         "reason": "MinimumReplicasAvailable" if ok else "MinimumReplicasUnavailable",
         "message": "Deployment has minimum availability." if ok else
         "Deployment does not have minimum availability."}]})


def ready_pod(store, deployment):
    deploy = store.get("Deployment", "lab", deployment)
    pod = store.apply({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": f"{deployment}-x", "namespace": "lab",
                                    "labels": deploy["spec"]["template"]["metadata"]["labels"],
                                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                         "name": deployment, "uid": deploy["metadata"]["uid"],
                                                         "controller": True}]},
                       "spec": deploy["spec"]["template"]["spec"]})
    store.set_status("Pod", "lab", pod["metadata"]["name"], {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True"}]})


def conditions(isvc):
    return {c["type"]: (c["status"], c.get("reason", "")) for c in isvc["status"]["conditions"]}


def test_the_transformer_gets_its_own_deployment_and_service_and_is_the_ingress_backend(store, tmp_path):
    apply_isvc(store, {"predictor": {"model": MODEL}, "transformer": TRANSFORMER})
    reconcile(store, tmp_path)
    deploy = store.get("Deployment", "lab", "iris-transformer")
    labels = deploy["spec"]["template"]["metadata"]["labels"]
    assert (labels["component"], labels["app"]) == ("transformer", "isvc.iris-transformer")
    [container] = deploy["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["--predictor_protocol=v2", "--model_name", "iris",
                                 "--predictor_host", "iris-predictor.lab", "--http_port", "8080"]
    assert {"name": "INFERENCE_SERVICE_NAME", "value": "iris"} in container["env"]
    assert "initContainers" not in deploy["spec"]["template"]["spec"]
    service = store.get("Service", "lab", "iris-transformer")
    assert service["spec"]["selector"] == {"app": "isvc.iris-transformer"}
    backend = store.get("Ingress", "lab", "iris")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend["service"]["name"] == "iris-transformer"
    # Each component gets the autoscaler of the class (hpa by default).
    assert [h["spec"]["scaleTargetRef"]["name"] for h in store.list("HorizontalPodAutoscaler", "lab")] == [
        "iris-predictor", "iris-transformer"]


def test_args_the_user_gave_are_not_appended_again():
    isvc = {"metadata": {"name": "iris", "namespace": "lab"},
            "spec": {"transformer": {"containers": [{"args": ["--predictor_host=elsewhere:8080"]}]}}}
    assert transformer_container(isvc)["args"] == ["--predictor_host=elsewhere:8080", "--model_name", "iris",
                                                   "--http_port", "8080"]


def one_component_up(store, tmp_path, up: str, down: str):
    """iris with a transformer, reconciled again once component `up` is available and `down` is not."""
    apply_isvc(store, {"predictor": {"model": MODEL}, "transformer": TRANSFORMER})
    reconcile(store, tmp_path)
    ready_pod(store, f"iris-{up}")
    available(store, f"iris-{up}")
    available(store, f"iris-{down}", ok=False)
    return reconcile(store, tmp_path)


def test_ready_waits_for_the_transformer_through_ingress_ready_as_kserve_words_it(store, tmp_path):
    isvc = one_component_up(store, tmp_path, up="predictor", down="transformer")
    assert conditions(isvc) == {
        "IngressReady": ("False", "Transformer ingress not created"), "PredictorReady": ("True", ""),
        "TransformerReady": ("False", "MinimumReplicasUnavailable"), "Ready": ("False", "IngressNotReady")}
    ready_pod(store, "iris-transformer")
    available(store, "iris-transformer")
    isvc = reconcile(store, tmp_path)
    assert all(status == "True" for status, _ in conditions(isvc).values())
    assert isvc["status"]["address"]["url"] == "http://iris-transformer.lab.svc.cluster.local"
    assert isvc["status"]["components"]["transformer"]["url"] == "http://iris-lab.example.com"
    assert isvc["status"]["components"]["predictor"]["url"] == "http://iris-predictor.lab.svc.cluster.local"


def test_a_predictor_that_is_down_behind_a_ready_transformer_keeps_the_service_not_ready(store, tmp_path):
    assert conditions(one_component_up(store, tmp_path, up="transformer", down="predictor")) == {
        "IngressReady": ("True", ""), "PredictorReady": ("False", "MinimumReplicasUnavailable"),
        "TransformerReady": ("True", ""), "Ready": ("False", "PredictorNotReady")}


def test_a_custom_predictor_runs_its_own_container_with_the_storage_initializer_for_storage_uri(store, tmp_path):
    container = {"name": "kserve-container", "image": "serving-lab/custom-predictor:0.1", "args": ["--model_name=iris"],
                 "env": [{"name": "STORAGE_URI", "value": "file:///m"}]}
    apply_isvc(store, {"predictor": {"containers": [container]}})
    isvc = reconcile(store, tmp_path)
    spec = store.get("Deployment", "lab", "iris-predictor")["spec"]["template"]["spec"]
    assert spec["containers"][0]["args"] == ["--model_name=iris"]  # nothing appended to a custom predictor
    assert spec["containers"][0]["volumeMounts"] == [{"name": "kserve-provision-location",
                                                      "mountPath": "/mnt/models", "readOnly": True}]
    assert spec["initContainers"][0]["args"] == ["file:///m", "/mnt/models"]
    assert "clusterServingRuntimeName" not in isvc["status"] and "TransformerReady" not in conditions(isvc)


def test_class_none_gives_the_transformer_its_min_replicas_and_no_autoscaler(store, tmp_path):
    isvc = {"predictor": {"model": MODEL}, "transformer": {**TRANSFORMER, "minReplicas": 2}}
    store.apply({"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
                 "metadata": {"name": "iris", "namespace": "lab",
                              "annotations": {"serving.kserve.io/deploymentMode": "Standard",
                                              "serving.kserve.io/autoscalerClass": "none"}}, "spec": isvc})
    reconcile(store, tmp_path)
    assert store.get("Deployment", "lab", "iris-transformer")["spec"]["replicas"] == 2
    assert store.list("HorizontalPodAutoscaler", "lab") == []
