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
from typing import Any, ClassVar, Protocol, Self

import pandas as pd

from ..errors import NotFound


class Reader(Protocol):
    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]: ...


@dataclass
class ObjectRecorder:
    """Samples one object every `interval` seconds in a background thread; subclasses say which and what.

    `KIND` is the object's kind, `COLUMNS` the names of what `read` takes from it per sample."""

    KIND: ClassVar[str] = ""
    COLUMNS: ClassVar[tuple[str, ...]] = ()

    lab: Reader
    name: str
    namespace: str | None = None
    interval: float = 0.25
    samples: list[tuple[Any, ...]] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.interval > 0:
            raise ValueError(f"{type(self).__name__}: interval must be > 0 s, got {self.interval}")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        self.started_at = time.time()  # the same moment as a wall-clock time, to place Prometheus samples

    def read(self, obj: dict[str, Any]) -> tuple[Any, ...]:
        raise NotImplementedError

    def start(self) -> Self:
        """Take a first sample now, then one every `interval` in a background thread."""
        self._started, self.started_at = time.monotonic(), time.time()
        self.sample()
        self._thread = threading.Thread(target=self._run, name=f"{self.KIND}-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling (after one last sample)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.sample()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        """One sample; none while the object does not exist yet (recording may start before the apply)."""
        try:
            obj = self.lab.get(self.KIND, self.name, self.namespace)
        except NotFound:
            return
        self.samples.append((time.monotonic() - self._started, *self.read(obj)))

    def mark(self, label: str) -> None:
        """Remember that something happened now (e.g. "request sent"), on the samples' time axis."""
        self.marks.append((time.monotonic() - self._started, label))

    def frame(self) -> pd.DataFrame:
        """One row per sample: ``seconds`` since the start, then `COLUMNS`."""
        return pd.DataFrame(self.samples, columns=["seconds", *self.COLUMNS])


@dataclass
class ReplicaRecorder(ObjectRecorder):
    """A Deployment's `spec.replicas` (``replicas``, wanted) and `status.readyReplicas` (``ready``)."""

    KIND: ClassVar[str] = "Deployment"
    COLUMNS: ClassVar[tuple[str, ...]] = ("replicas", "ready")

    def read(self, deployment: dict[str, Any]) -> tuple[int, int]:
        return (int(deployment["spec"].get("replicas", 1)),
                int((deployment.get("status") or {}).get("readyReplicas") or 0))

    def wait_for(self, replicas: int, timeout: float) -> float:
        """Block until a sample shows `replicas` wanted; the seconds it took. Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.samples and self.samples[-1][1] == replicas:
                return self.samples[-1][0]
            time.sleep(self.interval / 2)
        raise TimeoutError(f"Deployment {self.name} did not reach {replicas} replicas within {timeout:g} s "
                           f"(last sample: {self.samples[-1][1] if self.samples else 'none'}); "
                           "see runbooks/scale-to-zero-failing.md")


def replica_sequence(frame: pd.DataFrame, column: str = "replicas") -> list[int]:
    """The distinct successive values of a column, e.g. [1, 0, 1]: a stable summary of a noisy series."""
    values = frame[column].tolist()
    return [value for index, value in enumerate(values) if index == 0 or value != values[index - 1]]
