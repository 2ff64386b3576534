"""The headless runner executes in order, renders HTML, and names notebook and cell on failure."""
import re

import nbformat
import pytest

from lab_helpers.series.runner import NotebookFailure, run_series
from lab_helpers.site import run_record


def _write(path, *sources):
    cells = [nbformat.v4.new_markdown_cell("# Title")]
    cells.append(nbformat.v4.new_code_cell("target = 'local'", metadata={"tags": ["parameters"]}))
    cells += [nbformat.v4.new_code_cell(s) for s in sources]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def test_runs_in_order_injects_target_records_and_builds_the_site(series_dir, tmp_path, capfd):
    _write(series_dir / "00_first.ipynb", "print('target is', target)")
    _write(series_dir / "01_second.ipynb", "print(40 + 2)")
    done = run_series(target="kubernetes", cell_timeout=60)
    assert [p.name for p in done] == ["00_first.ipynb", "01_second.ipynb"]
    first = nbformat.read(str(done[0]), as_version=4)
    outputs = "".join(o.get("text", "") for c in first.cells if c.cell_type == "code" for o in c.outputs)
    assert "target is kubernetes" in outputs
    record = run_record.load(tmp_path / "build" / "executed")
    assert [(r.notebook, r.status) for r in record.notebooks] == [("00_first.ipynb", "ok"), ("01_second.ipynb", "ok")]
    assert record.target == "kubernetes" and record.mode == "run"
    site = tmp_path / "build" / "site"
    assert 'href="notebooks/00_first.html"' in (site / "index.html").read_text()
    assert (site / "notebooks" / "01_second.html").exists()
    out, err = capfd.readouterr()
    assert "[1/2] 00_first.ipynb" in out and "[2/2] 01_second.ipynb" in out
    assert "without encryption" not in err  # kernels on private Unix sockets, not loopback TCP


def test_failure_names_notebook_and_cell_and_keeps_partial_output(series_dir, tmp_path):
    _write(series_dir / "00_ok.ipynb", "x = 1")
    _write(series_dir / "01_broken.ipynb", "y = 2", "raise RuntimeError('boom')", "never = 3")
    with pytest.raises(NotebookFailure) as info:
        run_series(cell_timeout=60)
    failure = info.value
    assert failure.notebook == "01_broken.ipynb"
    assert failure.cell == 3  # markdown 0, parameters 1, y = 2 at 2, the raise at 3
    assert "RuntimeError: boom" in str(failure)
    assert failure.output.exists()
    failed = run_record.load(tmp_path / "build" / "executed").result_for("01_broken.ipynb")
    assert failed.status == "failed" and "cell 3: RuntimeError: boom" in failed.error
    home = (tmp_path / "build" / "site" / "index.html").read_text()  # the portfolio shows the failure
    assert "✗ failed: cell 3: RuntimeError: boom" in home
    partial = nbformat.read(str(failure.output), as_version=4)
    assert any(o.get("ename") == "RuntimeError" for c in partial.cells if c.cell_type == "code" for o in c.outputs)


def test_cli_exit_code_and_message_on_failure(series_dir, capsys):
    _write(series_dir / "00_broken.ipynb", "1/0")
    from lab_helpers.cli import main

    assert main(["run", "--cell-timeout", "60"]) == 1
    err = capsys.readouterr().err
    assert "FAILED: 00_broken.ipynb failed in cell 2" in err and "ZeroDivisionError" in err


def test_a_progress_line_is_saved_as_one_output_with_its_summary(series_dir):
    _write(series_dir / "00_wait.ipynb", "import time\nfrom lab_helpers.progress import Dots\n"
                                         "dots = Dots('waiting for the answer', every=0)\n"
                                         "for _ in range(3):\n    time.sleep(0.3)  # past the kernel's flush interval\n"
                                         "    dots.tick()\n"
                                         "dots.done('42 found')")
    [done] = run_series(cell_timeout=60)
    cell = nbformat.read(str(done), as_version=4).cells[-1]
    assert [o.output_type for o in cell.outputs] == ["stream"]
    assert re.fullmatch(r"⏳ waiting for the answer: 42 found in \d+\.\d s\n", cell.outputs[0].text)
