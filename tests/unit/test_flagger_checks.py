"""One analysis pass's checks: MetricTemplates rendered and queried as Flagger does, webhooks, their messages.

Prometheus and webhook receivers are tiny aiohttp servers on loopback, so the real HTTP clients run.
"""
from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from lab_helpers.local.controllers.flagger_checks import CanaryChecks, metric_model, render_query
from lab_helpers.local.loadtester import LoadTestError
from lab_helpers.local.store import Store

LOADTESTER_URL = "http://flagger-loadtester.lab/"
MODEL = {"name": "iris-rollout", "namespace": "lab", "target": "iris-rollout-predictor", "service": "iris-rollout",
         "ingress": "iris-rollout-predictor", "route": "iris-rollout-predictor", "interval": "30s"}


def test_render_query_fills_every_model_key_and_template_variables() -> None:
    template = ('{{ name }} {{namespace}} {{ target }} {{ service }} {{ ingress }} {{ route }} {{ interval }} '
                '{{ variables.direction }}')
    assert render_query(template, MODEL, {"direction": "inbound"}) == \
        "iris-rollout lab iris-rollout-predictor iris-rollout iris-rollout-predictor iris-rollout-predictor 30s inbound"


def test_render_query_rejects_an_unknown_key_or_variable_with_gos_wording() -> None:
    with pytest.raises(ValueError, match=r'template parsing failed: template: tmpl:2: function "revision" not defined'):
        render_query("sum(x)\n{{ revision }}", MODEL, {})
    with pytest.raises(ValueError, match=r'template excution failed: map has no entry for key "direction"'):
        render_query("{{ variables.direction }}", MODEL, {"other": "x"})


def canary(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "metadata": {"name": "iris-rollout", "namespace": "lab", "uid": "c-1"},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "iris-rollout-predictor"},
                     **spec},
            "status": {"phase": "Progressing", "lastAppliedSpec": "abc"}}


def test_the_metric_model_defaults_service_ingress_and_route_to_the_target() -> None:
    model = metric_model(canary(), "1m")
    assert model == {"name": "iris-rollout", "namespace": "lab", "target": "iris-rollout-predictor",
                     "service": "iris-rollout-predictor", "ingress": "iris-rollout-predictor",
                     "route": "iris-rollout-predictor", "interval": "1m"}
    named = metric_model(canary(service={"name": "iris-rollout"}, ingressRef={"name": "ing"},
                                routeRef={"name": "rt"}), "30s")
    assert (named["service"], named["ingress"], named["route"]) == ("iris-rollout", "ing", "rt")


@dataclass
class FakePrometheus:
    """``/api/v1/query`` answering what the test set; the queries it was asked."""

    answer: tuple[int, dict[str, Any]] = (200, {"status": "success", "data": {"resultType": "vector", "result": []}})
    queries: list[str] = field(default_factory=list)

    def values(self, *values: str) -> None:
        result = [{"metric": {"i": str(i)}, "value": [1.9e9, v]} for i, v in enumerate(values)]
        self.answer = (200, {"status": "success", "data": {"resultType": "vector", "result": result}})

    async def handle(self, request: web.Request) -> web.Response:
        self.queries.append(request.query["query"])
        status, body = self.answer
        return web.json_response(body, status=status)


@asynccontextmanager
async def serving(path: str, handler: Any) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", path, handler)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("")).rstrip("/")


@dataclass
class FakeLoadTester:
    submitted: list[tuple[str, str]] = field(default_factory=list)
    refuse: str | None = None

    def submit(self, command: str, canary: str) -> None:
        if self.refuse:
            raise LoadTestError(self.refuse)
        self.submitted.append((command, canary))


@pytest.fixture
def store(tmp_path) -> Store:
    store = Store(tmp_path / "store.sqlite")
    store.apply({"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
                 "metadata": {"name": "divergence", "namespace": "lab"},
                 "spec": {"provider": {"type": "prometheus", "address": "http://prometheus:9090"},
                          "query": 'divergence{pod=~"{{ target }}-.+", window="{{ interval }}", '
                                   'side="{{ variables.side }}"}'}})
    return store


