"""A wait shows one progress line that ends as its summary, and notebook tests drop that line from comparisons."""
from __future__ import annotations

import re

import nbformat
from nbval.plugin import coalesce_streams, get_sanitize_patterns

from lab_helpers.progress import Dots
from lab_helpers.series.nbtest import SANITIZE


def as_saved(text: str) -> str:
    """The stream as a saved notebook keeps it: outputs coalesced, carriage returns applied (nbval, nbclient)."""
    chunks = [nbformat.v4.new_output("stream", name="stdout", text=part) for part in re.split(r"(?=\r)", text)]
    return coalesce_streams(chunks)[0].text


def test_a_wait_is_one_line_that_ends_as_its_summary(capsys):
    dots = Dots("waiting for up == 1", every=0)
    for _ in range(3):
        dots.tick()
    dots.done("1 series {of 2}")
    raw = capsys.readouterr().out
    assert raw.count("\r") >= 4  # drawn at the start, on each tick, at the end: rewritten in place
    assert re.fullmatch(r"⏳ waiting for up == 1: 1 series \{of 2\} in \d+\.\d s\n", as_saved(raw))


def test_ticks_are_throttled(capsys):
    dots = Dots("starting", every=3600)
    for _ in range(5):
        dots.tick()
    dots.done()
    assert capsys.readouterr().out.count("\r") == 2  # the first drawing and the summary only


def sanitized(text: str) -> str:
    for regex, replace in get_sanitize_patterns(SANITIZE.read_text()):
        text = re.sub(regex, replace, text)
    return text


def test_notebook_tests_drop_a_finished_progress_line_and_keep_the_rest(capsys):
    print("before")
    Dots("load: up to 10 requests").done("10 sent (200: 10)")
    print("after 1.5 s")
    assert sanitized(as_saved(capsys.readouterr().out)) == "before\nafter <DURATION>\n"
