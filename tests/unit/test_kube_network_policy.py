"""The kubernetes target against kmock: the policy manifests apply (dry run, then apply), `call_as` runs the
right ephemeral pod and reads its answer, and the flow log comes from Hubble or says how to enable it."""
from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from kube_fixtures import MockCluster, cluster, is_real_apply  # noqa: F401  (cluster is a pytest fixture)

from lab_helpers.errors import LabError, TargetUnavailable
from lab_helpers.kube import client as kube_client
from lab_helpers.paths import manifests_dir

POD = "call-as-0badc0de"
POD_PATH = f"/api/v1/namespaces/lab/pods/{POD}"
URL = "http://iris-predictor.lab.svc.cluster.local/v2/models/iris/infer"


def test_both_policy_manifests_apply_to_a_cluster(cluster: MockCluster) -> None:
    applied = cluster.lab().apply(manifests_dir() / "policy")
    assert sorted((o["kind"], o["metadata"]["name"]) for o in applied) == [
        ("CiliumNetworkPolicy", "iris-callers"), ("NetworkPolicy", "iris-callers")]
    paths = sorted(r.url.path for r in cluster.requests(is_real_apply))
    assert paths == ["/apis/cilium.io/v2/namespaces/lab/ciliumnetworkpolicies/iris-callers",
                     "/apis/networking.k8s.io/v1/namespaces/lab/networkpolicies/iris-callers"]
    stored = cluster.stored("CiliumNetworkPolicy", "lab", "iris-callers")
    assert stored["spec"]["endpointSelector"]["matchLabels"] == {"serving.kserve.io/inferenceservice": "iris",
                                                                 "component": "predictor"}


@pytest.fixture
def caller_pod_named(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr("lab_helpers.policy.callers.secrets.token_hex", lambda n: POD[len("call-as-"):])
    return POD


def finished_pod(cluster: MockCluster, phase: str, log: bytes) -> None:
    """Act as the kubelet: the pod ran to `phase` and curl printed `log`."""
    cluster.server[f"get {POD_PATH}"] << {"apiVersion": "v1", "kind": "Pod",
                                          "metadata": {"name": POD, "namespace": "lab"}, "status": {"phase": phase}}
    cluster.server[f"get {POD_PATH}/log"] << log


def test_call_as_runs_a_labelled_curl_pod_against_the_predictor_service(cluster: MockCluster,
                                                                         caller_pod_named: str) -> None:
    finished_pod(cluster, "Succeeded", b"2026-12-02T10:00:00.000000000Z 403")
    payload = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}
    result = cluster.lab().call_as({"inference-client": "iris"}, "lab", "iris", "/v2/models/iris/infer",
                                   payload=payload, timeout=2)
    assert (result.status, result.outcome) == (403, "403")
    (apply,) = [r for r in cluster.requests(is_real_apply) if r.url.path == POD_PATH]
    pod = apply.data
    assert pod["metadata"]["labels"] == {"inference-client": "iris"} and pod["metadata"]["namespace"] == "lab"
    assert pod["spec"]["restartPolicy"] == "Never"
    (container,) = pod["spec"]["containers"]
    assert container["image"].startswith("curlimages/curl:")
    args = container["args"]
    assert args[-1] == URL and args[args.index("--max-time") + 1] == "2" and args[args.index("-X") + 1] == "POST"
    assert json.loads(args[args.index("--data") + 1]) == payload and "%{http_code}" in args
    assert container["securityContext"]["runAsNonRoot"] and container["securityContext"]["runAsUser"] == 100
    assert [r.url.path for r in cluster.requests("delete")] == [POD_PATH]  # the pod does not outlive the call


def test_a_call_that_got_no_answer_is_a_timeout(cluster: MockCluster, caller_pod_named: str) -> None:
    finished_pod(cluster, "Failed", b"2026-12-02T10:00:00.000000000Z 000")  # curl exits 28 at its --max-time
    result = cluster.lab().call_as({"app": "notebook"}, "lab", "iris", "/v2/health/ready", method="GET")
    assert (result.status, result.outcome) == (None, "timeout")


