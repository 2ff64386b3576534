"""Replicas over time: the background sampler and the stable summary of its series."""
from __future__ import annotations

import pandas as pd
import pytest

from lab_helpers.errors import NotFound
from lab_helpers.scaling.recorder import ReplicaRecorder, replica_sequence


class Deployments:
    """A lab whose Deployment appears, then changes replicas, as the test says."""

    def __init__(self):
        self.replicas: int | None = None

    def get(self, kind, name, namespace=None):
        if self.replicas is None:
            raise NotFound(f"{kind} {name} not found")
        return {"spec": {"replicas": self.replicas}, "status": {"readyReplicas": self.replicas}}


def test_the_recorder_samples_in_the_background_and_skips_a_deployment_not_created_yet():
    lab = Deployments()
    with ReplicaRecorder(lab, "d", interval=0.01) as recorder:
        lab.replicas = 1
        recorder.wait_for(1, timeout=5)
        lab.replicas = 0
        recorder.wait_for(0, timeout=5)
        recorder.mark("request sent")
    frame = recorder.frame()
    assert list(frame.columns) == ["seconds", "replicas", "ready"]
    assert replica_sequence(frame) == [1, 0]
    assert frame["seconds"].is_monotonic_increasing
    assert [label for _, label in recorder.marks] == ["request sent"]


def test_waiting_for_a_count_that_never_comes_names_it_and_the_runbook():
    lab = Deployments()
    lab.replicas = 1
    with ReplicaRecorder(lab, "d", interval=0.01) as recorder:
        with pytest.raises(TimeoutError, match="did not reach 0 replicas.*scale-to-zero-failing"):
            recorder.wait_for(0, timeout=0.1)


def test_a_bad_interval_is_refused():
    with pytest.raises(ValueError, match="interval must be > 0"):
        ReplicaRecorder(Deployments(), "d", interval=0)


def test_the_sequence_keeps_each_change_once():
    frame = pd.DataFrame({"replicas": [1, 1, 0, 0, 0, 1, 1, 0]})
    assert replica_sequence(frame) == [1, 0, 1, 0]
