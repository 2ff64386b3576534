"""The images the local node can "run": an image reference -> the local program that plays it.

A container image gives a pod its ENTRYPOINT, the ports it listens on and the interpreter on its
PATH. The local kubelet looks images up here instead of pulling them; an image missing from this
table fails like a pull that found nothing (ErrImagePull, then ImagePullBackOff). The Kubernetes
rules for ``command``/``args`` apply: ``command`` replaces the ENTRYPOINT, ``args`` follow it, and
``$(VAR)`` is expanded from the container's environment.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..runtime import triton_image


@dataclass(frozen=True)
class LocalImage:
    repository: str                 # e.g. "kserve/sklearnserver": matched without registry and tag
    entrypoint: tuple[str, ...]     # what ENTRYPOINT the image has ("python" is the image's interpreter)
    exposes: tuple[int, ...] = ()   # container ports it listens on even when the pod spec declares none
    python: str = sys.executable    # the interpreter of the image's environment (its venv)
    missing: Callable[[], str | None] = lambda: None  # why the image is not on this node (set-up not run)

    @property
    def bin_dir(self) -> str:
        return str(Path(self.python).parent)


RUNTIME = ("python", "-m", "lab_helpers.runtime.server")
IMAGES: tuple[LocalImage, ...] = (
    LocalImage("kserve/sklearnserver", (*RUNTIME, "--model-format", "sklearn"), exposes=(8080,)),
    LocalImage("kserve/xgbserver", (*RUNTIME, "--model-format", "sklearn"), exposes=(8080,)),
    LocalImage("kserve/predictiveserver", (*RUNTIME, "--model-format", "sklearn"), exposes=(8080,)),
    LocalImage("seldonio/mlserver", ("python", "-m", "lab_helpers.runtime.mlserver"), exposes=(8080,)),
    # The lab's own runtime image (docker/runtime/Dockerfile): KServe's server with the predicted-class counter.
    LocalImage("serving-lab/runtime", (*RUNTIME, "--model-format", "sklearn"), exposes=(8080,)),
    # Triton: its entrypoint runs the args (`tritonserver ...`) with the nvidia-pytriton wheel's binary.
    LocalImage("nvidia/tritonserver", ("python", "-m", "lab_helpers.runtime.triton"), exposes=(8080, 9000, 8002),
               missing=triton_image.missing),
    # The Prometheus Pushgateway (the drift job pushes its gauges there): the real binary, Debian prometheus-pushgateway.
    LocalImage("prom/pushgateway", ("python", "-m", "lab_helpers.runtime.pushgateway"), exposes=(9091,),
               missing=lambda: None if shutil.which("prometheus-pushgateway") else
               "the Debian package prometheus-pushgateway is not installed (make setup installs it)"),
    # The lab's drift image (docker/drift/Dockerfile): the inference logger's sink by default; Jobs set `command`.
    LocalImage("serving-lab/drift", ("python", "-m", "lab_helpers.drift.receiver"), exposes=(8080,)),
    # The lab's inference-shape images (docker/transformer, docker/custom-predictor, docker/batch-scorer).
    LocalImage("serving-lab/transformer", ("python", "-m", "lab_helpers.runtime.transformer"), exposes=(8080,)),
    LocalImage("serving-lab/custom-predictor", ("python", "-m", "lab_helpers.runtime.custom_predictor"),
               exposes=(8080,)),
    LocalImage("serving-lab/batch-scorer", ("python", "-m", "lab_helpers.shapes.batch_scorer")),
    LocalImage("kserve/storage-initializer", ("python", "-m", "lab_helpers.runtime.storage")),
    # A plain Python image: for Jobs whose `command` is a lab module (python -m lab_helpers....).
    LocalImage("python", ("python",)),
)


class ImageNotFound(LookupError):
    def __init__(self, image: str, why: str | None = None):
        known = ", ".join(sorted(i.repository for i in IMAGES))
        super().__init__(f'Failed to pull image "{image}": ' + (why or "the local node has no such image (it runs "
                         f"only the images of lab_helpers/local/images.py: {known})"))


def repository_of(image: str) -> str:
    """``docker.io/seldonio/mlserver:1.7.1`` -> ``seldonio/mlserver``; a digest or tag is dropped."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name.rsplit(":", 1)[0]
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]  # a registry host
    if parts[:1] == ["library"]:
        parts = parts[1:]
    return "/".join(parts)


def find_image(image: str) -> LocalImage:
    repository = repository_of(image)
    for candidate in IMAGES:
        if repository == candidate.repository or repository.endswith("/" + candidate.repository):
            why = candidate.missing()
            if why:
                raise ImageNotFound(image, why)
            return candidate
    raise ImageNotFound(image)


_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined variables are replaced, others stay as written."""
    return _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), value)


def container_argv(container: dict[str, Any], image: LocalImage, env: dict[str, str]) -> list[str]:
    """The process a container runs: `command` or the ENTRYPOINT, then `args`, expanded."""
    argv = [*(container.get("command") or image.entrypoint), *(container.get("args") or [])]
    argv = [expand(str(a), env) for a in argv]
    if argv and argv[0] in ("python", "python3"):
        argv[0] = image.python
    return argv


def container_env(container: dict[str, Any], image: LocalImage) -> dict[str, str]:
    """The container's declared environment; only literal values (``valueFrom`` needs a cluster's kubelet)."""
    env: dict[str, str] = {}
    for item in container.get("env") or []:
        if "valueFrom" in item:
            raise ValueError(f"env {item['name']}: valueFrom is not resolved by the local kubelet "
                             "(give the value literally for the local target)")
        env[item["name"]] = expand(str(item.get("value", "")), env)
    return env


def process_env(image: LocalImage, declared: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    """The whole environment of the process: the host's, the image's PATH first, then the pod's."""
    path = os.pathsep.join([image.bin_dir, os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, **extra, **declared}
