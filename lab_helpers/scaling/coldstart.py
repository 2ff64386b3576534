"""One cold start taken apart: the moments a request that found zero pods went through, read from the objects.

Every moment comes from a record someone else wrote, never from a clock the lab runs beside them:
the client's send and receive, the interceptor's hold (local target only), KEDA's
``KEDAScaleTargetActivated`` event, the ``SuccessfulCreate`` event of the woken pod, the pod's
container statuses (storage initializer started and finished, model server started), the model
server's own log line for the loaded model, and the pod's ``Ready`` condition.

The cost splits in two. The *runtime side* is what the pod itself takes, from its first container
start to Ready (the storage initializer's download counts here): a smaller artifact or a faster
runtime shrinks it. The *activation overhead* is the rest of the cold total: hold, scale decision,
pod creation, routing and the answer: what the platform adds around the pod.

On a cluster ``metav1.Time`` stamps are whole seconds, so neighbouring moments can come out of order;
each moment is taken as no earlier than the one before (`Timeline.spans`), and phases shorter than a
second read as 0 or 1 there. The add-on keeps no per-request hold record: there the hold is the
client's wait until the pod is Ready, and the forward is not a moment of its own.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .stamps import epoch, event_epoch

# The moments, in the order a cold request passes them.
MOMENTS = ("request sent", "request held", "scale decision", "pod created", "storage initializer started",
           "storage initializer finished", "runtime process started", "model loaded", "ready",
           "request forwarded", "response")
RUNTIME_FIRST = ("storage initializer started", "runtime process started")  # where the runtime side begins

# The model server's log line once the model is in memory: KServe's ModelServer ("Registering model:
# iris", kserve/model_server.py register_model) and MLServer ("Loaded model 'iris' succesfully.").
_LOADED = (re.compile(r"Registering model: (?P<model>\S+)"), re.compile(r"Loaded model '(?P<model>[^']+)'"))
# A line's own time: the kubelet's RFC 3339 prefix (``--timestamps``) or the server's log format
# (``2026-12-02 19:25:46.910``, local time; MLServer writes a comma before the milliseconds).
_STAMP = re.compile(r"^(?P<date>\d{4}-\d\d-\d\d)[T ](?P<time>\d\d:\d\d:\d\d)(?:[.,](?P<fraction>\d+))?"
                    r"(?P<zone>Z|[+-]\d\d:?\d\d)?")


@dataclass
class Timeline:
    """The moments of one request (epoch seconds; a moment the target does not record is absent)."""

    moments: dict[str, float] = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        return self.moments["response"] - self.moments["request sent"]

    @property
    def runtime_s(self) -> float | None:
        """First container start to Ready: what the pod itself takes."""
        first = next((self.moments[m] for m in RUNTIME_FIRST if m in self.moments), None)
        return None if first is None or "ready" not in self.moments else self.moments["ready"] - first

    @property
    def overhead_s(self) -> float | None:
        """The cold total minus the runtime side: what activation adds around the pod."""
        runtime = self.runtime_s
        return None if runtime is None else self.total_s - runtime

    def spans(self) -> dict[str, float]:
        """Seconds from the previous recorded moment to each moment, in `MOMENTS` order (first: 0).

        A moment stamped before its predecessor (second-resolution stamps) counts as at it."""
        out: dict[str, float] = {}
        previous: float | None = None
        for moment in MOMENTS:
            if moment not in self.moments:
                continue
            at = self.moments[moment] if previous is None else max(self.moments[moment], previous)
            out[moment] = 0.0 if previous is None else at - previous
            previous = at
        return out


def model_loaded_at(log: str, model: str) -> float | None:
    """When the model server logged `model` as loaded (epoch seconds), or None if it has not."""
    for line in log.splitlines():
        if not any((found := pattern.search(line)) and found["model"] == model for pattern in _LOADED):
            continue
        stamp = _STAMP.match(line)
        if stamp is None:
            raise ValueError(f"the model server's line {line.strip()!r} carries no timestamp to place it by")
        fraction = (stamp["fraction"] or "0")[:6].ljust(6, "0")
        zone = stamp["zone"] or ""
        text = f"{stamp['date']}T{stamp['time']}.{fraction}{'+00:00' if zone == 'Z' else zone}"
        return datetime.fromisoformat(text).timestamp()  # no zone: the server's local time, this machine's
    return None


def _container_times(pod: dict[str, Any], key: str, name: str) -> dict[str, Any]:
    status = next((s for s in (pod.get("status") or {}).get(key) or [] if s["name"] == name), {})
    state = status.get("state") or {}
    return state.get("running") or state.get("terminated") or {}


def _ready_since(pod: dict[str, Any]) -> float | None:
    ready = next((c for c in (pod.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"), None)
    if not ready or ready.get("status") != "True" or not ready.get("lastTransitionTime"):
        return None
    return epoch(ready["lastTransitionTime"])


def cold_timeline(*, sent: float, answered: float, pod: dict[str, Any], activation: dict[str, Any] | None,
                  pod_created: dict[str, Any] | None, runtime_log: str, model: str,
                  hold: dict[str, Any] | None = None, runtime_container: str = "kserve-container",
                  storage_container: str = "storage-initializer") -> Timeline:
    """The moments of one cold request from what the objects recorded.

    `activation` is the ScaledObject's ``KEDAScaleTargetActivated`` event, `pod_created` the
    ``SuccessfulCreate`` event of `pod`, `hold` the interceptor's record of this request (None where
    the target keeps none), `runtime_log` the model server container's log.
    """
    moments: dict[str, float] = {"request sent": sent, "response": answered}
    if hold is not None:
        moments["request held"] = hold["held_at"]
        moments["request forwarded"] = hold["released_at"]
    if activation is not None:
        moments["scale decision"] = event_epoch(activation)
    if pod_created is not None:
        moments["pod created"] = event_epoch(pod_created)
    storage = _container_times(pod, "initContainerStatuses", storage_container)
    if storage.get("startedAt"):
        moments["storage initializer started"] = epoch(storage["startedAt"])
    if storage.get("finishedAt"):
        moments["storage initializer finished"] = epoch(storage["finishedAt"])
    runtime = _container_times(pod, "containerStatuses", runtime_container)
    if runtime.get("startedAt"):
        moments["runtime process started"] = epoch(runtime["startedAt"])
    loaded = model_loaded_at(runtime_log, model)
    if loaded is not None:
        moments["model loaded"] = loaded
    ready = _ready_since(pod)
    if ready is not None:
        moments["ready"] = ready
    return Timeline(moments)
