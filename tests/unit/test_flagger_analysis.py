"""Flagger's analysis loop, one pass at a time, through the cases of its scheduler (table-driven)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from lab_helpers.local.controllers.flagger_analysis import AnalysisSpec, Readiness, advance

SPEC = AnalysisSpec(interval_s=10, threshold=2, max_weight=50, step_weight=25)
READY, NOT_READY = Readiness(True), Readiness(False, True, "iris-predictor-primary.lab not ready: 0 of 1")
GONE = Readiness(False, False, "deployment \"iris-predictor\" exceeded its progress deadline")


@dataclass
class FakeChecks:
    """Hooks and metrics that pass unless told which fail; remembers what ran."""

    failing_hooks: dict[str, str] = field(default_factory=dict)
    metric_failure: str | None = None
    ran: list[str] = field(default_factory=list)

    async def hooks(self, kind):
        self.ran.append(kind)
        return [self.failing_hooks[kind]] if kind in self.failing_hooks else []

    async def metrics(self):
        self.ran.append("metrics")
        return [self.metric_failure] if self.metric_failure else []


def canary(phase="", weight=0, failed=0, iterations=0):
    return {"metadata": {"name": "iris", "namespace": "lab"},
            "spec": {"targetRef": {"kind": "Deployment", "name": "iris-predictor"}},
            "status": {"phase": phase, "canaryWeight": weight, "failedChecks": failed, "iterations": iterations}}


def run(phase="Progressing", weight=0, failed=0, iterations=0, changed=False, primary=READY, ready=READY,
        spec=SPEC, **checks):
    fake = FakeChecks(**checks)
    decision = asyncio.run(advance(canary(phase, weight, failed, iterations), spec, fake, target_changed=changed,
                                   primary=primary, canary_ready=ready, canary_weight=weight))
    return decision, fake


CASES = {
    # name: (arguments, expected status change, routes, scale, promote, last event)
    "nothing changed after initialisation: wait": (
        dict(phase="Initialized"), {}, None, None, False, None),
    "a new revision starts Progressing and scales the canary up": (
        dict(phase="Initialized", changed=True),
        {"phase": "Progressing", "canaryWeight": 0, "failedChecks": 0, "iterations": 0, "applySpec": True},
        None, 1, False, "New revision detected! Scaling up iris-predictor.lab"),
    "a new revision after a success starts again": (
        dict(phase="Succeeded", changed=True), {"phase": "Progressing", "canaryWeight": 0, "failedChecks": 0,
                                                "iterations": 0, "applySpec": True},
        None, 1, False, "New revision detected! Scaling up iris-predictor.lab"),
    "first step: only pre-rollout hooks, then the first weight in the same pass": (
        dict(), {"canaryWeight": 25}, (75, 25), None, False, "Advance iris.lab canary weight 25"),
    "a later step with passing metrics advances one step": (
        dict(weight=25), {"canaryWeight": 50}, (50, 50), None, False, "Advance iris.lab canary weight 50"),
    "a failed metric holds the weight and counts a failed check": (
        dict(weight=25, metric_failure="Halt iris.lab advancement prediction-divergence 0.40 > 0.1"),
        {"failedChecks": 1}, None, None, False, "Halt iris.lab advancement prediction-divergence 0.40 > 0.1"),
    "no data is a failed check": (
        dict(weight=25, metric_failure="Halt advancement no values found for custom metric: success-rate"),
        {"failedChecks": 1}, None, None, False, "Halt advancement no values found for custom metric: success-rate"),
    "a failing rollout hook (the load test) is a failed check before any metric": (
        dict(weight=25, failing_hooks={"rollout": "Halt iris.lab advancement external check load-test failed"}),
        {"failedChecks": 1}, None, None, False, "Halt iris.lab advancement external check load-test failed"),
    "a failed pre-rollout hook on the first step counts too": (
        dict(failing_hooks={"pre-rollout": "Halt iris.lab advancement pre-rollout check smoke failed"}),
        {"failedChecks": 1}, None, None, False, "Halt iris.lab advancement pre-rollout check smoke failed"),
    "threshold reached: rollback to 100 % primary, canary to zero, Failed": (
        dict(weight=25, failed=2), {"phase": "Failed", "canaryWeight": 0, "failedChecks": 0, "iterations": 0,
                                    "applySpec": True},
        (100, 0), 0, False, "Canary failed! Scaling down iris.lab"),
    "the target changed mid-analysis: back to weight 0, analysis restarts": (
        dict(weight=25, failed=1, changed=True),
        {"phase": "Progressing", "canaryWeight": 0, "failedChecks": 0, "iterations": 0, "applySpec": True},
        (100, 0), None, False, "New revision detected! Restarting analysis for iris-predictor.lab"),
    "at maxWeight with passing checks: copy the template to primary": (
        dict(weight=50), {"phase": "Promoting"}, None, None, True,
        "Copying iris-predictor.lab template spec to iris-predictor-primary.lab"),
    "confirm-promotion not approved: WaitingPromotion": (
        dict(weight=50, failing_hooks={"confirm-promotion": "Halt iris.lab advancement waiting for promotion "
                                                            "approval gate"}),
        {"phase": "WaitingPromotion"}, None, None, False, "Halt iris.lab advancement waiting for promotion approval gate"),
    "Promoting: all traffic back to primary, Finalising": (
        dict(phase="Promoting", weight=50), {"phase": "Finalising", "canaryWeight": 0, "iterations": 0},
        (100, 0), None, False, "Routing all traffic to primary"),
    "Finalising: canary to zero, Succeeded": (
        dict(phase="Finalising"), {"phase": "Succeeded", "canaryWeight": 0, "iterations": 0, "promoteSpec": True},
        None, 0, False, "Promotion completed! Scaling down iris-predictor.lab"),
    "primary not ready yet: wait, change nothing": (
        dict(weight=25, primary=NOT_READY), {}, None, None, False, NOT_READY.message),
    "primary broken during promotion: all traffic to the canary, Failed": (
        dict(phase="Promoting", weight=50, primary=Readiness(False, False, "primary scaled to zero")),
        {"phase": "Failed", "canaryWeight": 100, "failedChecks": 0, "iterations": 0, "applySpec": True},
        (0, 100), None, False, "Promotion of iris-predictor.lab failed, primary not ready: primary scaled to zero"),
    "primary broken before promotion: rollback": (
        dict(weight=25, primary=GONE), {"phase": "Failed", "canaryWeight": 0, "failedChecks": 0, "iterations": 0,
                                        "applySpec": True},
        (100, 0), 0, False, "Canary failed! Scaling down iris.lab"),
    "canary not ready yet: wait": (
        dict(weight=25, ready=NOT_READY), {}, None, None, False, NOT_READY.message),
    "canary past its progress deadline: rollback": (
        dict(weight=25, ready=GONE), {"phase": "Failed", "canaryWeight": 0, "failedChecks": 0, "iterations": 0,
                                      "applySpec": True},
        (100, 0), 0, False, "Canary failed! Scaling down iris.lab"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_one_pass(case):
    arguments, status, routes, scale, promote, last_event = CASES[case]
    decision, _ = run(**arguments)
    assert decision.status == status
    assert decision.routes == routes
    assert decision.scale_target == scale
    assert decision.promote is promote
    assert (decision.events[-1][1] if decision.events else None) == last_event


def test_the_first_step_checks_no_metrics_and_later_steps_run_hooks_before_metrics():
    _, first = run()
    assert first.ran == ["pre-rollout", "confirm-traffic-increase"]
    _, later = run(weight=25)
    assert later.ran == ["rollout", "metrics", "confirm-traffic-increase"]
    _, failing_hook = run(weight=25, failing_hooks={"rollout": "load test failed"})
    assert "metrics" not in failing_hook.ran


def test_a_rollback_names_the_threshold_then_runs_post_rollout_hooks():
    decision, checks = run(weight=25, failed=2)
    assert [m for _, m in decision.events] == ["Rolling back iris.lab failed checks threshold reached 2",
                                               "Canary failed! Scaling down iris.lab"]
    assert all(kind == "Warning" for kind, _ in decision.events) and checks.ran == ["post-rollout"]


@pytest.mark.parametrize(("spec", "weights"), [
    (AnalysisSpec(max_weight=50, step_weight=25), [25, 50]),
    (AnalysisSpec(max_weight=30, step_weight=20), [20, 40]),          # the last step may overshoot maxWeight
    (AnalysisSpec(step_weights=(5, 10, 40)), [5, 10, 40]),
])
def test_weights_walk_in_steps_to_max_weight_then_promote(spec, weights):
    seen, weight = [], 0
    for _ in range(10):
        decision, _ = run(weight=weight, spec=spec)
        if decision.promote:
            break
        weight = decision.status["canaryWeight"]
        seen.append(weight)
    assert seen == weights and decision.promote


def test_a_full_promotion_takes_max_over_step_passes_plus_three():
    """The rule of thumb: interval x maxWeight / stepWeight to reach maxWeight, then promote, route, finalise."""
    phase, weight, passes = "Initialized", 0, 0
    status: dict = {}
    changed = True
    while phase != "Succeeded" and passes < 20:
        decision, _ = run(phase=phase, weight=weight, changed=changed)
        changed, passes = False, passes + 1
        status.update(decision.status)
        phase = status.get("phase", phase)
        weight = status.get("canaryWeight", weight)
    # 1 pass to start Progressing, 2 steps to 50, 1 promote, 1 route back, 1 finalise.
    assert (phase, passes) == ("Succeeded", 1 + 50 // 25 + 3)
