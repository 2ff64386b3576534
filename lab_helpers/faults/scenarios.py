"""The exit test's four faults as edits a user could make to an InferenceService, each a pure function.

Each takes the service as applied (apiVersion, kind, metadata, spec) and the (Cluster)ServingRuntimes the
target serves, and returns a broken copy; nothing else is touched, so the failure is KServe's and the
kubelet's own on either target:

- model artifact missing: ``storageUri`` one level below the artifact, where nothing was ever written, so the
  storage-initializer exits with "does not exist" / "No model found";
- framework runtime mismatch: ``runtime`` names a runtime whose ``supportedModelFormats`` lack the model's
  format, so KServe refuses the spec (``NoSupportingRuntime``) and builds no pods;
- resource limits too low: the memory limit (and request, which may not exceed it) below what the model server
  needs to start, so the container is OOMKilled and crash-loops;
- storage backend not accessible: the artifact's path behind an endpoint nothing listens on, so the
  storage-initializer cannot connect ("Failed to connect to HTTP endpoint").
"""
from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

from ..diagnosis import ARTIFACT_MISSING, LIMITS_TOO_LOW, RUNTIME_MISMATCH, STORAGE_UNREACHABLE
from ..errors import LabError

# A path segment under the real artifact: a plausible wrong version directory that was never written.
MISSING_SEGMENT = "model-v2"
# Far below what any runtime's Python process needs to import its server (hundreds of MiB), well above the few
# MiB a container runtime needs to start the process at all, so the kill comes from the model server's growth.
TOO_LOW_MEMORY = "64Mi"
# The discard port on the pod's own loopback: nothing listens there, on a node or on the lab's host.
UNREACHABLE_ENDPOINT = "http://127.0.0.1:9"


def _model(isvc: dict[str, Any]) -> dict[str, Any]:
    model = ((isvc.get("spec") or {}).get("predictor") or {}).get("model")
    if not model:
        name = (isvc.get("metadata") or {}).get("name")
        raise LabError(f"InferenceService {name} has no spec.predictor.model: the faults edit a model predictor")
    return model


def _storage_uri(isvc: dict[str, Any]) -> str:
    uri = _model(isvc).get("storageUri")
    if not uri:
        raise LabError(f"InferenceService {isvc['metadata']['name']} has no spec.predictor.model.storageUri: "
                       "the storage faults need one")
    return uri.rstrip("/")


def missing_artifact(isvc: dict[str, Any], runtimes: list[dict[str, Any]]) -> dict[str, Any]:
    broken = copy.deepcopy(isvc)
    _model(broken)["storageUri"] = f"{_storage_uri(isvc)}/{MISSING_SEGMENT}"
    return broken


def _formats(runtime: dict[str, Any]) -> set[str]:
    return {f.get("name") for f in (runtime.get("spec") or {}).get("supportedModelFormats") or []}


def mismatched_runtime(isvc: dict[str, Any], runtimes: list[dict[str, Any]]) -> dict[str, Any]:
    """Name the first runtime (by name) that does not support the model's format."""
    fmt = (_model(isvc).get("modelFormat") or {}).get("name", "")
    others = sorted(r["metadata"]["name"] for r in runtimes if fmt not in _formats(r))
    if not others:
        raise LabError(f"every serving runtime on this target supports {fmt!r}: no runtime to mismatch "
                       "(is KServe installed, with its runtimes? lab.require('kserve'))")
    broken = copy.deepcopy(isvc)
    _model(broken)["runtime"] = others[0]
    return broken


def too_low_limits(isvc: dict[str, Any], runtimes: list[dict[str, Any]]) -> dict[str, Any]:
    broken = copy.deepcopy(isvc)
    resources = _model(broken).setdefault("resources", {})
    for part in ("requests", "limits"):
        resources.setdefault(part, {})["memory"] = TOO_LOW_MEMORY
    return broken


def unreachable_storage(isvc: dict[str, Any], runtimes: list[dict[str, Any]]) -> dict[str, Any]:
    """The same artifact path (bucket and key for s3://) asked of an endpoint that refuses connections."""
    parts = urlsplit(_storage_uri(isvc))
    path = f"/{parts.netloc}{parts.path}" if parts.scheme == "s3" else parts.path
    broken = copy.deepcopy(isvc)
    _model(broken)["storageUri"] = UNREACHABLE_ENDPOINT + path
    return broken


@dataclass(frozen=True)
class Scenario:
    """One fault: its name (a cause `lab.diagnose` names), what it changes, and the status reason it shows."""

    name: str
    change: str
    reason: str
    breaks: Callable[[dict[str, Any], list[dict[str, Any]]], dict[str, Any]]

    def __str__(self) -> str:
        return self.name


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario(ARTIFACT_MISSING, f"storageUri points at <artifact>/{MISSING_SEGMENT}, where no model was written",
             "ModelLoadFailed", missing_artifact),
    Scenario(RUNTIME_MISMATCH, "runtime names a serving runtime that does not support the model's format",
             "NoSupportingRuntime", mismatched_runtime),
    Scenario(LIMITS_TOO_LOW, f"memory request and limit set to {TOO_LOW_MEMORY}, below what the model server needs",
             "OOMKilled", too_low_limits),
    Scenario(STORAGE_UNREACHABLE, f"storageUri asks {UNREACHABLE_ENDPOINT}, where no storage endpoint listens",
             "ModelLoadFailed", unreachable_storage),
)}


def scenario(name: str) -> Scenario:
    """The scenario called `name` (case, spaces and underscores ignored)."""
    key = normalise(name)
    if key not in SCENARIOS:
        raise LabError(f"unknown fault scenario {name!r}: choose one of {', '.join(SCENARIOS)}")
    return SCENARIOS[key]


def normalise(name: str) -> str:
    """``"Model artifact missing"`` -> ``"model-artifact-missing"``: how a learner may write a scenario's name."""
    return "-".join("".join(ch if ch.isalnum() else " " for ch in name.lower()).split())


def pick_scenario(seed: int) -> Scenario:
    """A scenario drawn at random, the same one for the same seed."""
    return random.Random(seed).choice(list(SCENARIOS.values()))
