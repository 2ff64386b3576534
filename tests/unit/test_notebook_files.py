import nbformat
import pytest

from lab_helpers.series.notebook_files import series, strip_volatile


def _book(path, cells):
    nb = nbformat.v4.new_notebook(cells=cells)
    nbformat.write(nb, str(path))


def test_series_orders_and_filters(tmp_path):
    for name in ("02_b.ipynb", "00_a.ipynb", "01_c.ipynb", "scratch.ipynb"):
        _book(tmp_path / name, [])
    assert [p.name for p in series(folder=tmp_path)] == ["00_a.ipynb", "01_c.ipynb", "02_b.ipynb"]
    assert [p.name for p in series(only="1", folder=tmp_path)] == ["01_c.ipynb"]
    assert [p.name for p in series(start="01", folder=tmp_path)] == ["01_c.ipynb", "02_b.ipynb"]
    with pytest.raises(ValueError, match="no notebook numbered '07'.*have: 00, 01, 02"):
        series(only="07", folder=tmp_path)


def test_strip_volatile_drops_papermill_metadata_and_injected_cell():
    params = nbformat.v4.new_code_cell("target = 'local'", metadata={"tags": ["parameters"]})
    injected = nbformat.v4.new_code_cell("target = 'x'", metadata={"tags": ["injected-parameters"]})
    code = nbformat.v4.new_code_cell("1", metadata={"papermill": {"duration": 1.2}, "execution": {"iopub.status.idle": "2026-11-26T00:00:00Z"}})
    nb = nbformat.v4.new_notebook(cells=[params, injected, code], metadata={"papermill": {"cwd": "/x"}})
    clean = strip_volatile(nb)
    assert "papermill" not in clean.metadata
    assert [c.source for c in clean.cells] == ["target = 'local'", "1"]
    assert clean.cells[1].metadata == {}
