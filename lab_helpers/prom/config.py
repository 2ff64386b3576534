"""The Prometheus configuration the Prometheus Operator would generate, for the local target.

On a cluster the operator turns each ServiceMonitor/PodMonitor endpoint into one scrape job
(``serviceMonitor/<ns>/<name>/<i>``, ``podMonitor/<ns>/<name>/<i>``) with Kubernetes service
discovery and relabelling, and each PrometheusRule into a rule file. The local target has no
Kubernetes API for Prometheus to discover from, so discovery and the operator's relabelling run
here, in Python, over the stored Services and Pods: each target becomes a ``static_configs`` entry
carrying the labels the operator's relabelling produces (``namespace``, ``service``, ``pod``,
``container``, ``endpoint``, ``job``; ``instance`` is the address) plus the
``__meta_kubernetes_*`` labels discovery would attach, so an endpoint's ``relabelings`` written
for a cluster keep working. Auth and TLS fields are ignored: everything is plain HTTP on loopback.

Address mapping: every local pod is a set of processes on 127.0.0.1, and the kubelet maps each
container port the pod declares or its image exposes to a loopback host port (``status.lab.ports``).
An endpoint that resolves to a container port (a Service ``targetPort``, or a port name the pod
declares) is scraped at ``127.0.0.1:<its host port>``; a container port with no mapping has no
process behind it locally, so the target is dropped with that reason.

As on a cluster, a PodMonitor only finds ports the pod declares (``spec.containers[].ports``);
KServe's built-in runtimes declare none (the ServingRuntimes of the KServe chart list no ``ports``),
so a PodMonitor on a predictor drops every pod and a ServiceMonitor on the ``<isvc>-predictor``
Service is the way to scrape it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import yaml

from ..local.pods import port_mapping

from ..errors import LabError

LOOPBACK = "127.0.0.1"
DEFAULT_PATH = "/metrics"
_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_DURATION_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")
# Relabel config fields: the CRD's camelCase -> Prometheus' snake_case.
_RELABEL_KEYS = {"sourceLabels": "source_labels", "targetLabel": "target_label", "separator": "separator",
                 "regex": "regex", "modulus": "modulus", "replacement": "replacement", "action": "action"}
# Rule group fields Prometheus reads; `partial_response_strategy` is Thanos-only (the operator drops it).
_THANOS_ONLY = ("partial_response_strategy",)


@dataclass(frozen=True)
class Target:
    """One scrape target: loopback address and the labels it is scraped with."""

    address: str
    labels: dict[str, str]


@dataclass(frozen=True)
class Dropped:
    """A pod a monitor selected that yields no target, and why (what Prometheus' target page would hide)."""

    pod: str
    reason: str


@dataclass
class ScrapeJob:
    """One endpoint of one monitor: the scrape job the operator would generate for it."""

    name: str
    settings: dict[str, Any]
    selected: list[str] = field(default_factory=list)  # the Services (ServiceMonitor) or pods (PodMonitor) selected
    targets: list[Target] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    invalid: str = ""

    def to_config(self) -> dict[str, Any]:
        return {"job_name": self.name, **self.settings,
                "static_configs": [{"targets": [t.address], "labels": t.labels} for t in self.targets]}


def parse_duration(text: str, where: str) -> float:
    """Seconds in a Prometheus duration such as ``30s``, ``1m30s`` or ``500ms``."""
    match = _DURATION.match(text or "")
    if not text or not match or not any(match.groups()):
        raise LabError(f"{where}: {text!r} is not a Prometheus duration (e.g. 15s, 1m, 500ms)")
    return sum(int(g) * unit for g, unit in zip(match.groups(), _DURATION_UNITS) if g)


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str], where: str = "selector") -> bool:
    """A Kubernetes LabelSelector (matchLabels + matchExpressions) against a label set.

    An empty selector selects everything, as for a monitor's ``selector: {}``.
    """
    selector = selector or {}
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for index, expression in enumerate(selector.get("matchExpressions") or []):
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        if operator == "In":
            ok = key in labels and labels[key] in values
        elif operator == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif operator == "Exists":
            ok = key in labels
        elif operator == "DoesNotExist":
            ok = key not in labels
        else:
            raise LabError(f"{where}.matchExpressions[{index}].operator: {operator!r} is not one of "
                           "In, NotIn, Exists, DoesNotExist")
        if not ok:
            return False
    return True


