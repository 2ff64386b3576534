"""The entrypoint of the local Triton image: run the real `tritonserver` for a pod, the way the pod's args ask.

A Triton container runs its args as a command (``tritonserver --model-store=/mnt/models
--http-port=8080 ...``, as KServe's ServingRuntimes write them). Locally the same argv is run by
the `tritonserver` binary of the nvidia-pytriton wheel (`triton_image`), with what a shared
laptop needs instead of a pod's own filesystem and network, each listed by `local_differences`:

- paths and ports through the pod's mapping (`runtime.pod`), and every listener on 127.0.0.1;
- the wheel has only the Python backend, so each ONNX model of the repository is served through a
  generated Python-backend ``model.py`` on onnxruntime (`triton_python_model`): the repository is
  copied, its ``platform: "onnxruntime_onnx"`` becomes ``backend: "python"``, all else is kept;
- a model that fails to load makes Triton exit 1 (it does by default); its errors are repeated as
  the last line on stderr, which the kubelet keeps as the termination message (ModelLoadFailed).

    python -m lab_helpers.runtime.triton tritonserver --model-store=/mnt/models --http-port=8080 ...
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lab_helpers.runtime import triton_image
from lab_helpers.runtime.pod import listen_port, pod_path

LOOPBACK = "127.0.0.1"
# Triton's flags and defaults for the ports (tritonserver --help); metrics default to 8002.
PORT_FLAGS = {"--http-port": 8000, "--grpc-port": 8001, "--metrics-port": 8002}
REPOSITORY_FLAGS = ("--model-store", "--model-repository")
ONNX_PLATFORM = re.compile(r'^\s*(platform\s*:\s*"onnxruntime_onnx"|backend\s*:\s*"onnxruntime")\s*$', re.MULTILINE)
PYTHON_MODEL = Path(__file__).with_name("triton_python_model.py")
# glog lines: E1202 19:27:37.813183 31666 model_repository_manager.cc:1460] "message"
ERROR_LINE = re.compile(r'^E\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\] "?(?P<message>.*?)"?$')
# Where Triton says a model did not load: the model lifecycle and the repository poll.
MODEL_ERROR = re.compile(r"failed to load|Poll failed")


@dataclass(frozen=True)
class Difference:
    """One way the local pod's Triton differs from the cluster's, said in both terms."""

    what: str
    cluster: str
    local: str


def split_flags(args: list[str]) -> list[tuple[str, str | None]]:
    """``["--a=1", "--b", "2", "--c"]`` -> [("--a", "1"), ("--b", "2"), ("--c", None)], Triton's two spellings."""
    flags: list[tuple[str, str | None]] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if not arg.startswith("--"):
            raise SystemExit(f"tritonserver: unexpected argument {arg!r} (flags are --name=value or --name value)")
        if "=" in arg:
            name, value = arg.split("=", 1)
            flags.append((name, value))
        elif index + 1 < len(args) and not args[index + 1].startswith("--"):
            flags.append((arg, args[index + 1]))
            index += 1
        else:
            flags.append((arg, None))
        index += 1
    return flags


def server_flags(args: list[str], repository: Path) -> list[str]:
    """The pod's tritonserver flags for this host: the local repository, mapped ports, loopback, the wheel's backends."""
    flags = [(name, value) for name, value in split_flags(args)
             if name not in (*REPOSITORY_FLAGS, "--backend-directory") and not name.endswith("-address")]
    given = dict(flags)
    out = [f"--model-repository={repository}"]
    for name, value in flags:
        out.append(f"{name}={listen_port(int(value))}" if name in PORT_FLAGS and value is not None
                   else name if value is None else f"{name}={value}")
    out += [f"{name}={listen_port(default)}" for name, default in PORT_FLAGS.items() if name not in given]
    out += [f"--{api}-address={LOOPBACK}" for api in ("http", "grpc", "metrics")]
    out.append(f"--backend-directory={triton_image.backends_dir()}")
    return out


def model_store(args: list[str]) -> Path:
    stores = [value for name, value in split_flags(args) if name in REPOSITORY_FLAGS and value]
    if len(stores) != 1:
        raise SystemExit("tritonserver: give exactly one --model-store (or --model-repository); "
                         f"got {len(stores)}")
    return pod_path(stores[0])


