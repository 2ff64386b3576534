"""One diagnosis shape for both targets: why an object is not Ready and which runbook fixes it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Reason (KServe modelStatus / condition / pod state) -> runbook path relative to the repo root.
RUNBOOKS: dict[str, str] = {
    "ModelLoadFailed": "runbooks/model-load-failed.md",
    "NoSupportingRuntime": "runbooks/no-supporting-runtime.md",
    "RuntimeNotRecognized": "runbooks/runtime-not-recognized.md",
    "RuntimeDisabled": "runbooks/runtime-not-recognized.md",
    "InvalidPredictorSpec": "runbooks/invalid-predictor-spec.md",
    "OOMKilled": "runbooks/oom-killed.md",
    "CrashLoopBackOff": "runbooks/model-load-failed.md",
    "DependencyNotReady": "runbooks/install-not-ready.md",
    "InstallFailed": "runbooks/install-not-ready.md",
    "SourceNotReady": "runbooks/install-not-ready.md",
    # KEDA's ScaledObject conditions
    "ScaledObjectCheckFailed": "runbooks/scale-to-zero-failing.md",
    "UnknownState": "runbooks/scale-to-zero-failing.md",
    "TriggerError": "runbooks/scale-to-zero-failing.md",
    "PartialTriggerError": "runbooks/scale-to-zero-failing.md",
    "ScalerNotActive": "runbooks/scale-to-zero-failing.md",
    "ScalerCooldown": "runbooks/scale-to-zero-failing.md",
    # the HorizontalPodAutoscaler's (KEDA's, or KServe's hpa class)
    "FailedGetScale": "runbooks/scale-to-zero-failing.md",
    "FailedGetResourceMetric": "runbooks/scale-to-zero-failing.md",
    "ScalingDisabled": "runbooks/scale-to-zero-failing.md",
    # a PrometheusRule promtool rejects
    "InvalidConfiguration": "runbooks/prometheus-no-data.md",
    # a Job's Failed condition
    "BackoffLimitExceeded": "runbooks/job-failed.md",
    "DeadlineExceeded": "runbooks/job-failed.md",
}
DEFAULT_RUNBOOK = "runbooks/service-not-ready.md"
# Model formats served by a framework runtime (Triton) rather than the lab's Python runtimes: its load
# failures (config.pbtxt, repository layout, backends) have their own runbook.
FRAMEWORK_FORMATS = frozenset({"onnx", "triton", "tensorrt", "tensorflow", "pytorch"})
FRAMEWORK_LOAD_RUNBOOK = "runbooks/runtime-not-loading-model.md"


@dataclass
class Diagnosis:
    kind: str
    name: str
    namespace: str | None
    reason: str
    message: str
    events: list[dict[str, Any]] = field(default_factory=list)
    runbook: str = DEFAULT_RUNBOOK

    def __str__(self) -> str:
        ref = f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"
        lines = [f"{ref} is not Ready: {self.reason}: {self.message}"]
        if self.events:
            lines.append("last events:")
            lines += [f"  {e.get('type', 'Normal')} {e.get('reason', '')} {e.get('involvedObject', {}).get('kind', '')}/"
                      f"{e.get('involvedObject', {}).get('name', '')}: {e.get('message', '')}" for e in self.events]
        lines.append(f"runbook: {self.runbook}")
        return "\n".join(lines)


def _false_condition(status: dict[str, Any]) -> dict[str, Any] | None:
    """The condition that says what is wrong: a True ``Failed`` (a Job's), else the first one not True."""
    conditions = status.get("conditions") or []
    failed = next((c for c in conditions if c.get("type") == "Failed" and c.get("status") == "True"), None)
    if failed:
        return failed
    for wanted in ("PredictorReady", "IngressReady", "Ready"):
        for c in conditions:
            if c.get("type") == wanted and c.get("status") != "True":
                return c
    return next((c for c in conditions if c.get("status") != "True"), None)


def _model_format(obj: dict[str, Any]) -> str:
    model = ((obj.get("spec") or {}).get("predictor") or {}).get("model") or {}
    return (model.get("modelFormat") or {}).get("name", "")


def diagnose(obj: dict[str, Any], events: list[dict[str, Any]], last: int = 5) -> Diagnosis:
    """Read the most specific failure from an object's status (modelStatus first, then conditions)."""
    meta = obj.get("metadata", {})
    status = obj.get("status") or {}
    failure = (status.get("modelStatus") or {}).get("lastFailureInfo") or {}
    if failure.get("reason"):
        reason, message = failure["reason"], failure.get("message", "")
        if failure.get("exitCode") == 137 or "OOMKilled" in message:
            runbook = RUNBOOKS["OOMKilled"]
        elif reason == "ModelLoadFailed" and _model_format(obj) in FRAMEWORK_FORMATS:
            runbook = FRAMEWORK_LOAD_RUNBOOK
        else:
            runbook = RUNBOOKS.get(reason, DEFAULT_RUNBOOK)
    else:
        cond = _false_condition(status)
        if cond:
            reason, message = cond.get("reason") or f"{cond.get('type')}NotTrue", cond.get("message", "")
        else:
            reason, message = "NotReady", "no status reported yet (is the controller for this kind installed?)"
        runbook = RUNBOOKS.get(reason, DEFAULT_RUNBOOK)
    return Diagnosis(
        kind=obj.get("kind", "?"), name=meta.get("name", "?"), namespace=meta.get("namespace"),
        reason=reason, message=message, events=events[-last:], runbook=runbook,
    )