def divergence(**metric: Any) -> dict[str, Any]:
    return {"name": "prediction-divergence", "templateRef": {"name": "divergence"}, "interval": "30s",
            "templateVariables": {"side": "canary"}, "thresholdRange": {"max": 0.1}, **metric}


def run_metrics(store: Store, prometheus: FakePrometheus | None, *metrics: dict[str, Any]) -> tuple[list[str], str | None]:
    async def go() -> tuple[list[str], str | None]:
        if prometheus is None:
            checks = CanaryChecks(canary(analysis={"metrics": list(metrics)}), store, lambda: None, FakeLoadTester())
            return await checks.metrics(), checks.failed_metric
        async with serving("/api/v1/query", prometheus.handle) as url:
            checks = CanaryChecks(canary(analysis={"metrics": list(metrics)}), store, lambda: url, FakeLoadTester())
            return await checks.metrics(), checks.failed_metric
    return asyncio.run(go())


def test_a_value_within_the_threshold_range_passes_and_the_query_is_rendered(store: Store) -> None:
    prometheus = FakePrometheus()
    prometheus.values("0.02")
    assert run_metrics(store, prometheus, divergence()) == ([], None)
    assert prometheus.queries == ['divergence{pod=~"iris-rollout-predictor-.+", window="30s", side="canary"}']


@pytest.mark.parametrize("value, bounds, message", [
    ("0.33", {"max": 0.1}, "Halt iris-rollout.lab advancement prediction-divergence 0.33 > 0.1"),
    ("97.5", {"min": 99}, "Halt iris-rollout.lab advancement prediction-divergence 97.50 < 99"),
])
def test_a_value_outside_the_range_halts_with_flaggers_message(store: Store, value, bounds, message) -> None:
    prometheus = FakePrometheus()
    prometheus.values(value)
    assert run_metrics(store, prometheus, divergence(thresholdRange=bounds)) == ([message], "prediction-divergence")


@pytest.mark.parametrize("metric, message", [
    (dict(thresholdRange={"max": 1.0}), "Halt iris-rollout.lab advancement prediction-divergence 1.50 > 1"),
    (dict(thresholdRange=None, threshold=0.5), "Halt iris-rollout.lab advancement prediction-divergence 1.50 > 0.5"),
    (dict(thresholdRange=None), "Halt iris-rollout.lab advancement prediction-divergence 1.50 > 0"),
], ids=["bound printed as Go prints a float", "legacy threshold", "no range and no threshold: 0"])
def test_bounds_read_and_printed_as_flagger_does(store: Store, metric, message) -> None:
    prometheus = FakePrometheus()
    prometheus.values("1.5")
    assert run_metrics(store, prometheus, divergence(**metric))[0] == [message]


def test_a_range_without_bounds_checks_nothing(store: Store) -> None:
    prometheus = FakePrometheus()
    prometheus.values("1.5")
    assert run_metrics(store, prometheus, divergence(thresholdRange={}))[0] == []


@pytest.mark.parametrize("values", [(), ("NaN",)], ids=["empty result", "NaN"])
def test_no_data_is_a_failed_check(store: Store, values) -> None:
    prometheus = FakePrometheus()
    prometheus.values(*values)
    assert run_metrics(store, prometheus, divergence())[0] == \
        ["Halt advancement no values found for custom metric: prediction-divergence: no values found"]


def test_a_query_prometheus_rejects_is_a_failed_query(store: Store) -> None:
    prometheus = FakePrometheus(answer=(400, {"status": "error", "errorType": "bad_data",
                                              "error": "1:10: parse error: unexpected \"}\""}))
    [failure], failed = run_metrics(store, prometheus, divergence())
    assert failure.startswith("Metric query failed for prediction-divergence: ")
    assert "bad_data" in failure and "parse error" in failure and failed == "prediction-divergence"


