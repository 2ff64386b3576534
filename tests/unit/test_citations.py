"""Sources the project cites are ones a reader can open: upstream docs and code, not private notes.

The facts in comments, runbooks, ADRs and notebooks were checked against private research notes
(stack-facts.md) that users of this repo do not have; a citation of them, or of a bare section
number of them, is a dead end. Cite the upstream page or file instead, or say the fact plainly.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from lab_helpers.paths import REPO_ROOT

THIS_FILE = Path(__file__).resolve()
PRIVATE_NOTES = re.compile(r"stack-facts", re.IGNORECASE)
SECTION = re.compile(r"§\s*\d")
# A section of a named standard is a citation anyone can follow: "RFC 9110 §7.6.1".
STANDARD_SECTION = re.compile(r"\b(?:RFC|ISO|IEC|IEEE)[ -]?[\d.-]+,? §\s*\d")
SKIPPED_DIRS = {".git", ".venv", "build", "node_modules", "__pycache__", ".lab", ".ipynb_checkpoints"}


def project_files() -> list[Path]:
    """Every file git tracks, plus new ones not yet added (ignored files excluded)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO_ROOT, capture_output=True, check=True,
        ).stdout.decode()
        files = [REPO_ROOT / name for name in listed.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):  # no git, or not a checkout: walk the tree
        files = [p for p in REPO_ROOT.rglob("*")
                 if p.is_file() and not SKIPPED_DIRS.intersection(p.relative_to(REPO_ROOT).parts)]
    return sorted(p for p in files if p.is_file() and p.resolve() != THIS_FILE)


def text_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:  # binary (an image, a model file): no citations in it
        return []


def hits(pattern_check) -> list[str]:
    found = []
    for path in project_files():
        for number, line in enumerate(text_lines(path), 1):
            if pattern_check(line):
                found.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()[:160]}")
    return found


def test_the_scan_covers_the_project():
    names = {p.relative_to(REPO_ROOT).as_posix() for p in project_files()}
    for expected in ("README.md", "lab_helpers/models/registry.py", "manifests/serving/iris-inferenceservice.yaml",
                     "runbooks/prometheus-no-data.md", "notebooks/00_model_registry.ipynb"):
        assert expected in names
    assert THIS_FILE.relative_to(REPO_ROOT).as_posix() not in names


def test_no_file_cites_the_private_notes():
    found = hits(PRIVATE_NOTES.search)
    assert not found, "cite the upstream source instead of the private notes:\n" + "\n".join(found)


def test_no_bare_section_numbers():
    """A "§5.3" with no document named is a leftover citation of the private notes."""
    found = hits(lambda line: len(SECTION.findall(line)) > len(STANDARD_SECTION.findall(line)))
    assert not found, "name the document a section belongs to, or link it:\n" + "\n".join(found)
