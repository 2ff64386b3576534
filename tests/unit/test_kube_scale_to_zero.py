"""The kubernetes target applies the scale-to-zero manifests as they are, and finds the interceptor (kmock)."""
from __future__ import annotations

import pytest

from lab_helpers.errors import TargetUnavailable

from kube_fixtures import MockCluster, cluster  # noqa: F401  (cluster is a pytest fixture)

VARIABLES = {"NAMESPACE": "lab", "IRIS_SKLEARN_STORAGE_URI": "s3://mlflow/1/abc/artifacts/sklearn",
             "S2Z_COOLDOWN_SECONDS": "300", "S2Z_POLLING_SECONDS": "30", "S2Z_READINESS_TIMEOUT": "120s"}


def test_keda_and_the_http_add_on_are_flux_releases_the_add_on_after_keda(cluster: MockCluster) -> None:
    cluster.lab().apply("manifests/platform/keda.yaml")
    assert cluster.stored("HelmRepository", "flux-system", "kedacore")["spec"]["url"] == \
        "https://kedacore.github.io/charts"
    add_on = cluster.stored("HelmRelease", "keda", "keda-add-ons-http")
    assert add_on["spec"]["dependsOn"] == [{"name": "keda"}]
    assert add_on["spec"]["chart"]["spec"]["chart"] == "keda-add-ons-http"


def test_the_working_path_applies_an_external_class_service_a_route_and_a_scaled_object(cluster: MockCluster) -> None:
    cluster.lab().apply("manifests/autoscaling/iris-s2z.yaml", VARIABLES)
    isvc = cluster.stored("InferenceService", "lab", "iris-s2z")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "external"
    assert isvc["metadata"]["labels"]["networking.kserve.io/visibility"] == "cluster-local"
    route = cluster.stored("InterceptorRoute", "lab", "iris-s2z")
    assert route["spec"]["target"] == {"service": "iris-s2z-predictor", "port": 80}
    assert route["spec"]["timeouts"]["readiness"] == "120s"
    scaled = cluster.stored("ScaledObject", "lab", "iris-s2z")
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["cooldownPeriod"]) == (0, 300)
    assert scaled["spec"]["triggers"][0] == {"type": "external-push", "metadata": {
        "scalerAddress": "keda-add-ons-http-external-scaler.keda:9090", "interceptorRoute": "iris-s2z"}}


def test_the_interceptor_endpoint_is_lab_interceptor_url_and_the_route_host(cluster: MockCluster,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    lab = cluster.lab()
    lab.apply("manifests/autoscaling/iris-s2z.yaml", VARIABLES)
    monkeypatch.setenv("LAB_INTERCEPTOR_URL", "http://127.0.0.1:8081/")
    assert lab.interceptor_endpoint("iris-s2z") == ("http://127.0.0.1:8081", "iris-s2z-lab.example.com")
    monkeypatch.delenv("LAB_INTERCEPTOR_URL")
    with pytest.raises(TargetUnavailable, match="keda-add-ons-http-interceptor-proxy"):
        lab.interceptor_endpoint("iris-s2z")
