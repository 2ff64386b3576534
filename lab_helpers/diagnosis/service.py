"""What broke an InferenceService, read the way an on-call engineer does.

Status, then the pods' container exits (which container, exit code, reason, message), then this deploy's
events; the verdict names the *cause* (one of `CAUSES`, the exit test's four) with the evidence that led there.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from ..errors import LabError
from ..scaling.stamps import epoch
from .reasons import OOM_EXIT_CODE, diagnose, event_line, model_runbook

# The four causes of the exit test's diagnose part (a service stuck Ready=False after a deploy).
ARTIFACT_MISSING = "model-artifact-missing"
RUNTIME_MISMATCH = "framework-runtime-mismatch"
LIMITS_TOO_LOW = "resource-limits-too-low"
STORAGE_UNREACHABLE = "storage-backend-not-accessible"
CAUSES = (ARTIFACT_MISSING, RUNTIME_MISMATCH, LIMITS_TOO_LOW, STORAGE_UNREACHABLE)

ISVC_LABEL = "serving.kserve.io/inferenceservice"
STORAGE_INITIALIZER = "storage-initializer"
# Reasons KServe writes into modelStatus.lastFailureInfo when no runtime can serve the model as specified.
RUNTIME_REASONS = frozenset({"NoSupportingRuntime", "RuntimeNotRecognized", "RuntimeDisabled"})
# The storage initializer's words (KServe's kserve_storage/storage_errors.py and kserve_storage.py, mirrored by
# lab_helpers/runtime/storage.py): the backend did not answer or refused us, or it answered that nothing is there.
_UNREACHABLE = re.compile(r"failed to connect|could not connect|connection refused|timed out|authentication failed|"
                          r"access denied|invalid aws credentials|nocredentials|only through an endpoint", re.I)
_MISSING = re.compile(r"does not exist|no model found|not found|\b404\b|nosuchkey", re.I)


@dataclass(frozen=True)
class ContainerExit:
    """A container that ended with a non-zero exit code (now, or before its latest restart)."""

    pod: str
    container: str
    init: bool
    exit_code: int
    reason: str
    message: str
    restarts: int
    waiting: str  # e.g. CrashLoopBackOff while the kubelet backs off; "" otherwise

    @property
    def oom_killed(self) -> bool:
        return self.reason == "OOMKilled" or self.exit_code == OOM_EXIT_CODE

    def __str__(self) -> str:
        kind = "init container" if self.init else "container"
        now = f", now {self.waiting}" if self.waiting else ""
        return (f"pod {self.pod} {kind} {self.container}: exit code {self.exit_code} ({self.reason}), "
                f"{self.restarts} restart(s){now}: {self.message or '(no message)'}")


def container_exits(pods: list[dict[str, Any]]) -> list[ContainerExit]:
    """Failed terminations of each pod's init containers and containers: the state if terminated, else the last one."""
    exits = []
    for pod in pods:
        status = pod.get("status") or {}
        for key, init in (("initContainerStatuses", True), ("containerStatuses", False)):
            for cs in status.get(key) or []:
                state, last = cs.get("state") or {}, cs.get("lastState") or {}
                term = state.get("terminated") or last.get("terminated") or {}
                if term.get("exitCode") in (0, None):
                    continue
                exits.append(ContainerExit(
                    pod=pod["metadata"]["name"], container=cs["name"], init=init, exit_code=int(term["exitCode"]),
                    reason=term.get("reason", ""), message=(term.get("message") or "").strip(),
                    restarts=int(cs.get("restartCount") or 0), waiting=(state.get("waiting") or {}).get("reason", "")))
    return exits


