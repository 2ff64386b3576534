"""The local Triton image: its entrypoint's flags and repository, the Python-backend model's checks, the image lookup."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from lab_helpers.diagnosis import diagnose
from lab_helpers.local.images import ImageNotFound, find_image
from lab_helpers.runtime import triton, triton_image
from lab_helpers.runtime.pod import PORTS_ENV
from lab_helpers.runtime.triton_python_model import config_mismatches

ONNX_CONFIG = '''name: "digits"
platform: "onnxruntime_onnx"
max_batch_size: 64
input [ { name: "input" data_type: TYPE_FP32 dims: [ 64 ] } ]
dynamic_batching { max_queue_delay_microseconds: 100 }
'''


def test_flags_in_both_spellings():
    assert triton.split_flags(["--a=1", "--b", "2", "--c", "--d=x=y"]) == [
        ("--a", "1"), ("--b", "2"), ("--c", None), ("--d", "x=y")]
    with pytest.raises(SystemExit, match="unexpected argument 'stray'"):
        triton.split_flags(["stray"])


def test_server_flags_map_ports_bind_loopback_and_use_the_local_repository(monkeypatch, tmp_path):
    monkeypatch.setenv(PORTS_ENV, "8002=41002,8080=41080,9000=41900")
    args = ["--model-store=/mnt/models", "--http-port=8080", "--grpc-port", "9000", "--allow-http=true",
            "--exit-on-error=true", "--http-address=0.0.0.0"]
    flags = triton.server_flags(args, tmp_path)
    assert flags[0] == f"--model-repository={tmp_path}"
    assert {"--http-port=41080", "--grpc-port=41900", "--metrics-port=41002", "--allow-http=true",
            "--exit-on-error=true", "--http-address=127.0.0.1", "--grpc-address=127.0.0.1",
            "--metrics-address=127.0.0.1", f"--backend-directory={triton_image.backends_dir()}"} == set(flags[1:])


def test_model_store_is_required_once():
    with pytest.raises(SystemExit, match="exactly one --model-store"):
        triton.model_store(["--http-port=8080"])


def test_onnx_models_are_served_through_the_python_backend_and_others_are_left_alone(tmp_path):
    source = tmp_path / "repo"
    (source / "digits" / "1").mkdir(parents=True)
    (source / "digits" / "1" / "model.onnx").write_bytes(b"onnx")
    (source / "digits" / "config.pbtxt").write_text(ONNX_CONFIG)
    (source / "echo" / "1").mkdir(parents=True)
    (source / "echo" / "config.pbtxt").write_text('name: "echo"\nbackend: "python"\n')
    dest = tmp_path / "local"
    assert triton.localize_repository(source, dest, backends={"python"}) == ["digits"]
    config = (dest / "digits" / "config.pbtxt").read_text()
    assert config == ONNX_CONFIG.replace('platform: "onnxruntime_onnx"', 'backend: "python"')
    assert (dest / "digits" / "1" / "model.py").read_text() == triton.PYTHON_MODEL.read_text()
    assert (dest / "digits" / "1" / "model.onnx").read_bytes() == b"onnx"
    assert not (dest / "echo" / "1" / "model.py").exists()
    assert (source / "digits" / "config.pbtxt").read_text() == ONNX_CONFIG  # the pod's copy is untouched
    assert triton.localize_repository(source, tmp_path / "with-ort", backends={"python", "onnxruntime"}) == []


def test_a_missing_repository_says_where_it_looked(tmp_path):
    with pytest.raises(SystemExit, match="model repository .*nowhere does not exist"):
        triton.localize_repository(tmp_path / "nowhere", tmp_path / "dest", set())


def test_triton_load_errors_are_picked_from_its_log_without_the_cpu_noise():
    log = [
        'E1202 19:27:37.812183 31666 server.cc:241] "CudaDriverHelper has not been initialized."',
        'E1202 19:27:37.813183 31666 model_repository_manager.cc:1460] "Poll failed for model directory '
        "'digits': failed to read text proto from /r/digits/config.pbtxt\"",
        'E1202 19:31:40.943201 1057 model_lifecycle.cc:642] "failed to load \'digits\' version 1: Internal: '
        'boom\\n\\nAt:\\n  model.py(89): initialize\\n"',
        "I1202 19:27:37.9 1 server.cc:1] \"failed to load nothing: an info line\"",
    ]
    assert triton.load_errors(log) == [
        "Poll failed for model directory 'digits': failed to read text proto from /r/digits/config.pbtxt",
        "failed to load 'digits' version 1: Internal: boom"]


def test_the_local_differences_name_backend_ports_stub_and_environment():
    rows = {row.what: row for row in triton.local_differences(
        ["tritonserver", "--model-store=/mnt/models", "--http-port=8080", "--grpc-port=9000"])}
    assert set(rows) == {"server", "ONNX backend", "http port", "grpc port", "metrics port", "model repository",
                         "Python backend stub", "environment"}
    assert rows["http port"].cluster == "8080 on the pod's IP" and "127.0.0.1" in rows["http port"].local
    assert rows["metrics port"].cluster.startswith("8002")
    assert "Python backend" in rows["ONNX backend"].local and "libpython3.11" in rows["Python backend stub"].local


def _tensor(name, type_, shape):
    return SimpleNamespace(name=name, type=type_, shape=shape)


MODEL_INPUTS = [_tensor("input", "tensor(float)", [None, 64])]
MODEL_OUTPUTS = [_tensor("label", "tensor(int64)", [None]), _tensor("probabilities", "tensor(float)", [None, 10])]
GOOD = {"name": "digits", "max_batch_size": 64,
        "input": [{"name": "input", "data_type": "TYPE_FP32", "dims": ["64"]}],
        "output": [{"name": "label", "data_type": "TYPE_INT64", "dims": ["1"], "reshape": {"shape": []}},
                   {"name": "probabilities", "data_type": "TYPE_FP32", "dims": ["10"]}]}


def test_a_config_that_fits_the_onnx_graph_has_no_mismatch():
    assert config_mismatches(GOOD, MODEL_INPUTS, MODEL_OUTPUTS) == []


@pytest.mark.parametrize(("change", "message"), [
    ({"input": [{"name": "pixels", "data_type": "TYPE_FP32", "dims": ["64"]}]},
     "unexpected inference input 'pixels', allowed inputs are: input"),
    ({"input": [{"name": "input", "data_type": "TYPE_FP64", "dims": ["64"]}]},
     "unexpected datatype TYPE_FP32 for inference input 'input', expecting TYPE_FP64"),
    ({"input": [{"name": "input", "data_type": "TYPE_FP32", "dims": ["63"]}]},
     "tensor 'input': the model expects 2 dimensions (shape [-1,64]) but the model configuration specifies 2 "
     "dimensions (an initial batch dimension because max_batch_size > 0 followed by the explicit tensor shape, "
     "making complete shape [-1,63])"),
    ({"max_batch_size": 0},
     "tensor 'input': the model expects 2 dimensions (shape [-1,64]) but the model configuration specifies 1 "
     "dimensions (shape [64])"),
])
def test_config_mismatches_name_the_tensor_and_what_differs(change, message):
    problems = config_mismatches({**GOOD, **change}, MODEL_INPUTS, MODEL_OUTPUTS)
    assert any(message in problem for problem in problems), problems


def test_the_triton_image_is_found_by_repository_and_missing_when_not_set_up(monkeypatch, tmp_path):
    monkeypatch.setenv(triton_image.VENV_ENV, str(tmp_path / "no-venv"))
    with pytest.raises(ImageNotFound, match=r'Failed to pull image "nvcr.io/nvidia/tritonserver:24.10-py3": '
                                            r"no tritonserver binary at .*make setup"):
        find_image("nvcr.io/nvidia/tritonserver:24.10-py3")
    binary = triton_image.binary()
    binary.parent.mkdir(parents=True)
    binary.write_text("")
    with pytest.raises(ImageNotFound, match="the Python backend has no triton_python_backend_stub"):
        find_image("nvcr.io/nvidia/tritonserver:24.10-py3")
    (triton_image.backends_dir() / "python").mkdir(parents=True)
    (triton_image.backends_dir() / "python" / triton_image.STUB).write_text("")
    monkeypatch.setattr(triton_image, "_has_libpython", lambda: False)
    with pytest.raises(ImageNotFound, match=r"the backend stub needs Debian's libpython3.11 \(apt-get install"):
        find_image("nvcr.io/nvidia/tritonserver:24.10-py3")
    monkeypatch.setattr(triton_image, "_has_libpython", lambda: True)
    image = find_image("nvcr.io/nvidia/tritonserver:24.10-py3")
    assert image.entrypoint == ("python", "-m", "lab_helpers.runtime.triton") and 8002 in image.exposes


def test_the_server_env_puts_the_wheel_libraries_and_the_venv_first(monkeypatch, tmp_path):
    monkeypatch.setenv(triton_image.VENV_ENV, str(tmp_path))
    env = triton_image.server_env({"PATH": "/usr/bin", "LD_LIBRARY_PATH": "/opt/lib"})
    assert env["PATH"] == f"{tmp_path / 'bin'}:/usr/bin"
    assert env["LD_LIBRARY_PATH"].endswith("nvidia_pytriton.libs:/opt/lib")


def test_a_framework_runtime_that_fails_to_load_points_to_its_runbook():
    failed = {"modelStatus": {"lastFailureInfo": {"reason": "ModelLoadFailed", "message": "tritonserver exited",
                                                  "exitCode": 1}}}
    onnx = {"kind": "InferenceService", "metadata": {"name": "digits"}, "status": failed,
            "spec": {"predictor": {"model": {"modelFormat": {"name": "onnx"}}}}}
    sklearn = {**onnx, "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}}}}}
    assert diagnose(onnx, []).runbook == "runbooks/runtime-not-loading-model.md"
    assert diagnose(sklearn, []).runbook == "runbooks/model-load-failed.md"
