"""The Prometheus Operator of the local target: monitors and rules -> the configuration of a real Prometheus.

Once a kube-prometheus-stack HelmRelease is Ready, this controller keeps one real `prometheus`
process running (`prom.process`) with the configuration the operator would generate
(`prom.config`): a job per ServiceMonitor/PodMonitor endpoint, a rule file per PrometheusRule, and
one static job, ``lab-gateway``, scraping the gateway's ``/metrics``. That job stands in for the
Gateway API data plane: on a cluster the ``envoy_cluster_upstream_rq*`` series come from
cilium-envoy's metrics port; locally the gateway records the same names (`gateway.metrics`, ADR 0006).

As with kube-prometheus-stack, only objects carrying the Helm release's label
(``release: <release name>``) are selected, unless the release's values change the selectors.
Each object gets the operator's status (``status.bindings[].conditions[type=Accepted]``) and,
because a notebook cannot open Prometheus' targets page, events saying what was found, dropped
or ignored, and why.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Callable

from ...errors import LabError
from ...prom.config import ScrapeJob, monitor_jobs, rule_file, rule_files, scrape_config, selector_matches
from ...prom.process import PrometheusProcess, require_binary
from ..catalogue import CHARTS
from .base import DONE, Context, Controller, Loop, Result, condition, is_true, ns

CHART = "kube-prometheus-stack"
SCRAPE_INTERVAL = "2s"         # global scrape and rule evaluation interval: a notebook sees data in seconds
RETRY_SECONDS = 10.0           # after Prometheus failed to start or reload, before trying again
GATEWAY_JOB = "lab-gateway"
RUNBOOK = "runbooks/prometheus-no-data.md"
SERVICE_MONITOR_EXAMPLE = "manifests/monitoring/iris-servicemonitor.yaml"
# Chart values naming each kind's selector: (explicit selector, "nil selector uses the release label").
_SELECTOR_VALUES = {"ServiceMonitor": ("serviceMonitorSelector", "serviceMonitorSelectorNilUsesHelmValues"),
                    "PodMonitor": ("podMonitorSelector", "podMonitorSelectorNilUsesHelmValues"),
                    "PrometheusRule": ("ruleSelector", "ruleSelectorNilUsesHelmValues")}


def installed_release(store) -> dict[str, Any] | None:
    """The Ready HelmRelease that installed kube-prometheus-stack (the chart running prometheus-operator)."""
    charts = {name for name, chart in CHARTS.items() if "prometheus-operator" in chart.controllers}
    for release in store.list("HelmRelease"):
        history = (release.get("status") or {}).get("history") or [{}]
        if is_true(release) and history[0].get("chartName") in charts:
            return release
    return None


@dataclass(frozen=True)
class PrometheusInstance:
    """The Prometheus object kube-prometheus-stack creates, and the selectors it is given."""

    namespace: str
    name: str
    selectors: dict[str, dict[str, Any]]

    @classmethod
    def of_release(cls, release: dict[str, Any]) -> PrometheusInstance:
        """Names and selectors as the chart renders them for this HelmRelease.

        Flux names the Helm release ``spec.releaseName``, else ``[targetNamespace-]name``; the chart
        names the Prometheus ``<fullname>-prometheus``; a selector not set in the values is
        ``{matchLabels: {release: <release name>}}`` unless ``*NilUsesHelmValues`` is false.
        """
        spec = release["spec"]
        target_ns = spec.get("targetNamespace")
        release_name = spec.get("releaseName") or (f"{target_ns}-" if target_ns else "") + release["metadata"]["name"]
        values = ((spec.get("values") or {}).get("prometheus") or {}).get("prometheusSpec") or {}
        selectors = {}
        for kind, (explicit, nil_uses_release) in _SELECTOR_VALUES.items():
            if values.get(explicit):
                selectors[kind] = values[explicit]
            elif values.get(nil_uses_release, True):
                selectors[kind] = {"matchLabels": {"release": release_name}}
            else:
                selectors[kind] = {}
        fullname = release_name if CHART in release_name else f"{release_name}-{CHART}"
        return cls(target_ns or ns(release), f"{fullname[:26].rstrip('-')}-prometheus", selectors)

    def selects(self, obj: dict[str, Any]) -> bool:
        labels = obj["metadata"].get("labels") or {}
        return selector_matches(self.selectors[obj["kind"]], labels, f"Prometheus {self.ref} selector")

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def describe(self, kind: str) -> str:
        selector = self.selectors[kind]
        parts = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
        parts += [f"{e.get('key')} {e.get('operator')} {e.get('values', [])}"
                  for e in selector.get("matchExpressions") or []]
        return ", ".join(parts) or "everything"


def gateway_job(port: int) -> dict[str, Any]:
    """The static job scraping the gateway's Istio-named request metrics (the local mesh telemetry)."""
    return {"job_name": GATEWAY_JOB, "metrics_path": "/metrics", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}


