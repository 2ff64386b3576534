"""Scrape configuration and rule files generated from monitors, as the Prometheus Operator would."""
from __future__ import annotations

from typing import Any

import pytest
import yaml

from lab_helpers.errors import LabError
from lab_helpers.prom.config import (
    monitor_jobs,
    parse_duration,
    rule_files,
    scrape_config,
    selector_matches,
)

ISVC_LABELS = {"serving.kserve.io/inferenceservice": "iris", "component": "predictor"}


def pod(name: str, namespace: str = "lab", port: int | None = 41001, ports: list[dict] | None = None,
        phase: str = "Running", labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A predictor pod as the local KServe controller and kubelet make it (no declared ports by default)."""
    container: dict[str, Any] = {"name": "kserve-container"}
    if ports is not None:
        container["ports"] = ports
    status: dict[str, Any] = {"phase": phase, "conditions": [{"type": "Ready", "status": "True"}]}
    if port:
        status["lab"] = {"ports": {"8080": port}, "containers": {"kserve-container": {"pid": 1}}}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": labels or {**ISVC_LABELS, "app": "isvc.iris-predictor"}},
            "spec": {"containers": [container]}, "status": status}


def service(name: str = "iris-predictor", namespace: str = "lab", target_port: int | str = 8080,
            labels: dict[str, str] | None = None) -> dict[str, Any]:
    """KServe's predictor Service: one port named after the Service, targeting 8080."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or dict(ISVC_LABELS)},
            "spec": {"selector": {"app": "isvc.iris-predictor"},
                     "ports": [{"name": name, "port": 80, "targetPort": target_port, "protocol": "TCP"}]}}


def service_monitor(endpoints: list[dict] | None = None, namespace: str = "lab", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": {"name": "iris", "namespace": namespace, "labels": {"release": "kube-prometheus-stack"}},
            "spec": {"selector": {"matchLabels": dict(ISVC_LABELS)},
                     "endpoints": endpoints or [{"port": "iris-predictor", "path": "/metrics"}], **spec}}


def pod_monitor(endpoint: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
            "metadata": {"name": "iris-pods", "namespace": "lab"},
            "spec": {"selector": {"matchLabels": dict(ISVC_LABELS)}, "podMetricsEndpoints": [endpoint], **spec}}


def test_service_monitor_scrapes_the_pod_behind_the_service_on_its_loopback_port():
    job, = monitor_jobs(service_monitor(), [service()], [pod("iris-predictor-abc")])
    target, = job.targets
    assert job.name == "serviceMonitor/lab/iris/0"
    assert target.address == "127.0.0.1:41001"
    public = {k: v for k, v in target.labels.items() if not k.startswith("__")}
    assert public == {"namespace": "lab", "service": "iris-predictor", "pod": "iris-predictor-abc",
                      "job": "iris-predictor", "endpoint": "iris-predictor"}
    assert target.labels["__meta_kubernetes_pod_label_serving_kserve_io_inferenceservice"] == "iris"
    assert job.dropped == [] and job.selected == ["lab/iris-predictor"]


def test_job_label_comes_from_the_service_label_named_by_job_label():
    labelled = service(labels={**ISVC_LABELS, "app.kubernetes.io/name": "iris-model"})
    job, = monitor_jobs(service_monitor(jobLabel="app.kubernetes.io/name"), [labelled], [pod("p")])
    assert job.targets[0].labels["job"] == "iris-model"


def test_namespace_selector_defaults_to_the_monitors_own_namespace():
    other = service(namespace="other")
    pods = [pod("a", namespace="other")]
    assert monitor_jobs(service_monitor(), [other], pods)[0].targets == []
    named = service_monitor(namespaceSelector={"matchNames": ["other"]})
    assert len(monitor_jobs(named, [other], pods)[0].targets) == 1
    assert len(monitor_jobs(service_monitor(namespaceSelector={"any": True}), [other], pods)[0].targets) == 1