def test_several_series_are_a_failed_query_here(store: Store) -> None:
    prometheus = FakePrometheus()
    prometheus.values("0.01", "0.02")
    [failure], _ = run_metrics(store, prometheus, divergence())
    assert failure.startswith("Metric query failed for prediction-divergence: the query returned 2 series, a check "
                              "needs one value")


def test_no_prometheus_at_all_is_a_failed_query_saying_so(store: Store) -> None:
    [failure], _ = run_metrics(store, None, divergence())
    assert failure.startswith("Metric query failed for prediction-divergence: no Prometheus runs on the local target")


def test_a_missing_template_is_flaggers_template_error_and_nothing_is_queried(store: Store) -> None:
    prometheus = FakePrometheus()
    failures, _ = run_metrics(store, prometheus, divergence(templateRef={"name": "gone"}))
    assert failures == ['Metric template gone.lab error: metrictemplate.flagger.app "gone" not found']
    assert prometheus.queries == []


def test_a_template_in_another_namespace_is_found_there(store: Store) -> None:
    template = store.get("MetricTemplate", "lab", "divergence")
    template["metadata"]["namespace"] = "shared"
    store.apply(template)
    prometheus = FakePrometheus()
    prometheus.values("0.0")
    assert run_metrics(store, prometheus, divergence(templateRef={"name": "divergence", "namespace": "shared"}))[0] \
        == []


def test_a_template_variable_the_metric_does_not_give_is_a_render_error(store: Store) -> None:
    failures, _ = run_metrics(store, FakePrometheus(), divergence(templateVariables={}))
    assert failures == ['Metric template divergence.lab query render error: template excution failed: map has no '
                        'entry for key "side"']


def test_a_metric_without_template_ref_says_the_local_flagger_needs_templates(store: Store) -> None:
    failures, failed = run_metrics(store, FakePrometheus(), {"name": "request-success-rate",
                                                             "thresholdRange": {"min": 99}})
    assert failed == "request-success-rate"
    assert "metric request-success-rate has no templateRef" in failures[0] and "MetricTemplates" in failures[0]


def test_the_first_failing_metric_stops_the_pass(store: Store) -> None:
    prometheus = FakePrometheus()
    prometheus.values("0.5")
    failures, failed = run_metrics(store, prometheus, divergence(name="first"), divergence(name="second"))
    assert failed == "first" and len(failures) == 1 and len(prometheus.queries) == 1


# webhooks -----------------------------------------------------------------------------------------------------

LOAD = "hey -z 2m -q 5 -c 2 http://cilium-gateway-lab-gateway.lab/v2/models/iris-rollout/infer"


def hook(name: str, url: str, kind: str = "rollout", **metadata: str) -> dict[str, Any]:
    return {"name": name, "type": kind, "url": url, "timeout": "5s", "metadata": metadata}


def loadtester_release(store: Store, ready: bool = True, namespace: str = "lab") -> None:
    store.apply({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                 "metadata": {"name": "flagger-loadtester", "namespace": namespace},
                 "spec": {"chart": {"spec": {"chart": "loadtester"}}}})
    store.set_status("HelmRelease", namespace, "flagger-loadtester",
                     {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]})


def run_hooks(store: Store, kind: str, *hooks: dict[str, Any], tester: FakeLoadTester | None = None) -> list[str]:
    checks = CanaryChecks(canary(analysis={"webhooks": list(hooks)}), store, lambda: None,
                          tester or FakeLoadTester())
    return asyncio.run(checks.hooks(kind))


def test_a_loadtester_hook_is_submitted_to_the_load_tester(store: Store) -> None:
    loadtester_release(store)
    tester = FakeLoadTester()
    assert run_hooks(store, "rollout", hook("load-test", LOADTESTER_URL, type="cmd", cmd=LOAD),
                     hook("pre", LOADTESTER_URL, "pre-rollout", type="cmd", cmd="hey other"), tester=tester) == []
    assert tester.submitted == [(LOAD, "iris-rollout.lab")]  # only hooks of the kind asked for


