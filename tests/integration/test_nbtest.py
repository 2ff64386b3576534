"""nbval over papermill-prepared copies: a checkpoint whose output changed fails, one that holds passes."""
import nbformat
import pytest

from lab_helpers.series.nbtest import run_nbval


@pytest.fixture
def book(series_dir):
    books = series_dir

    def write(committed_output: str):
        params = nbformat.v4.new_code_cell("target = 'local'", metadata={"tags": ["parameters"]}, execution_count=1)
        check = nbformat.v4.new_code_cell("print(f'answer {6 * 7} on {target}')", execution_count=2,
                                          metadata={"tags": ["nbval-check-output"]})
        check.outputs = [nbformat.v4.new_output("stream", name="stdout", text=committed_output)]
        noisy = nbformat.v4.new_code_cell("import time; print(time.time())", execution_count=3)
        noisy.outputs = [nbformat.v4.new_output("stream", name="stdout", text="0\n")]
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t"), params, check, noisy])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, str(books / "00_t.ipynb"))
    return write


def test_matching_checkpoint_passes_and_unchecked_cells_are_ignored(book):
    book("answer 42 on local\n")
    assert run_nbval(target="local", extra=["-q"]) == 0


def test_changed_checkpoint_output_fails(book):
    book("answer 41 on local\n")
    assert run_nbval(target="local", extra=["-q"]) != 0


def test_the_target_parameter_is_injected(book):
    book("answer 42 on local\n")
    assert run_nbval(target="kubernetes", extra=["-q"]) != 0  # the injected target shows in the checked output
