"""The notebook series on disk: which notebooks, in what order, and how committed copies are kept clean."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat

from ..paths import notebooks_dir

NOTEBOOK_NAME = re.compile(r"^(\d{2})_[a-z0-9_]+\.ipynb$")


def series(only: str | None = None, start: str | None = None, folder: Path | None = None) -> list[Path]:
    """Notebooks `NN_name.ipynb` in order; `only`/`start` take the two-digit number ("03")."""
    folder = folder or notebooks_dir()
    books = sorted(p for p in folder.glob("*.ipynb") if NOTEBOOK_NAME.match(p.name))
    known = {NOTEBOOK_NAME.match(p.name).group(1) for p in books}
    for wanted in (only, start):
        if wanted is not None and wanted.zfill(2) not in known:
            raise ValueError(f"no notebook numbered {wanted!r} in {folder.name}/ (have: {', '.join(sorted(known))})")
    if only is not None:
        return [p for p in books if p.name.startswith(only.zfill(2) + "_")]
    if start is not None:
        return [p for p in books if p.name[:2] >= start.zfill(2)]
    return books


def strip_volatile(nb: Any) -> Any:
    """Drop papermill's run metadata (timings, paths) and its injected cell so diffs show only real changes."""
    nb.metadata.pop("papermill", None)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            for out in cell.get("outputs", []):
                out.get("metadata", {}).pop("papermill", None)
    return nb


def write_clean(nb: Any, path: Path) -> None:
    nbformat.write(strip_volatile(nb), str(path))