def pod_status_column(pod: dict[str, Any]) -> str:
    """The STATUS column of ``kubectl get pods``: ``Init:CrashLoopBackOff`` while the first unfinished init
    container waits or has failed, else the last waiting/terminated reason of a container, else the phase
    (kubectl's printPod, pkg/printers/internalversion/printers.go, without the deletion and node cases)."""
    status = pod.get("status") or {}
    inits = status.get("initContainerStatuses") or []
    for index, cs in enumerate(inits):
        state = cs.get("state") or {}
        term, waiting = state.get("terminated") or {}, state.get("waiting") or {}
        if term and term.get("exitCode") == 0:
            continue
        if term:
            return f"Init:{term.get('reason') or 'ExitCode:' + str(term.get('exitCode'))}"
        if waiting.get("reason") and waiting["reason"] != "PodInitializing":
            return f"Init:{waiting['reason']}"
        return f"Init:{index}/{len(inits)}"
    reason = status.get("reason") or status.get("phase") or "Pending"
    for cs in reversed(status.get("containerStatuses") or []):
        state = cs.get("state") or {}
        said = (state.get("waiting") or {}).get("reason") or (state.get("terminated") or {}).get("reason")
        reason = said or reason
    return reason


def storage_cause(message: str) -> str | None:
    """Which storage cause a storage-initializer failure message names, if either."""
    if _UNREACHABLE.search(message):
        return STORAGE_UNREACHABLE
    if _MISSING.search(message):
        return ARTIFACT_MISSING
    return None


@dataclass
class ServiceDiagnosis:
    """Why an InferenceService is not serving: the cause (one of `CAUSES`, or None when the evidence names none
    of them), the status reason that shows it and the message that decided, the runbook, and the evidence (the
    facts as read, in order: status, pods as kubectl lists them, container exits, warning events)."""

    name: str
    namespace: str | None
    ready: bool
    cause: str | None
    reason: str
    message: str
    runbook: str
    evidence: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        verdict = ("Ready" if self.ready and self.cause is None else
                   f"cause: {self.cause or 'not one of ' + ', '.join(CAUSES)} ({self.reason})")
        lines = [f"InferenceService {self.namespace + '/' if self.namespace else ''}{self.name}: {verdict}",
                 "evidence, in the order it was read:",
                 *[f"  {i}. {line}" for i, line in enumerate(self.evidence, 1)],
                 *([f"because: {self.message}"] if self.cause and self.message else []), f"runbook: {self.runbook}"]
        return "\n".join(lines)


def _status_evidence(isvc: dict[str, Any]) -> list[str]:
    status = isvc.get("status") or {}
    conditions = " ".join(f"{c.get('type')}={c.get('status')}" + (f" ({c['reason']})" if c.get("reason") else "")
                          for c in status.get("conditions") or []) or "no conditions reported yet"
    lines = [f"status: {conditions}"]
    model = status.get("modelStatus") or {}
    if model:
        states = model.get("states") or {}
        line = (f"modelStatus: {model.get('transitionStatus', '?')}, model {states.get('activeModelState') or '-'}"
                f" -> {states.get('targetModelState') or '-'}")
        failure = model.get("lastFailureInfo") or {}
        if failure:
            code = f", exit code {failure['exitCode']}" if failure.get("exitCode") is not None else ""
            line += f"; lastFailureInfo {failure.get('reason')}{code}: {failure.get('message', '')}"
        lines.append(line)
    return lines


def diagnose_service(isvc: dict[str, Any], pods: list[dict[str, Any]], events: list[dict[str, Any]],
                     log_tail: Callable[[str, str], str] | None = None, last_events: int = 3) -> ServiceDiagnosis:
    """Name the cause from what a cluster shows: status (modelStatus first), the pods' container exits, events.

    `log_tail(pod, container)` is asked for a failed container's last log lines when its termination carries no
    message (on a cluster, only containers with ``terminationMessagePolicy: FallbackToLogsOnError`` copy them).
    """
    meta = isvc.get("metadata") or {}
    status = isvc.get("status") or {}
    failure = (status.get("modelStatus") or {}).get("lastFailureInfo") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    evidence = _status_evidence(isvc)
    exits = [_with_log(exit_, log_tail) for exit_ in container_exits(pods)]
    evidence += [f"pod {p['metadata']['name']}: {pod_status_column(p)} (kubectl get pods)" for p in pods]
    evidence += [str(exit_) for exit_ in exits]
    warnings = [e for e in current_events(isvc, pods, events) if e.get("type") == "Warning"]
    evidence += [f"event {event_line(e)}" for e in warnings[-last_events:]]
    cause, reason, message = _cause(failure, exits)
    if reason is None:
        plain = diagnose(isvc, events)
        reason, message = ("Ready", "") if ready and not exits else (plain.reason, plain.message)
    runbook = model_runbook(reason, isvc, failure)
    return ServiceDiagnosis(name=meta.get("name", "?"), namespace=meta.get("namespace"), ready=ready, cause=cause,
                            reason=reason, message=message, runbook=runbook, evidence=evidence)


