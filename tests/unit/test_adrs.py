"""Every ADR is in the one numbered format and listed in the index."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from lab_helpers.paths import REPO_ROOT

ADR_DIR = REPO_ROOT / "adr"
SECTIONS = ["## Context", "## Options considered", "## Decision", "## Consequences", "## Evidence"]
STATUS = re.compile(r"^\*\*Status:\*\* (accepted|superseded by \[ADR (\d{4})\]\((\d{4})-[a-z0-9-]+\.md\)).* · \d{4}-\d{2}\b")
LINK = re.compile(r"\]\(([^)\s#]+)")


def adrs() -> list[Path]:
    return sorted(ADR_DIR.glob("[0-9][0-9][0-9][0-9]-*.md"))


def test_there_are_adrs_and_every_file_is_named_by_number_and_kebab_title():
    assert len(adrs()) >= 8
    strays = [p.name for p in ADR_DIR.glob("*.md") if p.name != "README.md" and not re.fullmatch(r"\d{4}-[a-z0-9-]+\.md", p.name)]
    assert not strays, f"ADR files not named NNNN-kebab-title.md: {strays}"
    numbers = [p.name[:4] for p in adrs()]
    assert len(numbers) == len(set(numbers)), f"two ADRs share a number: {numbers}"


@pytest.mark.parametrize("adr", adrs(), ids=lambda p: p.name[:4])
def test_adr_is_in_the_one_format(adr: Path):
    lines = [line for line in adr.read_text().splitlines() if line.strip()]
    assert lines[0].startswith(f"# ADR {adr.name[:4]} — "), f"{adr.name}: first line {lines[0]!r}"
    status = STATUS.match(lines[1])
    assert status, f"{adr.name}: second line must be '**Status:** accepted · YYYY-MM' (or superseded by …): {lines[1]!r}"
    if status.group(2):
        assert status.group(2) == status.group(3) and any(p.name.startswith(status.group(2)) for p in adrs())
    headings = [line for line in lines if line.startswith("## ")]
    assert headings == SECTIONS, f"{adr.name}: sections {headings}, want {SECTIONS}"
    options = adr.read_text().split("## Options considered", 1)[1].split("## Decision", 1)[0]
    assert options.count("\n|") >= 4 or options.count("\n- ") >= 2, f"{adr.name}: list at least two options"
    evidence = adr.read_text().split("## Evidence", 1)[1]
    assert LINK.search(evidence), f"{adr.name}: Evidence links nothing"


def test_every_adr_is_in_the_index_and_the_index_links_only_adrs_that_exist():
    linked = set(LINK.findall((ADR_DIR / "README.md").read_text()))
    names = {p.name for p in adrs()}
    assert names - linked == set(), f"ADRs missing from adr/README.md: {sorted(names - linked)}"
    assert linked - names == set(), f"adr/README.md links ADRs that do not exist: {sorted(linked - names)}"
