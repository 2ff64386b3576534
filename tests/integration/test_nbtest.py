"""nbval over papermill-prepared copies: a checkpoint whose output changed fails, one that holds passes."""
import nbformat
import pytest

from lab_helpers.series.nbtest import run_nbval


@pytest.fixture
def book(series_dir):
    books = series_dir

    def write(committed_output: str, checked_source: str = "print(f'answer {6 * 7} on {target}')"):
        params = nbformat.v4.new_code_cell("target = 'local'", metadata={"tags": ["parameters"]}, execution_count=1)
        check = nbformat.v4.new_code_cell(checked_source, execution_count=2, metadata={"tags": ["nbval-check-output"]})
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


def test_kernels_run_on_private_sockets_and_do_not_warn(book, capfd):
    book("ipc\n", "from ipykernel.kernelapp import IPKernelApp\nprint(IPKernelApp.instance().transport)")
    assert run_nbval(target="local", extra=["-q"]) == 0  # the kernel itself reports its transport
    err = capfd.readouterr().err
    assert "without encryption" not in err and "--sanitize-with has been renamed" not in err


def test_a_finished_progress_line_in_a_checkpoint_is_not_compared(book):
    """A wait inside a checkpoint cell (here one that did not happen when the outputs were committed) passes."""
    book("answer 42\n", "from lab_helpers.progress import Dots\n"
                         "Dots('waiting for the answer').done('42 found')\nprint('answer', 6 * 7)")
    assert run_nbval(target="local", extra=["-q"]) == 0
