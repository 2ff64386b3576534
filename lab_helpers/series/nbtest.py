"""Notebook tests: nbval compares a fresh run against the committed outputs of checkpoint cells.

Parameters are injected with papermill's prepare-only mode into copies under build/nbval/, which keep
the committed outputs; nbval then re-executes those copies in order (state carries through the local
target) and compares only cells tagged ``nbval-check-output`` (``--nbval-lax``). Kernels run on private Unix sockets
(`nbval_ipc`), as the runner's do.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import papermill

from .notebook_files import series
from ..paths import REPO_ROOT, build_dir

SANITIZE = REPO_ROOT / "tests" / "notebooks" / "sanitize.cfg"


def prepare(target: str, only: str | None = None, start: str | None = None) -> list[Path]:
    dest = build_dir() / "nbval"
    if dest.exists():
        for old in dest.glob("*.ipynb"):
            old.unlink()
    dest.mkdir(parents=True, exist_ok=True)
    prepared = []
    for book in series(only=only, start=start):
        out = dest / book.name
        papermill.execute_notebook(str(book), str(out), parameters={"target": target}, prepare_only=True,
                                   kernel_name="python3", progress_bar=False)
        prepared.append(out)
    return prepared


def run_nbval(target: str = "local", only: str | None = None, start: str | None = None,
              cell_timeout: int = 900, extra: list[str] | None = None) -> int:
    books = prepare(target, only=only, start=start)
    cmd = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
           f"--nbval-cell-timeout={cell_timeout}", f"--nbval-sanitize-with={SANITIZE}", "-p", "no:cacheprovider",
           "-p", "lab_helpers.series.nbval_ipc",
           f"--rootdir={build_dir() / 'nbval'}", *(extra or []), *map(str, books)]
    # Run where the notebooks live so relative paths resolve as in JupyterLab.
    return subprocess.call(cmd, cwd=str(REPO_ROOT / "notebooks"))