def current_events(isvc: dict[str, Any], pods: list[dict[str, Any]],
                   events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of this incarnation of the service: a service deleted and re-created under its name (as a fault is
    injected) still finds its predecessor's events by name. Kept: the service's own by its uid, those of the pods that
    exist now, and the others' (Deployment, ReplicaSet) from the service's creation on."""
    meta = isvc.get("metadata") or {}
    pod_names = {p["metadata"]["name"] for p in pods}
    created = epoch(meta["creationTimestamp"]) if meta.get("creationTimestamp") else float("-inf")

    def current(event: dict[str, Any]) -> bool:
        involved = event.get("involvedObject") or {}
        if involved.get("kind") == "InferenceService":
            return involved.get("uid") in (None, meta.get("uid"))
        if involved.get("kind") == "Pod":
            return involved.get("name") in pod_names
        stamp = event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
        return stamp is None or epoch(stamp) >= created

    return [e for e in events if current(e)]


def _with_log(exit_: ContainerExit, log_tail: Callable[[str, str], str] | None) -> ContainerExit:
    if exit_.message or log_tail is None:
        return exit_
    return ContainerExit(**{**exit_.__dict__, "message": log_tail(exit_.pod, exit_.container)})


def _cause(failure: dict[str, Any], exits: list[ContainerExit]) -> tuple[str | None, str | None, str]:
    """(cause, reason, message) from the most specific evidence first: an invalid spec, the storage initializer's
    exit, an OOM kill; (None, None, "") when none of them is there."""
    if failure.get("reason") in RUNTIME_REASONS:
        return RUNTIME_MISMATCH, failure["reason"], failure.get("message", "")
    for exit_ in exits:
        if exit_.init and exit_.container == STORAGE_INITIALIZER:
            return storage_cause(exit_.message), "ModelLoadFailed", exit_.message
    for exit_ in exits:
        if exit_.oom_killed:
            return LIMITS_TOO_LOW, "OOMKilled", exit_.message
    if failure.get("exitCode") == OOM_EXIT_CODE or "OOMKilled" in failure.get("message", ""):
        return LIMITS_TOO_LOW, "OOMKilled", failure.get("message", "")
    if failure.get("reason"):
        return None, failure["reason"], failure.get("message", "")
    return None, None, ""


class ServiceReader(Protocol):
    """The verbs `diagnose_inference_service` reads with (`lab_helpers.api.Lab` has them)."""

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]: ...

    def list(self, kind: str, namespace: str | None = None,
             labels: dict[str, str] | None = None) -> list[dict[str, Any]]: ...

    def events(self, kind: str, name: str, namespace: str | None = None,
               children: bool = True) -> list[dict[str, Any]]: ...

    def container_log(self, pod: str, container: str, namespace: str | None = None) -> str: ...


def diagnose_inference_service(lab: ServiceReader, name: str, namespace: str | None = None) -> ServiceDiagnosis:
    """Read an InferenceService, its pods (by KServe's label), their events and, if needed, a failed container's
    log, on either target, and diagnose it."""
    def log_tail(pod: str, container: str, lines: int = 3) -> str:
        try:
            text = lab.container_log(pod, container, namespace)
        except LabError:
            return ""
        return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])

    isvc = lab.get("InferenceService", name, namespace)
    pods = lab.list("Pod", namespace, labels={ISVC_LABEL: name})
    return diagnose_service(isvc, pods, lab.events("InferenceService", name, namespace), log_tail)
