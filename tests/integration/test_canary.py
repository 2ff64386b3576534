"""A real canary on the local target: Flagger's analysis against real runtimes, Prometheus and hey.

v2 (the challenger) is promoted step by step; v3 (the skewed model) answers every request yet is rolled
back by the prediction-divergence check, with all traffic back on the primary. About three minutes.
"""
from __future__ import annotations

import shutil

import joblib
import pytest

from lab_helpers.canary.rollout import phase_sequence, revision_metrics
from lab_helpers.canary.setup import (CANARY, SERVICE, TARGET, CanaryTiming, fresh_canary, install_flagger, roll_out,
                                      rollout_variables)
from lab_helpers.models.training import LAB_MODELS, train

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("prometheus") is None or shutil.which("hey") is None,
                                 reason="needs the Debian packages prometheus and hey (make setup installs them)")]


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    """The three iris versions as kserve-sklearnserver model directories (one model.joblib each)."""
    dirs = {}
    for spec in (s for s in LAB_MODELS if s.name == "iris"):
        path = tmp_path_factory.mktemp(spec.variant)
        joblib.dump(train(spec).estimator, path / "model.joblib")
        dirs[spec.variant] = path.as_uri()
    return dirs


@pytest.fixture(scope="module")
def lab(monitored_lab):
    install_flagger(monitored_lab, timeout=60)
    return monitored_lab


def route_weights(lab) -> list[tuple[str, int]]:
    return [(b["name"], b["weight"]) for b in lab.get("HTTPRoute", SERVICE)["spec"]["rules"][0]["backendRefs"]]


def test_v2_is_promoted_and_v3_is_rolled_back_by_its_predictions(lab, model_dirs):
    variables = rollout_variables(lab, CanaryTiming(), model_dirs["logreg"])
    fresh_canary(lab, variables, timeout=120)
    assert lab.get("Deployment", TARGET)["spec"]["replicas"] == 0
    assert route_weights(lab) == [(f"{SERVICE}-primary", 100), (f"{SERVICE}-canary", 0)]

    v2 = roll_out(lab, variables, model_dirs["forest"], timeout=240)
    frame = v2.frame()
    assert phase_sequence(frame)[-4:] == ["Progressing", "Promoting", "Finalising", "Succeeded"]
    assert frame["weight"].max() == 50
    primary = lab.get("Deployment", f"{TARGET}-primary")
    assert model_dirs["forest"] in str(primary["spec"]["template"])  # promotion copied the new template
    assert route_weights(lab) == [(f"{SERVICE}-primary", 100), (f"{SERVICE}-canary", 0)]

    v3 = roll_out(lab, variables, model_dirs["skewed-logreg"], timeout=240)
    assert phase_sequence(v3.frame())[-2:] == ["Progressing", "Failed"]
    assert route_weights(lab) == [(f"{SERVICE}-primary", 100), (f"{SERVICE}-canary", 0)]
    assert lab.get("Deployment", TARGET)["spec"]["replicas"] == 0
    assert model_dirs["forest"] in str(lab.get("Deployment", f"{TARGET}-primary")["spec"]["template"])
    messages = [e["message"] for e in lab.events("Canary", CANARY, children=False)]
    assert any("advancement prediction-divergence" in m and "> 0.1" in m for m in messages)
    assert not any("advancement request-success-rate" in m for m in messages)  # it never erred
    metrics = revision_metrics(lab.prom, v3, SERVICE, TARGET, "lab")
    canary_rate = metrics[(metrics.revision == "canary") & (metrics.metric == "success_rate")]["value"].dropna()
    assert len(canary_rate) and (canary_rate == 100).all()
