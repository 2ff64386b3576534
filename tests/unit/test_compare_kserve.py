"""Path (b) on the kubernetes target (kmock): the runtime and the InferenceService applied, an earlier one
removed first, the time from the apply to the first answer through the ingress; memory from Prometheus."""
from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import kmock
import pandas as pd
import pytest
from kube_fixtures import cluster, is_real_apply  # noqa: F401  (cluster: a pytest fixture)

from lab_helpers.compare.kserve_path import cluster_rss, deploy
from lab_helpers.errors import LabError

URI = "s3://mlflow/1/run/artifacts/triton"
READY = {"observedGeneration": 1, "url": "http://digits-lab.example.com", "conditions": [
    {"type": "PredictorReady", "status": "True"}, {"type": "Ready", "status": "True"}]}


@pytest.fixture
def ingress(monkeypatch):
    """An ingress that answers every infer with one label and remembers the Host headers it got."""
    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            hosts.append(self.headers["Host"])
            body = json.dumps({"outputs": [{"name": "label", "shape": [1, 1], "datatype": "INT64", "data": [3]}]})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("LAB_INGRESS_URL", f"http://127.0.0.1:{server.server_address[1]}")
    yield hosts
    server.shutdown()


def test_deploy_removes_the_old_service_applies_runtime_first_and_times_to_the_first_answer(
        cluster, ingress) -> None:  # noqa: F811
    cluster.put("InferenceService", {"metadata": {"name": "digits", "namespace": "lab"}, "spec": {}})
    lab = cluster.lab(progress=io.StringIO())
    timer = cluster.patch_status_later(1.0, "InferenceService", "lab", "digits", READY)
    deployment = deploy(lab, URI, {"inputs": []}, timeout=20)
    timer.join()
    deletes = [r.url.path for r in cluster.requests(kmock.method.DELETE)]
    assert deletes == ["/apis/serving.kserve.io/v1beta1/namespaces/lab/inferenceservices/digits"]
    applied = [r.url.path.rsplit("/", 2)[-2] for r in cluster.requests(is_real_apply)]
    assert applied == ["servingruntimes", "inferenceservices"]
    model = cluster.stored("InferenceService", "lab", "digits")["spec"]["predictor"]["model"]
    assert (model["runtime"], model["storageUri"]) == ("triton-onnx", URI)
    assert 0.9 < deployment.ready_s < 15
    assert deployment.host == "digits-lab.example.com" and deployment.url.startswith("http://127.0.0.1:")
    assert ingress == ["digits-lab.example.com"]


class _Prom:
    def __init__(self, answer):
        self.answer, self.queries = answer, []

    def query(self, promql: str) -> pd.DataFrame:
        self.queries.append(promql)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_cluster_memory_is_the_predictor_containers_rss_or_none() -> None:
    prom = _Prom(pd.DataFrame([{"value": 123456789.0}]))
    assert cluster_rss(prom, "lab") == 123456789.0
    assert prom.queries == ['sum(container_memory_rss{namespace="lab", pod=~"digits-predictor-.*", '
                            'container="kserve-container"})']
    assert cluster_rss(_Prom(pd.DataFrame(columns=["value"])), "lab") is None
    assert cluster_rss(_Prom(LabError("no Prometheus")), "lab") is None


class _ClusterLab:
    target, namespace = "kubernetes", "lab"

    @property
    def prom(self):
        raise LabError("no Prometheus: set PROMETHEUS_URL")


def test_without_a_reachable_prometheus_the_cluster_memory_is_not_available() -> None:
    from lab_helpers.compare.kserve_path import serving_rss

    assert serving_rss(_ClusterLab()) is None
