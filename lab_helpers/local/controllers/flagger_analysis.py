"""One pass of Flagger's canary analysis, as a pure decision: what to route, scale, promote and record.

This is ``advanceCanary`` of Flagger's scheduler (pkg/controller/scheduler.go,
https://github.com/fluxcd/flagger/blob/main/pkg/controller/scheduler.go) for the *canary* strategy,
after initialisation, in the same order: a change of the target starts ``Progressing``; each pass
checks primary and canary readiness, restarts at weight 0 if the target changed mid-analysis,
finishes a promotion (``Promoting`` -> ``Finalising`` -> ``Succeeded``), rolls back once
``failedChecks >= threshold``, runs the pre-rollout hooks on the first step and the rollout hooks and
metrics on later ones (any failure: ``failedChecks + 1`` and the weight stays), then advances the
weight by one step or, at ``maxWeight``, copies the template to primary. Event texts are Flagger's
(all with reason ``Synced``).

The checks that talk to the world (hooks, metric queries, readiness) come in through `Checks`, so the
controller runs them for real and tests table-drive them. Not mirrored here: traffic mirroring,
A/B and Blue/Green (``iterations``), session affinity, alerts, and the ``rollback``/``event`` hooks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

TOTAL_WEIGHT = 100
ANALYSING = ("Progressing", "Waiting", "WaitingPromotion", "Promoting", "Finalising")


@dataclass(frozen=True)
class Readiness:
    ready: bool
    retriable: bool = True  # False: past the progress deadline (or primary scaled to zero): give up
    message: str = ""


class Checks(Protocol):
    async def hooks(self, kind: str) -> list[str]:
        """Run the webhooks of this type (``pre-rollout``, ``rollout``, ``confirm-rollout``, ...); failure events."""

    async def metrics(self) -> list[str]:
        """Run the builtin and MetricTemplate checks in order, stopping at the first failure; its events."""


@dataclass(frozen=True)
class AnalysisSpec:
    """``spec.analysis`` with Flagger's defaults (canary.go ``GetAnalysisInterval``, ``GetAnalysisThreshold``)."""

    interval_s: float = 60.0
    threshold: int = 1
    max_weight: int = 0
    step_weight: int = 0
    step_weights: tuple[int, ...] = ()
    step_weight_promotion: int = 0

    @classmethod
    def of(cls, analysis: dict[str, Any], interval_s: float) -> AnalysisSpec:
        return cls(interval_s=interval_s, threshold=int(analysis.get("threshold") or 1),
                   max_weight=int(analysis.get("maxWeight") or 0), step_weight=int(analysis.get("stepWeight") or 0),
                   step_weights=tuple(int(w) for w in analysis.get("stepWeights") or ()),
                   step_weight_promotion=int(analysis.get("stepWeightPromotion") or 0))

    def max(self) -> int:
        """The weight at which the canary is promoted (scheduler.go ``maxWeight``)."""
        if self.step_weights:
            return min(TOTAL_WEIGHT, self.step_weights[-1])
        return self.max_weight or TOTAL_WEIGHT

    def next_step(self, weight: int) -> int:
        """How much the next step adds (scheduler.go ``nextStepWeight``)."""
        if not self.step_weights:
            return self.step_weight
        if weight == 0:
            return self.step_weights[0]
        limit = TOTAL_WEIGHT - weight
        for current, following in zip(self.step_weights, self.step_weights[1:]):
            if current == weight:
                return min(limit, following - weight)
        return limit


@dataclass
class Decision:
    """What one pass decided. `status` holds only the fields that change; `routes` is (primary, canary)."""

    status: dict[str, Any] = field(default_factory=dict)
    routes: tuple[int, int] | None = None
    promote: bool = False               # copy the target's pod template to the primary
    scale_target: int | None = None     # 0: park the canary; 1: scale it up from zero
    events: list[tuple[str, str]] = field(default_factory=list)  # (Normal | Warning, message)

    def info(self, message: str) -> None:
        self.events.append(("Normal", message))

    def warn(self, message: str) -> None:
        self.events.append(("Warning", message))

    def halt(self, failures: list[str], status: dict[str, Any]) -> Decision:
        """Stop this pass on failed checks: their messages as warnings, and `status` to write."""
        self.events += [("Warning", message) for message in failures]
        self.status = status
        return self


