"""The checks of one Flagger analysis pass: MetricTemplate queries against Prometheus, and webhooks.

Metrics as Flagger runs them (pkg/controller/scheduler_metrics.go ``runMetricChecks``, pkg/metrics
providers/prometheus.go ``RunQuery``): the template's query rendered with the Canary's model
(``{{ name }}``, ``{{ namespace }}``, ``{{ target }}``, ``{{ service }}``, ``{{ interval }}``,
``{{ variables.<k> }}``; an unknown key is an error, as Go's ``missingkey=error``), one instant
query, a single value compared with ``thresholdRange`` (or, without one, the legacy ``threshold`` as a
maximum, 0 when unset); an empty result or NaN is "no values found"
and fails the check, like any error. The messages are Flagger's.

Webhooks: a hook whose URL is the ``flagger-loadtester`` Service is handed to the local load tester
(`LoadTester`), which starts its ``cmd`` and answers at once, as the real one answers 202; any other
URL gets Flagger's JSON payload by POST (``name``, ``namespace``, ``phase``, ``checksum``, ``metadata``;
pkg/controller/webhook.go ``CallWebhook``), and an answer above 202 fails the hook, as Flagger's
``callWebhook`` decides. On a cluster Flagger calls them all over HTTP.

Simplified: the template's ``provider.address`` is not dialled: the local target has one Prometheus
and every template queries it; the payload's ``checksum`` covers the same fields (``trackedConfigs``,
``lastAppliedSpec``) with the lab's own hash, not Flagger's; builtin metrics (``request-success-rate``,
``request-duration``) are not computed: write them as MetricTemplates (notebook 06 does); a query that
returns several series fails as a query error here, where Flagger silently takes the last series' value.
"""
from __future__ import annotations

import asyncio
import math
import re
from typing import Any, Callable, Protocol

import httpx

from ...errors import LabError
from ...prom.client import PromClient
from ..store import Store
from .base import is_true, ns, spec_hash
from .flagger_objects import service_name

NO_VALUES = "no values found"
LOADTESTER_HOST = re.compile(r"^flagger-loadtester(\.|$)")
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][\w]*)(?:\.([A-Za-z_][\w]*))?\s*\}\}")


class HookRunner(Protocol):
    def submit(self, command: str, canary: str) -> None: ...


def render_query(template: str, model: dict[str, str], variables: dict[str, str]) -> str:
    """The template with Flagger's model filled in; a key it does not have raises ValueError."""

    def fill(match: re.Match[str]) -> str:
        key, sub = match.group(1), match.group(2)
        if key == "variables" and sub:
            if sub not in variables:
                raise ValueError(f"template excution failed: map has no entry for key \"{sub}\"")
            return variables[sub]
        if sub or key not in model:  # Go's parser rejects a function it does not know before anything runs
            line = template.count("\n", 0, match.start()) + 1
            raise ValueError(f"template parsing failed: template: tmpl:{line}: function \"{key}\" not defined")
        return model[key]

    return _VARIABLE.sub(fill, template)


def metric_model(canary: dict[str, Any], interval: str) -> dict[str, str]:
    """What ``toMetricModel`` gives a template."""
    target = canary["spec"]["targetRef"]["name"]
    return {"name": canary["metadata"]["name"], "namespace": ns(canary), "target": target,
            "service": service_name(canary), "interval": interval,
            "ingress": (canary["spec"].get("ingressRef") or {}).get("name") or target,
            "route": (canary["spec"].get("routeRef") or {}).get("name") or target}


