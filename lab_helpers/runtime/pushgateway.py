"""The local stand-in for the ``prom/pushgateway`` image: the real Pushgateway binary (Debian
``prometheus-pushgateway``), on the host port the local kubelet maps the container's 9091 to.

The image's ENTRYPOINT is ``/bin/pushgateway``; its args (``--persistence.file``, ...) pass through,
with a ``--web.listen-address`` the pod's port mapping decides (loopback only, as every local pod).
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from .pod import listen_port, pod_path

CONTAINER_PORT = 9091
BINARY = "prometheus-pushgateway"


def argv(args: list[str], binary: str) -> list[str]:
    """The binary's argv: the pod's args, paths inside the pod resolved, listening on the mapped port."""
    kept = [a for a in args if not a.startswith("--web.listen-address")]
    resolved = [f"{a.split('=', 1)[0]}={pod_path(a.split('=', 1)[1])}" if a.startswith("--persistence.file=") else a
                for a in kept]
    return [binary, f"--web.listen-address=127.0.0.1:{listen_port(CONTAINER_PORT)}", *resolved]


def main() -> None:
    binary = shutil.which(BINARY)
    if binary is None:
        sys.exit(f"{BINARY} is not installed: apt-get install -y prometheus-pushgateway (make setup does it)")
    command = argv(sys.argv[1:], binary)
    for arg in command:
        if arg.startswith("--persistence.file="):  # an emptyDir mount exists on a cluster; here, make its folder
            Path(arg.split("=", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
