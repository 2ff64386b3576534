"""The walk of one scale-from-zero, read from the events the controllers wrote: who did what, in order.

KEDA's activation (``KEDAScaleTargetActivated`` on the ScaledObject), the Deployment creating the pod
(``SuccessfulCreate``), the pod scheduled and its containers started (the storage initializer, then the
model server). Events are often second-resolution on a
cluster (``firstTimestamp``), so this gives the order and the coarse timing; notebook 05 takes the
same walk apart phase by phase (`scaling.coldstart`). Read it while the woken pod still exists: a deleted pod's events
are no longer among the InferenceService's children.
"""
from __future__ import annotations

from typing import Any, Protocol

import pandas as pd

from .stamps import event_epoch as _seconds

# Not InferenceServiceReady: at zero replicas the Deployment is Available (0 of 0), so KServe's Ready
# stays True across a wake-up and the event, if any, belongs to another change.
WALK_REASONS = ("KEDAScaleTargetActivated", "SuccessfulCreate", "Scheduled", "Pulled", "Started")


class EventReader(Protocol):
    def events(self, kind: str, name: str, namespace: str | None = None,
               children: bool = True) -> list[dict[str, Any]]: ...


def wake_up_walk(lab: EventReader, scaled_object: str, inference_service: str,
                 namespace: str | None = None) -> pd.DataFrame:
    """Events of the last wake-up, oldest first: ``seconds`` after the activation, ``object``, ``step`` (the
    reason, with the container for ``Started``), ``message``."""
    activations = [e for e in lab.events("ScaledObject", scaled_object, namespace, children=False)
                   if e.get("reason") == "KEDAScaleTargetActivated"]
    if not activations:
        raise LookupError(f"ScaledObject {scaled_object} has no KEDAScaleTargetActivated event: it has not woken "
                          "from zero yet (see runbooks/scale-to-zero-failing.md)")
    activation = activations[-1]
    start = _seconds(activation)
    rows = [activation] + sorted((e for e in lab.events("InferenceService", inference_service, namespace)
                                  if e.get("reason") in WALK_REASONS and _seconds(e) >= start), key=_seconds)
    return pd.DataFrame([{"seconds": _seconds(e) - start,
                          "object": f"{e['involvedObject']['kind']}/{e['involvedObject']['name']}",
                          "step": _step(e), "message": e.get("message", "")} for e in rows])


def _step(event: dict[str, Any]) -> str:
    """``Started storage-initializer`` rather than two indistinguishable ``Started``."""
    message = event.get("message", "")
    if event["reason"] == "Started" and message.startswith("Started container "):
        return f"Started {message.removeprefix('Started container ')}"
    return event["reason"]
