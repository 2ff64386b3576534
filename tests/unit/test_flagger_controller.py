"""The local Flagger's error cases: a Canary naming what does not exist, or whose query fails, says so in an event
and in status, and the primary keeps serving (real Store, fake clock, fake load tester, loopback Prometheus)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from lab_helpers.local.controllers.base import Context
from lab_helpers.local.controllers.flagger import CanaryController
from lab_helpers.local.controllers.flagger_objects import route_weights
from lab_helpers.local.store import Store

TARGET = "iris-rollout-predictor"
LOADTESTER = "http://flagger-loadtester.lab/"
LOAD = "hey -z 1m http://iris-rollout.lab/v2/models/iris-rollout/infer"


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeLoadTester:
    submitted: list[str] = field(default_factory=list)

    def submit(self, command: str, canary: str) -> None:
        self.submitted.append(command)


def deployment(image: str = "runtime:v1") -> dict[str, Any]:
    labels = {"app": f"isvc.{TARGET}", "serving.kserve.io/inferenceservice": "iris-rollout"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": TARGET, "namespace": "lab"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": labels["app"]}},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "kserve-container", "image": image}]}}}}


def canary(target: str = TARGET, template: str = "envoy-success-rate") -> dict[str, Any]:
    hook = {"url": LOADTESTER, "timeout": "5s", "metadata": {"type": "cmd", "cmd": LOAD}}
    return {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": "iris-rollout", "namespace": "lab"},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                     "service": {"name": "iris-rollout", "port": 80, "targetPort": 8080,
                                 "gatewayRefs": [{"name": "lab-gateway", "namespace": "lab"}],
                                 "hosts": ["iris-rollout-lab.example.com"]},
                     "analysis": {"interval": "10s", "threshold": 2, "stepWeight": 20, "maxWeight": 40,
                                  "metrics": [{"name": "request-success-rate", "templateRef": {"name": template},
                                               "thresholdRange": {"min": 99}, "interval": "30s"}],
                                  "webhooks": [dict(hook, name="load-test-start", type="pre-rollout"),
                                               dict(hook, name="load-test", type="rollout")]}}}


@dataclass
class World:
    store: Store
    controller: CanaryController
    clock: Clock
    loadtester: FakeLoadTester

    async def reconcile(self) -> None:
        await self.controller.reconcile(self.store.get("Canary", "lab", "iris-rollout"))
        self.clock.now += 10  # one analysis interval

    def status(self) -> dict[str, Any]:
        return self.store.get("Canary", "lab", "iris-rollout")["status"]

    def events(self) -> list[dict[str, Any]]:
        return self.store.events([("Canary", "lab", "iris-rollout")])

    def rolled_out(self, name: str) -> None:
        """Act as the Deployment controller and kubelet: every replica of the current generation ready."""
        obj = self.store.get("Deployment", "lab", name)
        replicas = obj["spec"]["replicas"]
        self.store.set_status("Deployment", "lab", name, {
            "observedGeneration": obj["metadata"]["generation"], "replicas": replicas, "updatedReplicas": replicas,
            "availableReplicas": replicas, "readyReplicas": replicas})

    def weights(self) -> tuple[int, int]:
        return route_weights(self.store.find("HTTPRoute", "lab", "iris-rollout"),
                             self.store.get("Canary", "lab", "iris-rollout"))


def make_world(tmp_path, prometheus_url) -> World:
    store = Store(tmp_path / "store.sqlite")
    store.apply(deployment())
    store.apply({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                 "metadata": {"name": "flagger-loadtester", "namespace": "lab"},
                 "spec": {"chart": {"spec": {"chart": "loadtester"}}}})
    store.set_status("HelmRelease", "lab", "flagger-loadtester",
                     {"conditions": [{"type": "Ready", "status": "True"}]})
    store.apply({"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
                 "metadata": {"name": "envoy-success-rate", "namespace": "lab"},
                 "spec": {"provider": {"type": "prometheus", "address": "http://prometheus:9090"},
                          "query": 'sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~".+/{{ namespace }}_'
                                   '{{ service }}-canary_[0-9]+"}[{{ interval }}])) by ('}})  # a PromQL typo
    clock, tester = Clock(), FakeLoadTester()
    controller = CanaryController(Context(store, tmp_path), prometheus_url, tester, clock=clock)
    return World(store, controller, clock, tester)


def test_a_canary_naming_a_missing_deployment_warns_and_creates_nothing(tmp_path) -> None:
    world = make_world(tmp_path, lambda: None)
    world.store.apply(canary(target="iris-rollout-predictr"))
    asyncio.run(world.reconcile())
    message = 'deployment iris-rollout-predictr.lab get query error: deployments.apps "iris-rollout-predictr" not found'
    assert [(e["type"], e["reason"], e["message"]) for e in world.events()] == [("Warning", "Synced", message)]
    status = world.status()
    assert status["phase"] == "Initializing" and status["lab"]["lastWarning"] == message
    assert [(c["type"], c["status"]) for c in status["conditions"]] == [("Promoted", "Unknown")]
    assert [d["metadata"]["name"] for d in world.store.list("Deployment", "lab")] == [TARGET]
    assert world.store.list("Service", "lab") == [] and world.store.list("HTTPRoute", "lab") == []
    assert world.store.get("Deployment", "lab", TARGET)["spec"]["replicas"] == 1  # its own target is untouched
    fixed = world.store.get("Canary", "lab", "iris-rollout")
    fixed["spec"]["targetRef"]["name"] = TARGET
    world.store.apply(fixed)
    asyncio.run(world.reconcile())                  # the next pass builds what the Canary needs
    assert world.store.find("Deployment", "lab", f"{TARGET}-primary") is not None
    assert len(world.store.list("Service", "lab")) == 3


async def initialized_then_progressing(world: World) -> None:
    """Initialise (primary ready, target to 0), then a new revision: Progressing with the canary at 20 %."""
    world.store.apply(canary())
    await world.reconcile()                         # primary, Services made; primary not ready yet
    world.rolled_out(f"{TARGET}-primary")
    await world.reconcile()
    assert world.status()["phase"] == "Initialized"
    assert world.store.get("Deployment", "lab", TARGET)["spec"]["replicas"] == 0
    world.store.apply(deployment(image="runtime:v2"))  # KServe rewrites the template for a new storageUri
    await world.reconcile()
    assert world.status()["phase"] == "Progressing"
    world.rolled_out(TARGET)
    await world.reconcile()                         # pre-rollout hooks, first step
    assert world.weights() == (80, 20) and world.loadtester.submitted == [LOAD]


def primary_image(world: World) -> str:
    return world.store.get("Deployment", "lab", f"{TARGET}-primary")["spec"]["template"]["spec"]["containers"][0][
        "image"]


async def prometheus_rejecting() -> TestServer:
    async def query(request: web.Request) -> web.Response:
        return web.json_response({"status": "error", "errorType": "bad_data",
                                  "error": '1:104: parse error: unexpected "(" in grouping opts'}, status=400)
    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.mark.parametrize("case", ["missing template", "query error"])
def test_a_failing_check_during_progressing_holds_the_weight_then_rolls_back_primary_untouched(tmp_path, case) -> None:
    server: dict[str, TestServer] = {}
    world = make_world(tmp_path, lambda: str(server["prom"].make_url("")) if server else None)
    if case == "missing template":
        world.store.delete("MetricTemplate", "lab", "envoy-success-rate")
        expected = 'Metric template envoy-success-rate.lab error: metrictemplate.flagger.app "envoy-success-rate" ' \
                   'not found'
    else:
        expected = "Metric query failed for request-success-rate: Prometheus rejected the query"

    async def scenario() -> None:
        server["prom"] = await prometheus_rejecting()
        try:
            await initialized_then_progressing(world)
            for failed in (1, 2):
                await world.reconcile()
                status = world.status()
                assert (status["phase"], status["failedChecks"], status["canaryWeight"]) == ("Progressing", failed, 20)
                assert status["lab"]["lastWarning"].startswith(expected)
                assert world.weights() == (80, 20)
            await world.reconcile()                 # failedChecks == threshold: roll back
        finally:
            await server["prom"].close()

    asyncio.run(scenario())
    status = world.status()
    assert (status["phase"], status["canaryWeight"], status["failedChecks"]) == ("Failed", 0, 0)  # a fresh status
    assert next(c for c in status["conditions"] if c["type"] == "Promoted")["status"] == "False"
    assert world.weights() == (100, 0)
    assert world.store.get("Deployment", "lab", TARGET)["spec"]["replicas"] == 0
    assert primary_image(world) == "runtime:v1"      # the primary kept serving the old revision throughout
    assert world.store.get("Deployment", "lab", f"{TARGET}-primary")["spec"]["replicas"] == 1
    warnings = [e for e in world.events() if e["type"] == "Warning"]
    [failed_check] = [e for e in warnings if e["message"].startswith(expected)]
    assert failed_check["count"] == 2 and failed_check["reason"] == "Synced"
    assert any(e["message"] == "Rolling back iris-rollout.lab failed checks threshold reached 2" for e in warnings)