class MonitoringController(Controller):
    """ServiceMonitor/PodMonitor/PrometheusRule -> status and events (`reconcile`), the Prometheus process (`sync`)."""

    kinds = ("ServiceMonitor", "PodMonitor", "PrometheusRule")
    watches = ("HelmRelease", "Service", "Pod")  # the selecting Prometheus, and what a monitor finds

    def __init__(self, ctx: Context, gateway_port: Callable[[], int | None] = lambda: None, binary: str = "prometheus",
                 promtool: str = "promtool"):
        super().__init__(ctx)
        self.process = PrometheusProcess(ctx.home / "prometheus", binary)
        self.gateway_port = gateway_port
        self.promtool = promtool

    @property
    def port(self) -> int:
        """Prometheus' loopback port, fixed before it starts (daemon.json `prometheus_port`)."""
        return self.process.port

    # --- per object: status and events -----------------------------------------------------------
    async def reconcile(self, obj: dict[str, Any]) -> Result:
        release = installed_release(self.store)
        if release is None:
            return DONE  # CRDs served but no operator: the object just sits there, as on a cluster
        instance = PrometheusInstance.of_release(release)
        kind = obj["kind"]
        if not instance.selects(obj):
            self._set_status(obj, None, "")
            self._report(obj, "NotSelected", f"Prometheus {instance.ref} ignores this {kind}: it selects {kind}s "
                                             f"labelled {instance.describe(kind)} (kube-prometheus-stack selects its "
                                             f"Helm release's label by default); see {RUNBOOK}", "Warning")
            return DONE
        if kind == "PrometheusRule":
            problem = await self._check_rule(obj)
            self._set_status(obj, instance, problem)
            groups = len(obj["spec"].get("groups") or [])
            self._report(obj, *(("InvalidConfiguration", f"rules not loaded: {problem}", "Warning") if problem else
                                ("RulesAccepted", f"{groups} rule group(s) passed promtool; Prometheus "
                                 f"{instance.ref} evaluates them every {SCRAPE_INTERVAL}", "Normal")))
            return DONE
        jobs = monitor_jobs(obj, self.store.list("Service"), self.store.list("Pod"), SCRAPE_INTERVAL, SCRAPE_INTERVAL)
        problem = next((job.invalid for job in jobs if job.invalid), "")
        self._set_status(obj, instance, problem)
        if problem:
            self._report(obj, "InvalidConfiguration", f"not scraped: {problem}", "Warning")
        else:
            self._report(obj, *_targets_summary(obj, jobs))
        return DONE

    def _set_status(self, obj: dict[str, Any], instance: PrometheusInstance | None, problem: str) -> None:
        """The operator's status: a binding to the Prometheus that selects the object, Accepted or not."""
        if instance is None:
            status: dict[str, Any] = {"bindings": []}
        else:
            previous = next(iter((obj.get("status") or {}).get("bindings") or []), {}).get("conditions")
            accepted = condition("Accepted", not problem, "InvalidConfiguration" if problem else "Accepted",
                                 problem, previous)
            accepted["observedGeneration"] = obj["metadata"].get("generation", 1)
            status = {"bindings": [{"group": "monitoring.coreos.com", "resource": "prometheuses",
                                    "name": instance.name, "namespace": instance.namespace,
                                    "conditions": [accepted]}]}
        self.store.set_status(obj["kind"], ns(obj), obj["metadata"]["name"], status)

    def _report(self, obj: dict[str, Any], reason: str, message: str, type_: str) -> None:
        """Record an event when what the object is told changes: compared with its last event, not a memo."""
        last = self.store.last_event(obj)
        if last is None or (last["reason"], last["message"]) != (reason, message):
            self.store.record_event(obj, reason, message, type_)

    async def _check_rule(self, rule: dict[str, Any]) -> str:
        """`promtool check rules` on the rule file (once per generation); "" when valid, else promtool's complaint."""
        checked = rule_verdict(rule)
        if checked is not None:
            return checked
        uid = rule["metadata"]["uid"]
        path = self.process.dir / "checks" / f"{uid}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(rule_file(rule))
        proc = await asyncio.create_subprocess_exec(require_binary(self.promtool), "check", "rules", str(path),
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output = (await proc.communicate())[0].decode(errors="replace")
        path.unlink()
        problem = ""
        if proc.returncode != 0:
            lines = [line.strip() for line in output.splitlines() if line.strip()]
            failed = lines[lines.index("FAILED:") + 1:] if "FAILED:" in lines else lines
            problem = " ".join(failed).replace(f"{path}: ", "").replace(str(path), "the rule file")
        return problem

    # --- the whole configuration: the Prometheus process --------------------------------------------
    async def sync_prometheus(self) -> Result:
        """Keep Prometheus running with the configuration of the selected monitors and valid rules."""
        release = installed_release(self.store)
        if release is None:
            if self.process.running():
                await self.process.stop()  # the chart was uninstalled
            return DONE
        instance = PrometheusInstance.of_release(release)
        objects = [o for kind in self.kinds for o in self.store.list(kind)]
        monitors = [o for o in objects if o["kind"] != "PrometheusRule" and instance.selects(o)]
        rules = [o for o in objects if o["kind"] == "PrometheusRule" and instance.selects(o) and rule_verdict(o) == ""]
        port = self.gateway_port()
        config = scrape_config(monitors, self.store.list("Service"), self.store.list("Pod"),
                               [gateway_job(port)] if port else [], scrape_interval=SCRAPE_INTERVAL,
                               evaluation_interval=SCRAPE_INTERVAL)
        try:
            outcome = await self.process.apply(config, rule_files(rules))
        except LabError as exc:
            self.store.record_event(release, "PrometheusFailed", f"Prometheus {instance.ref}: {exc}", "Warning")
            return Result(RETRY_SECONDS)
        if outcome == "started":
            self.store.record_event(release, "PrometheusStarted", f"Prometheus {instance.ref} serving at "
                                                                  f"{self.process.url} (pid {self.process.pid})")
        elif outcome == "adopted":
            self.store.record_event(release, "PrometheusAdopted", f"control plane restarted; Prometheus "
                                    f"{instance.ref} (pid {self.process.pid}) still serving at {self.process.url}, "
                                    "adopted with its data")

        return DONE

    async def shutdown(self) -> None:
        """Stop Prometheus (the daemon's `down` path; a killed daemon leaves it running to be adopted)."""
        await self.process.stop()


def rule_verdict(rule: dict[str, Any]) -> str | None:
    """The promtool verdict recorded in the rule's status for its current generation: "" valid, the problem
    otherwise, None when this generation was not checked yet. Status, not a memo, so a restart keeps it."""
    for binding in (rule.get("status") or {}).get("bindings") or []:
        for cond in binding.get("conditions") or []:
            if cond.get("type") == "Accepted" and cond.get("observedGeneration") == rule["metadata"].get("generation", 1):
                return "" if cond.get("status") == "True" else cond.get("message", "")
    return None


class PrometheusConfigLoop(Loop):
    """Regenerates Prometheus' configuration when monitors, rules or what they select change."""

    name = "prometheus-config"
    watches = ("HelmRelease", "ServiceMonitor", "PodMonitor", "PrometheusRule", "Service", "Pod")

    def __init__(self, monitoring: MonitoringController):
        self.monitoring = monitoring

    async def sync(self) -> Result:
        return await self.monitoring.sync_prometheus()


def _targets_summary(monitor: dict[str, Any], jobs: list[ScrapeJob]) -> tuple[str, str, str]:
    """(reason, message, type) telling what a monitor scrapes, what it dropped and why."""
    targets = [(job, t) for job in jobs for t in job.targets]
    dropped = [d for job in jobs for d in job.dropped]
    shown = ", ".join(f"{t.labels['namespace']}/{t.labels['pod']} at {t.address}{job.settings['metrics_path']}"
                      for job, t in targets[:3]) + (f" and {len(targets) - 3} more" if len(targets) > 3 else "")
    if dropped:
        hint = (f"; KServe's runtimes declare no ports: scrape the <isvc>-predictor Service with a ServiceMonitor "
                f"instead ({SERVICE_MONITOR_EXAMPLE})" if monitor["kind"] == "PodMonitor" else "")
        scraped = f"scraping {len(targets)} target(s): {shown}; " if targets else "no targets; "
        return ("TargetsDropped", f"{scraped}{len(dropped)} dropped: {dropped[0].reason}{hint}; see {RUNBOOK}",
                "Warning")
    if targets:
        return "TargetsDiscovered", f"scraping {len(targets)} target(s): {shown}", "Normal"
    what = "Service" if monitor["kind"] == "ServiceMonitor" else "pod"
    selected = sorted({ref for job in jobs for ref in job.selected})
    if selected:  # pods whose runtime process has not started yet, or a Service scaled to zero
        return "NoTargets", f"selects {what} {', '.join(selected)}: no runtime process to scrape yet", "Normal"
    return "NoTargets", f"selects no {what}: check its selector and namespaceSelector; see {RUNBOOK}", "Warning"
