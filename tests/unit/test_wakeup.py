"""The wake-up walk from recorded events, local- and cluster-shaped alike."""
from __future__ import annotations

import pytest

from lab_helpers.scaling.wakeup import wake_up_walk


def event(kind, name, reason, message, stamp):
    return {"involvedObject": {"kind": kind, "name": name}, "reason": reason, "message": message,
            "firstTimestamp": stamp, "lastTimestamp": stamp, "type": "Normal"}


class Recorded:
    def __init__(self, scaled, isvc):
        self.by_kind = {"ScaledObject": scaled, "InferenceService": isvc}

    def events(self, kind, name, namespace=None, children=True):
        return self.by_kind[kind]


SCALED = [event("ScaledObject", "iris-s2z", "KEDAScaleTargetDeactivated", "Deactivated ...", "2026-12-02T17:00:00Z"),
          event("ScaledObject", "iris-s2z", "KEDAScaleTargetActivated", "Scaled ... from 0 to 1", "2026-12-02T17:05:00Z")]
ISVC = [event("Deployment", "iris-s2z-predictor", "SuccessfulCreate", "Created Pod old", "2026-12-02T16:59:00Z"),
        event("Deployment", "iris-s2z-predictor", "SuccessfulCreate", "Created Pod p", "2026-12-02T17:05:00Z"),
        event("Pod", "p", "Scheduled", "Successfully assigned lab/p to node-1", "2026-12-02T17:05:00Z"),
        event("Pod", "p", "Pulled", "Container image already present on machine", "2026-12-02T17:05:01Z"),
        event("Pod", "p", "Created", "Created container storage-initializer", "2026-12-02T17:05:01Z"),
        event("Pod", "p", "Started", "Started container storage-initializer", "2026-12-02T17:05:01Z"),
        event("Pod", "p", "Started", "Started container kserve-container", "2026-12-02T17:05:04Z")]


def test_the_walk_starts_at_the_last_activation_and_names_each_container():
    walk = wake_up_walk(Recorded(SCALED, ISVC), "iris-s2z", "iris-s2z")
    assert walk["step"].tolist() == ["KEDAScaleTargetActivated", "SuccessfulCreate", "Scheduled", "Pulled",
                                     "Started storage-initializer", "Started kserve-container"]
    assert walk["seconds"].tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 4.0]


def test_no_activation_yet_says_so_and_where_to_look():
    with pytest.raises(LookupError, match="has not woken from zero yet.*scale-to-zero-failing"):
        wake_up_walk(Recorded(SCALED[:1], ISVC), "iris-s2z", "iris-s2z")
