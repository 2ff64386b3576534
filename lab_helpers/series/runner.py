"""Headless execution of the notebook series with papermill: progress, named failures, a run record, the site."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import papermill
from papermill.exceptions import PapermillExecutionError
from papermill.execute import ERROR_MARKER_TAG

from .kernels import IPCKernelManager
from .notebook_files import series, write_clean
from ..paths import build_dir
from ..site import checkpoints, run_record
from ..site.build import SiteBuildError, build_site

KERNEL = "python3"  # the kernel of the interpreter running papermill, i.e. the lab's venv


@dataclass
class NotebookFailure(Exception):
    notebook: str
    cell: int
    execution_count: int | None
    error: str
    output: Path

    def __str__(self) -> str:
        return (f"{self.notebook} failed in cell {self.cell} (execution count {self.execution_count}): "
                f"{self.error}\npartial output kept in {self.output}")


def _failed_cell(executed: Path) -> int:
    """Index, in the source notebook, of the cell that raised: skip papermill's own cells."""
    nb = nbformat.read(str(executed), as_version=4)
    ours = [c for c in nb.cells if not {"injected-parameters", ERROR_MARKER_TAG} & set(c.metadata.get("tags", []))]
    for index, cell in enumerate(ours):
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return index
    return -1


def execute(notebook: Path, output: Path, parameters: dict, cell_timeout: int) -> None:
    """Run one notebook in its own folder (so relative paths work as in JupyterLab)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            str(notebook), str(output), parameters=parameters, kernel_name=KERNEL,
            cwd=str(notebook.parent), execution_timeout=cell_timeout, progress_bar=False,
            log_output=False, kernel_manager_class=IPCKernelManager,
            coalesce_streams=True,  # a progress line rewritten in place is kept as its last state, in one output
        )
    except PapermillExecutionError as exc:
        raise NotebookFailure(notebook.name, _failed_cell(output), exc.exec_count,
                              f"{exc.ename}: {exc.evalue}", output) from None


def _record_for(target: str, mode: str, executed_dir: Path, whole_series: bool) -> run_record.RunRecord:
    """A fresh record for a whole run; a partial one (--only/--from) updates the last record of the same kind."""
    last = None if whole_series else run_record.load(executed_dir)
    if last is not None and (last.target, last.mode) == (target, mode):
        return last
    return run_record.RunRecord(target=target, mode=mode)


def run_series(target: str = "local", only: str | None = None, start: str | None = None,
               cell_timeout: int = 900, refresh: bool = False, out=None) -> list[Path]:
    """Execute the series in order; stop at the first failure, naming notebook and cell.

    Each notebook's outcome, time and checkpoint comparison with its committed outputs go into
    build/executed/run.json as the run goes. With `refresh`, executed outputs are written back into
    notebooks/ (volatile metadata stripped), which is how the committed reference outputs that nbval
    compares against are produced; otherwise the run ends by building the site (build/site/).
    """
    out = out or sys.stdout
    books = series(only=only, start=start)
    executed_dir = build_dir() / "executed"
    executed_dir.mkdir(parents=True, exist_ok=True)
    parameters = {} if refresh else {"target": target}
    record = _record_for(target, "refresh" if refresh else "run", executed_dir, only is None and start is None)
    rules = checkpoints.sanitizers()
    done: list[Path] = []
    total_start = time.monotonic()
    for i, book in enumerate(books, 1):
        print(f"[{i}/{len(books)}] {book.name} (target={target}) ...", file=out, flush=True)
        started = time.monotonic()
        output = executed_dir / book.name
        try:
            execute(book, output, parameters, cell_timeout)
        except NotebookFailure as failure:
            record.add(run_record.NotebookResult(book.name, "failed", round(time.monotonic() - started, 1),
                                                 error=f"cell {failure.cell}: {failure.error}"))
            record.save(executed_dir)
            if not refresh:  # the portfolio shows the failure too, unless it cannot be built
                try:
                    _build_site(out)
                except SiteBuildError as error:
                    print(f"site not built: {error}", file=out, flush=True)
            raise
        result = run_record.NotebookResult(book.name, "ok", round(time.monotonic() - started, 1),
                                           checkpoints=checkpoints.compare(output, book, rules))
        record.add(result)
        record.save(executed_dir)
        if refresh:
            write_clean(nbformat.read(str(output), as_version=4), book)
        done.append(output)
        differ = "" if result.checkpoints.match else f", {len(result.checkpoints.differing)} checkpoint(s) differ"
        print(f"      ok in {result.seconds:.1f} s{differ}", file=out, flush=True)
    print(f"{len(done)} notebook(s) in {time.monotonic() - total_start:.1f} s", file=out, flush=True)
    if done and not refresh:
        _build_site(out)
    return done


def _build_site(out) -> None:
    started = time.monotonic()
    index = build_site()
    print(f"site: {index} (built in {time.monotonic() - started:.1f} s)", file=out, flush=True)
