"""A fresh canary to roll out on: the objects of manifests/canary applied from scratch, Flagger initialised.

Notebooks 06 and 07 (and the canary benchmark) each start here, so each runs alone and a re-run
starts from the champion again rather than from whatever the last rollout left as primary.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..api import Lab
from .load import load_body
from .rollout import RolloutRecorder

CANARY = "iris-rollout"
SERVICE = "iris-rollout"                    # the Canary's service.name: apex Service and HTTPRoute
TARGET = "iris-rollout-predictor"           # the Deployment KServe makes and Flagger drives
MANIFESTS = "manifests/canary"


@dataclass(frozen=True)
class CanaryTiming:
    """The analysis fields the lab chooses (short, so a rollout takes about a minute)."""

    interval: str = "10s"
    threshold: int = 2
    step_weight: int = 25
    max_weight: int = 50

    def variables(self) -> dict[str, str]:
        return {"CANARY_INTERVAL": self.interval, "CANARY_THRESHOLD": str(self.threshold),
                "CANARY_STEP_WEIGHT": str(self.step_weight), "CANARY_MAX_WEIGHT": str(self.max_weight)}


def rollout_variables(lab: Lab, timing: CanaryTiming, storage_uri: str) -> dict[str, str]:
    """Every ${VAR} of manifests/canary."""
    return {**timing.variables(), "ROLLOUT_STORAGE_URI": storage_uri, "ROLLOUT_LOAD_BODY": load_body()}


def install_flagger(lab: Lab, timeout: float = 300.0) -> None:
    """Flagger and its load tester as Flux HelmReleases (manifests/platform/flagger.yaml)."""
    lab.apply("manifests/platform/flagger.yaml")
    lab.wait_ready("HelmRelease", "flagger", namespace="flagger-system", timeout=timeout)
    lab.wait_ready("HelmRelease", "flagger-loadtester", timeout=timeout)


def fresh_canary(lab: Lab, variables: dict[str, Any], timeout: float = 300.0) -> list[dict[str, Any]]:
    """Delete the Canary and its InferenceService, apply manifests/canary again and wait for Initialized."""
    for kind in ("Canary", "InferenceService"):
        lab.delete(kind, CANARY)
    with RolloutRecorder(lab, CANARY) as recorder:
        applied = lab.apply(MANIFESTS, variables)
        recorder.wait_for_phase(("Initialized",), timeout=timeout)
    return applied


def roll_out(lab: Lab, variables: dict[str, Any], storage_uri: str, timeout: float = 300.0) -> RolloutRecorder:
    """Point iris-rollout at another model version and record the rollout it starts until Succeeded or Failed."""
    recorder = RolloutRecorder(lab, CANARY).start()
    try:
        lab.apply(f"{MANIFESTS}/10-iris-rollout.yaml", {**variables, "ROLLOUT_STORAGE_URI": storage_uri})
        recorder.mark("new revision applied")
        recorder.wait_for_phase(timeout=timeout)
    finally:
        recorder.stop()
    return recorder
