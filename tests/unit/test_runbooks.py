"""Every runbook an error points to exists, and every diagnosis names one."""
import re

from lab_helpers.diagnosis import DEFAULT_RUNBOOK, RUNBOOKS, diagnose
from lab_helpers.paths import REPO_ROOT


def test_every_runbook_referenced_in_code_exists():
    referenced = set(RUNBOOKS.values()) | {DEFAULT_RUNBOOK}
    for source in (REPO_ROOT / "lab_helpers").rglob("*.py"):
        referenced |= set(re.findall(r"runbooks/[a-z0-9-]+\.md", source.read_text()))
    missing = sorted(p for p in referenced if not (REPO_ROOT / p).is_file())
    assert not missing, f"runbooks named in lab_helpers but missing: {missing}"


def test_diagnosis_prefers_model_status_and_picks_the_oom_runbook():
    isvc = {"kind": "InferenceService", "metadata": {"name": "iris", "namespace": "lab"},
            "status": {"conditions": [{"type": "PredictorReady", "status": "False", "reason": "MinimumReplicasUnavailable"}],
                       "modelStatus": {"lastFailureInfo": {"reason": "ModelLoadFailed", "message": "OOMKilled: x",
                                                           "exitCode": 137}}}}
    events = [{"type": "Warning", "reason": f"R{i}", "message": "m", "involvedObject": {"kind": "Pod", "name": "p"}}
              for i in range(8)]
    d = diagnose(isvc, events)
    assert (d.reason, d.runbook) == ("ModelLoadFailed", "runbooks/oom-killed.md")
    assert [e["reason"] for e in d.events] == ["R3", "R4", "R5", "R6", "R7"]
    text = str(d)
    assert "InferenceService lab/iris is not Ready: ModelLoadFailed" in text and "runbook: runbooks/oom-killed.md" in text


def test_diagnosis_falls_back_to_the_first_false_condition():
    obj = {"kind": "HelmRelease", "metadata": {"name": "kserve-crd"},
           "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "DependencyNotReady",
                                      "message": "dependency 'kserve/cert-manager' is not ready"}]}}
    d = diagnose(obj, [])
    assert (d.reason, d.runbook) == ("DependencyNotReady", "runbooks/install-not-ready.md")
    assert diagnose({"kind": "X", "metadata": {"name": "y"}}, []).reason == "NotReady"


def test_a_scaled_object_that_fails_its_check_points_to_the_scale_to_zero_runbook():
    so = {"kind": "ScaledObject", "metadata": {"name": "iris-s2z", "namespace": "lab"},
          "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "ScaledObjectCheckFailed",
                                     "message": "ScaledObject doesn't have correct scaleTargetRef specification"}]}}
    d = diagnose(so, [])
    assert (d.reason, d.runbook) == ("ScaledObjectCheckFailed", "runbooks/scale-to-zero-failing.md")
