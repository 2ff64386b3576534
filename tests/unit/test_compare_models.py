"""The answers of the three paths, read alike and compared before anything is timed."""
import numpy as np
import pytest

from lab_helpers.compare.models import check_equal, labels, request
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
