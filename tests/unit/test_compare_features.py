"""Feature rows are derived from manifests and committed notebook runs: never claimed for (a) or (c)."""
import shutil
from pathlib import Path

import nbformat
import pytest

from lab_helpers.compare.features import FEATURES, MISSING, NOT_DEMONSTRATED, feature_rows, markdown_link
from lab_helpers.paths import manifests_dir, notebooks_dir


def _book(folder: Path, name: str, error: bool = False) -> None:
    cell = nbformat.v4.new_code_cell("print(1)", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("error", ename="E", evalue="boom", traceback=[])] if error else []
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), str(folder / name))


@pytest.fixture
def series_of_every_feature(tmp_path: Path) -> Path:
    books = tmp_path / "notebooks"
    books.mkdir()
    for number in sorted({n for feature in FEATURES for n in feature.notebooks}):
        _book(books, f"{number}_lesson.ipynb")
    return books


def test_the_series_gives_b_every_feature_and_a_and_c_none() -> None:
    rows = feature_rows()
    assert list(rows["feature"]) == [feature.name for feature in FEATURES]
    assert set(rows["triton"]) == set(rows["fastapi"]) == {NOT_DEMONSTRATED}
    assert rows.set_index("feature").loc["scale to zero", "kserve"] == "✓ 04_scale_to_zero, 05_cold_start"
    assert all(cell.startswith("✓") for cell in rows["kserve"])


def test_links_name_the_notebooks() -> None:
    rows = feature_rows(link=markdown_link).set_index("feature")
    assert rows.loc["rollback", "kserve"] == f"✓ [07]({next(notebooks_dir().glob('07_*.ipynb')).name})"


def test_a_notebook_missing_from_the_series_withdraws_the_tick(series_of_every_feature: Path) -> None:
    (series_of_every_feature / "09_lesson.ipynb").unlink()
    rows = feature_rows(series_of_every_feature).set_index("feature")
    assert rows.loc["drift logging", "kserve"] == MISSING
    assert rows.loc["network policy", "kserve"] == "✓ 10_lesson"


def test_a_committed_error_withdraws_the_tick(series_of_every_feature: Path) -> None:
    _book(series_of_every_feature, "08_lesson.ipynb", error=True)
    assert feature_rows(series_of_every_feature).set_index("feature").loc["per-model metrics", "kserve"] == MISSING


def test_a_manifest_that_no_longer_shows_the_feature_withdraws_the_tick(series_of_every_feature: Path,
                                                                        tmp_path: Path) -> None:
    manifests = tmp_path / "manifests"
    shutil.copytree(manifests_dir(), manifests)
    path = manifests / "autoscaling" / "iris-s2z.yaml"
    path.write_text(path.read_text().replace("minReplicaCount: 0", "minReplicaCount: 1"))
    rows = feature_rows(series_of_every_feature, manifests).set_index("feature")
    assert rows.loc["scale to zero", "kserve"] == MISSING
    assert rows.loc["canary with analysis", "kserve"] == "✓ 06_lesson, 07_lesson"
