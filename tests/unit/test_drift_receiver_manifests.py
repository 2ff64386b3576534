"""manifests/drift's receiver and logged InferenceService on the kubernetes target (kmock)."""
from __future__ import annotations

from kube_fixtures import cluster  # noqa: F401  (a pytest fixture)

from lab_helpers.paths import manifests_dir

DRIFT = manifests_dir() / "drift"


def test_the_kubernetes_target_applies_the_receiver_and_the_logged_isvc(cluster) -> None:  # noqa: F811
    lab = cluster.lab()
    applied = lab.apply(DRIFT / "10-receiver.yaml") + lab.apply(
        DRIFT / "20-iris-logged.yaml", variables={"IRIS_SKLEARN_STORAGE_URI": "s3://lab-models/iris-sklearn/1"})
    assert [(o["kind"], o["metadata"]["name"]) for o in applied] == [
        ("Deployment", "drift-receiver"), ("Service", "drift-receiver"), ("InferenceService", "iris-logged")]
    container = cluster.stored("Deployment", "lab", "drift-receiver")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "serving-lab/drift:0.1"  # DRIFT_IMAGE's default
    assert container["volumeMounts"] == [{"name": "events", "mountPath": "/data"}]
    service = cluster.stored("Service", "lab", "drift-receiver")["spec"]
    assert service["ports"][0]["port"] == 80 and service["ports"][0]["targetPort"] == 8080
    logger = cluster.stored("InferenceService", "lab", "iris-logged")["spec"]["predictor"]["logger"]
    assert logger == {"mode": "all", "url": "http://drift-receiver.lab.svc.cluster.local",
                      "metadataHeaders": ["X-Request-Id"]}