async def advance(canary: dict[str, Any], spec: AnalysisSpec, checks: Checks, *, target_changed: bool,
            primary: Readiness, canary_ready: Readiness, canary_weight: int) -> Decision:
    """One pass for an initialised Canary; `target_changed` compares the target's template hash to
    ``status.lastAppliedSpec``; `canary_weight` is what the route sends the canary now."""
    status = canary.get("status") or {}
    phase = status.get("phase", "")
    name, namespace = canary["metadata"]["name"], canary["metadata"].get("namespace", "")
    target = canary["spec"]["targetRef"]["name"]
    decision = Decision()
    if phase not in ANALYSING and not target_changed:
        return decision  # Initialized, Succeeded or Failed with nothing new: wait for a change

    if not primary.ready:
        decision.warn(primary.message)
        if not primary.retriable:
            if phase in ("Promoting", "Finalising"):
                return await _failed_promotion(decision, target, namespace, primary.message, checks)
            return await _rollback(decision, canary, spec, checks, name, namespace)
        return decision

    if phase not in ("Progressing", "WaitingPromotion", "Promoting", "Finalising"):
        failures = await checks.hooks("confirm-rollout")
        if failures:
            return decision.halt(failures, {"phase": "Waiting"})
        decision.info(f"New revision detected! Scaling up {target}.{namespace}")
        decision.scale_target = 1
        decision.status = {"phase": "Progressing", "canaryWeight": 0, "failedChecks": 0, "iterations": 0,
                           "applySpec": True}
        return decision

    if phase in ("Progressing", "WaitingPromotion") and target_changed:
        decision.info(f"New revision detected! Restarting analysis for {target}.{namespace}")
        decision.routes = (TOTAL_WEIGHT, 0)
        decision.status = {"phase": "Progressing", "canaryWeight": 0, "failedChecks": 0, "iterations": 0,
                           "applySpec": True}
        return decision

    if not canary_ready.ready:
        decision.warn(canary_ready.message)
        if not canary_ready.retriable:
            return await _rollback(decision, canary, spec, checks, name, namespace)
        return decision

    if phase == "Promoting":
        decision.info("Routing all traffic to primary")
        decision.routes = (TOTAL_WEIGHT, 0)
        decision.status = {"phase": "Finalising", "canaryWeight": 0, "iterations": 0}
        return decision

    if phase == "Finalising":
        decision.scale_target = 0
        decision.status = {"phase": "Succeeded", "canaryWeight": 0, "iterations": 0, "promoteSpec": True}
        await checks.hooks("post-rollout")
        decision.info(f"Promotion completed! Scaling down {target}.{namespace}")
        return decision

    failed_checks = int(status.get("failedChecks") or 0)
    if failed_checks >= spec.threshold:
        return await _rollback(decision, canary, spec, checks, name, namespace)

    if canary_weight == 0 and int(status.get("iterations") or 0) == 0:
        decision.info(f"Starting canary analysis for {target}.{namespace}")
        failures = await checks.hooks("pre-rollout")
    else:
        failures = await checks.hooks("rollout") or await checks.metrics()
    if failures:
        return decision.halt(failures, {"failedChecks": failed_checks + 1})

    step = spec.next_step(canary_weight)
    if step <= 0:
        return decision
    if phase != "WaitingPromotion":
        failures = await checks.hooks("confirm-traffic-increase")
        if failures:
            return decision.halt(failures, {})
    if canary_weight < spec.max():
        weight = min(TOTAL_WEIGHT, canary_weight + step)
        decision.routes = (max(0, TOTAL_WEIGHT - weight), weight)
        decision.status = {"canaryWeight": weight}
        decision.info(f"Advance {name}.{namespace} canary weight {weight}")
        return decision
    failures = await checks.hooks("confirm-promotion")
    if failures:
        return decision.halt(failures, {"phase": "WaitingPromotion"})
    decision.info(f"Copying {target}.{namespace} template spec to {target}-primary.{namespace}")
    decision.promote = True
    decision.status = {"phase": "Promoting"}
    return decision


async def _rollback(decision: Decision, canary: dict[str, Any], spec: AnalysisSpec, checks: Checks, name: str,
              namespace: str) -> Decision:
    """100 % to primary, the canary scaled to zero, phase Failed (scheduler.go ``rollback``)."""
    failed_checks = int((canary.get("status") or {}).get("failedChecks") or 0)
    if failed_checks >= spec.threshold:
        decision.warn(f"Rolling back {name}.{namespace} failed checks threshold reached {failed_checks}")
    decision.routes = (TOTAL_WEIGHT, 0)
    decision.warn(f"Canary failed! Scaling down {name}.{namespace}")
    decision.scale_target = 0
    # SyncStatus with a fresh status: weight, failed checks and iterations all go back to 0.
    decision.status = {"phase": "Failed", "canaryWeight": 0, "failedChecks": 0, "iterations": 0, "applySpec": True}
    await checks.hooks("post-rollout")
    return decision


async def _failed_promotion(decision: Decision, target: str, namespace: str, why: str, checks: Checks) -> Decision:
    """Primary broke while being promoted: the canary is the only healthy copy, so it takes all traffic
    (scheduler.go ``handleFailedPromotion``) instead of a rollback to a broken primary."""
    decision.warn(f"Promotion of {target}.{namespace} failed, primary not ready: {why}")
    decision.routes = (0, TOTAL_WEIGHT)
    decision.status = {"phase": "Failed", "canaryWeight": TOTAL_WEIGHT, "failedChecks": 0, "iterations": 0,
                       "applySpec": True}
    await checks.hooks("post-rollout")
    return decision
