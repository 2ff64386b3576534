"""Every relative link in the repo's markdown (and notebooks' markdown cells) points at a file that exists.

Renamed or merged docs (runbooks, ADRs, pattern notes) leave dead links behind unless something checks."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from lab_helpers.paths import REPO_ROOT

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|#)")


def documents() -> list[Path]:
    """Markdown files and notebooks git tracks, plus new ones not ignored."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "*.md", "*.ipynb"],
                            cwd=REPO_ROOT, capture_output=True, check=True).stdout.decode()
    return sorted(REPO_ROOT / name for name in listed.split("\0") if name and (REPO_ROOT / name).is_file())


def markdown_of(path: Path) -> list[str]:
    if path.suffix == ".md":
        return [path.read_text(encoding="utf-8")]
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown"]


def dead_links(path: Path) -> list[str]:
    dead = []
    for text in markdown_of(path):
        for target in LINK.findall(text):
            if EXTERNAL.match(target):
                continue
            if not (path.parent / target.split("#", 1)[0]).exists():
                dead.append(f"{path.relative_to(REPO_ROOT)}: {target}")
    return dead


def test_the_scan_reads_markdown_and_notebooks():
    names = {p.relative_to(REPO_ROOT).as_posix() for p in documents()}
    assert {"README.md", "runbooks/README.md", "adr/README.md", "patterns/README.md",
            "notebooks/04_scale_to_zero.ipynb"} <= names


def test_no_relative_link_points_at_a_missing_file():
    dead = [link for path in documents() for link in dead_links(path)]
    assert not dead, "links to files that do not exist:\n" + "\n".join(dead)
