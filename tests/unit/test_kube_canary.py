"""The kubernetes target applies Flagger's install and the canary manifests as they are, and reads a Canary's
status and events the way notebooks 06-07 do (kmock)."""
from __future__ import annotations

import json
import shlex

from lab_helpers.local.loadtester import local_argv

from kube_fixtures import MockCluster, cluster  # noqa: F401  (cluster is a pytest fixture)

BODY = json.dumps({"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32",
                               "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}]})
VARIABLES = {"NAMESPACE": "lab", "LAB_RUNTIME_IMAGE": "registry.example.com/serving-lab/runtime:0.1",
             "ROLLOUT_STORAGE_URI": "s3://mlflow/1/abc/artifacts/sklearn", "CANARY_INTERVAL": "10s",
             "CANARY_THRESHOLD": "2", "CANARY_STEP_WEIGHT": "20", "CANARY_MAX_WEIGHT": "60",
             "ROLLOUT_LOAD_BODY": BODY}


def test_flagger_and_its_load_tester_are_flux_releases_for_the_gateway_api(cluster: MockCluster) -> None:
    cluster.lab().apply("manifests/platform/flagger.yaml", VARIABLES)
    assert cluster.stored("HelmRepository", "flux-system", "flagger")["spec"]["url"] == "https://flagger.app"
    flagger = cluster.stored("HelmRelease", "flagger-system", "flagger")
    assert flagger["spec"]["chart"]["spec"]["chart"] == "flagger"
    assert flagger["spec"]["values"]["meshProvider"] == "gatewayapi:v1"
    tester = cluster.stored("HelmRelease", "lab", "flagger-loadtester")
    assert tester["spec"]["chart"]["spec"]["chart"] == "loadtester"  # what the local Flagger looks for
    assert tester["spec"]["dependsOn"] == [{"name": "flagger", "namespace": "flagger-system"}]


def test_the_canary_manifests_apply_with_every_variable_filled(cluster: MockCluster) -> None:
    cluster.lab().apply("manifests/canary/", VARIABLES)
    runtime = cluster.stored("ServingRuntime", "lab", "lab-sklearn")
    assert runtime["spec"]["containers"][0]["image"] == VARIABLES["LAB_RUNTIME_IMAGE"]
    isvc = cluster.stored("InferenceService", "lab", "iris-rollout")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "external"
    assert isvc["metadata"]["labels"]["networking.kserve.io/visibility"] == "cluster-local"
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == VARIABLES["ROLLOUT_STORAGE_URI"]
    canary = cluster.stored("Canary", "lab", "iris-rollout")
    assert canary["spec"]["targetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                           "name": "iris-rollout-predictor"}
    assert canary["spec"]["service"]["name"] == "iris-rollout" != "iris-rollout-predictor"
    analysis = canary["spec"]["analysis"]
    assert (analysis["interval"], analysis["threshold"], analysis["stepWeight"], analysis["maxWeight"]) == \
        ("10s", 2, 20, 60)  # numbers, not strings, once filled in
    templates = {m["templateRef"]["name"] for m in analysis["metrics"]}
    assert templates == {t["metadata"]["name"] for t in cluster.lab().list("MetricTemplate", "lab")}
    assert cluster.stored("PodMonitor", "lab", "iris-rollout-predictions") is not None


def test_the_load_test_command_as_applied_runs_on_the_local_load_tester(cluster: MockCluster) -> None:
    cluster.lab().apply("manifests/canary/30-canary.yaml", VARIABLES)
    [hook] = [h for h in cluster.stored("Canary", "lab", "iris-rollout")["spec"]["analysis"]["webhooks"]
              if h["type"] == "rollout"]
    assert hook["url"] == "http://flagger-loadtester.lab/"
    argv = local_argv(hook["metadata"]["cmd"], "http://127.0.0.1:8080", "hey")
    assert argv[argv.index("-d") + 1] == BODY  # the JSON body survives the YAML and the shell quoting
    assert argv[argv.index("-host") + 1] == "iris-rollout-lab.example.com"
    assert argv[-1] == "http://127.0.0.1:8080/v2/models/iris-rollout/infer"
    assert shlex.split(hook["metadata"]["cmd"])[-1] == \
        "http://cilium-gateway-lab-gateway.lab/v2/models/iris-rollout/infer"


# A rolled-back Canary's status as Flagger writes it (pkg/apis/flagger/v1beta1/status.go, controller/scheduler.go).
# A rollback writes a fresh status: weight, failed checks and iterations back to 0 (canary/status.go syncCanaryStatus).
ROLLED_BACK = {"phase": "Failed", "canaryWeight": 0, "failedChecks": 0, "iterations": 0,
               "lastAppliedSpec": "5f8d6c7b9", "lastPromotedSpec": "6c4f9d8b7",
               "lastTransitionTime": "2026-12-02T20:00:00Z",
               "conditions": [{"type": "Promoted", "status": "False", "reason": "Failed",
                               "message": "Canary analysis failed, Deployment scaled to zero.",
                               "lastUpdateTime": "2026-12-02T20:00:00Z",
                               "lastTransitionTime": "2026-12-02T20:00:00Z"}]}


def test_the_status_and_events_read_back_as_the_notebooks_read_them(cluster: MockCluster) -> None:
    lab = cluster.lab()
    lab.apply("manifests/canary/30-canary.yaml", VARIABLES)
    stored = cluster.stored("Canary", "lab", "iris-rollout")
    cluster.put("Canary", dict(stored, status=ROLLED_BACK))
    warning = "Halt iris-rollout.lab advancement prediction-divergence 0.31 > 0.1"
    for number, (type_, message) in enumerate([("Warning", warning),
                                               ("Warning", "Rolling back iris-rollout.lab failed checks threshold "
                                                           "reached 2")]):
        cluster.put("Event", {"metadata": {"name": f"iris-rollout.{number}", "namespace": "lab"},
                              "type": type_, "reason": "Synced", "message": message, "count": 1,
                              "lastTimestamp": f"2026-12-02T20:00:0{number}Z",
                              "involvedObject": {"kind": "Canary", "name": "iris-rollout", "namespace": "lab"}})
    status = lab.get("Canary", "iris-rollout")["status"]
    assert (status["phase"], status["canaryWeight"], status["failedChecks"]) == ("Failed", 0, 0)
    promoted = next(c for c in status["conditions"] if c["type"] == "Promoted")
    assert (promoted["status"], promoted["reason"]) == ("False", "Failed")
    events = lab.events("Canary", "iris-rollout", children=False)
    assert [e["message"] for e in events] == [warning, "Rolling back iris-rollout.lab failed checks threshold reached 2"]
