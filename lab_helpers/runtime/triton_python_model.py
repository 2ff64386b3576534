"""Triton Python-backend model that runs an ONNX model with onnxruntime: copied as ``<version>/model.py``.

The nvidia-pytriton wheel's server has only the Python backend, so the local Triton image serves an
ONNX model through this file; Triton itself does the rest (HTTP/gRPC, V2 protocol, dynamic
batching, instances, metrics). At load it checks the config's tensors against the ONNX graph, as
Triton's onnxruntime backend does on a cluster, so a wrong name, data type, shape or
``max_batch_size`` fails the load with a message naming the tensor (modelled on that backend's
messages, https://github.com/triton-inference-server/onnxruntime_backend). Runs inside the backend
stub's interpreter: standard library, numpy and onnxruntime only.
"""
from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

ONNX_TO_TRITON = {"tensor(float)": "TYPE_FP32", "tensor(double)": "TYPE_FP64", "tensor(int64)": "TYPE_INT64",
                  "tensor(int32)": "TYPE_INT32", "tensor(bool)": "TYPE_BOOL", "tensor(string)": "TYPE_STRING"}
DEFAULT_MODEL_FILENAME = "model.onnx"


def _model_shape(shape: list[Any]) -> list[int]:
    return [d if isinstance(d, int) and d > 0 else -1 for d in shape]


def _config_shape(tensor: dict[str, Any], batched: bool) -> tuple[list[int], str]:
    """The complete shape the config declares for the model's side of a tensor, and how the message says it."""
    reshape = tensor.get("reshape")
    dims = [int(d) for d in (reshape["shape"] if reshape is not None else tensor.get("dims", []))]
    if batched:
        return [-1, *dims], ("an initial batch dimension because max_batch_size > 0 followed by the explicit "
                             f"tensor shape, making complete shape {_fmt([-1, *dims])}")
    return dims, f"shape {_fmt(dims)}"


def _fmt(shape: list[int]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def config_mismatches(config: dict[str, Any], model_inputs: list[Any], model_outputs: list[Any]) -> list[str]:
    """What in `config` (Triton's model config as JSON) does not fit the ONNX session's tensors."""
    name = config.get("name", "?")
    batched = int(config.get("max_batch_size", 0)) > 0
    problems = []
    for io, declared, actual in (("input", config.get("input", []), model_inputs),
                                 ("output", config.get("output", []), model_outputs)):
        by_name = {t.name: t for t in actual}
        for tensor in declared:
            onnx_tensor = by_name.get(tensor["name"])
            if onnx_tensor is None:
                problems.append(f"unexpected inference {io} '{tensor['name']}', allowed {io}s are: "
                                f"{', '.join(sorted(by_name))}")
                continue
            expected_type = ONNX_TO_TRITON.get(onnx_tensor.type, onnx_tensor.type)
            if tensor.get("data_type") != expected_type:
                problems.append(f"unexpected datatype {expected_type} for inference {io} '{tensor['name']}', "
                                f"expecting {tensor.get('data_type')}")  # the model's type, then the config's
            shape, how = _config_shape(tensor, batched)
            model_shape = _model_shape(list(onnx_tensor.shape))
            fits = len(shape) == len(model_shape) and all(
                m == -1 or c == m for c, m in zip(shape, model_shape))
            if not fits:
                problems.append(f"model '{name}', tensor '{tensor['name']}': the model expects {len(model_shape)} "
                                f"dimensions (shape {_fmt(model_shape)}) but the model configuration specifies "
                                f"{len(shape)} dimensions ({how})")
    return problems


class TritonPythonModel:
    """The Python backend's model class: one onnxruntime session per instance, batches run whole."""

    def initialize(self, args: dict[str, str]) -> None:
        import onnxruntime as ort
        import triton_python_backend_utils as pb_utils

        self.pb_utils = pb_utils
        config = json.loads(args["model_config"])
        # The Python backend fills default_model_filename with "model.py" (this file); the ONNX model is beside it.
        named = config.get("default_model_filename") or ""
        filename = named if named.endswith(".onnx") else DEFAULT_MODEL_FILENAME
        path = os.path.join(args["model_repository"], args["model_version"], filename)
        if not os.path.isfile(path):
            raise pb_utils.TritonModelException(f"no model file {filename} in version {args['model_version']} of "
                                                f"model '{config.get('name')}' (looked for {path})")
        options = ort.SessionOptions()
        # Instances scale across cores (instance_group count); one thread each keeps them from fighting.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        problems = config_mismatches(config, self.session.get_inputs(), self.session.get_outputs())
        if problems:
            raise pb_utils.TritonModelException("; ".join(problems))
        self.inputs = [t["name"] for t in config["input"]]
        self.outputs = [t["name"] for t in config["output"]]

    def execute(self, requests: list[Any]) -> list[Any]:
        """One onnxruntime run for all requests of a dynamic batch; each gets its own rows back."""
        pb_utils = self.pb_utils
        feeds = {name: [pb_utils.get_input_tensor_by_name(r, name).as_numpy() for r in requests]
                 for name in self.inputs}
        if len(requests) == 1:
            results = self.session.run(self.outputs, {name: arrays[0] for name, arrays in feeds.items()})
            return [pb_utils.InferenceResponse([pb_utils.Tensor(n, r) for n, r in zip(self.outputs, results)])]
        sizes = [len(array) for array in feeds[self.inputs[0]]]
        results = self.session.run(self.outputs, {name: np.concatenate(arrays) for name, arrays in feeds.items()})
        responses, start = [], 0
        for size in sizes:
            responses.append(pb_utils.InferenceResponse(
                [pb_utils.Tensor(n, r[start:start + size]) for n, r in zip(self.outputs, results)]))
            start += size
        return responses