def test_match_expressions_select_services():
    expression = {"matchExpressions": [{"key": "component", "operator": "In", "values": ["predictor"]},
                                       {"key": "canary", "operator": "DoesNotExist"}]}
    job, = monitor_jobs(service_monitor(selector=expression), [service()], [pod("a")])
    assert len(job.targets) == 1
    excluded = {"matchExpressions": [{"key": "component", "operator": "NotIn", "values": ["predictor"]}]}
    assert monitor_jobs(service_monitor(selector=excluded), [service()], [pod("a")])[0].targets == []


def test_an_unknown_selector_operator_makes_the_monitor_invalid_not_the_whole_config():
    bad = service_monitor(selector={"matchExpressions": [{"key": "a", "operator": "Like", "values": ["b"]}]})
    job, = monitor_jobs(bad, [service()], [pod("a")])
    assert "operator: 'Like' is not one of In, NotIn, Exists, DoesNotExist" in job.invalid
    assert scrape_config([bad], [service()], [pod("a")])["scrape_configs"] == []


def test_selector_matches_an_empty_selector_to_everything():
    assert selector_matches({}, {"any": "label"}) and selector_matches(None, {})
    with pytest.raises(LabError, match="operator"):
        selector_matches({"matchExpressions": [{"key": "a", "operator": "Gt"}]}, {})


def test_a_service_port_name_that_does_not_exist_drops_the_service_and_says_which_ports_it_has():
    job, = monitor_jobs(service_monitor([{"port": "http"}]), [service()], [pod("a")])
    assert job.targets == []
    assert "Service iris-predictor has no port named 'http' (its ports: 'iris-predictor')" in job.dropped[0].reason


def test_a_named_service_target_port_needs_a_declared_container_port():
    named = service(target_port="http1")
    job, = monitor_jobs(service_monitor(), [named], [pod("a")])
    assert job.targets == []
    assert job.dropped[0].reason == "pod lab/a declares no container port 'http1', which Service iris-predictor targets"
    declared = pod("b", ports=[{"name": "http1", "containerPort": 8080}])
    target, = monitor_jobs(service_monitor(), [named], [declared])[0].targets
    assert target.address == "127.0.0.1:41001" and target.labels["container"] == "kserve-container"


def test_a_container_port_other_than_8080_has_no_local_process_and_is_dropped_with_that_reason():
    job, = monitor_jobs(service_monitor(), [service(target_port=8082)], [pod("a")])
    assert job.targets == []
    assert "container port 8082 has no process behind it on the local target" in job.dropped[0].reason


def test_pods_without_a_runtime_process_or_finished_give_no_target_and_no_warning():
    pods = [pod("starting", port=None), pod("done", phase="Succeeded")]
    job, = monitor_jobs(service_monitor(), [service()], pods)
    assert job.targets == [] and job.dropped == []


def test_pod_monitor_drops_pods_that_do_not_declare_the_port_as_prometheus_does():
    job, = monitor_jobs(pod_monitor({"port": "http1"}), [], [pod("iris-predictor-abc")])
    assert job.name == "podMonitor/lab/iris-pods/0" and job.targets == []
    assert job.dropped[0].pod == "lab/iris-predictor-abc"
    assert "declares no container port 'http1'" in job.dropped[0].reason


def test_pod_monitor_on_a_declared_port_gets_the_operators_labels():
    declared = pod("iris-predictor-abc", ports=[{"name": "http1", "containerPort": 8080}])
    for endpoint in ({"port": "http1"}, {"portNumber": 8080}):
        target, = monitor_jobs(pod_monitor(endpoint), [], [declared])[0].targets
        public = {k: v for k, v in target.labels.items() if not k.startswith("__")}
        assert public["job"] == "lab/iris-pods"  # <namespace>/<podmonitor name>, as the operator sets it
        assert (public["namespace"], public["pod"], public["container"]) == ("lab", "iris-predictor-abc",
                                                                            "kserve-container")
        assert target.labels["__meta_kubernetes_pod_container_port_name"] == "http1"


