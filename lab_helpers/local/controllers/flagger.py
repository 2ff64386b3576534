"""Flagger on the local target: Canary objects driving a Deployment through a weighted HTTPRoute.

One pass per ``analysis.interval`` (at least 10 s, Flagger's minimum), the first when the Canary
appears, as Flagger's per-canary job runs ``advanceCanary`` on a ticker
(https://github.com/fluxcd/flagger/blob/main/pkg/controller/scheduler.go). A pass first makes what
the Canary needs (`flagger_objects`: the ``-primary`` Deployment, the apex/primary/canary Services,
the HTTPRoute of the ``gatewayapi`` provider); while the phase is Initializing it waits for the
primary to be ready, scales the target to 0, routes 100 % to primary and sets Initialized. After
that each pass is `flagger_analysis.advance`, with the checks run for real (`flagger_checks`:
MetricTemplates against the local Prometheus, webhooks through the local load tester), and its
decision applied: route weights, promotion (the target's template copied to primary), scaling, the
status fields Flagger writes (``phase``, ``canaryWeight``, ``failedChecks``, ``iterations``,
``lastAppliedSpec``, ``lastPromotedSpec``, the ``Promoted`` condition) and its events (reason
``Synced``). When the last pass ran is kept in ``status.lab.lastPass``, and the last warning in
``status.lab.lastWarning``, so a restarted control plane keeps the schedule and a reader sees why a
check failed without reading events.

Simplified: Deployment targets and the canary strategy only (no A/B, Blue/Green, mirroring,
``autoscalerRef`` or tracked ConfigMaps/Secrets); the ``kubernetes`` provider is treated like
``gatewayapi``; alerts are not sent.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from ...gateway.interceptor import parse_duration
from ...scaling.stamps import epoch
from ..store import now_iso
from .base import Context, Controller, Result, ns, spec_hash
from .flagger_analysis import AnalysisSpec, Decision, Readiness, advance
from .flagger_checks import CanaryChecks, HookRunner
from .flagger_objects import (CanaryConfigError, http_route, primary_deployment, primary_template, route_weights,
                              selector_label, service_name, services)

MIN_INTERVAL_S, DEFAULT_INTERVAL_S = 10.0, 60.0
DEFAULT_PROGRESS_DEADLINE_S = 600
PROMOTED_MESSAGES = {  # status.go MakeStatusConditions: (status, message) per phase
    "Initializing": ("Unknown", "New {kind} detected, starting initialization."),
    "Initialized": ("True", "{kind} initialization completed."),
    "Waiting": ("Unknown", "Waiting for approval."),
    "WaitingPromotion": ("Unknown", "Waiting for approval."),
    "Progressing": ("Unknown", "New revision detected, progressing canary analysis."),
    "Promoting": ("Unknown", "Canary analysis completed, starting primary rolling update."),
    "Finalising": ("Unknown", "Canary analysis completed, routing all traffic to primary."),
    "Succeeded": ("True", "Canary analysis completed successfully, promotion finished."),
    "Failed": ("False", "Canary analysis failed, {kind} scaled to zero."),
}


def analysis_interval(canary: dict[str, Any]) -> float:
    """``analysis.interval`` in seconds: 60 s when unset or unreadable, never below 10 s."""
    value = (canary["spec"].get("analysis") or {}).get("interval")
    try:
        seconds = parse_duration(value) if value else DEFAULT_INTERVAL_S
    except ValueError:
        seconds = DEFAULT_INTERVAL_S
    return max(MIN_INTERVAL_S, seconds or DEFAULT_INTERVAL_S)


def promoted_condition(phase: str, kind: str, previous: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The ``Promoted`` condition for a phase; unchanged (times too) while status and reason stay."""
    status, message = PROMOTED_MESSAGES.get(phase, ("Unknown", "New {kind} detected, starting initialization."))
    old = next((c for c in previous or [] if c.get("type") == "Promoted"), None)
    if old and old.get("status") == status and old.get("reason") == phase:
        return list(previous or [])
    now = now_iso()
    since = old["lastTransitionTime"] if old and old.get("status") == status else now
    return [{"type": "Promoted", "status": status, "reason": phase, "message": message.format(kind=kind),
             "lastUpdateTime": now, "lastTransitionTime": since}]


