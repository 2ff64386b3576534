"""The exit test's self-checks (notebook 13): the diagnose answer against the truth, the essay's length, each
part's result and time against its budget."""
from .answer import AnswerCheck, check_answer
from .build import cold_start_checks, held_out_request
from .clock import BUDGET_MINUTES, ExitTestClock
from .essay import ESSAY_TAG, WORD_RANGE, essay_from_notebook, word_count

__all__ = ["AnswerCheck", "BUDGET_MINUTES", "ESSAY_TAG", "ExitTestClock", "WORD_RANGE", "check_answer",
           "cold_start_checks", "essay_from_notebook", "held_out_request", "word_count"]
