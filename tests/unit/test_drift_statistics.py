"""Drift statistics against reference values and known distributions."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lab_helpers.drift.statistics import class_shares, class_shift, feature_tests, psi

UNIFORM6 = pd.Series([1 / 6] * 6, index=list("abcdef"))


def test_chi_squared_matches_scipys_documented_example():
    # scipy.stats.chisquare([16, 18, 16, 14, 12, 12]) -> statistic 2.0, p 0.84914503608460956 (scipy docs)
    predictions = np.repeat(list("abcdef"), [16, 18, 16, 14, 12, 12])
    shift = class_shift(UNIFORM6, predictions, alpha=0.05)
    assert shift.rows == 88 and shift.chi2 == pytest.approx(2.0)
    assert shift.p_value == pytest.approx(0.84914503608460956) and not shift.drifted


def test_psi_is_zero_for_equal_shares_and_matches_the_formula():
    ref = pd.Series([0.5, 0.5], index=["x", "y"])
    assert psi(ref, ref) == 0.0
    cur = pd.Series([0.7, 0.3], index=["x", "y"])
    assert psi(ref, cur) == pytest.approx(0.2 * np.log(0.7 / 0.5) + (-0.2) * np.log(0.3 / 0.5))


def test_a_class_never_predicted_has_share_zero_and_unknown_classes_are_named():
    assert class_shares(np.array(["0", "0", "2"]), ["0", "1", "2"]).tolist() == [2 / 3, 0.0, 1 / 3]
    with pytest.raises(ValueError, match=r"classes the reference never predicted: \['7'\]"):
        class_shift(pd.Series([0.5, 0.5], index=["0", "1"]), np.array(["0", "7"]))
    with pytest.raises(ValueError, match="empty window"):
        class_shares(np.array([]), ["0"])


def test_clean_windows_alarm_at_about_alpha_and_a_changed_mix_is_caught():
    rng = np.random.default_rng(7)
    ref = pd.Series([1 / 3] * 3, index=["0", "1", "2"])
    clean = [class_shift(ref, rng.choice(["0", "1", "2"], size=250, p=[1 / 3] * 3), alpha=0.05) for _ in range(400)]
    shifted = [class_shift(ref, rng.choice(["0", "1", "2"], size=250, p=[0.25, 0.25, 0.5]), alpha=0.05)
               for _ in range(100)]
    false_alarms, detection = np.mean([s.drifted for s in clean]), np.mean([s.drifted for s in shifted])
    assert 0.02 <= false_alarms <= 0.08   # binomial band around alpha for 400 windows
    assert detection >= 0.95


def test_ks_per_feature_finds_the_moved_one_after_correction():
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"a": rng.normal(size=500), "b": rng.normal(size=500), "label": ["x"] * 500})
    cur = pd.DataFrame({"a": rng.normal(size=300) + 1.0, "b": rng.normal(size=300)})
    frame = feature_tests(ref, cur).set_index("feature")
    assert list(frame.index) == ["a", "b"]        # non-numeric columns are skipped
    assert frame.loc["a", "p_adjusted"] < 1e-6 and frame.loc["b", "p_adjusted"] > 0.01
    identical = feature_tests(ref, ref.drop(columns="label")).set_index("feature")
    assert identical.loc["a", "ks"] == 0.0 and identical.loc["a", "p_value"] == 1.0


def test_empty_or_disjoint_windows_get_clear_errors():
    ref = pd.DataFrame({"a": [1.0, 2.0]})
    with pytest.raises(ValueError, match="no numeric feature is in both windows"):
        feature_tests(ref, pd.DataFrame({"z": [1.0]}))
    with pytest.raises(ValueError, match="empty window"):
        feature_tests(ref, pd.DataFrame({"a": pd.Series([], dtype=float)}))
