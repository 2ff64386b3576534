"""The local KEDA operator: a ScaledObject polls its triggers and scales its Deployment, with KEDA's status."""
from __future__ import annotations

import asyncio

import pytest

from lab_helpers.gateway.interceptor import InterceptedRoute, Interceptor
from lab_helpers.gateway.routes import RouteTable
from lab_helpers.local.controllers.base import Context
from lab_helpers.local.controllers.keda import ScaledObjectController
from lab_helpers.local.store import Store

HOST = "iris-s2z-lab.example.com"


class Clock:
    def __init__(self):
        self.now = 1_900_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture
def world(tmp_path):
    store = Store(tmp_path / "store.sqlite")
    store.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "iris-s2z-predictor",
                                                                          "namespace": "lab"},
                 "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "x"}},
                          "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": []}}}})
    store.apply({"apiVersion": "http.keda.sh/v1beta1", "kind": "InterceptorRoute",
                 "metadata": {"name": "iris-s2z", "namespace": "lab"},
                 "spec": {"target": {"service": "iris-s2z-predictor", "port": 80}, "rules": [{"hosts": [HOST]}],
                          "scalingMetric": {"concurrency": {"targetValue": 10}}}})
    in_flight = {HOST: 0}
    interceptor = Interceptor(RouteTable(), on_pending=lambda key: None, in_flight=lambda host: in_flight.get(host, 0))
    interceptor.set_routes([InterceptedRoute("lab", "iris-s2z", (HOST,), 30.0)])
    clock = Clock()
    controller = ScaledObjectController(Context(store, tmp_path), interceptor, prometheus_url=lambda: None,
                                        clock=clock)
    return store, controller, in_flight, clock


def scaled_object(store, target="iris-s2z-predictor", route="iris-s2z", **spec):
    store.apply({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                 "metadata": {"name": "iris-s2z", "namespace": "lab"},
                 "spec": {"scaleTargetRef": {"name": target}, "minReplicaCount": 0, "pollingInterval": 5,
                          "cooldownPeriod": 20, **spec,
                          "triggers": [{"type": "external-push", "metadata": {"interceptorRoute": route}}]}})


def reconcile(store, controller):
    return asyncio.run(controller.reconcile(store.get("ScaledObject", "lab", "iris-s2z")))


def replicas(store):
    return store.get("Deployment", "lab", "iris-s2z-predictor")["spec"]["replicas"]


def conditions(store):
    return {c["type"]: (c["status"], c["reason"]) for c in store.get("ScaledObject", "lab", "iris-s2z")["status"]["conditions"]}


def test_never_active_goes_to_zero_at_the_first_poll_then_a_request_wakes_it(world):
    store, controller, in_flight, clock = world
    scaled_object(store)
    assert reconcile(store, controller).requeue_after == 5
    assert replicas(store) == 0
    assert conditions(store)["Active"] == ("False", "ScalerNotActive")
    assert conditions(store)["Ready"] == ("True", "ScaledObjectReady")
    in_flight[HOST] = 1                 # a request is held
    controller.push("lab", "iris-s2z")  # the interceptor pushes: no need to wait for the poll
    reconcile(store, controller)
    assert replicas(store) == 1
    assert conditions(store)["Active"] == ("True", "ScalerActive")
    reasons = [e["reason"] for e in store.events([("ScaledObject", "lab", "iris-s2z")])]
    assert reasons[-2:] == ["KEDAScaleTargetDeactivated", "KEDAScaleTargetActivated"]
    assert store.find("HorizontalPodAutoscaler", "lab", "keda-hpa-iris-s2z")["spec"]["minReplicas"] == 1


def test_between_polls_a_status_change_does_not_poll_again(world):
    store, controller, in_flight, clock = world
    store.scale("Deployment", "lab", "iris-s2z-predictor", 0)
    scaled_object(store)
    reconcile(store, controller)
    in_flight[HOST] = 1
    clock.now += 2
    assert reconcile(store, controller).requeue_after == pytest.approx(3)
    assert replicas(store) == 0         # not polled yet: KEDA waits for pollingInterval
    clock.now += 3
    reconcile(store, controller)
    assert replicas(store) == 1


def test_after_traffic_it_waits_for_the_cooldown_then_goes_to_zero(world):
    store, controller, in_flight, clock = world
    scaled_object(store)
    in_flight[HOST] = 2
    reconcile(store, controller)
    assert replicas(store) == 1
    in_flight[HOST] = 0
    clock.now += 10
    reconcile(store, controller)
    assert replicas(store) == 1 and conditions(store)["Active"] == ("False", "ScalerCooldown")
    clock.now += 11                     # 21 s after the last active poll > cooldownPeriod 20
    reconcile(store, controller)
    assert replicas(store) == 0


def test_a_missing_scale_target_is_a_check_failure_and_nothing_is_scaled(world):
    store, controller, _, _ = world
    scaled_object(store, target="nope")
    reconcile(store, controller)
    assert conditions(store)["Ready"] == ("False", "ScaledObjectCheckFailed")
    message = {c["type"]: c for c in store.get("ScaledObject", "lab", "iris-s2z")["status"]["conditions"]}["Ready"]
    assert 'deployments.apps "nope" not found' in message["message"]
    assert replicas(store) == 1


def test_a_trigger_naming_a_missing_interceptor_route_is_a_trigger_error(world):
    store, controller, _, _ = world
    scaled_object(store, route="missing")
    reconcile(store, controller)
    assert conditions(store)["Ready"] == ("False", "TriggerError")
    assert replicas(store) == 1         # an error never scales in
    assert any("InterceptorRoute lab/missing not found" in e["message"]
               for e in store.events([("ScaledObject", "lab", "iris-s2z")]))


