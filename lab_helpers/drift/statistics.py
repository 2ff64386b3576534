"""Drift statistics for one window of predictions (and inputs) against a reference window.

Without ground truth the first thing that can be watched is what the model *says*: the share of each
predicted class. Three measures, from scipy where it has them:

- **chi-squared goodness of fit** of the window's predicted-class counts against the reference shares
  (`scipy.stats.chisquare`): the primary statistic, the one that raises the alert. Its p-value has a
  known meaning (the chance of a shift at least this large in a clean window), so the false-alarm rate
  is set by `alpha`, not by trial and error;
- **PSI** (population stability index) of the class shares, sum((cur - ref) * ln(cur / ref)): the
  industry's effect size, reported beside the test (rules of thumb: < 0.1 stable, > 0.25 shifted);
- **Kolmogorov-Smirnov** per input feature (`scipy.stats.ks_2samp`), with the Benjamini-Hochberg
  correction across features (`scipy.stats.false_discovery_control`): which input moved, once the
  predictions say something did.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

EPSILON = 1e-4  # a share of 0 would make PSI infinite; it counts as this instead
DEFAULT_ALPHA = 0.01


def class_shares(predictions: pd.Series | np.ndarray, classes: list[str]) -> pd.Series:
    """The share of each class in `predictions`, in `classes` order (a class never predicted has share 0)."""
    counts = pd.Series(np.asarray(predictions).astype(str)).value_counts()
    total = counts.sum()
    if total == 0:
        raise ValueError("an empty window has no class shares: no predictions were logged in it")
    return pd.Series([counts.get(c, 0) / total for c in classes], index=classes, dtype=float)


def psi(reference: pd.Series, current: pd.Series) -> float:
    """Population stability index of two share vectors over the same categories."""
    ref = np.clip(reference.to_numpy(dtype=float), EPSILON, None)
    cur = np.clip(current.to_numpy(dtype=float), EPSILON, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


@dataclass(frozen=True)
class ClassShift:
    """The primary drift statistic of one window."""

    rows: int
    chi2: float
    p_value: float
    psi: float
    alpha: float

    @property
    def drifted(self) -> bool:
        return self.p_value < self.alpha


def class_shift(reference_shares: pd.Series, predictions: pd.Series | np.ndarray,
                alpha: float = DEFAULT_ALPHA) -> ClassShift:
    """Chi-squared test of the window's predicted classes against the reference shares, and their PSI."""
    classes = list(reference_shares.index)
    unknown = sorted(str(c) for c in set(np.asarray(predictions).astype(str)) - set(classes))
    if unknown:
        raise ValueError(f"predictions name classes the reference never predicted: {unknown} (reference: {classes})")
    shares = class_shares(predictions, classes)
    rows = len(predictions)
    observed = shares.to_numpy() * rows
    expected = np.clip(reference_shares.to_numpy(dtype=float), EPSILON, None)
    expected = expected / expected.sum() * rows
    chi2, p_value = stats.chisquare(observed, expected)
    return ClassShift(rows=rows, chi2=float(chi2), p_value=float(p_value), psi=psi(reference_shares, shares),
                      alpha=alpha)


def feature_tests(reference: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """Two-sample KS per shared numeric column; ``p_adjusted`` is Benjamini-Hochberg over the features."""
    columns = [c for c in reference.columns if c in current.columns and pd.api.types.is_numeric_dtype(reference[c])]
    if not columns:
        raise ValueError(f"no numeric feature is in both windows (reference: {list(reference.columns)}, "
                         f"current: {list(current.columns)})")
    if current.empty:
        raise ValueError("an empty window has no feature distribution: no inputs were logged in it")
    rows = [(c, *stats.ks_2samp(reference[c], current[c])) for c in columns]
    frame = pd.DataFrame([(c, float(s), float(p)) for c, s, p in rows], columns=["feature", "ks", "p_value"])
    frame["p_adjusted"] = stats.false_discovery_control(frame["p_value"].to_numpy())
    return frame
