"""pytest plugin for the notebook tests (``-p lab_helpers.series.nbval_ipc``): nbval's kernels on private sockets.

nbval has no option for the kernel manager or its transport; it builds a `jupyter_client` KernelManager
in `nbval.kernel.start_new_kernel`. This plugin points that name at the IPC manager the runner uses too.
"""
from __future__ import annotations

import nbval.kernel
import pytest

from .kernels import BlockingIPCKernelManager


def pytest_configure(config: pytest.Config) -> None:
    nbval.kernel.KernelManager = BlockingIPCKernelManager
