"""The ``flink`` Jupyter kernel: IPython plus the Flink magics, aware of the executing cell.

``FlinkKernel`` is imported on first use: the magics need only :mod:`.cell`, and a plain
IPython kernel with ``%load_ext jupyter_flink`` must not load this kernel's class.
"""

from typing import Any

from .kernelspec import KERNEL_NAME, install_kernel_spec, make_kernel_spec

__all__ = ["KERNEL_NAME", "FlinkKernel", "install_kernel_spec", "make_kernel_spec"]


def __getattr__(name: str) -> Any:
    if name == "FlinkKernel":
        from .kernel import FlinkKernel

        return FlinkKernel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
