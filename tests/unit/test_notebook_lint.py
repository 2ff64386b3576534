"""Every notebook of the series keeps the conventions of the design (ARCHITECTURE.md, "Notebooks")."""
import ast
import re

import nbformat
import pytest

from lab_helpers.series.notebook_files import series
from lab_helpers.paths import REPO_ROOT

BOOKS = series()
SECRET = re.compile(r"(?i)(password|passwd|secret|token|api[_-]?key)\s*[=:]\s*['\"]?[A-Za-z0-9_\-]{8,}")
MACHINE_PATH = re.compile(r"(/work/|/home/|/root/|/tmp/|/Users/|[A-Z]:\\\\)")


def test_series_is_not_empty():
    assert BOOKS, "notebooks/ holds no NN_name.ipynb"


def _tags(cell):
    return set(cell.metadata.get("tags", []))


def _outputs_text(cell):
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        for value in (out.get("data") or {}).values():
            if isinstance(value, str) and not value.startswith("iVBOR"):  # skip base64 images
                parts.append(value)
        parts += out.get("traceback", [])
    return "\n".join(parts)


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.name)
def test_notebook_conventions(path):
    nb = nbformat.read(str(path), as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("# "), "first cell: a markdown title"
    assert re.search(r"(?i)mastery item", first.source), "first cell names the mastery item it proves"

    params = [c for c in nb.cells if "parameters" in _tags(c)]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    for node in ast.parse(params[0].source).body:
        assert isinstance(node, ast.Assign), f"parameters cell holds assignments only, not {ast.dump(node)[:40]}"
        ast.literal_eval(node.value)  # literals only: papermill replaces them

    assert any("nbval-check-output" in _tags(c) for c in nb.cells), "at least one checked checkpoint cell"
    assert len(nb.cells) <= 45, "keep notebooks short (about 40 cells)"

    code = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in code]
    assert counts == list(range(1, len(code) + 1)), "committed outputs come from one in-order run"
    for cell in code:
        assert not re.search(r"^\s*[!%]\s*pip\b", cell.source, re.M), "no !pip / %pip in notebooks"
        text = _outputs_text(cell)
        assert not any(o.get("output_type") == "error" for o in cell.outputs), "committed outputs hold no error"
        assert not MACHINE_PATH.search(text), f"machine path in outputs: {MACHINE_PATH.search(text).group(0)}"
        assert str(REPO_ROOT) not in text
        assert not SECRET.search(text), "secret-looking value in outputs"
    for cell in nb.cells:
        if "plt.show()" in cell.source:
            assert "nbval-ignore-output" in _tags(cell), "plot cells are tagged nbval-ignore-output"
