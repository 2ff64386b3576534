"""Calling a served model over HTTP the way curl would: paths per protocol, Host header, errors quoted."""
from __future__ import annotations

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


def post(base_url: str, host: str, path: str, payload: dict[str, Any] | bytes,
         timeout: float = 30.0) -> httpx.Response:
    """POST without raising on HTTP errors: notebooks show what a malformed request returns."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return httpx.post(base_url + path, content=body, timeout=timeout,
                      headers={"Host": host, "Content-Type": "application/json"})


def checked_json(response: httpx.Response, what: str) -> dict[str, Any]:
    """The JSON of a 2xx answer; otherwise a LabError quoting the server's own error message."""
    if response.is_success:
        return response.json()
    try:
        detail = response.json().get("error", response.text)
    except ValueError:
        detail = response.text
    raise LabError(f"{what}: HTTP {response.status_code}: {detail}")
