"""manifests/triton on the kubernetes target (kmock): the custom runtime, the InferenceServices, the PodMonitor."""
from __future__ import annotations

import kmock
from kube_fixtures import cluster  # noqa: F401  (a pytest fixture)

from lab_helpers.paths import manifests_dir

TRITON = manifests_dir() / "triton"
URIS = {"DIGITS_ONNX_URI": "s3://mlflow/1/r/artifacts/triton", "DIGITS_SKLEARN_URI": "s3://mlflow/1/r/artifacts/sklearn"}


def test_the_kubernetes_target_applies_the_triton_manifests_runtime_first(cluster) -> None:  # noqa: F811
    applied = cluster.lab().apply(TRITON, variables=URIS)
    assert [(o["kind"], o["metadata"]["name"]) for o in applied] == [
        ("ServingRuntime", "triton-onnx"), ("InferenceService", "digits"), ("InferenceService", "digits-sklearn"),
        ("PodMonitor", "digits-triton")]
    paths = [r.url.path for r in cluster.requests(kmock.method.PATCH) if r.params.get("dryRun") is None]
    assert paths[0] == "/apis/serving.kserve.io/v1alpha1/namespaces/lab/servingruntimes/triton-onnx"
    runtime = cluster.stored("ServingRuntime", "lab", "triton-onnx")["spec"]
    container = runtime["containers"][0]
    assert container["name"] == "kserve-container" and container["args"][0] == "tritonserver"
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http1": 8080, "h2c": 9000, "metrics": 8002}
    assert runtime["supportedModelFormats"] == [{"name": "onnx", "version": "1", "autoSelect": False}]
    assert runtime["protocolVersions"] == ["v2", "grpc-v2"]
    model = cluster.stored("InferenceService", "lab", "digits")["spec"]["predictor"]["model"]
    assert (model["runtime"], model["protocolVersion"], model["storageUri"]) == (
        "triton-onnx", "v2", URIS["DIGITS_ONNX_URI"])
    monitor = cluster.stored("PodMonitor", "lab", "digits-triton")["spec"]
    assert monitor["podMetricsEndpoints"][0]["port"] == "metrics"
