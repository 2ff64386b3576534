"""Lines of configuration: comments, blank lines, YAML markers and docstrings are not configuration."""
from pathlib import Path

from lab_helpers.compare import fastapi_app
from lab_helpers.compare.config_lines import COMMAND, TRITON_CONFIG, config_lines, python_lines, user_config
from lab_helpers.compare.kserve_path import RUNTIME_MANIFEST, SERVICE_MANIFEST


def test_config_lines_skip_blank_comment_and_document_marker_lines() -> None:
    text = "# a comment\napiVersion: v1\n\n  # indented comment\nkind: Pod   # trailing comment counts\n---\nspec: {}\n"
    assert config_lines(text) == 3


def test_python_lines_skip_docstrings_comments_and_blank_lines() -> None:
    source = ('"""Module\ndocstring."""\nimport os\n\n\n'
              'def f():\n    """One line."""\n    # why\n    return (1,\n            2)\n')
    assert python_lines(source) == 4   # import, def, and the two lines of the return


def test_user_config_counts_each_paths_files(tmp_path: Path) -> None:
    (tmp_path / "digits").mkdir()
    (tmp_path / "digits" / TRITON_CONFIG).write_text('# generated\nname: "digits"\nmax_batch_size: 64\n')
    counts = user_config(tmp_path)
    assert counts["triton"] == {TRITON_CONFIG: 2, COMMAND: 1}
    assert counts["kserve"] == {TRITON_CONFIG: 2, RUNTIME_MANIFEST.name: config_lines(RUNTIME_MANIFEST.read_text()),
                                SERVICE_MANIFEST.name: config_lines(SERVICE_MANIFEST.read_text())}
    source = Path(fastapi_app.__file__).read_text()
    assert counts["fastapi"] == {"fastapi_app.py": python_lines(source), COMMAND: 1}
    assert 20 < counts["fastapi"]["fastapi_app.py"] < len(source.splitlines())
