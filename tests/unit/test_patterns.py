"""The pattern notes the curriculum asks for: each an OUTLINE with a "When not to use it" section, all indexed."""
from __future__ import annotations

import re

import pytest

from lab_helpers.paths import REPO_ROOT

PATTERNS = REPO_ROOT / "patterns"
NOTES = ("model-serving", "inference-shapes", "serverless-inference", "canary-deploys", "operator-pattern")


@pytest.mark.parametrize("note", NOTES)
def test_note_is_an_outline_that_says_when_not_to_use_it(note: str):
    path = PATTERNS / f"{note}.md"
    assert path.is_file(), f"patterns/{note}.md is missing"
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# "), f"{note}: first line is not a title"
    assert any(line.startswith("**Status:** OUTLINE") for line in lines[:4]), f"{note}: no '**Status:** OUTLINE' under the title"
    when_not = path.read_text().split("## When not to use it", 1)
    assert len(when_not) == 2, f"{note}: no '## When not to use it' section"
    body = when_not[1].split("\n## ", 1)[0]
    assert body.count("\n- ") >= 2, f"{note}: 'When not to use it' names fewer than two cases"


def test_the_index_links_every_note_and_only_notes():
    linked = set(re.findall(r"\]\(([a-z0-9-]+)\.md\)", (PATTERNS / "README.md").read_text()))
    present = {p.stem for p in PATTERNS.glob("*.md")} - {"README"}
    assert linked == present, f"index vs files: only linked {sorted(linked - present)}, only files {sorted(present - linked)}"
    assert set(NOTES) <= present
