"""Do a fresh run's checkpoint outputs match the committed ones? The same question `make test` asks nbval.

The comparison reuses nbval's own pieces (its tag and comment-marker reading, stream coalescing and
sanitize-file parser) and follows its rule for a checked cell: outputs flattened by key (MIME types of `data`
included), the keys nbval skips left out, strings sanitized with tests/notebooks/sanitize.cfg, then compared
key by key in order.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbval.plugin import (coalesce_streams, find_comment_markers, find_metadata_tags, get_sanitize_patterns,
                          transform_streams_for_comparison)

from ..paths import REPO_ROOT

SANITIZE_FILE = REPO_ROOT / "tests" / "notebooks" / "sanitize.cfg"
# What nbval leaves out of a comparison when nbdime is off (nbval.plugin.IPyNbFile.skip_compare).
SKIP_COMPARE = ("metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
                "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg")


@dataclass
class CheckpointResult:
    """Checkpoint cells compared, and the ids of those whose outputs differ (or that vanished)."""

    compared: int = 0
    differing: list[str] = field(default_factory=list)

    @property
    def match(self) -> bool:
        return not self.differing


def sanitizers(path: Path = SANITIZE_FILE) -> list[tuple[re.Pattern, str]]:
    return [(re.compile(regex), replace) for regex, replace in get_sanitize_patterns(path.read_text())]


def _is_checkpoint(cell: Any) -> bool:
    """nbval --nbval-lax checks a cell its tag or its comment marker (which wins) says to check."""
    if cell.cell_type != "code":
        return False
    options = dict(find_metadata_tags(cell.metadata) or ()) | dict(find_comment_markers(cell.source))
    return options.get("check") is True


def _flatten(outputs: list, rules: list[tuple[re.Pattern, str]]) -> dict[str, list]:
    """nbval's view of a cell's outputs: values per key, sanitized, in output order."""
    def clean(value: Any) -> Any:
        if isinstance(value, str):
            for regex, replace in rules:
                value = regex.sub(replace, value)
        return value

    flat: dict[str, list] = defaultdict(list)
    for output in transform_streams_for_comparison(coalesce_streams(outputs)):
        for key, value in output.items():
            if key in SKIP_COMPARE:
                continue
            if key == "data":
                for mime, data in value.items():
                    if mime not in SKIP_COMPARE:
                        flat[mime].append(clean(data))
            else:
                flat[key].append(clean(value))
    return dict(flat)


def compare(executed: Path, committed: Path, rules: list[tuple[re.Pattern, str]] | None = None) -> CheckpointResult:
    """Compare each checkpoint cell of the committed notebook with the same cell (by id) of the executed one."""
    rules = sanitizers() if rules is None else rules
    fresh = {c.get("id"): c for c in nbformat.read(str(executed), as_version=4).cells}
    result = CheckpointResult()
    for cell in nbformat.read(str(committed), as_version=4).cells:
        if not _is_checkpoint(cell) or cell.get("execution_count") is None:
            continue  # nbval does not check a reference cell that was never run
        result.compared += 1
        ran = fresh.get(cell.get("id"))
        if ran is None or _flatten(ran.outputs, rules) != _flatten(cell.outputs, rules):
            result.differing.append(cell.get("id"))
    return result