def test_a_caller_pod_that_cannot_start_is_an_error_naming_why(cluster: MockCluster, caller_pod_named: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kube_client, "CALLER_START_S", 0.0)
    cluster.server[f"get {POD_PATH}"] << {"metadata": {"name": POD}, "status": {"phase": "Pending", "containerStatuses": [
        {"name": "curl", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "pull access denied"}}}]}}
    with pytest.raises(LabError, match=r"call_as pod lab/call-as-0badc0de did not finish .*ImagePullBackOff: pull "):
        cluster.lab().call_as({"app": "x"}, "lab", "iris", "/v2/health/ready", method="GET", timeout=0.1)
    assert [r.url.path for r in cluster.requests("delete")] == [POD_PATH]


HUBBLE_LINES = [
    {"flow": {"time": "2026-12-02T10:00:00Z", "verdict": "DROPPED", "drop_reason_desc": "POLICY_DENIED",
              "Type": "L3_L4", "IP": {"source": "10.0.1.7"},
              "source": {"namespace": "lab", "pod_name": "call-as-1", "labels": [
                  "k8s:app=notebook", "k8s:io.kubernetes.pod.namespace=lab", "k8s:io.cilium.k8s.policy.cluster=default"]},
              "destination": {"namespace": "lab", "pod_name": "iris-predictor-7f-x"},
              "l4": {"TCP": {"source_port": 40000, "destination_port": 8080}}}},
    {"flow": {"time": "2026-12-02T10:00:01Z", "verdict": "DROPPED", "Type": "L7", "IP": {"source": "10.0.1.8"},
              "source": {"namespace": "lab", "labels": ["k8s:inference-client=iris"]},
              "destination": {"namespace": "lab", "pod_name": "iris-predictor-7f-x"},
              "l4": {"TCP": {"destination_port": 8080}},
              "l7": {"type": "RESPONSE", "http": {"code": 403, "method": "GET",
                                                  "url": "http://iris-predictor.lab.svc.cluster.local/metrics"}}}},
    {"flow": {"time": "2026-12-02T10:00:02Z", "verdict": "FORWARDED", "Type": "L3_L4",
              "source": {"labels": ["reserved:host"]}, "destination": {"namespace": "lab", "pod_name": "p"},
              "l4": {"TCP": {"destination_port": 8080}}}},
]


def fake_hubble(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    hubble = bin_dir / "hubble"
    hubble.write_text("#!/bin/sh\n" + script)
    hubble.chmod(hubble.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return hubble


def test_flows_on_a_cluster_come_from_hubble_observe(cluster: MockCluster, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    lines = "\n".join(json.dumps(line) for line in HUBBLE_LINES)
    fake_hubble(tmp_path, monkeypatch, f"echo \"$@\" > {tmp_path}/args\ncat <<'EOF'\n{lines}\nEOF\n")
    flows = cluster.lab().flows("lab", last=3)
    assert (tmp_path / "args").read_text().split() == ["observe", "-o", "jsonpb", "--last", "3",
                                                       "--to-namespace", "lab"]
    assert [(f.verdict, f.layer, f.source, f.destination, f.port, f.method, f.path, f.reason) for f in flows] == [
        ("DROPPED", "L3_L4", "lab/app=notebook", "lab/iris-predictor-7f-x", 8080, "", "", "POLICY_DENIED"),
        ("DROPPED", "L7", "lab/inference-client=iris", "lab/iris-predictor-7f-x", 8080, "GET", "/metrics",
         "L7 rule: 403"),
        ("FORWARDED", "L3_L4", "reserved:host", "lab/p", 8080, "", "", "")]
    assert flows[0].source_address == "10.0.1.7"


def test_flows_without_hubble_say_how_to_enable_it(cluster: MockCluster, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TargetUnavailable, match=r"hubble CLI is not on PATH: enable Hubble .*cilium hubble "
                                                 r"port-forward"):
        cluster.lab().flows()
    fake_hubble(tmp_path, monkeypatch, "echo 'failed to connect to localhost:4245: connection refused' >&2\nexit 1\n")
    with pytest.raises(TargetUnavailable, match=r"hubble observe. failed \(failed to connect to localhost:4245"):
        cluster.lab().flows()
