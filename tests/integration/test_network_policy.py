"""Network policy on the local target with real processes: the control plane's Cilium agent and gateway,
a real iris model server, callers on their own loopback addresses (`lab.call_as`)."""
from __future__ import annotations

import os
import signal

import httpx
import psutil
import pytest

import lab_helpers
from lab_helpers.errors import NotFound
from lab_helpers.local.control import running
from lab_helpers.paths import manifests_dir
from lab_helpers.policy.callers import predictor_host
from tests.conftest import v2_payload

pytestmark = pytest.mark.integration
POLICY = manifests_dir() / "policy" / "iris-callers.yaml"
SCORER, NOTEBOOK = {"inference-client": "iris"}, {"app": "notebook"}
DROP_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def lab(local_home, iris_mlflow_dir):
    lab = lab_helpers.connect("local")
    lab.apply(manifests_dir() / "flux")
    lab.wait_ready("HelmRelease", "kserve-runtime-configs", namespace="kserve", timeout=30)
    lab.apply(manifests_dir() / "serving" / "iris-inferenceservice.yaml", {"IRIS_STORAGE_URI": iris_mlflow_dir.as_uri()})
    lab.wait_ready("InferenceService", "iris", timeout=90)
    lab.apply(manifests_dir() / "platform" / "cilium.yaml")
    lab.wait_ready("HelmRelease", "cilium", namespace="kube-system", timeout=30)
    return lab


def infer(lab, labels: dict[str, str], namespace: str = "lab", path: str = "/v2/models/iris/infer") -> str:
    payload = v2_payload([[5.1, 3.5, 1.4, 0.2]]) if path.endswith("/infer") else None
    method = "POST" if payload is not None else "GET"
    return lab.call_as(labels, namespace, "iris", path, method=method, payload=payload, timeout=DROP_TIMEOUT_S).outcome


def test_before_any_policy_every_caller_gets_through(lab):
    assert {infer(lab, SCORER), infer(lab, NOTEBOOK), infer(lab, SCORER, "default")} == {"200"}


def test_the_policy_lets_only_chosen_callers_in_and_only_for_inference(lab):
    lab.apply(POLICY)
    try:
        policy = lab.get("CiliumNetworkPolicy", "iris-callers")
        assert [(c["type"], c["status"]) for c in policy["status"]["conditions"]] == [("Valid", "True")]
        assert infer(lab, SCORER) == "200"
        assert infer(lab, SCORER, path="/v2/models/iris/ready") == "200"
        assert infer(lab, SCORER, path="/metrics") == "403"           # an allowed caller, a path no rule allows
        assert infer(lab, NOTEBOOK) == "timeout"                      # selected pod, caller not admitted: dropped
        assert infer(lab, SCORER, "default") == "timeout"             # the right label in the wrong namespace
        base, host = lab.endpoint("iris")                             # through the ingress: the gateway's identity
        assert httpx.post(f"{base}/v2/models/iris/infer", json=v2_payload([[5.1, 3.5, 1.4, 0.2]]),
                          headers={"Host": host}).status_code == 200
        assert [(f.verdict, f.layer, f.source, f.path) for f in lab.flows("lab", last=6)] == [
            ("FORWARDED", "L7", "lab/inference-client=iris", "/v2/models/iris/infer"),
            ("FORWARDED", "L7", "lab/inference-client=iris", "/v2/models/iris/ready"),
            ("DROPPED", "L7", "lab/inference-client=iris", "/metrics"),
            ("DROPPED", "L3_L4", "lab/app=notebook", "/v2/models/iris/infer"),
            ("DROPPED", "L3_L4", "default/inference-client=iris", "/v2/models/iris/infer"),
            ("FORWARDED", "L7", "istio-system/app=istio-ingressgateway,istio=ingressgateway", "/v2/models/iris/infer")]
    finally:
        lab.delete("CiliumNetworkPolicy", "iris-callers")


def test_a_caller_from_an_unregistered_address_is_world_and_forged_headers_do_not_help(lab):
    lab.apply(POLICY)
    try:
        scorer = lab.call_as(SCORER, "lab", "iris", "/v2/health/ready", method="GET")
        assert scorer.outcome == "200"
        transport = httpx.HTTPTransport(local_address="127.0.0.250")
        with httpx.Client(transport=transport, timeout=DROP_TIMEOUT_S) as client, pytest.raises(httpx.ReadTimeout):
            client.get(f"{lab.gateway_url}/v2/health/ready", headers={
                "Host": predictor_host("iris", "lab"), "X-Forwarded-For": "127.0.0.2", "inference-client": "iris"})
        assert lab.flows("lab", last=1)[0].source == "reserved:world"
    finally:
        lab.delete("CiliumNetworkPolicy", "iris-callers")


def test_removing_the_policy_restores_traffic(lab):
    lab.apply(POLICY)
    assert infer(lab, NOTEBOOK) == "timeout"
    lab.delete("CiliumNetworkPolicy", "iris-callers")
    assert infer(lab, NOTEBOOK) == "200"
    assert lab.flows("lab", last=1)[0].reason.startswith("no policy selects lab/iris-predictor")


def test_a_restarted_control_plane_enforces_the_policy_from_its_first_request(lab, local_home):
    lab.apply(POLICY)
    try:
        before = lab.call_as(NOTEBOOK, "lab", "iris", "/v2/health/ready", method="GET", timeout=DROP_TIMEOUT_S)
        assert before.outcome == "timeout"
        info = running(local_home)
        os.kill(info["pid"], signal.SIGKILL)
        psutil.Process(info["pid"]).wait(timeout=10)
        # The next call starts the control plane again from its store: policy and endpoints come back with it.
        assert infer(lab, NOTEBOOK) == "timeout"
        assert infer(lab, SCORER) == "200"
        assert [f.verdict for f in lab.flows("lab")] == ["DROPPED", "FORWARDED"]  # the ring restarted empty
    finally:
        lab.delete("CiliumNetworkPolicy", "iris-callers")


def test_an_invalid_policy_is_not_enforced_and_says_why(lab):
    lab.apply({"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": "cidr"},
               "spec": {"endpointSelector": {"matchLabels": {"component": "predictor"}},
                        "ingress": [{"fromCIDR": ["10.0.0.0/8"]}]}})
    try:
        (valid,) = lab.get("CiliumNetworkPolicy", "cidr")["status"]["conditions"]
        assert valid["status"] == "False" and "spec.ingress[0].fromCIDR" in valid["message"]
        assert infer(lab, NOTEBOOK) == "200"
    finally:
        lab.delete("CiliumNetworkPolicy", "cidr")


def test_calling_from_a_namespace_that_does_not_exist_is_refused(lab):
    with pytest.raises(NotFound, match='namespaces "nowhere" not found'):
        lab.call_as(SCORER, "nowhere", "iris", "/v2/health/ready", method="GET")