class CanaryChecks:
    """`Checks` for one Canary against the local target's Prometheus and load tester."""

    def __init__(self, canary: dict[str, Any], store: Store, prometheus_url: Callable[[], str | None],
                 loadtester: HookRunner):
        self.canary, self.store = canary, store
        self.prometheus_url = prometheus_url
        self.loadtester = loadtester
        self.name = f"{canary['metadata']['name']}.{ns(canary)}"
        self.failed_metric: str | None = None  # the metric that failed this pass, for the status

    async def hooks(self, kind: str) -> list[str]:
        failures = []
        for hook in (self.canary["spec"].get("analysis") or {}).get("webhooks") or []:
            if (hook.get("type") or "rollout") != kind:
                continue
            error = await self._call(hook, kind)
            if error:
                failures.append(self._hook_failure(kind, hook["name"], error))
                if kind in ("rollout", "pre-rollout"):
                    break  # Flagger stops at the first failing hook of these kinds
        return failures

    def _hook_failure(self, kind: str, hook: str, error: str) -> str:
        if kind == "rollout":
            return f"Halt {self.name} advancement external check {hook} failed {error}"
        if kind == "pre-rollout":
            return f"Halt {self.name} advancement pre-rollout check {hook} failed {error}"
        if kind == "confirm-promotion":
            return f"Halt {self.name} advancement waiting for promotion approval {hook}"
        if kind == "confirm-rollout":
            return f"Halt {self.name} advancement waiting for approval {hook}"
        if kind == "confirm-traffic-increase":
            return f"Halt {self.name} advancement waiting for traffic increase approval {hook}"
        return f"Post-rollout hook {hook} failed {error}"

    async def _call(self, hook: dict[str, Any], kind: str) -> str | None:
        url = httpx.URL(hook.get("url", ""))
        metadata = hook.get("metadata") or {}
        if LOADTESTER_HOST.match(url.host or "") and url.path in ("", "/"):
            namespace = (url.host or "").split(".")[1] if "." in (url.host or "") else ns(self.canary)
            if not self._loadtester_installed(namespace):
                return (f"error: Post \"{url}\": no such host (no Ready HelmRelease of chart loadtester in namespace "
                        f"{namespace}: apply manifests/platform/flagger.yaml)")
            if metadata.get("type", "cmd") != "cmd" or not metadata.get("cmd"):
                return "the local load tester runs metadata.cmd commands only (type: cmd)"
            try:
                self.loadtester.submit(metadata["cmd"], self.name)
            except ValueError as exc:  # the tester answers 400 with why
                return f"error: 400 {exc}"
            return None
        status = self.canary.get("status") or {}
        payload = {"name": self.canary["metadata"]["name"], "namespace": ns(self.canary),
                   "phase": status.get("phase", ""),
                   "checksum": spec_hash([status.get("trackedConfigs"), status.get("lastAppliedSpec")]),
                   **({"metadata": metadata} if metadata else {})}
        try:
            async with httpx.AsyncClient(timeout=_seconds(hook.get("timeout"), 10.0)) as client:
                response = await client.post(str(url), json=payload)
        except httpx.HTTPError as exc:
            return f"error: {type(exc).__name__} calling {url}"
        return None if response.status_code <= 202 else f"error: {response.status_code} {response.text[:200]}"

    def _loadtester_installed(self, namespace: str) -> bool:
        return any(release["spec"].get("chart", {}).get("spec", {}).get("chart") == "loadtester"
                   and is_true(release) for release in self.store.list("HelmRelease", namespace))

    async def metrics(self) -> list[str]:
        for metric in (self.canary["spec"].get("analysis") or {}).get("metrics") or []:
            failure = await self._metric(metric)
            if failure:
                self.failed_metric = metric.get("name")
                return [failure]
        return []

    async def _metric(self, metric: dict[str, Any]) -> str | None:
        name = metric.get("name", "")
        ref = metric.get("templateRef")
        if not ref:
            return (f"Halt {self.name} advancement: metric {name} has no templateRef; the local Flagger checks "
                    "MetricTemplates only (write request-success-rate / request-duration as templates)")
        namespace = ref.get("namespace") or ns(self.canary)
        template = self.store.find("MetricTemplate", namespace, ref["name"])
        if template is None:
            return f"Metric template {ref['name']}.{namespace} error: metrictemplate.flagger.app \"{ref['name']}\" " \
                   "not found"
        try:
            query = render_query(template["spec"].get("query", ""),
                                 metric_model(self.canary, metric.get("interval") or "1m"),
                                 {k: str(v) for k, v in (metric.get("templateVariables") or {}).items()})
        except ValueError as exc:
            return f"Metric template {ref['name']}.{namespace} query render error: {exc}"
        try:
            value = await self._query(query)
        except LookupError:
            return f"Halt advancement no values found for custom metric: {name}: {NO_VALUES}"
        except LabError as exc:
            return f"Metric query failed for {name}: {exc}"
        bounds = metric.get("thresholdRange")
        if bounds is None:  # the legacy `threshold` (default 0) is a maximum when no range is given
            limit = float(metric.get("threshold") or 0)
            return f"Halt {self.name} advancement {name} {value:.2f} > {_go_float(limit)}" if value > limit else None
        if bounds.get("min") is not None and value < float(bounds["min"]):
            return f"Halt {self.name} advancement {name} {value:.2f} < {_go_float(bounds['min'])}"
        if bounds.get("max") is not None and value > float(bounds["max"]):
            return f"Halt {self.name} advancement {name} {value:.2f} > {_go_float(bounds['max'])}"
        return None

    async def _query(self, query: str) -> float:
        url = self.prometheus_url()
        if url is None:
            raise LabError("no Prometheus runs on the local target (install kube-prometheus-stack)")
        client = PromClient(url, timeout=5.0)
        try:
            frame = await asyncio.to_thread(client.query, query)  # the loop also runs the gateway
        finally:
            client.close()
        if len(frame) > 1:
            raise LabError(f"the query returned {len(frame)} series, a check needs one value: {query}")
        if frame.empty or math.isnan(float(frame["value"].iloc[0])):
            raise LookupError(NO_VALUES)
        return float(frame["value"].iloc[0])


def _go_float(value: Any) -> str:
    """A bound as Go's ``%v`` prints a float64 in Flagger's messages: 99 not 99.0, 0.1 as 0.1 (Go turns to
    exponent form from 1e+06 up, which no success-rate, latency or distance bound reaches)."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _seconds(value: Any, default: float) -> float:
    """A webhook ``timeout`` ("10s", "1m") in seconds."""
    if not value:
        return default
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(value).strip())
    if not match:
        return default
    number, unit = float(match.group(1)), match.group(2)
    return number * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