def localize_repository(source: Path, dest: Path, backends: set[str]) -> list[str]:
    """Copy the repository to `dest`; ONNX models whose backend is missing get the Python-backend model.py.

    Returns the names of the models changed that way. A missing or unreadable config is left as it
    is: Triton reports it, as it would on a cluster.
    """
    if not source.is_dir():
        raise SystemExit(f"tritonserver: model repository {source} does not exist (did the storage initializer "
                         "copy the storageUri there?)")
    shutil.copytree(source, dest, dirs_exist_ok=True)
    changed = []
    for config_path in sorted(dest.glob("*/config.pbtxt")):
        text = config_path.read_text(errors="replace")
        if "onnxruntime" in backends or not ONNX_PLATFORM.search(text):
            continue
        config_path.write_text(ONNX_PLATFORM.sub('backend: "python"', text))
        for version in (p for p in config_path.parent.iterdir() if p.is_dir() and p.name.isdigit()):
            shutil.copyfile(PYTHON_MODEL, version / "model.py")
        changed.append(config_path.parent.name)
    return changed


def local_differences(args: list[str]) -> list[Difference]:
    """How this image runs the container's `args` differently from a cluster's Triton image, one row each."""
    given = dict(split_flags(args[1:] if args[:1] == ["tritonserver"] else args))
    rows = [Difference("server", "tritonserver of the NGC image (nvcr.io/nvidia/tritonserver)",
                       "tritonserver of the nvidia-pytriton 0.7.0 wheel, CPU only"),
            Difference("ONNX backend", 'onnxruntime backend (platform: "onnxruntime_onnx")',
                       'Python backend (backend: "python") + generated model.py running onnxruntime')]
    for name, default in PORT_FLAGS.items():
        port = int(given.get(name) or default)
        rows.append(Difference(name.removeprefix("--").replace("-", " "), f"{port} on the pod's IP",
                               f"{port} mapped to a free port on {LOOPBACK}"))
    rows += [Difference("model repository", "the storageUri in the pod's /mnt/models, as it is",
                        "a copy under the pod's /tmp with the ONNX configs rewritten as above"),
             Difference("Python backend stub", "built into the image",
                        f"the wheel's {triton_image.STUB_PYTHON} stub, linked to Debian's "
                        f"libpython{triton_image.STUB_PYTHON}"),
             Difference("environment", "the image's own filesystem",
                        "the venv .venv-triton (numpy<2, onnxruntime) on PATH, the wheel's libraries on "
                        "LD_LIBRARY_PATH")]
    return rows


def load_errors(lines: list[str]) -> list[str]:
    """Triton's own error messages about models, from its log (CPU-only noise such as NVML left out)."""
    messages = [m.group("message") for m in map(ERROR_LINE.match, lines) if m]
    # A Python traceback follows as escaped lines ("\\n\\nAt:\\n ..."): the first line says it.
    return [message.split("\\n")[0] for message in messages if MODEL_ERROR.search(message)]


def run(argv: list[str]) -> int:
    """Run tritonserver in the foreground, relaying its log; exit with its code."""
    if argv[:1] != ["tritonserver"]:
        print(f"this image runs `tritonserver ...`; got {argv[:1] or 'no command'}", file=sys.stderr)
        return 127
    problem = triton_image.missing()
    if problem:
        print(f"tritonserver: {problem}", file=sys.stderr)
        return 127
    args = argv[1:]
    source = model_store(args)
    scratch_root = pod_path("/tmp")
    scratch_root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="triton-repository-", dir=scratch_root))
    try:
        backends = {p.name for p in triton_image.backends_dir().iterdir() if p.is_dir()}
        for name in localize_repository(source, scratch, backends):
            print(f"[lab] model {name}: ONNX served through the Python backend (generated model.py on onnxruntime)",
                  flush=True)
        command = [str(triton_image.binary()), *server_flags(args, scratch)]
        return _supervise(command, triton_image.server_env(dict(os.environ)))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _supervise(command: list[str], env: dict[str, str]) -> int:
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace")
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _frame: server.send_signal(number))
    errors: list[str] = []
    assert server.stdout is not None
    for line in server.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        errors += load_errors([line.rstrip("\n")])
    code = server.wait()
    if code < 0:  # ended by a signal: the shell's convention, as a container runtime reports it
        return 128 - code
    if code > 0:
        why = "; ".join(errors) or "no error logged (see the lines above)"
        print(f"tritonserver exited with code {code}: {why}", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
