"""Apache Flink in Jupyter: checkpoint, savepoint and resume Flink jobs per notebook cell.

``%load_ext jupyter_flink`` in any IPython kernel gives the ``%%flink.conf``, ``%%flink``,
``%%flink.ssql`` and ``%%flink.bsql`` magics; the ``flink`` kernel loads them by itself.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """Register the Flink magics on an IPython shell (``%load_ext jupyter_flink``)."""
    from .magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Stop this shell's Flink jobs and cluster and remove the magics' input transformer."""
    from .magics import unload_ipython_extension as unload

    unload(ipython)
