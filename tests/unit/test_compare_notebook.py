"""Notebook 12's reflection: 380-420 words, and every number it cites backed by the committed run's table.

The reflection is written from the committed run. Each number in it must carry a unit the table prints
(×, ms, s, req/s, MB, lines) and round, at the precision cited, to a figure of that unit in the output of
the table cell (`comparison.report()`). Re-executing the notebook changes the figures: then this test
fails until the reflection is re-read against the new table — by design.
"""
import re

import nbformat
import pytest

from lab_helpers.compare.table import unmatched
from lab_helpers.paths import notebooks_dir

NOTEBOOK = notebooks_dir() / "12_compare_standalone.ipynb"
HEADING = "## 6 · Reflection"
WORD = re.compile(r"[\w’'×/.-]*\w[\w’'×/.-]*")


@pytest.fixture(scope="module")
def book():
    return nbformat.read(str(NOTEBOOK), as_version=4)


def _reflection(book) -> str:
    cells = [cell.source for cell in book.cells if cell.cell_type == "markdown" and cell.source.startswith(HEADING)]
    assert len(cells) == 1, f"one markdown cell starting with {HEADING!r}"
    return cells[0].removeprefix(HEADING)


def _table_output(book) -> str:
    cells = [cell for cell in book.cells if cell.cell_type == "code" and "comparison.report()" in cell.source]
    assert len(cells) == 1, "one code cell prints comparison.report()"
    return "".join(output.get("text", "") for output in cells[0].outputs)


def test_the_reflection_has_about_400_words(book) -> None:
    words = WORD.findall(_reflection(book))
    assert 380 <= len(words) <= 420, f"{len(words)} words"


def test_every_number_in_the_reflection_is_a_figure_of_the_committed_table(book) -> None:
    output = _table_output(book)
    assert "ratios" in output, "the table cell's committed output holds the table and its ratios"
    assert unmatched(_reflection(book), output) == []
