"""Kernels for headless runs on Unix sockets in a private temp folder instead of loopback TCP.

Only this user can reach them (TCP ports on 127.0.0.1 are open to every local user), and ipykernel
has no reason to warn "Kernel is running over TCP without encryption" for each notebook. papermill
(the runner) takes the async manager, nbval (the notebook tests, through the `nbval_ipc` plugin) the
blocking one; both get their sockets from the same mixin.
"""
from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from jupyter_client.connect import ConnectionFileMixin
from jupyter_client.manager import AsyncKernelManager, KernelManager
from traitlets import CaselessStrEnum, default


class PrivateSockets(ConnectionFileMixin):
    """IPC transport, with the socket files under a folder only this user can enter."""

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    @default("ip")
    def _private_socket_prefix(self) -> str:
        return str(Path(_socket_dir().name) / "kernel")


class IPCKernelManager(PrivateSockets, AsyncKernelManager):
    """For papermill (`kernel_manager_class=`)."""


class BlockingIPCKernelManager(PrivateSockets, KernelManager):
    """For nbval, which drives its kernel with the blocking API."""


@functools.cache
def _socket_dir() -> tempfile.TemporaryDirectory:
    """One private folder (mode 700) for this process's kernel sockets, removed when the process exits."""
    return tempfile.TemporaryDirectory(prefix="lab-kernels-")