def test_a_command_the_load_tester_refuses_fails_the_hook_as_its_400(store: Store) -> None:
    loadtester_release(store)
    failures = run_hooks(store, "rollout", hook("load-test", LOADTESTER_URL, type="cmd", cmd="curl x"),
                         tester=FakeLoadTester(refuse="the local load tester runs hey commands only"))
    assert failures == ["Halt iris-rollout.lab advancement external check load-test failed error: 400 the local "
                        "load tester runs hey commands only"]


@pytest.mark.parametrize("ready, namespace", [(False, "lab"), (True, "elsewhere"), (None, None)],
                         ids=["not Ready", "other namespace", "no release"])
def test_a_loadtester_that_is_not_installed_fails_the_hook_naming_the_manifest(store: Store, ready, namespace) -> None:
    if ready is not None:
        loadtester_release(store, ready, namespace)
    tester = FakeLoadTester()
    [failure] = run_hooks(store, "pre-rollout", hook("load-test-start", LOADTESTER_URL, "pre-rollout", type="cmd",
                                                     cmd=LOAD), tester=tester)
    assert failure.startswith("Halt iris-rollout.lab advancement pre-rollout check load-test-start failed")
    assert "no Ready HelmRelease of chart loadtester in namespace lab" in failure
    assert "manifests/platform/flagger.yaml" in failure and tester.submitted == []


@dataclass
class Receiver:
    status: int = 200
    payloads: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.payloads.append(json.loads(await request.read()))
        return web.Response(status=self.status, text="not approved" if self.status > 202 else "ok")


def run_remote_hooks(store: Store, receiver: Receiver, kind: str, **metadata: str) -> list[str]:
    async def go() -> list[str]:
        async with serving("/gate/{name}", receiver.handle) as url:
            checks = CanaryChecks(canary(analysis={"webhooks": [hook("gate", f"{url}/gate/approve", kind,
                                                                     **metadata)]}),
                                  store, lambda: None, FakeLoadTester())
            return await checks.hooks(kind)
    return asyncio.run(go())


def test_any_other_url_gets_flaggers_payload_by_post(store: Store) -> None:
    receiver = Receiver()
    assert run_remote_hooks(store, receiver, "confirm-promotion", team="ml") == []
    [payload] = receiver.payloads
    assert set(payload) == {"name", "namespace", "phase", "checksum", "metadata"}
    assert (payload["name"], payload["namespace"], payload["phase"], payload["metadata"]) == \
        ("iris-rollout", "lab", "Progressing", {"team": "ml"})
    receiver.payloads.clear()
    run_remote_hooks(store, receiver, "confirm-promotion")
    assert "metadata" not in receiver.payloads[0]  # omitempty, as Go marshals it


@pytest.mark.parametrize("status, message", [
    (403, "Halt iris-rollout.lab advancement waiting for promotion approval gate"),
    (203, "Halt iris-rollout.lab advancement waiting for promotion approval gate"),  # Flagger: above 202 fails
])
def test_an_answer_above_202_fails_the_hook(store: Store, status, message) -> None:
    assert run_remote_hooks(store, Receiver(status), "confirm-promotion") == [message]


def test_a_failing_rollout_hook_carries_the_answer(store: Store) -> None:
    [failure] = run_remote_hooks(store, Receiver(500), "rollout")
    assert failure == "Halt iris-rollout.lab advancement external check gate failed error: 500 not approved"


def test_an_unreachable_hook_fails_naming_the_url(store: Store) -> None:
    [failure] = run_hooks(store, "rollout", hook("gate", "http://127.0.0.1:9/never"))
    assert failure.startswith("Halt iris-rollout.lab advancement external check gate failed error: ")
    assert "http://127.0.0.1:9/never" in failure
