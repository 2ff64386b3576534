"""Path (a): the raw `tritonserver` binary on a model repository, started by hand — no control plane, no gateway.

What a team does when it "just runs Triton": a model repository on disk, one command line, Triton's own HTTP
front end on a port. The binary is the nvidia-pytriton wheel's of the local Triton image (`.venv-triton`),
the same one path (b)'s pods run; the wheel has only Triton's Python backend, so the ONNX model is served
through the generated Python-backend ``model.py`` on onnxruntime exactly as in the pods
(`runtime.triton.localize_repository`). Nothing else of the pod's entrypoint runs: no supervisor process.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import LabError
from ..processes import free_port
from ..runtime import triton_image
from ..runtime.triton import localize_repository, server_flags
from .servers import StandaloneServer

NAME = "standalone-triton"
READY_PATH = "/v2/health/ready"  # Ready = the server is up and every model of the repository is loaded
# What the user writes on the command line beside the ports and the repository.
FLAGS = ("--strict-readiness=true", "--exit-on-error=true")


def local_repository(source: Path, dest: Path) -> Path:
    """Copy the repository for the wheel's tritonserver (ONNX models through the Python backend)."""
    backends = {p.name for p in triton_image.backends_dir().iterdir() if p.is_dir()}
    localize_repository(source, dest, backends)
    return dest


def command(repository: Path, http_port: int, grpc_port: int, metrics_port: int) -> list[str]:
    """The command line, with the wheel's library path set the way its venv needs (``env`` then execs Triton)."""
    environment = triton_image.server_env({})
    flags = server_flags([f"--http-port={http_port}", f"--grpc-port={grpc_port}",
                          f"--metrics-port={metrics_port}", *FLAGS], repository)
    return ["env", f"LD_LIBRARY_PATH={environment['LD_LIBRARY_PATH']}", f"PATH={environment['PATH']}:/usr/bin:/bin",
            str(triton_image.binary()), *flags]


def start(repository: Path, workdir: Path) -> StandaloneServer:
    """Start raw Triton on `repository` (a copy under `workdir` is what it loads); wait_ready() times it."""
    problem = triton_image.missing()
    if problem:
        raise LabError(f"raw Triton cannot start: {problem} (runbook: runbooks/runtime-not-loading-model.md)")
    local = local_repository(repository, workdir / "triton-repository")
    port = free_port()
    return StandaloneServer(NAME, command(local, port, free_port(), free_port()), port, READY_PATH)