def _ref(obj: dict[str, Any]) -> str:
    return f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return obj["metadata"].get("labels") or {}


def _in_namespaces(monitor: dict[str, Any], obj: dict[str, Any]) -> bool:
    """``namespaceSelector``: ``any: true``, ``matchNames``, or (empty) the monitor's own namespace."""
    selector = monitor["spec"].get("namespaceSelector") or {}
    namespace = obj["metadata"].get("namespace", "")
    if selector.get("any"):
        return True
    names = selector.get("matchNames") or [monitor["metadata"].get("namespace", "")]
    return namespace in names


def _declared_ports(pod: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(container name, port) for every containerPort the pod declares."""
    return [(container.get("name", ""), port) for container in (pod.get("spec") or {}).get("containers") or []
            for port in container.get("ports") or []]


def _meta_name(key: str) -> str:
    return _LABEL_CHARS.sub("_", key)


def _pod_meta(pod: dict[str, Any]) -> dict[str, str]:
    """The ``__meta_kubernetes_pod_*`` labels Kubernetes service discovery attaches to a pod's targets."""
    meta = {"__meta_kubernetes_namespace": pod["metadata"].get("namespace", ""),
            "__meta_kubernetes_pod_name": pod["metadata"]["name"],
            "__meta_kubernetes_pod_ip": LOOPBACK,
            "__meta_kubernetes_pod_phase": (pod.get("status") or {}).get("phase", ""),
            "__meta_kubernetes_pod_ready": str(_pod_ready(pod)).lower()}
    for key, value in _labels(pod).items():
        meta[f"__meta_kubernetes_pod_label_{_meta_name(key)}"] = value
        meta[f"__meta_kubernetes_pod_labelpresent_{_meta_name(key)}"] = "true"
    for key, value in (pod["metadata"].get("annotations") or {}).items():
        meta[f"__meta_kubernetes_pod_annotation_{_meta_name(key)}"] = value
    return meta


def _pod_ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _running(pod: dict[str, Any]) -> bool:
    """Pods Prometheus keeps targets for: not finished (the operator drops Succeeded/Failed pods)."""
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _local_address(pod: dict[str, Any], container_port: int) -> tuple[str | None, str]:
    """(address, reason it has none): the host port the kubelet mapped the container port to."""
    mapping = port_mapping(pod)
    if not mapping:
        return None, ""  # no process yet: the kubelet has not started the pod
    if container_port not in mapping:
        served = ", ".join(str(p) for p in sorted(mapping))
        return None, (f"container port {container_port} has no process behind it on the local target (the pod "
                      f"serves {served}: the ports it declares or its image exposes)")
    return f"{LOOPBACK}:{mapping[container_port]}", ""


def _relabel(rules: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    out = []
    for rule in rules or []:
        converted = {_RELABEL_KEYS.get(key, key): value for key, value in rule.items()}
        if "action" in converted:
            converted["action"] = str(converted["action"]).lower()
        out.append(converted)
    return out


def _job_settings(endpoint: dict[str, Any], where: str,
                  default_interval: str, default_timeout: str) -> tuple[dict[str, Any], str]:
    """Per-job scrape settings, and why the endpoint is invalid ("" when valid)."""
    interval = endpoint.get("interval") or default_interval
    timeout = endpoint.get("scrapeTimeout") or default_timeout
    try:
        interval_s, timeout_s = parse_duration(interval, f"{where}.interval"), \
            parse_duration(timeout, f"{where}.scrapeTimeout")
    except LabError as exc:
        return {}, str(exc)
    if endpoint.get("scrapeTimeout") and timeout_s > interval_s:
        return {}, f"{where}: scrapeTimeout {timeout} is longer than interval {interval}"
    settings: dict[str, Any] = {"metrics_path": endpoint.get("path") or DEFAULT_PATH,
                                "scrape_interval": interval,
                                "scrape_timeout": timeout if timeout_s <= interval_s else interval}
    if endpoint.get("honorLabels") is not None:
        settings["honor_labels"] = bool(endpoint["honorLabels"])
    if endpoint.get("honorTimestamps") is not None:
        settings["honor_timestamps"] = bool(endpoint["honorTimestamps"])
    if endpoint.get("params"):
        settings["params"] = endpoint["params"]
    if endpoint.get("relabelings"):
        settings["relabel_configs"] = _relabel(endpoint["relabelings"])
    if endpoint.get("metricRelabelings"):
        settings["metric_relabel_configs"] = _relabel(endpoint["metricRelabelings"])
    return settings, ""


def _pods_selected_by(service: dict[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    selector = (service.get("spec") or {}).get("selector") or {}
    if not selector:
        return []
    namespace = service["metadata"].get("namespace", "")
    return [p for p in pods if p["metadata"].get("namespace", "") == namespace
            and all(_labels(p).get(k) == v for k, v in selector.items())]


def _select(monitor: dict[str, Any], objects: list[dict[str, Any]],
            where: str) -> tuple[list[dict[str, Any]], str]:
    """Objects in the monitor's namespaces matching its selector, or why the selector is invalid."""
    try:
        return [o for o in objects if _in_namespaces(monitor, o)
                and selector_matches(monitor["spec"].get("selector"), _labels(o), f"{where} spec.selector")], ""
    except LabError as exc:
        return [], str(exc)


def _container_port_for(pod: dict[str, Any], wanted: int | str) -> tuple[str, int] | None:
    """(container, containerPort) the pod declares under this port name or number."""
    for container, port in _declared_ports(pod):
        if _is_number(wanted):
            if int(port.get("containerPort", -1)) == int(wanted):
                return container, int(port["containerPort"])
        elif port.get("name") == wanted:
            return container, int(port["containerPort"])
    return None


def _is_number(port: int | str) -> bool:
    return isinstance(port, int) or str(port).isdigit()


def service_monitor_jobs(monitor: dict[str, Any], services: list[dict[str, Any]], pods: list[dict[str, Any]],
                         default_interval: str = "30s", default_timeout: str = "10s") -> list[ScrapeJob]:
    """The jobs of a ServiceMonitor: Services by selector and namespaces, then the pods behind them."""
    return _monitor_jobs(monitor, "ServiceMonitor", "endpoints", services,
                         lambda job, endpoint, service: _service_targets(job, monitor, endpoint, service, pods),
                         default_interval, default_timeout)


def _service_targets(job: ScrapeJob, monitor: dict[str, Any], endpoint: dict[str, Any], service: dict[str, Any],
                     pods: list[dict[str, Any]]) -> None:
    """Targets of one Service: each (pod, port) of its endpoints that the endpoint's port picks."""
    name = service["metadata"]["name"]
    all_ports = (service.get("spec") or {}).get("ports") or []
    ports = [p for p in all_ports if not endpoint.get("port") or p.get("name") == endpoint["port"]]
    if not ports:
        offered = ", ".join(repr(p.get("name")) for p in all_ports) or "none"
        job.dropped.append(Dropped(f"service {_ref(service)}", f"Service {name} has no port named "
                                   f"{endpoint['port']!r} (its ports: {offered})"))
        return
    job_label = _labels(service).get(monitor["spec"].get("jobLabel") or "", name)
    for pod in _pods_selected_by(service, pods):
        if not _running(pod):
            continue
        if endpoint.get("targetPort") is not None and not endpoint.get("port"):
            wanted = endpoint["targetPort"]
            reached = [(str(wanted), wanted, _container_port_for(pod, wanted))]
        else:
            reached = [(p.get("name") or str(p.get("port")), p.get("targetPort", p.get("port")),
                        _service_port_on(pod, p)) for p in ports]
        for endpoint_name, wanted, container_port in reached:
            if container_port is None:
                job.dropped.append(Dropped(_ref(pod), f"pod {_ref(pod)} declares no container port {wanted!r}, "
                                           f"which Service {name} targets"))
                continue
            _add_target(job, monitor, pod, container_port, endpoint_name, job_label, service)


def _service_port_on(pod: dict[str, Any], port: dict[str, Any]) -> tuple[str, int] | None:
    """(container, containerPort) a Service port reaches on this pod; None for a name the pod does not declare.

    A numeric targetPort needs no declaration (the endpoints controller uses the number as is); a
    named one must be declared, or the pod is left out of the Service's endpoints for that port.
    """
    target = port.get("targetPort", port.get("port"))
    declared = _container_port_for(pod, target)
    if declared is None and _is_number(target):
        return "", int(target)
    return declared


def _add_target(job: ScrapeJob, monitor: dict[str, Any], pod: dict[str, Any], container_port: tuple[str, int],
                endpoint_name: str, job_label: str, service: dict[str, Any] | None = None) -> None:
    """The target for one pod port, with the labels the operator's relabelling gives it, or why there is none."""
    container, number = container_port
    address, reason = _local_address(pod, number)
    if address is None:
        if reason:
            job.dropped.append(Dropped(_ref(pod), reason))
        return
    labels = {**_pod_meta(pod), "namespace": pod["metadata"].get("namespace", ""), "pod": pod["metadata"]["name"],
              "job": job_label, "endpoint": endpoint_name}
    if container:
        port_name = next((p.get("name", "") for c, p in _declared_ports(pod)
                          if c == container and int(p["containerPort"]) == number), "")
        labels.update({"container": container, "__meta_kubernetes_pod_container_name": container,
                       "__meta_kubernetes_pod_container_port_name": port_name,
                       "__meta_kubernetes_pod_container_port_number": str(number)})
    if service is not None:
        service_labels = _labels(service)
        labels.update({"service": service["metadata"]["name"],
                       "__meta_kubernetes_service_name": service["metadata"]["name"],
                       "__meta_kubernetes_endpoint_port_name": endpoint_name,
                       **{f"__meta_kubernetes_service_label_{_meta_name(k)}": v for k, v in service_labels.items()}})
        for key in monitor["spec"].get("targetLabels") or []:
            if key in service_labels:
                labels[_meta_name(key)] = service_labels[key]
    for key in monitor["spec"].get("podTargetLabels") or []:
        if key in _labels(pod):
            labels[_meta_name(key)] = _labels(pod)[key]
    job.targets.append(Target(address, labels))


def pod_monitor_jobs(monitor: dict[str, Any], pods: list[dict[str, Any]], default_interval: str = "30s",
                     default_timeout: str = "10s") -> list[ScrapeJob]:
    """The jobs of a PodMonitor: pods by selector and namespaces, on a port each pod declares."""
    return _monitor_jobs(monitor, "PodMonitor", "podMetricsEndpoints", [p for p in pods if _running(p)],
                         lambda job, endpoint, pod: _pod_target(job, monitor, endpoint, pod),
                         default_interval, default_timeout)


def _monitor_jobs(monitor: dict[str, Any], kind: str, endpoints_field: str, candidates: list[dict[str, Any]],
                  add_targets: Callable[[ScrapeJob, dict[str, Any], dict[str, Any]], None],
                  default_interval: str, default_timeout: str) -> list[ScrapeJob]:
    """One job per endpoint entry, named as the operator names them (`serviceMonitor/<ns>/<name>/<i>`)."""
    ref = _ref(monitor)
    where = f"{kind} {ref}"
    chosen, problem = _select(monitor, candidates, where)
    jobs = []
    for index, endpoint in enumerate(monitor["spec"].get(endpoints_field) or []):
        settings, invalid = _job_settings(endpoint, f"{where} spec.{endpoints_field}[{index}]",
                                          default_interval, default_timeout)
        job = ScrapeJob(f"{kind[0].lower()}{kind[1:]}/{ref}/{index}", settings, [_ref(o) for o in chosen],
                        invalid=problem or invalid)
        jobs.append(job)
        if not job.invalid:
            for obj in chosen:
                add_targets(job, endpoint, obj)
    return jobs


def _pod_target(job: ScrapeJob, monitor: dict[str, Any], endpoint: dict[str, Any], pod: dict[str, Any]) -> None:
    default_job = f"{monitor['metadata'].get('namespace', '')}/{monitor['metadata']['name']}"
    job_label = _labels(pod).get(monitor["spec"].get("jobLabel") or "", default_job)
    wanted = endpoint.get("port") or endpoint.get("portNumber") or endpoint.get("targetPort")
    if wanted is None:  # every declared port is a target
        declared = [(container, int(port["containerPort"])) for container, port in _declared_ports(pod)]
        if not declared:
            job.dropped.append(Dropped(_ref(pod), f"pod {_ref(pod)} declares no container port and the endpoint "
                                       "names none, so Prometheus would scrape the pod IP on port 80"))
        for container_port in declared:
            _add_target(job, monitor, pod, container_port, str(container_port[1]), job_label)
        return
    container_port = _container_port_for(pod, wanted)
    if container_port is None:
        job.dropped.append(Dropped(_ref(pod), f"pod {_ref(pod)} declares no container port {wanted!r} and a "
                                   "PodMonitor only finds declared ports, so Prometheus drops the target"))
        return
    _add_target(job, monitor, pod, container_port, str(wanted), job_label)


def monitor_jobs(monitor: dict[str, Any], services: list[dict[str, Any]], pods: list[dict[str, Any]],
                 default_interval: str = "30s", default_timeout: str = "10s") -> list[ScrapeJob]:
    """The scrape jobs of one ServiceMonitor or PodMonitor."""
    if monitor["kind"] == "ServiceMonitor":
        return service_monitor_jobs(monitor, services, pods, default_interval, default_timeout)
    if monitor["kind"] == "PodMonitor":
        return pod_monitor_jobs(monitor, pods, default_interval, default_timeout)
    raise LabError(f"{monitor['kind']} {_ref(monitor)} is not a ServiceMonitor or PodMonitor")


def scrape_config(monitors: Iterable[dict[str, Any]], services: list[dict[str, Any]], pods: list[dict[str, Any]],
                  extra_jobs: Iterable[dict[str, Any]] = (), *, scrape_interval: str = "2s",
                  evaluation_interval: str = "2s") -> dict[str, Any]:
    """The ``prometheus.yml`` (as a dict) for these monitors, plus `extra_jobs` as given.

    Jobs of an invalid endpoint are left out (the operator rejects such a monitor); `rule_files`
    is the caller's to add, since it names paths. Short intervals let a notebook see data fast.
    """
    timeout = scrape_interval
    jobs = [job.to_config()
            for monitor in sorted(monitors, key=lambda m: (m["kind"], _ref(m)))
            for job in monitor_jobs(monitor, services, pods, scrape_interval, timeout) if not job.invalid]
    return {"global": {"scrape_interval": scrape_interval, "scrape_timeout": timeout,
                       "evaluation_interval": evaluation_interval},
            "scrape_configs": [*jobs, *extra_jobs]}


def rule_file_name(rule: dict[str, Any]) -> str:
    return f"{rule['metadata'].get('namespace', '')}-{rule['metadata']['name']}.yaml"


def rule_file(rule: dict[str, Any]) -> str:
    """One PrometheusRule as a Prometheus rule file (YAML text)."""
    groups = []
    for group in (rule.get("spec") or {}).get("groups") or []:
        group = {k: v for k, v in group.items() if k not in _THANOS_ONLY}
        group["rules"] = [{**r, "expr": str(r["expr"])} if "expr" in r else r for r in group.get("rules") or []]
        groups.append(group)
    return yaml.safe_dump({"groups": groups}, sort_keys=False)


def rule_files(prometheus_rules: Iterable[dict[str, Any]]) -> dict[str, str]:
    """File name -> rule file text, one file per PrometheusRule (``<namespace>-<name>.yaml``)."""
    return {rule_file_name(rule): rule_file(rule) for rule in prometheus_rules}