def deployment_readiness(deployment: dict[str, Any], deadline_s: float, now: float) -> Readiness:
    """deployment_ready.go ``isDeploymentReady``: rolled out and available, or why not; not retriable once
    it has lacked minimum availability for longer than the progress deadline."""
    spec, status = deployment["spec"], deployment.get("status") or {}
    replicas = int(spec.get("replicas", 1))
    if deployment["metadata"].get("generation", 1) > status.get("observedGeneration", 0):
        return Readiness(False, True, "waiting for rollout to finish: observed deployment generation less than "
                                      "desired generation")
    available = next((c for c in status.get("conditions") or [] if c["type"] == "Available"), None)
    retriable = True
    if available and available.get("status") == "False" and available.get("reason") == "MinimumReplicasUnavailable":
        stamp = available.get("lastTransitionTime")
        retriable = not stamp or now - epoch(stamp) <= deadline_s
    updated = int(status.get("updatedReplicas", 0))
    if updated < replicas:
        return Readiness(False, retriable, f"waiting for rollout to finish: {updated} out of {replicas} new replicas "
                                           "have been updated")
    if int(status.get("replicas", 0)) > updated:
        return Readiness(False, retriable, f"waiting for rollout to finish: "
                                           f"{int(status['replicas']) - updated} old replicas are pending termination")
    if int(status.get("availableReplicas", 0)) < updated:
        return Readiness(False, retriable, f"waiting for rollout to finish: {status.get('availableReplicas', 0)} of "
                                           f"{updated} (readyThreshold 100%) updated replicas are available")
    return Readiness(True)


