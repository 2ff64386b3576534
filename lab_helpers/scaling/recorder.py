"""Replicas over time: a Deployment sampled in the background while a notebook acts, for plots and checks.

Both targets answer ``lab.get("Deployment", name)``, so one sampler serves both: on the local target it
reads the control plane's store, on a cluster the API server (the same numbers as
``kube_deployment_spec_replicas`` / ``kube_deployment_status_replicas_ready``, without needing
kube-state-metrics). Moments the notebook marks (a request sent, answered) are kept beside the
samples so a plot can show them on the same time axis.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from ..errors import NotFound


class Reader(Protocol):
    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]: ...


@dataclass
class ReplicaRecorder:
    """Samples `spec.replicas` (wanted) and `status.readyReplicas` (ready) every `interval` seconds."""

    lab: Reader
    deployment: str
    namespace: str | None = None
    interval: float = 0.25
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.interval > 0:
            raise ValueError(f"ReplicaRecorder: interval must be > 0 s, got {self.interval}")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()

    def start(self) -> ReplicaRecorder:
        """Take a first sample now, then one every `interval` in a background thread."""
        self._started = time.monotonic()
        self.sample()
        self._thread = threading.Thread(target=self._run, name=f"replicas-{self.deployment}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling (after one last sample)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.sample()

    def __enter__(self) -> ReplicaRecorder:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        """One sample; none while the Deployment does not exist yet (recording may start before the apply)."""
        try:
            deployment = self.lab.get("Deployment", self.deployment, self.namespace)
        except NotFound:
            return
        wanted = int(deployment["spec"].get("replicas", 1))
        ready = int((deployment.get("status") or {}).get("readyReplicas") or 0)
        self.samples.append((time.monotonic() - self._started, wanted, ready))

    def mark(self, label: str) -> None:
        """Remember that something happened now (e.g. "request sent"), on the samples' time axis."""
        self.marks.append((time.monotonic() - self._started, label))

    def frame(self) -> pd.DataFrame:
        """One row per sample: ``seconds`` since the start, ``replicas`` wanted, ``ready``."""
        return pd.DataFrame(self.samples, columns=["seconds", "replicas", "ready"])

    def wait_for(self, replicas: int, timeout: float) -> float:
        """Block until a sample shows `replicas` wanted; the seconds it took. Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.samples and self.samples[-1][1] == replicas:
                return self.samples[-1][0]
            time.sleep(self.interval / 2)
        raise TimeoutError(f"Deployment {self.deployment} did not reach {replicas} replicas within {timeout:g} s "
                           f"(last sample: {self.samples[-1][1] if self.samples else 'none'}); "
                           "see runbooks/scale-to-zero-failing.md")


def replica_sequence(frame: pd.DataFrame, column: str = "replicas") -> list[int]:
    """The distinct successive values of a column, e.g. [1, 0, 1]: a stable summary of a noisy series."""
    values = frame[column].tolist()
    return [value for index, value in enumerate(values) if index == 0 or value != values[index - 1]]
