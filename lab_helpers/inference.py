"""Calling a served model over HTTP the way curl would: paths per protocol, Host header, errors quoted."""
from __future__ import annotations

import ipaddress
import json
import shlex
from typing import Any

import httpx

from .errors import LabError


def infer_path(model: str, protocol: str = "v2") -> str:
    if protocol == "v2":
        return f"/v2/models/{model}/infer"
    if protocol == "v1":
        return f"/v1/models/{model}:predict"
    raise ValueError(f"protocol must be 'v1' or 'v2', got {protocol!r}")


def curl_command(base_url: str, host: str, path: str, payload_file: str = "payload.json") -> str:
    """The exact command a learner would type against the ingress."""
    return (f"curl -s -H {shlex.quote('Host: ' + host)} -H 'Content-Type: application/json' "
            f"{base_url}{path} -d @{payload_file}")


def caller_transport(source_address: str) -> httpx.HTTPTransport:
    """A transport whose connections come from `source_address` (127.0.0.x): a caller identity locally.

    On a cluster Cilium knows a caller by its pod's IP; on the local target every caller is on
    loopback, so distinct callers bind distinct addresses of 127.0.0.0/8 (Linux routes the whole
    block to lo) and the gateway, listening on 127.0.0.1, sees each one's address as the peer.
    """
    try:
        address = ipaddress.ip_address(source_address)
    except ValueError:
        raise LabError(f"caller source address {source_address!r} is not an IP address (expected 127.0.0.x)") from None
    if not address.is_loopback:
        raise LabError(f"caller source address {source_address} is not a loopback address: callers of the local "
                       "gateway bind an address of 127.0.0.0/8, e.g. 127.0.0.7")
    return httpx.HTTPTransport(local_address=str(address))


def post(base_url: str, host: str, path: str, payload: dict[str, Any] | bytes,
         timeout: float = 30.0, source_address: str | None = None) -> httpx.Response:
    """POST without raising on HTTP errors: notebooks show what a malformed request returns.

    `source_address` makes the request come from that loopback address (see `caller_transport`).
    """
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    transport = caller_transport(source_address) if source_address else None
    with httpx.Client(transport=transport, timeout=timeout) as client:
        return client.post(base_url + path, content=body, headers={"Host": host, "Content-Type": "application/json"})


def checked_json(response: httpx.Response, what: str) -> dict[str, Any]:
    """The JSON of a 2xx answer; otherwise a LabError quoting the server's own error message."""
    if response.is_success:
        return response.json()
    try:
        detail = response.json().get("error", response.text)
    except ValueError:
        detail = response.text
    raise LabError(f"{what}: HTTP {response.status_code}: {detail}")


def v2_columns(frame: Any) -> dict[str, Any]:
    """A V2 request for an MLflow model: one named input per column (MLServer's contract)."""
    datatypes = {"float64": "FP64", "float32": "FP32", "int64": "INT64", "int32": "INT32", "bool": "BOOL"}
    return {"inputs": [{"name": str(col), "shape": [len(frame)], "datatype": datatypes.get(str(frame[col].dtype), "BYTES"),
                        "data": frame[col].tolist()} for col in frame.columns]}


def v2_tensor(name: str, rows: Any, datatype: str) -> dict[str, Any]:
    """A V2 request with one [rows, features] tensor (kserve-sklearnserver's `input-0`, an ONNX graph's input)."""
    return {"inputs": [{"name": name, "shape": list(rows.shape), "datatype": datatype,
                        "data": rows.ravel().tolist()}]}


def v1_instances(frame: Any) -> dict[str, Any]:
    """A V1 request: rows as lists, in column order (what kserve-sklearnserver expects)."""
    return {"instances": frame.to_numpy().tolist()}


def check_v2_response(body: dict[str, Any]) -> Any:
    """Parse with the kserve SDK's own Open Inference Protocol type: a wrong shape raises, naming the field."""
    from kserve.protocol.rest.v2_datamodels import InferenceResponse

    response = InferenceResponse.model_validate(body)
    for output in response.outputs:
        expected = 1
        for dim in output.shape:
            expected *= dim
        if len(_flatten(output.data)) != expected:
            raise LabError(f"output {output.name!r}: shape {output.shape} needs {expected} values, "
                           f"got {len(_flatten(output.data))}")
    return response


def _flatten(data: Any) -> list[Any]:
    if isinstance(data, list):
        return [x for item in data for x in _flatten(item)]
    return [data]
