"""The ``flink`` kernelspec, written as ipykernel writes its own (pure functions + install)."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager

KERNEL_NAME = "flink"
DISPLAY_NAME = "Flink (PyFlink)"


def make_kernel_spec(python: str | None = None) -> dict[str, Any]:
    """The kernel.json content for the flink kernel running on ``python``."""
    return {
        "argv": [python or sys.executable, "-m", "jupyter_flink.kernel", "-f",
                 "{connection_file}"],
        "display_name": DISPLAY_NAME,
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {"debugger": False},
    }


def install_kernel_spec(*, user: bool = False, prefix: str | None = None,
                        python: str | None = None) -> str:
    """Install the kernelspec; returns the directory it was written to."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "kernel.json").write_text(json.dumps(make_kernel_spec(python), indent=1))
        return KernelSpecManager().install_kernel_spec(
            tmp, kernel_name=KERNEL_NAME, user=user, prefix=prefix, replace=True)