class CanaryController(Controller):
    kinds = ("Canary",)
    owns = ("Deployment", "Service", "HTTPRoute")
    watches = ("Deployment", "MetricTemplate")

    def __init__(self, ctx: Context, prometheus_url: Callable[[], str | None], loadtester: HookRunner,
                 clock: Callable[[], float] = time.time):
        super().__init__(ctx)
        self.prometheus_url = prometheus_url
        self.loadtester = loadtester
        self.clock = clock

    async def reconcile(self, canary: dict[str, Any]) -> Result:
        interval = analysis_interval(canary)
        last = ((canary.get("status") or {}).get("lab") or {}).get("lastPass")
        now = self.clock()
        if last is not None and now - last < interval:
            return Result(interval - (now - last))
        warnings = await self._pass(canary, now)
        self._write_status(canary, {}, now, warnings)
        return Result(interval)

    async def _pass(self, canary: dict[str, Any], now: float) -> list[str]:
        """One advanceCanary; the warnings it recorded."""
        status = canary.get("status") or {}
        ref = canary["spec"]["targetRef"]
        if not status.get("phase"):
            canary = self._write_status(canary, {"phase": "Initializing"}, now, [])
        if ref.get("kind", "Deployment") != "Deployment":
            return self._warn(canary, [f"the local Flagger drives Deployment targets only, not {ref.get('kind')}"])
        target = self.store.find("Deployment", ns(canary), ref["name"])
        if target is None:
            return self._warn(canary, [f"deployment {ref['name']}.{ns(canary)} get query error: deployments.apps "
                                       f"\"{ref['name']}\" not found"])
        try:
            selector_label(target)
        except CanaryConfigError as exc:
            return self._warn(canary, [f"getSelectorLabel failed: {exc}"])
        primary = self._ensure_primary(canary, target)
        for service in services(canary, target):
            self.store.apply(service)
        deadline = float(canary["spec"].get("progressDeadlineSeconds") or DEFAULT_PROGRESS_DEADLINE_S)
        if canary["status"].get("phase") == "Initializing":
            return self._initialize(canary, target, primary, deadline, now)
        route = self._ensure_route(canary)
        analysis = AnalysisSpec.of(canary["spec"].get("analysis") or {}, analysis_interval(canary))
        checks = CanaryChecks(canary, self.store, self.prometheus_url, self.loadtester)
        primary_ready = deployment_readiness(primary, deadline, now)
        if primary_ready.ready and int(primary["spec"].get("replicas", 1)) == 0:
            primary_ready = Readiness(False, False, f"halt {canary['metadata']['name']}.{ns(canary)} advancement: "
                                                    "primary deployment is scaled to zero")
        elif not primary_ready.ready:
            primary_ready = Readiness(False, primary_ready.retriable,
                                      f"{ref['name']}-primary.{ns(canary)} not ready: {primary_ready.message}")
        canary_ready = deployment_readiness(target, deadline, now)
        if not canary_ready.ready:
            canary_ready = Readiness(False, canary_ready.retriable, f"canary deployment {ref['name']}.{ns(canary)} "
                                                                    f"not ready: {canary_ready.message}")
        decision = await advance(canary, analysis, checks, target_changed=self._target_changed(canary, target),
                                 primary=primary_ready, canary_ready=canary_ready,
                                 canary_weight=route_weights(route, canary)[1])
        return self._apply(canary, target, primary, decision, now)

    def _initialize(self, canary: dict[str, Any], target: dict[str, Any], primary: dict[str, Any], deadline: float,
                    now: float) -> list[str]:
        """Primary ready -> target scaled to 0, all traffic to primary, phase Initialized."""
        ready = deployment_readiness(primary, deadline, now)
        if not ready.ready:
            return self._warn(canary, [f"{primary['metadata']['name']}.{ns(canary)} not ready: {ready.message}"])
        self.store.scale("Deployment", ns(target), target["metadata"]["name"], 0)
        if self.store.find("HTTPRoute", ns(canary), service_name(canary)) is None:
            self.store.apply(http_route(canary, 100, 0))
        applied = spec_hash(target["spec"]["template"])
        self._write_status(canary, {"phase": "Initialized", "canaryWeight": 0, "failedChecks": 0, "iterations": 0,
                                    "lastAppliedSpec": applied, "lastPromotedSpec": applied}, now, [])
        self.store.record_event(canary, "Synced", f"Initialization done! {canary['metadata']['name']}.{ns(canary)}")
        return []

    def _ensure_primary(self, canary: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
        name = f"{target['metadata']['name']}-primary"
        existing = self.store.find("Deployment", ns(canary), name)
        return existing if existing is not None else self.store.apply(primary_deployment(canary, target))

    def _ensure_route(self, canary: dict[str, Any]) -> dict[str, Any]:
        """The HTTPRoute, made again (100 % primary) if someone deleted it; its weights are kept otherwise."""
        route = self.store.find("HTTPRoute", ns(canary), service_name(canary))
        if route is None:
            route = self.store.apply(http_route(canary, 100, 0))
        return route

    def _target_changed(self, canary: dict[str, Any], target: dict[str, Any]) -> bool:
        return spec_hash(target["spec"]["template"]) != (canary.get("status") or {}).get("lastAppliedSpec")

    def _apply(self, canary: dict[str, Any], target: dict[str, Any], primary: dict[str, Any], decision: Decision,
               now: float) -> list[str]:
        if decision.routes is not None:
            self.store.apply(http_route(canary, *decision.routes))
        if decision.promote:  # Promote: the template, and the target's replicas (there is no autoscalerRef here)
            replicas = int(target["spec"].get("replicas") or 0) or int(primary["spec"].get("replicas") or 1)
            primary = dict(primary, spec={**primary["spec"], "template": primary_template(target), "replicas": replicas})
            self.store.apply(primary)
        if decision.scale_target == 0:
            self.store.scale("Deployment", ns(target), target["metadata"]["name"], 0)
        elif decision.scale_target is not None:
            replicas = int(target["spec"].get("replicas") or 0) or int(primary["spec"].get("replicas") or 0) or 1
            self.store.scale("Deployment", ns(target), target["metadata"]["name"], replicas)
        for type_, message in decision.events:
            self.store.record_event(canary, "Synced", message, type_)
        changes = {k: v for k, v in decision.status.items() if k not in ("applySpec", "promoteSpec")}
        if decision.status.get("applySpec"):
            changes["lastAppliedSpec"] = spec_hash(target["spec"]["template"])
        if decision.status.get("promoteSpec"):
            changes["lastPromotedSpec"] = (canary.get("status") or {}).get("lastAppliedSpec")
        if changes:
            self._write_status(canary, changes, now, [])
        return [message for type_, message in decision.events if type_ == "Warning"]

    def _warn(self, canary: dict[str, Any], messages: list[str]) -> list[str]:
        for message in messages:
            self.store.record_event(canary, "Synced", message, "Warning")
        return messages

    def _write_status(self, canary: dict[str, Any], changes: dict[str, Any], now: float,
                      warnings: list[str]) -> dict[str, Any]:
        """Merge `changes` into the stored status (read fresh: a pass writes it more than once)."""
        stored = self.store.find("Canary", ns(canary), canary["metadata"]["name"]) or canary
        status = dict(stored.get("status") or {})
        phase_before = status.get("phase")
        status.update(changes)
        if changes:
            status["lastTransitionTime"] = now_iso()
        if status.get("phase") and (status.get("phase") != phase_before or not status.get("conditions")):
            status["conditions"] = promoted_condition(status["phase"], canary["spec"]["targetRef"].get(
                "kind", "Deployment"), status.get("conditions"))
        lab = dict(status.get("lab") or {})
        lab["lastPass"] = now
        if warnings:
            lab["lastWarning"] = warnings[-1]
        elif not changes:  # the end of a pass that found nothing wrong
            lab.pop("lastWarning", None)
        status["lab"] = lab
        stored = self.store.set_status("Canary", ns(canary), canary["metadata"]["name"], status) or stored
        return stored
