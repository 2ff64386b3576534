"""The HPA's replica calculation, one rule a row (lab_helpers.local.controllers.hpa_algorithm)."""
from __future__ import annotations

import pytest

from lab_helpers.local.controllers.hpa_algorithm import Recommendation, recommend, stabilize, utilization_ratio


@pytest.mark.parametrize("why,current,ratio,pods,low,high,expected", [
    ("twice the target doubles", 2, 2.0, 2, 1, 10, 4),
    ("ratio rounds up", 3, 1.2, 3, 1, 10, 4),                 # ceil(3.6)
    ("within +10 % tolerance: unchanged", 4, 1.09, 4, 1, 10, 4),
    ("within -10 % tolerance: unchanged", 4, 0.91, 4, 1, 10, 4),
    ("just outside the tolerance moves", 4, 1.11, 4, 1, 10, 5),
    ("half the target halves", 4, 0.5, 4, 1, 10, 2),
    ("idle never goes below min", 3, 0.01, 3, 1, 10, 1),
    ("clamped to max", 2, 10.0, 2, 1, 4, 4),
    ("uses the pods that reported, not the current count", 4, 2.0, 1, 1, 10, 2),
])
def test_recommendation(why, current, ratio, pods, low, high, expected):
    assert recommend(current, ratio, pods, low, high) == expected


def test_utilization_is_summed_usage_over_summed_requests_against_the_target():
    assert utilization_ratio([80.0, 40.0], [100.0, 100.0], target_percent=60) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="utilization is undefined"):
        utilization_ratio([], [], 80)


def test_scale_down_waits_for_the_highest_recommendation_of_the_window():
    history = [Recommendation(0.0, 4), Recommendation(100.0, 3)]
    desired, kept = stabilize(200.0, current=4, recommendation=1, history=history)
    assert desired == 4                       # 4 was recommended 200 s ago, inside 300 s
    desired, _ = stabilize(301.0, current=4, recommendation=1, history=kept)
    assert desired == 3                       # the 4 left the window; 3 (t=100) is still in it
    desired, _ = stabilize(401.0, current=3, recommendation=1, history=kept)
    assert desired == 1


def test_scale_up_is_immediate_by_default():
    desired, _ = stabilize(10.0, current=1, recommendation=3, history=[Recommendation(0.0, 1)])
    assert desired == 3


def test_history_keeps_only_the_window():
    _, kept = stabilize(1000.0, current=2, recommendation=2, history=[Recommendation(0.0, 5), Recommendation(900.0, 3)])
    assert [r.at for r in kept] == [900.0, 1000.0]
