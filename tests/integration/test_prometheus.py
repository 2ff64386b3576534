"""The real `prometheus` binary driven by the lab: PromQL round trips, rules, reloads, adoption, the operator."""
from __future__ import annotations

import asyncio
import shutil
import time
from typing import Any, Callable, Iterator

import psutil
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from prometheus_client import CollectorRegistry, Counter, start_http_server

from lab_helpers.errors import LabError
from lab_helpers.gateway.metrics import RequestMetrics
from lab_helpers.gateway.proxy import Exchange
from lab_helpers.gateway.routes import Backend, RouteTarget
from lab_helpers.local.controllers.base import Context
from lab_helpers.local.controllers.monitoring import MonitoringController
from lab_helpers.local.store import Store
from lab_helpers.prom.client import PromClient
from lab_helpers.prom.process import PrometheusProcess, stop_prometheus

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus binary not installed")]

ALWAYS_FIRING = """groups:
- name: lab-test
  rules:
  - alert: AlwaysFiring
    expr: vector(1)
    for: 2s
    labels: {severity: none}
    annotations: {summary: fires as soon as it is loaded}
"""


BACKEND = Backend("http://127.0.0.1:1")


def serve(registry: CollectorRegistry) -> Iterator[int]:
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture()
def exporter() -> Iterator[int]:
    """A tiny /metrics endpoint: lab_test_requests_total{model="iris"} = 5."""
    registry = CollectorRegistry()
    Counter("lab_test_requests", "Requests the test exporter saw.", ["model"], registry=registry).labels("iris").inc(5)
    yield from serve(registry)


def static_job(name: str, port: int) -> dict[str, Any]:
    return {"job_name": name, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}


def config(*jobs: dict[str, Any]) -> dict[str, Any]:
    return {"global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "scrape_configs": list(jobs)}


@pytest.fixture()
def prometheus(tmp_path) -> Iterator[PrometheusProcess]:
    process = PrometheusProcess(tmp_path / "prometheus")
    yield process
    asyncio.run(process.stop())


def wait_until(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def test_a_scraped_series_comes_back_through_promql(prometheus, exporter):
    assert asyncio.run(prometheus.apply(config(static_job("exporter", exporter)), {})) == "started"
    with PromClient(prometheus.url) as prom:
        frame = prom.wait_for_series('lab_test_requests_total{model="iris"}', timeout=30)
        row, = frame.to_dict("records")
        assert (row["__name__"], row["job"], row["model"], row["value"]) == (
            "lab_test_requests_total", "exporter", "iris", 5.0)
        assert row["instance"] == f"127.0.0.1:{exporter}"
        wait_until(lambda: len(prom.query_range("lab_test_requests_total", start="-1m", step="1s")) >= 2)
        history = prom.query_range("lab_test_requests_total", start="-1m", step="1s")
        assert list(history.columns) == ["__name__", "instance", "job", "model", "timestamp", "value"]
        assert len(history) >= 2 and set(history["value"]) == {5.0}
        assert prom.targets()[["job", "health"]].to_dict("records") == [{"job": "exporter", "health": "up"}]
        with pytest.raises(LabError, match=r"Prometheus rejected the query 'sum\(rate\(x\[1m\]\)': bad_data: .*"
                                           r"parse error"):
            prom.query("sum(rate(x[1m])")


def test_an_always_firing_rule_goes_pending_then_firing(prometheus):
    asyncio.run(prometheus.apply(config(), {"lab-always.yaml": ALWAYS_FIRING}))
    with PromClient(prometheus.url) as prom:
        assert prom.rules()[["group", "name", "type"]].to_dict("records") == [
            {"group": "lab-test", "name": "AlwaysFiring", "type": "alerting"}]
        seen = set()

        def firing() -> bool:
            alerts = prom.alerts()
            seen.update(alerts["state"])
            return "firing" in seen

        assert wait_until(firing, timeout=30), f"states seen: {seen}"
        assert seen == {"pending", "firing"}
        alert, = prom.alerts().to_dict("records")
        assert (alert["alertname"], alert["severity"], alert["summary"]) == (
            "AlwaysFiring", "none", "fires as soon as it is loaded")
        rule, = prom.rules().to_dict("records")
        assert (rule["state"], rule["health"], rule["for_s"], rule["active_alerts"]) == ("firing", "ok", 2, 1)


def test_changes_are_reloaded_a_bad_config_is_refused_and_a_new_manager_adopts_the_server(tmp_path, exporter):
    directory = tmp_path / "prometheus"
    first = PrometheusProcess(directory)
    try:
        asyncio.run(first.apply(config(), {}))
        second = PrometheusProcess(directory)  # a restarted control plane
        assert second.pid == first.pid and second.port == first.port and second.running()
        assert asyncio.run(second.apply(config(), {})) == "adopted"  # reloaded once, after adopting
        assert asyncio.run(second.apply(config(), {})) == "unchanged"
        assert asyncio.run(second.apply(config(static_job("exporter", exporter)), {})) == "reloaded"
        with PromClient(second.url) as prom:
            assert wait_until(lambda: prom.query("up").to_dict("records"), timeout=15)[0]["job"] == "exporter"
        with pytest.raises(LabError, match="prometheus rejected the new configuration"):
            bad_rule = "groups: [{name: x, rules: [{alert: A, expr: 'up('}]}]"
            asyncio.run(second.apply(config(), {"lab-bad.yaml": bad_rule}))
        assert second.running()  # the previous configuration stays active
        with pytest.raises(LabError, match="prometheus rejected"):  # tried again, not forgotten
            asyncio.run(second.apply(config(), {"lab-bad.yaml": bad_rule}))
        assert asyncio.run(second.apply(config(), {})) == "reloaded"
    finally:
        pid = first.pid
        assert stop_prometheus(directory) is True
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def pod_and_service(port: int) -> list[dict[str, Any]]:
    labels = {"serving.kserve.io/inferenceservice": "iris", "component": "predictor", "app": "isvc.iris-predictor"}
    return [{"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": "iris-predictor", "namespace": "lab", "labels": labels},
             "spec": {"selector": {"app": "isvc.iris-predictor"},
                      "ports": [{"name": "iris-predictor", "port": 80, "targetPort": 8080}]}},
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "iris-predictor-abc", "namespace": "lab",
                                                              "labels": labels},
             "spec": {"containers": [{"name": "kserve-container"}]},
             "status": {"phase": "Running",
                        "lab": {"ports": {"8080": port}, "containers": {"kserve-container": {"pid": 1}}}}}]


