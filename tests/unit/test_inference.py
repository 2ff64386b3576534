"""Request builders and the response-shape check used by notebook 03."""
import pandas as pd
import pytest

from lab_helpers.errors import LabError
from lab_helpers.inference import check_v2_response, curl_command, infer_path, v1_instances, v2_columns

FRAME = pd.DataFrame({"sepal_length": [5.1, 6.9], "petal_count": [3, 4]})


def test_paths_per_protocol():
    assert infer_path("iris") == "/v2/models/iris/infer"
    assert infer_path("iris", "v1") == "/v1/models/iris:predict"
    with pytest.raises(ValueError, match="'v1' or 'v2'"):
        infer_path("iris", "v3")


def test_v2_has_one_named_input_per_column_and_v1_has_rows():
    body = v2_columns(FRAME)
    assert body["inputs"] == [
        {"name": "sepal_length", "shape": [2], "datatype": "FP64", "data": [5.1, 6.9]},
        {"name": "petal_count", "shape": [2], "datatype": "INT64", "data": [3, 4]},
    ]
    assert v1_instances(FRAME) == {"instances": [[5.1, 3], [6.9, 4]]}


def test_curl_command_quotes_the_host_header():
    command = curl_command("http://127.0.0.1:8080", "iris-lab.example.com", "/v2/models/iris/infer")
    assert command == ("curl -s -H 'Host: iris-lab.example.com' -H 'Content-Type: application/json' "
                       "http://127.0.0.1:8080/v2/models/iris/infer -d @payload.json")


def test_response_shape_is_checked_against_the_data():
    good = {"model_name": "iris", "id": "1",
            "outputs": [{"name": "output-1", "shape": [3, 1], "datatype": "INT64", "data": [0, 1, 2]}]}
    assert check_v2_response(good).outputs[0].shape == [3, 1]
    wrong_count = {**good, "outputs": [{**good["outputs"][0], "shape": [4, 1]}]}
    with pytest.raises(LabError, match=r"shape \[4, 1\] needs 4 values, got 3"):
        check_v2_response(wrong_count)
    with pytest.raises(ValueError, match="outputs"):  # pydantic names the missing field
        check_v2_response({"model_name": "iris", "id": "1"})