def test_pod_monitor_without_a_port_scrapes_every_declared_port_and_drops_pods_declaring_none():
    pods = [pod("declares", ports=[{"containerPort": 8080}]), pod("declares-none")]
    job, = monitor_jobs(pod_monitor({"path": "/metrics"}), [], pods)
    assert [(t.labels["pod"], t.labels["endpoint"]) for t in job.targets] == [("declares", "8080")]
    assert [d.pod for d in job.dropped] == ["lab/declares-none"]
    assert "port 80" in job.dropped[0].reason


def test_endpoint_settings_become_job_settings_with_relabelings_in_prometheus_spelling():
    endpoint = {"port": "iris-predictor", "path": "/custom", "interval": "5s", "honorLabels": True,
                "metricRelabelings": [{"sourceLabels": ["__name__"], "regex": "go_.*", "action": "Drop"}]}
    config = monitor_jobs(service_monitor([endpoint]), [service()], [pod("a")])[0].to_config()
    assert (config["metrics_path"], config["scrape_interval"], config["scrape_timeout"]) == ("/custom", "5s", "5s")
    assert config["honor_labels"] is True
    assert config["metric_relabel_configs"] == [{"source_labels": ["__name__"], "regex": "go_.*", "action": "drop"}]


def test_a_scrape_timeout_longer_than_the_interval_is_invalid():
    endpoint = {"port": "iris-predictor", "interval": "5s", "scrapeTimeout": "10s"}
    job, = monitor_jobs(service_monitor([endpoint]), [service()], [pod("a")])
    assert "scrapeTimeout 10s is longer than interval 5s" in job.invalid


def test_parse_duration():
    assert parse_duration("1m30s", "x") == 90 and parse_duration("500ms", "x") == 0.5
    with pytest.raises(LabError, match="x: '5 minutes' is not a Prometheus duration"):
        parse_duration("5 minutes", "x")


def test_scrape_config_has_short_global_intervals_job_per_endpoint_and_extra_jobs_last():
    gateway = {"job_name": "lab-gateway", "static_configs": [{"targets": ["127.0.0.1:9000"]}]}
    monitors = [service_monitor([{"port": "iris-predictor"}, {"port": "iris-predictor", "path": "/other"}])]
    config = scrape_config(monitors, [service()], [pod("a")], [gateway], scrape_interval="2s")
    assert config["global"] == {"scrape_interval": "2s", "scrape_timeout": "2s", "evaluation_interval": "2s"}
    assert [job["job_name"] for job in config["scrape_configs"]] == [
        "serviceMonitor/lab/iris/0", "serviceMonitor/lab/iris/1", "lab-gateway"]
    static = config["scrape_configs"][0]["static_configs"]
    assert static[0]["targets"] == ["127.0.0.1:41001"] and static[0]["labels"]["service"] == "iris-predictor"
    assert yaml.safe_load(yaml.safe_dump(config)) == config  # plain data Prometheus can read


def test_rule_files_one_per_prometheus_rule_without_thanos_fields():
    rule = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": "model-alerts", "namespace": "lab"},
            "spec": {"groups": [{"name": "g", "partial_response_strategy": "warn", "interval": "5s",
                                 "rules": [{"alert": "A", "expr": 1, "for": "10s", "labels": {"severity": "page"}},
                                           {"record": "r", "expr": "sum(up)"}]}]}}
    files = rule_files([rule])
    assert list(files) == ["lab-model-alerts.yaml"]
    assert yaml.safe_load(files["lab-model-alerts.yaml"]) == {"groups": [{
        "name": "g", "interval": "5s",
        "rules": [{"alert": "A", "expr": "1", "for": "10s", "labels": {"severity": "page"}},
                  {"record": "r", "expr": "sum(up)"}]}]}
