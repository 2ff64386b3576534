"""Drift lesson traffic and the replay that rates the detector."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lab_helpers.drift.replay import Shift, draw, population, rates, replay, v2_batches, windows


def test_shifted_traffic_moves_one_feature_by_its_standard_deviations():
    rng = np.random.default_rng(1)
    pool = population()
    shifted = draw(2000, rng, Shift("petal_length", 1.0))
    clean = draw(2000, np.random.default_rng(1))
    assert (shifted["petal_length"] - clean["petal_length"]).round(9).unique().tolist() == \
        [round(pool["petal_length"].std(), 9)]
    assert (shifted["sepal_length"] == clean["sepal_length"]).all()
    with pytest.raises(ValueError, match="no feature 'height'"):
        Shift("height", 1.0).apply(clean, pool)


def test_batches_and_windows_cut_where_they_should():
    rows = draw(120, np.random.default_rng(2))
    batches = v2_batches(rows, batch=50)
    assert [b["inputs"][0]["shape"] for b in batches] == [[50, 4], [50, 4], [20, 4]]
    logged = pd.DataFrame({"time": range(250), "prediction": 0})
    assert [len(w) for w in windows(logged, 100)] == [100, 100]


def test_replay_rates_a_detector_over_clean_and_shifted_windows():
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"time": range(1000), "prediction": rng.choice([0, 1, 2], 1000)})
    clean = pd.DataFrame({"time": range(2000), "prediction": rng.choice([0, 1, 2], 2000)})
    shifted = pd.DataFrame({"time": range(2000), "prediction": rng.choice([0, 1, 2], 2000, p=[0.1, 0.3, 0.6])})
    replayed = replay(reference, clean, shifted, rows_per_window=100, alpha=0.01)
    assert replayed["kind"].value_counts().to_dict() == {"clean": 20, "shifted": 20}
    false_alarms, detection = rates(replayed)
    assert false_alarms <= 0.1 and detection == 1.0
