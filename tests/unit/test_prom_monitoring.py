"""The local Prometheus Operator: which objects it selects, their status and the events that explain it."""
from __future__ import annotations

import asyncio
import shutil
from typing import Any

import pytest

from lab_helpers.local.controllers.base import Context
from lab_helpers.local.controllers.monitoring import MonitoringController, PrometheusInstance, rule_verdict
from lab_helpers.local.store import Store

from test_prom_config import pod, service

RELEASE_LABEL = {"release": "kube-prometheus-stack"}
needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")


def helm_release(name: str = "kube-prometheus-stack", ready: bool = True, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": name, "namespace": "monitoring"},
            "spec": {"chart": {"spec": {"chart": "kube-prometheus-stack"}}, **spec}}


def install(store: Store, release: dict[str, Any] | None = None) -> None:
    release = release or helm_release()
    store.apply(release)
    store.set_status("HelmRelease", "monitoring", release["metadata"]["name"], {
        "conditions": [{"type": "Ready", "status": "True"}],
        "history": [{"chartName": "kube-prometheus-stack", "chartVersion": "88.2.0", "status": "deployed"}]})


def monitor(kind: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    selector = {"matchLabels": {"serving.kserve.io/inferenceservice": "iris", "component": "predictor"}}
    spec = ({"selector": selector, "endpoints": [{"port": "iris-predictor"}]} if kind == "ServiceMonitor" else
            {"selector": selector, "podMetricsEndpoints": [{"port": "http1"}]})
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": kind,
            "metadata": {"name": "iris", "namespace": "lab", "labels": RELEASE_LABEL if labels is None else labels},
            "spec": spec}


def prometheus_rule(expr: str) -> dict[str, Any]:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": "alerts", "namespace": "lab", "labels": RELEASE_LABEL},
            "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": expr, "for": "10s"}]}]}}


@pytest.fixture()
def store(tmp_path) -> Store:
    store = Store(tmp_path / "store.sqlite")
    store.apply(service())
    running = pod("iris-predictor-abc")
    store.apply(running)  # status is the kubelet's to write, as on the API server
    store.set_status("Pod", "lab", "iris-predictor-abc", running["status"])
    return store


@pytest.fixture()
def controller(store, tmp_path) -> MonitoringController:
    return MonitoringController(Context(store, tmp_path), binary="lab-test-no-such-prometheus")


def reconcile(controller: MonitoringController, store: Store, obj: dict[str, Any]) -> tuple[dict, list[dict]]:
    """Store `obj`, reconcile it, return it as stored and its events."""
    stored = store.apply(obj)
    asyncio.run(controller.reconcile(stored))
    meta = stored["metadata"]
    return (store.get(stored["kind"], meta["namespace"], meta["name"]),
            store.events([(stored["kind"], meta["namespace"], meta["name"])]))


def accepted(obj: dict[str, Any]) -> dict[str, Any]:
    binding, = obj["status"]["bindings"]
    assert (binding["resource"], binding["namespace"], binding["name"]) == (
        "prometheuses", "monitoring", "kube-prometheus-stack-prometheus")
    condition, = binding["conditions"]
    assert condition["type"] == "Accepted"
    return condition


def test_the_chart_defaults_select_by_the_release_label():
    instance = PrometheusInstance.of_release(helm_release())
    assert (instance.namespace, instance.name) == ("monitoring", "kube-prometheus-stack-prometheus")
    assert instance.selectors["ServiceMonitor"] == {"matchLabels": {"release": "kube-prometheus-stack"}}
    assert instance.describe("PrometheusRule") == "release=kube-prometheus-stack"


