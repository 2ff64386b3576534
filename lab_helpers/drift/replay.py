"""Traffic for the drift lesson, and its evaluation by replaying the logged rows in windows.

Clean traffic is rows drawn with replacement from the dataset (the population the model was trained
on); shifted traffic is the same draw with one feature moved by a stated number of its standard
deviations (a sensor recalibrated, a unit changed upstream). Replaying the *logged* traffic, in the
order it was logged, in windows of a fixed number of rows, gives many windows of each kind from one
run, so a false-alarm rate and a detection rate can be measured rather than assumed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..models.training import load_dataset
from .job import judge


@dataclass(frozen=True)
class Shift:
    """One feature moved by `sigmas` of its standard deviation."""

    feature: str
    sigmas: float

    def apply(self, rows: pd.DataFrame, population: pd.DataFrame) -> pd.DataFrame:
        if self.feature not in rows.columns:
            raise ValueError(f"no feature {self.feature!r} to shift; the rows have {list(rows.columns)}")
        moved = rows.copy()
        moved[self.feature] = moved[self.feature] + self.sigmas * population[self.feature].std()
        return moved


def population(dataset: str = "iris") -> pd.DataFrame:
    """Every row of the dataset (train and held-out): what clean traffic is drawn from."""
    data = load_dataset(dataset)
    return pd.concat([data.X_train, data.X_test], ignore_index=True)


def draw(rows: int, rng: np.random.Generator, shift: Shift | None = None, dataset: str = "iris") -> pd.DataFrame:
    """`rows` rows of clean traffic, or shifted traffic when `shift` is given."""
    pool = population(dataset)
    sample = pool.iloc[rng.integers(0, len(pool), rows)].reset_index(drop=True)
    return shift.apply(sample, pool) if shift else sample


def v2_batches(rows: pd.DataFrame, batch: int = 50) -> list[dict]:
    """V2 requests of `batch` rows each (one FP64 tensor, as kserve's sklearn runtime reads it)."""
    values = rows.to_numpy(dtype=float)
    return [{"inputs": [{"name": "input-0", "shape": list(chunk.shape), "datatype": "FP64", "data": chunk.tolist()}]}
            for chunk in (values[i:i + batch] for i in range(0, len(values), batch))]


def windows(logged: pd.DataFrame, rows_per_window: int) -> list[pd.DataFrame]:
    """The logged rows in time order, cut into whole windows of `rows_per_window` (a partial last one is dropped)."""
    ordered = logged.sort_values("time", kind="stable").reset_index(drop=True)
    return [ordered.iloc[i:i + rows_per_window] for i in range(0, len(ordered) - rows_per_window + 1, rows_per_window)]


def replay(reference: pd.DataFrame, clean: pd.DataFrame, shifted: pd.DataFrame, rows_per_window: int,
           alpha: float) -> pd.DataFrame:
    """One row per replayed window: ``kind`` (clean / shifted), ``p_value``, ``psi``, ``alarm``."""
    rows = []
    for kind, logged in (("clean", clean), ("shifted", shifted)):
        for window in windows(logged, rows_per_window):
            verdict = judge(reference, window, alpha)
            rows.append({"kind": kind, "p_value": verdict.p_value, "psi": verdict.psi, "alarm": verdict.drifted})
    return pd.DataFrame(rows)


def rates(replayed: pd.DataFrame) -> tuple[float, float]:
    """(false-alarm rate over clean windows, detection rate over shifted windows)."""
    by_kind = replayed.groupby("kind")["alarm"].mean()
    return float(by_kind.get("clean", np.nan)), float(by_kind.get("shifted", np.nan))
