"""The exit test's self-checks: the answer against the truth, the essay's word count, the build check, the clock."""
from __future__ import annotations

import nbformat
import pandas as pd
import pytest

from lab_helpers.diagnosis import ServiceDiagnosis
from lab_helpers.errors import LabError
from lab_helpers.exit_test import (BUDGET_MINUTES, ESSAY_TAG, WORD_RANGE, ExitTestClock, check_answer,
                                   cold_start_checks, essay_from_notebook, held_out_request, word_count)
from lab_helpers.paths import notebooks_dir
from lab_helpers.scaling.coldstart import MOMENTS

NOTEBOOK = notebooks_dir() / "13_exit_test.ipynb"


def diagnosis(cause: str | None) -> ServiceDiagnosis:
    return ServiceDiagnosis(name="wine-incident", namespace="lab", ready=False, cause=cause, reason="OOMKilled",
                            message="memory limit 64Mi exceeded", runbook="runbooks/oom-killed.md",
                            evidence=["status: Ready=False (PredictorNotReady)"])


@pytest.mark.parametrize("answer", ["resource-limits-too-low", "Resource limits too low", " resource_limits_too_low "])
def test_the_right_answer_passes_however_it_is_written(answer: str) -> None:
    check = check_answer(answer, "resource-limits-too-low", diagnosis("model-artifact-missing"))
    assert check.passed and check.answered_by == "you"
    assert str(check).startswith(f"answer (you): {answer.strip()} -> right")


@pytest.mark.parametrize("answer", ["model-artifact-missing", "OOM", "limits"])
def test_a_wrong_answer_fails_and_names_the_truth(answer: str) -> None:
    check = check_answer(answer, "resource-limits-too-low", diagnosis("resource-limits-too-low"))
    assert not check.passed
    text = str(check)
    assert "wrong: the fault was resource-limits-too-low" in text
    assert "what was changed: memory request and limit set to 64Mi" in text
    assert "1. status: Ready=False (PredictorNotReady)" in text, "the evidence trail is shown"


@pytest.mark.parametrize("answer", [None, "", "   "])
def test_without_an_answer_the_diagnosis_answers(answer: str | None) -> None:
    right = check_answer(answer, "resource-limits-too-low", diagnosis("resource-limits-too-low"))
    assert right.passed and right.answered_by == "lab.diagnose"
    assert not check_answer(answer, "resource-limits-too-low", diagnosis(None)).passed


def test_an_unknown_truth_is_refused() -> None:
    with pytest.raises(LabError, match="unknown fault scenario"):
        check_answer("x", "disk-full", diagnosis(None))


@pytest.mark.parametrize("text, words", [
    ("KServe composes with KEDA.", 4),
    ("### A heading\n\n**Bold** and `code`, a [link to notebook 04](04_scale_to_zero.ipynb).", 10),
    ("scale-to-zero, v0.20.0 and basecamp's models — 2.5 hours", 7),
    ("", 0),
])
def test_words_are_counted_as_a_reader_counts_them(text: str, words: int) -> None:
    assert word_count(text) == words


def test_the_notebook_essay_is_about_400_words() -> None:
    words = word_count(essay_from_notebook(NOTEBOOK))
    assert WORD_RANGE[0] <= words <= WORD_RANGE[1], f"the essay has {words} words"


def test_a_notebook_without_one_essay_cell_is_refused(tmp_path) -> None:
    path = tmp_path / "nb.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("a", metadata={"tags": [ESSAY_TAG]}),
                                         nbformat.v4.new_markdown_cell("b", metadata={"tags": [ESSAY_TAG]})])
    nbformat.write(nb, str(path))
    with pytest.raises(LabError, match="expected one markdown cell tagged 'exit-test-essay' \\(the essay\\), found 2"):
        essay_from_notebook(path)


def trial(status: int = 200, prediction: list[int] | None = None, drop: tuple[str, ...] = ()) -> pd.DataFrame:
    cold = {"kind": "cold", "status": status, "prediction": prediction if prediction is not None else [0],
            **{m: 0.1 for m in MOMENTS if m not in drop}}
    warm = {"kind": "warm", "status": 200, "prediction": [0]}
    return pd.DataFrame([cold, warm])


def test_the_build_passes_when_the_woken_pod_answers_right_with_every_moment_on_record() -> None:
    assert all(cold_start_checks(trial(), expected=0).values())
    assert all(cold_start_checks(trial(drop=("request held", "request forwarded")), expected=0).values()), \
        "the interceptor's hold is recorded on the local target only"


@pytest.mark.parametrize("frame, failed", [
    (trial(status=504), "every request answered 200"),
    (trial(prediction=[2]), "first answer after a wake-up is right"),
    (trial(drop=("model loaded",)), "every moment of the cold path recorded"),
])
def test_the_build_fails_on_what_went_wrong(frame: pd.DataFrame, failed: str) -> None:
    checks = cold_start_checks(frame, expected=0)
    assert [name for name, ok in checks.items() if not ok] == [failed]


def test_a_build_without_a_cold_request_does_not_pass() -> None:
    assert not any(cold_start_checks(trial().iloc[1:], expected=0)[k] for k in (
        "first answer after a wake-up is right", "every moment of the cold path recorded"))


def test_the_held_out_request_is_one_wine_sample_as_a_v2_tensor() -> None:
    request, label = held_out_request("wine")
    (tensor,) = request["inputs"]
    assert (tensor["name"], tensor["shape"], tensor["datatype"]) == ("input-0", [1, 13], "FP64")
    assert label in (0, 1, 2)


def test_the_clock_reports_each_part_against_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    now = iter([0.0, 600.0, 600.0, 700.0])
    monkeypatch.setattr("lab_helpers.exit_test.clock.time.monotonic", lambda: next(now))
    clock = ExitTestClock()
    clock.start("build")
    clock.finish("build", True)
    clock.start("diagnose")
    clock.finish("diagnose", False)
    rows = clock.summary().set_index("part")
    assert list(rows.index) == list(BUDGET_MINUTES) and sum(BUDGET_MINUTES.values()) == 150
    assert rows.loc["build", ["checked", "minutes", "within_budget"]].tolist() == [True, 10.0, True]
    assert rows.loc["diagnose", "checked"] == False  # noqa: E712 (a numpy bool)
    assert rows.loc["articulate", ["checked", "minutes"]].isna().all()


def test_the_clock_refuses_unknown_parts_and_finishing_first() -> None:
    with pytest.raises(LabError, match="unknown exit-test part 'deploy'"):
        ExitTestClock().start("deploy")
    with pytest.raises(LabError, match="'diagnose' finished before it started"):
        ExitTestClock().finish("diagnose", True)