def test_release_name_and_values_change_names_and_selectors():
    release = helm_release("prom", targetNamespace="observability", values={"prometheus": {"prometheusSpec": {
        "podMonitorSelectorNilUsesHelmValues": False, "ruleSelector": {"matchLabels": {"team": "ml"}}}}})
    instance = PrometheusInstance.of_release(release)
    # Flux names the Helm release observability-prom; the chart's fullname is cut at 26 characters.
    assert (instance.namespace, instance.name) == ("observability", "observability-prom-kube-pr-prometheus")
    assert instance.selectors == {"ServiceMonitor": {"matchLabels": {"release": "observability-prom"}},
                                  "PodMonitor": {}, "PrometheusRule": {"matchLabels": {"team": "ml"}}}


def test_nothing_happens_before_the_chart_is_installed(controller, store):
    obj, events = reconcile(controller, store, monitor("ServiceMonitor"))
    assert "status" not in obj and events == []


def test_a_selected_service_monitor_is_accepted_and_tells_what_it_scrapes(controller, store):
    install(store)
    obj, events = reconcile(controller, store, monitor("ServiceMonitor"))
    assert accepted(obj)["status"] == "True"
    event, = events
    assert (event["type"], event["reason"]) == ("Normal", "TargetsDiscovered")
    assert "lab/iris-predictor-abc at 127.0.0.1:41001/metrics" in event["message"]


def test_a_pod_monitor_on_undeclared_ports_warns_and_points_at_the_service_monitor(controller, store):
    install(store)
    obj, events = reconcile(controller, store, monitor("PodMonitor"))
    assert accepted(obj)["status"] == "True"  # the operator accepts it; Prometheus drops its targets
    event, = events
    assert (event["type"], event["reason"]) == ("Warning", "TargetsDropped")
    assert "declares no container port 'http1'" in event["message"]
    assert "ServiceMonitor" in event["message"] and "runbooks/prometheus-no-data.md" in event["message"]


def test_an_unlabelled_monitor_is_not_selected_and_says_which_label_is_missing(controller, store):
    install(store)
    obj, events = reconcile(controller, store, monitor("ServiceMonitor", labels={}))
    assert obj["status"] == {"bindings": []}
    event, = events
    assert (event["type"], event["reason"]) == ("Warning", "NotSelected")
    assert "labelled release=kube-prometheus-stack" in event["message"]


def test_events_are_recorded_when_the_outcome_changes_not_on_every_pass(controller, store):
    install(store)
    reconcile(controller, store, monitor("ServiceMonitor"))
    _, events = reconcile(controller, store, monitor("ServiceMonitor"))
    assert [(e["reason"], e["count"]) for e in events] == [("TargetsDiscovered", 1)]


@needs_promtool
def test_an_invalid_rule_is_not_accepted_and_quotes_promtool(controller, store):
    install(store)
    obj, events = reconcile(controller, store, prometheus_rule("sum(rate(x[1m])"))
    condition = accepted(obj)
    assert (condition["status"], condition["reason"]) == ("False", "InvalidConfiguration")
    assert "unclosed left parenthesis" in condition["message"]
    assert events[-1]["reason"] == "InvalidConfiguration"
    assert rule_verdict(obj) not in ("", None)


@needs_promtool
def test_a_valid_rule_is_accepted(controller, store):
    install(store)
    obj, events = reconcile(controller, store, prometheus_rule("vector(1) > 0"))
    assert accepted(obj)["status"] == "True"
    assert events[-1]["reason"] == "RulesAccepted"
    assert rule_verdict(obj) == ""


def test_a_missing_prometheus_binary_is_reported_on_the_helm_release(controller, store):
    install(store)
    asyncio.run(controller.sync_prometheus())
    event, = store.events([("HelmRelease", "monitoring", "kube-prometheus-stack")])
    assert (event["type"], event["reason"]) == ("Warning", "PrometheusFailed")
    assert "apt-get install prometheus" in event["message"]
    assert not controller.process.running()


def test_without_the_chart_sync_runs_no_prometheus(controller, store):
    asyncio.run(controller.sync_prometheus())
    assert not controller.process.running()
    assert controller.port > 0  # reserved up front, so daemon.json can name it
