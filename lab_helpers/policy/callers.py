"""Calling a predictor as a chosen pod: what `lab.call_as` sends, and the pod that sends it on a cluster.

A network policy knows a caller by its pod's labels and namespace, so the only honest way to test one
is to call from such a pod. On a cluster `caller_pod` is that pod: an ephemeral curl with the
labels, in the namespace, calling the predictor Service's cluster DNS name directly (through the
ingress the predictor would see the ingress gateway instead). It prints the HTTP status, or 000
when no answer came before its own timeout (curl's ``--max-time``), which is what a dropped
connection looks like from the caller's side.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from .identity import SERVICE_DOMAIN

CURL_IMAGE = "curlimages/curl:8.11.1"
CURL_UID = 100  # the image's curl_user: a numeric user lets the kubelet verify runAsNonRoot
NO_ANSWER = "000"  # curl's %{http_code} when no response arrived


@dataclass(frozen=True)
class CallResult:
    """What the caller saw: an HTTP status, or None when nothing came back before its timeout."""

    status: int | None
    body: str = ""

    @property
    def outcome(self) -> str:
        """``"200"``, ``"403"``, ... or ``"timeout"`` (a dropped connection looks like this to the caller)."""
        return "timeout" if self.status is None else str(self.status)


def predictor_host(isvc: str, namespace: str) -> str:
    """The predictor Service's cluster DNS name: the direct path, past the ingress."""
    return f"{isvc}-predictor.{namespace}{SERVICE_DOMAIN}"


def request_body(payload: dict[str, Any] | None) -> bytes:
    return json.dumps(payload).encode() if payload is not None else b""


def caller_pod(labels: dict[str, str], namespace: str, url: str, method: str, payload: dict[str, Any] | None,
               timeout_s: float) -> dict[str, Any]:
    """An ephemeral pod that makes one request to `url` and prints the status code (000 = no answer)."""
    args = ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", f"{timeout_s:g}", "-X", method]
    if payload is not None:
        args += ["-H", "Content-Type: application/json", "--data", json.dumps(payload)]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"call-as-{secrets.token_hex(4)}", "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": int(timeout_s) + 120,  # a pod that cannot start does not linger
            "automountServiceAccountToken": False,
            "containers": [{
                "name": "curl", "image": CURL_IMAGE, "args": [*args, url],
                "securityContext": {"runAsNonRoot": True, "runAsUser": CURL_UID, "allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
            }],
        },
    }


def parse_curl_status(output: str) -> CallResult:
    """The pod's log: curl's ``%{http_code}``; 000 (or nothing) means no answer arrived."""
    code = output.strip()[-3:]
    if not code.isdigit() or code == NO_ANSWER:
        return CallResult(None)
    return CallResult(int(code))