def test_min_above_max_is_reported_with_kedas_wording(world):
    store, controller, _, _ = world
    scaled_object(store, minReplicaCount=3, maxReplicaCount=2)
    reconcile(store, controller)
    ready = {c["type"]: c for c in store.get("ScaledObject", "lab", "iris-s2z")["status"]["conditions"]}["Ready"]
    assert ready["reason"] == "ScaledObjectCheckFailed" and "MinReplicaCount=3" in ready["message"]


def test_paused_replicas_pin_the_target_and_remove_the_hpa(world):
    store, controller, _, _ = world
    scaled_object(store)
    reconcile(store, controller)
    obj = store.get("ScaledObject", "lab", "iris-s2z")
    obj["metadata"]["annotations"] = {"autoscaling.keda.sh/paused-replicas": "2"}
    obj["spec"]["maxReplicaCount"] = 3
    store.apply(obj)
    reconcile(store, controller)
    assert replicas(store) == 2
    assert conditions(store)["Paused"] == ("True", "ScaledObjectPaused")
    assert store.find("HorizontalPodAutoscaler", "lab", "keda-hpa-iris-s2z") is None


def prometheus_scaled_object(store, **metadata):
    store.apply({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                 "metadata": {"name": "iris-s2z", "namespace": "lab"},
                 "spec": {"scaleTargetRef": {"name": "iris-s2z-predictor"}, "minReplicaCount": 0,
                          "cooldownPeriod": 20,
                          "triggers": [{"type": "prometheus", "metadata": {
                              "serverAddress": "http://kube-prometheus-stack-prometheus.monitoring:9090",
                              "query": "sum(rate(x[1m]))", "threshold": "1", **metadata}}]}})


@pytest.fixture
def prometheus_answers(world, monkeypatch):
    """The rows the lab's Prometheus answers the trigger's query with."""
    import pandas as pd

    from lab_helpers.prom.client import PromClient

    store, controller, _, _ = world
    controller.prometheus_url = lambda: "http://127.0.0.1:9"
    rows: list[float] = []
    monkeypatch.setattr(PromClient, "query", lambda self, q, at=None: pd.DataFrame({"value": rows}))
    return rows


@pytest.mark.parametrize("rows,metadata,expected,ready_reason", [
    ([], {}, 0, "ScaledObjectReady"),                                      # empty counts as 0: inactive, to 0
    ([], {"ignoreNullValues": "false"}, 1, "TriggerError"),               # empty is an error: nothing moves
    ([0.5], {"activationThreshold": "0.5"}, 0, "ScaledObjectReady"),      # not strictly greater: inactive
    ([0.6], {"activationThreshold": "0.5"}, 1, "ScaledObjectReady"),      # strictly greater: active, stays
    ([1.0, 2.0], {}, 1, "TriggerError"),                                  # more than one element
])
def test_prometheus_trigger(world, prometheus_answers, rows, metadata, expected, ready_reason):
    store, controller, _, _ = world
    prometheus_answers.extend(rows)
    prometheus_scaled_object(store, **metadata)
    reconcile(store, controller)
    assert replicas(store) == expected
    assert conditions(store)["Ready"][1] == ready_reason


def test_a_negative_replica_count_is_rejected_before_it_is_applied():
    from lab_helpers.errors import ManifestError
    from lab_helpers.manifests.validation import validate

    with pytest.raises(ManifestError, match=r"spec.minReplicaCount: expected a number >= 0, got -1"):
        validate({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "x"},
                  "spec": {"scaleTargetRef": {"name": "d"}, "minReplicaCount": -1,
                           "triggers": [{"type": "cpu", "metadata": {}}]}}, "test")


def test_an_external_push_trigger_may_name_a_deprecated_http_scaled_object(world):
    store, controller, in_flight, _ = world
    store.apply({"apiVersion": "http.keda.sh/v1alpha1", "kind": "HTTPScaledObject",
                 "metadata": {"name": "iris-old", "namespace": "lab"},
                 "spec": {"hosts": ["old.example.com"], "scaleTargetRef": {
                     "name": "iris-s2z-predictor", "service": "iris-s2z-predictor", "port": 80}}})
    controller.interceptor.set_routes([InterceptedRoute("lab", "iris-old", ("old.example.com",), 30.0,
                                                        kind="HTTPScaledObject")])
    in_flight["old.example.com"] = 1
    store.apply({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                 "metadata": {"name": "iris-s2z", "namespace": "lab"},
                 "spec": {"scaleTargetRef": {"name": "iris-s2z-predictor"}, "minReplicaCount": 0,
                          "triggers": [{"type": "external-push", "metadata": {"httpScaledObject": "iris-old"}}]}})
    reconcile(store, controller)
    assert conditions(store)["Active"] == ("True", "ScalerActive")
    assert controller.scaled_objects_for_route("HTTPScaledObject", "lab", "iris-old") == ["iris-s2z"]


def test_broken_promql_is_a_trigger_error_naming_what_prometheus_said(world, monkeypatch):
    from lab_helpers.errors import LabError
    from lab_helpers.prom.client import PromClient

    store, controller, _, _ = world
    controller.prometheus_url = lambda: "http://127.0.0.1:9"

    def rejected(self, query, at=None):
        raise LabError(f"Prometheus rejected {query}: bad_data: 1:5: parse error: unexpected <op:*>")

    monkeypatch.setattr(PromClient, "query", rejected)
    prometheus_scaled_object(store, query="sum(**)")
    reconcile(store, controller)
    assert conditions(store)["Ready"] == ("False", "TriggerError")
    assert replicas(store) == 1
    assert any("parse error" in e["message"] for e in store.events([("ScaledObject", "lab", "iris-s2z")]))
