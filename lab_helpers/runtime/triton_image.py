"""Where the local Triton "image" lives: the `tritonserver` binary of the nvidia-pytriton wheel, in its own venv.

On a cluster Triton is a container image. Locally it is a venv that the set-up creates (`make setup`,
target `triton-image`): ``nvidia-pytriton`` 0.7.0 with ``numpy<2`` and onnxruntime. It is separate
from the lab's venv because 0.7.0 requires numpy<2 (with numpy 2 pip silently installs 0.5.7, whose
Python-backend stub then reads inputs wrongly), as a pod has its own image. The wheel ships the
server, its libraries, the Python backend and one backend stub per Python version; the set-up puts
the 3.11 stub (it links Debian's ``libpython3.11``) into the backend directory, where Triton looks.
"""
from __future__ import annotations

import ctypes.util
import functools
import os
from pathlib import Path

from ..paths import REPO_ROOT

VENV_ENV = "LAB_TRITON_VENV"
STUB = "triton_python_backend_stub"
STUB_PYTHON = "3.11"
SET_UP = "run `make setup` (target triton-image)"


def venv() -> Path:
    """The Triton image's venv: $LAB_TRITON_VENV, else .venv-triton in the checkout."""
    return Path(os.environ.get(VENV_ENV) or REPO_ROOT / ".venv-triton")


def site_packages() -> Path:
    found = sorted(venv().glob("lib/python3*/site-packages"))
    return found[0] if found else venv() / "lib" / f"python{STUB_PYTHON}" / "site-packages"


def server_dir() -> Path:
    return site_packages() / "pytriton" / "tritonserver"


def binary() -> Path:
    return server_dir() / "bin" / "tritonserver"


def backends_dir() -> Path:
    return server_dir() / "backends"


def libs_dir() -> Path:
    """The shared libraries the wheel bundles (auditwheel's ``<dist>.libs``)."""
    return site_packages() / "nvidia_pytriton.libs"


def bundled_stub() -> Path:
    return server_dir() / "python_backend_stubs" / STUB_PYTHON / STUB


@functools.cache
def _has_libpython() -> bool:
    """Whether the dynamic linker finds libpython3.11 (`ldconfig -p` runs once per process, not per pod)."""
    return ctypes.util.find_library(f"python{STUB_PYTHON}") is not None


def missing() -> str | None:
    """Why the image cannot run here, or None: what a failed image pull would say."""
    if not binary().is_file():
        return f"no tritonserver binary at {binary()} (the Triton image is the venv {venv()}; {SET_UP})"
    if not (backends_dir() / "python" / STUB).is_file():
        return f"the Python backend has no {STUB} in {backends_dir() / 'python'} ({SET_UP})"
    if not _has_libpython():
        return (f"the backend stub needs Debian's libpython{STUB_PYTHON} (apt-get install libpython{STUB_PYTHON}; "
                f"{SET_UP})")
    return None


def server_env(base: dict[str, str]) -> dict[str, str]:
    """The server's environment: the wheel's libraries on LD_LIBRARY_PATH and the venv's bin first on PATH,
    so the backend stub's embedded interpreter finds the venv (onnxruntime, numpy<2)."""
    libraries = os.pathsep.join(filter(None, [str(libs_dir()), base.get("LD_LIBRARY_PATH", "")]))
    path = os.pathsep.join(filter(None, [str(venv() / "bin"), base.get("PATH", "")]))
    return {**base, "LD_LIBRARY_PATH": libraries, "PATH": path}


def install_stub() -> Path:
    """Put the wheel's 3.11 backend stub where the Python backend looks for it (what pytriton does per start)."""
    import shutil

    target = backends_dir() / "python" / STUB
    if not target.is_file():
        shutil.copy2(bundled_stub(), target)
    return target


if __name__ == "__main__":  # the set-up's last step: `python -m lab_helpers.runtime.triton_image`
    import sys

    if binary().is_file():
        install_stub()
    problem = missing()
    print(f"Triton image: {problem}" if problem else f"Triton image ready: {binary()}")
    sys.exit(1 if problem else 0)
