"""Part 2's self-check: the learner's answer (or, in a headless run, the lab's diagnosis) against the fault injected."""
from __future__ import annotations

from dataclasses import dataclass

from ..diagnosis import ServiceDiagnosis
from ..faults import normalise, scenario


@dataclass(frozen=True)
class AnswerCheck:
    given: str
    answered_by: str  # "you", or "lab.diagnose" when the run had no answer (headless, CI)
    truth: str
    change: str  # what the fault changed in the spec, shown once answered
    diagnosis: ServiceDiagnosis

    @property
    def passed(self) -> bool:
        return normalise(self.given) == self.truth

    def __str__(self) -> str:
        verdict = "right" if self.passed else f"wrong: the fault was {self.truth}"
        return "\n".join([f"answer ({self.answered_by}): {self.given or '(none)'} -> {verdict}",
                          f"what was changed: {self.change}", str(self.diagnosis)])


def check_answer(answer: str | None, truth: str, diagnosis: ServiceDiagnosis) -> AnswerCheck:
    """Compare `answer` (any case or spacing of a scenario's name) with the injected `truth`; with no answer the
    diagnosis' cause stands in, so a run without a learner still checks the whole path."""
    injected = scenario(truth)
    if answer and answer.strip():
        return AnswerCheck(answer.strip(), "you", injected.name, injected.change, diagnosis)
    return AnswerCheck(diagnosis.cause or "", "lab.diagnose", injected.name, injected.change, diagnosis)
