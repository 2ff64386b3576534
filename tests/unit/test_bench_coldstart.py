"""The cold-start benchmark's report: one line per trial, medians, warm paths, the goal last."""
from __future__ import annotations

import pandas as pd
import pytest

from lab_helpers import cli

from lab_helpers.bench.coldstart import report


def test_the_report_ends_with_the_median_overhead_and_the_goal_and_survives_an_unanswered_trial():
    frame = pd.DataFrame([
        {"trial": 1, "kind": "cold", "status": 200, "total_s": 4.0, "runtime_s": 3.9, "overhead_s": 0.1},
        {"trial": 2, "kind": "cold", "status": 504, "total_s": 60.0, "runtime_s": None, "overhead_s": None},
        {"trial": 3, "kind": "cold", "status": 200, "total_s": 4.5, "runtime_s": 4.2, "overhead_s": 0.3},
        {"trial": 1, "kind": "warm", "status": 200, "total_s": 0.004},
        {"trial": 1, "kind": "warm, direct to pod", "status": 200, "total_s": 0.002}])
    lines = report(frame)
    assert "n/a" in lines[2] and "504" in lines[2]
    assert lines[-2:] == ["activation overhead: median 0.20 s", "goal (local target): <= 0.20 s -> met"]
    assert "warm p50 through the interceptor : 4.00 ms" in lines
    assert "warm p50 direct to the pod       : 2.00 ms" in lines


@pytest.mark.parametrize(("argv", "usage"), [
    (["bench", "coldstart", "--help"], "usage: python -m lab_helpers bench coldstart"),
    (["bench", "gateway", "--help"], "usage: python -m lab_helpers.bench gateway"),
])
def test_the_cli_hands_each_benchmark_its_own_arguments(argv, usage, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith(usage)
