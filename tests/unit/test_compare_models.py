"""The registry hand-over of paths (a) and (c), and the answers of the three paths read alike and compared."""
import os
from pathlib import Path

import numpy as np
import pytest

from lab_helpers.compare.models import PROGRESS_BAR_ENV, check_equal, hand_over, labels, request
from lab_helpers.errors import LabError

TRITON = {"outputs": [{"name": "label", "datatype": "INT64", "shape": [3, 1], "data": [1, 2, 3]},
                      {"name": "probabilities", "datatype": "FP32", "shape": [3, 10], "data": [0.1] * 30}]}
FASTAPI = {"outputs": [{"name": "label", "datatype": "INT64", "shape": [3], "data": [1, 2, 3]}]}


def test_one_fp32_request_for_every_path() -> None:
    body = request(np.ones((2, 64)))
    assert body["inputs"][0]["name"] == "input" and body["inputs"][0]["datatype"] == "FP32"
    assert body["inputs"][0]["shape"] == [2, 64]


def test_labels_of_either_shape() -> None:
    assert labels(TRITON) == labels(FASTAPI) == [1, 2, 3]


def test_an_answer_without_labels_names_its_outputs() -> None:
    with pytest.raises(LabError, match=r"no 'label' output \(outputs: \['output-0'\]\)"):
        labels({"outputs": [{"name": "output-0", "data": [1]}]})


def test_equal_labels_pass_and_differing_ones_name_the_paths_and_rows() -> None:
    assert check_equal({"triton": TRITON, "kserve": TRITON, "fastapi": FASTAPI}) == 3
    other = {"outputs": [{"name": "label", "data": [1, 9, 3]}]}
    with pytest.raises(LabError, match=r"fastapi and triton predict differently .*rows differing: \[1\]"):
        check_equal({"triton": TRITON, "fastapi": other})


def test_both_flavors_are_downloaded_from_the_uris_the_registry_gives(tmp_path: Path, monkeypatch) -> None:
    store = tmp_path / "store"
    (store / "triton" / "digits" / "1").mkdir(parents=True)
    (store / "triton" / "digits" / "config.pbtxt").write_text('name: "digits"\n')
    (store / "model").mkdir()
    (store / "model" / "MLmodel").write_text("flavors: {}\n")
    asked = []

    def model_uri(name, version=None, flavor="mlflow"):
        asked.append((name, version, flavor))
        return (store / ("triton" if flavor == "onnx" else "model")).as_uri()

    monkeypatch.delenv(PROGRESS_BAR_ENV, raising=False)
    served = hand_over(model_uri, tmp_path / "dest")
    assert asked == [("digits", 1, "onnx"), ("digits", 1, "mlflow")]
    assert served.triton_uri == (store / "triton").as_uri()
    assert (served.triton_repository / "digits" / "config.pbtxt").read_text() == 'name: "digits"\n'
    assert (served.mlflow_dir / "MLmodel").is_file()
    assert str(served.mlflow_dir).startswith(str(tmp_path / "dest"))
    assert PROGRESS_BAR_ENV not in os.environ
