"""Why an object is not Ready, and which runbook fixes it: one diagnosis shape for both targets.

`diagnose` reads one object's status (modelStatus first, then conditions); `RUNBOOKS` is the one map from a
status reason to its page, `KIND_RUNBOOKS` the page of a kind when a reason has none of its own.
"""
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
    # KServe's FailureReason for a runtime that was serving and fails its readiness probe
    "RuntimeUnhealthy": "runbooks/runtime-not-loading-model.md",
    # what diagnose_service names when nothing more specific is known
    "PredictorNotReady": "runbooks/service-not-ready.md",
    # an InferenceService with a transformer: IngressReady waits for TransformerReady, Ready names the ingress
    "Transformer ingress not created": "runbooks/service-not-ready.md",
    "IngressNotReady": "runbooks/service-not-ready.md",
    "MinimumReplicasUnavailable": "runbooks/service-not-ready.md",
    "NotReady": "runbooks/service-not-ready.md",
    "NotFound": "runbooks/service-not-ready.md",
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
# A reason that names no page of its own (Flagger's "Failed", a phase copied from another object) still has the
# page of its object's kind before the InferenceService default.
KIND_RUNBOOKS: dict[str, str] = {
    "Canary": "runbooks/canary-rollback-triggered.md",
    "ScaledObject": "runbooks/scale-to-zero-failing.md",
    "Job": "runbooks/job-failed.md",
    "HelmRelease": "runbooks/install-not-ready.md",
    "CiliumNetworkPolicy": "runbooks/caller-denied.md",
}
# Model formats served by a framework runtime (Triton) rather than the lab's Python runtimes: its load
# failures (config.pbtxt, repository layout, backends) have their own runbook.
FRAMEWORK_FORMATS = frozenset({"onnx", "triton", "tensorrt", "tensorflow", "pytorch"})
FRAMEWORK_LOAD_RUNBOOK = "runbooks/runtime-not-loading-model.md"
OOM_EXIT_CODE = 137  # 128 + SIGKILL: what the kernel's OOM killer leaves


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
            lines += [f"  {event_line(e)}" for e in self.events]
        lines.append(f"runbook: {self.runbook}")
        return "\n".join(lines)


def event_line(event: dict[str, Any]) -> str:
    """``Warning BackOff Pod/iris-predictor-x: Back-off restarting…``: an event as `kubectl get events` lists it."""
    involved = event.get("involvedObject") or {}
    return (f"{event.get('type', 'Normal')} {event.get('reason', '')} {involved.get('kind', '')}/"
            f"{involved.get('name', '')}: {event.get('message', '')}")


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


def model_runbook(reason: str, isvc: dict[str, Any], failure: dict[str, Any]) -> str:
    """The runbook of a reason, with the two refinements KServe's single ModelLoadFailed needs: an OOM kill and a
    framework runtime (Triton) failing to load."""
    if failure.get("exitCode") == OOM_EXIT_CODE or "OOMKilled" in failure.get("message", ""):
        return RUNBOOKS["OOMKilled"]
    if reason == "ModelLoadFailed" and _model_format(isvc) in FRAMEWORK_FORMATS:
        return FRAMEWORK_LOAD_RUNBOOK
    return RUNBOOKS.get(reason, DEFAULT_RUNBOOK)


def diagnose(obj: dict[str, Any], events: list[dict[str, Any]], last: int = 5) -> Diagnosis:
    """Read the most specific failure from an object's status (modelStatus first, then conditions)."""
    meta = obj.get("metadata", {})
    status = obj.get("status") or {}
    failure = (status.get("modelStatus") or {}).get("lastFailureInfo") or {}
    if failure.get("reason"):
        reason, message = failure["reason"], failure.get("message", "")
        runbook = model_runbook(reason, obj, failure)
    else:
        cond = _false_condition(status)
        if cond:
            reason, message = cond.get("reason") or f"{cond.get('type')}NotTrue", cond.get("message", "")
        else:
            reason, message = "NotReady", "no status reported yet (is the controller for this kind installed?)"
        runbook = RUNBOOKS.get(reason) or KIND_RUNBOOKS.get(obj.get("kind", ""), DEFAULT_RUNBOOK)
    return Diagnosis(
        kind=obj.get("kind", "?"), name=meta.get("name", "?"), namespace=meta.get("namespace"),
        reason=reason, message=message, events=events[-last:], runbook=runbook,
    )



def diagnosed_reasons() -> frozenset[str]:
    """Every reason a diagnosis of this package can carry: each has its runbook in `RUNBOOKS` (a reason not
    listed there falls back to `DEFAULT_RUNBOOK`), so a test can check that the runbook index covers them."""
    return frozenset(RUNBOOKS)
