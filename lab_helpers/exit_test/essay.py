"""Part 3's self-check: the essay is a markdown cell of the notebook (tagged `ESSAY_TAG`), counted in words."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat

from ..errors import LabError

ESSAY_TAG = "exit-test-essay"
WORD_RANGE = (380, 420)  # "~400 words"
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")  # [text](target) counts as its text
_WORD = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9'’.+/-]*[A-Za-z0-9])?")


def word_count(markdown: str) -> int:
    """Words as a reader counts them: link targets, markup and punctuation are not words; a hyphenated or dotted
    term (``scale-to-zero``, ``v0.20``) is one."""
    return len(_WORD.findall(_LINK.sub(r"\1", markdown)))


def essay_from_notebook(path: str | Path) -> str:
    """The text of the notebook's markdown cell tagged `ESSAY_TAG` (save the notebook after editing it)."""
    cells = [c for c in nbformat.read(str(path), as_version=4).cells
             if c.cell_type == "markdown" and ESSAY_TAG in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise LabError(f"{path}: expected one markdown cell tagged {ESSAY_TAG!r} (the essay), found {len(cells)}")
    return cells[0].source