def test_the_local_operator_scrapes_a_service_monitor_and_the_gateway(tmp_path, exporter):
    store = Store(tmp_path / "store.sqlite")
    for obj in [*pod_and_service(exporter),
                {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                 "metadata": {"name": "kube-prometheus-stack", "namespace": "monitoring"},
                 "spec": {"chart": {"spec": {"chart": "kube-prometheus-stack"}}}},
                {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
                 "metadata": {"name": "iris-predictor", "namespace": "lab",
                              "labels": {"release": "kube-prometheus-stack"}},
                 "spec": {"selector": {"matchLabels": {"component": "predictor"}},
                          "endpoints": [{"port": "iris-predictor", "interval": "1s"}]}}]:
        status = obj.pop("status", None)
        store.apply(obj)
        if status:
            store.set_status(obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"], status)
    store.set_status("HelmRelease", "monitoring", "kube-prometheus-stack", {
        "conditions": [{"type": "Ready", "status": "True"}], "history": [{"chartName": "kube-prometheus-stack"}]})
    gateway = RequestMetrics()
    for _ in range(3):
        gateway.observe(Exchange(request_id="r", host="iris-lab.example.com", method="POST", path_qs="/",
                                 remote="127.0.0.1", request_headers=CIMultiDictProxy(CIMultiDict()), request_body=b"",
                                 target=RouteTarget("iris-predictor", "lab", "r1", [BACKEND]), backend=BACKEND,
                                 status=200, duration_s=0.003, response_body=b""))
    gateway_port = next(gateway_server := serve(gateway.registry))
    controller = MonitoringController(Context(store, tmp_path), gateway_port=lambda: gateway_port)
    try:
        asyncio.run(controller.reconcile(store.get("ServiceMonitor", "lab", "iris-predictor")))
        asyncio.run(controller.sync_prometheus())
        events = store.events([("HelmRelease", "monitoring", "kube-prometheus-stack")])
        assert events[-1]["reason"] == "PrometheusStarted" and controller.process.url in events[-1]["message"]
        with PromClient(controller.process.url) as prom:
            up = prom.wait_for_series('up{service="iris-predictor"} == 1', timeout=30)
            row, = up.to_dict("records")
            assert (row["job"], row["namespace"], row["pod"], row["endpoint"]) == (
                "iris-predictor", "lab", "iris-predictor-abc", "iris-predictor")
            requests = prom.wait_for_series('envoy_cluster_upstream_rq{envoy_response_code="200"}', timeout=30)
            assert requests.to_dict("records")[0]["envoy_cluster_name"] == \
                "lab/cilium-gateway-lab-gateway/lab_iris-predictor_80"
            assert requests["job"].tolist() == ["lab-gateway"]
    finally:
        asyncio.run(controller.shutdown())
        gateway_server.close()
    assert not controller.process.running()
