"""What one run of the series did, notebook by notebook: kept beside the executed notebooks as run.json.

The runner writes it as it goes (so a failed run still says which notebook failed and where); the site reads it.
It holds no paths, host names or clock times: only the target, the outcome and the seconds each notebook took.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .checkpoints import CheckpointResult

RECORD_NAME = "run.json"


@dataclass
class NotebookResult:
    notebook: str  # file name, e.g. "04_scale_to_zero.ipynb"
    status: str  # "ok" | "failed"
    seconds: float
    error: str | None = None  # the failing cell and the exception, when failed
    checkpoints: CheckpointResult | None = None  # None when there was nothing to compare with

    @classmethod
    def from_dict(cls, data: dict) -> "NotebookResult":
        checks = data.get("checkpoints")
        return cls(**{**data, "checkpoints": CheckpointResult(**checks) if checks is not None else None})


@dataclass
class RunRecord:
    target: str
    mode: str  # "run" (outputs compared with the committed ones) | "refresh" (outputs written back)
    notebooks: list[NotebookResult] = field(default_factory=list)

    def result_for(self, notebook: str) -> NotebookResult | None:
        return next((r for r in self.notebooks if r.notebook == notebook), None)

    def add(self, result: NotebookResult) -> None:
        """Record a notebook's result, replacing the one of an earlier run of the same notebook."""
        self.notebooks = [r for r in self.notebooks if r.notebook != result.notebook] + [result]
        self.notebooks.sort(key=lambda r: r.notebook)

    def save(self, folder: Path) -> Path:
        path = folder / RECORD_NAME
        path.write_text(json.dumps(asdict(self), indent=1) + "\n", encoding="utf-8")
        return path


def load(folder: Path) -> RunRecord | None:
    """The record of the last run into `folder`, or None when the notebooks there were not executed by the runner."""
    path = folder / RECORD_NAME
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return RunRecord(target=data["target"], mode=data["mode"],
                     notebooks=[NotebookResult.from_dict(n) for n in data["notebooks"]])
