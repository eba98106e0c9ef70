"""The ``flink`` Jupyter kernel: IPython plus the Flink magics, aware of the executing cell."""

from .kernel import FlinkKernel
from .kernelspec import KERNEL_NAME, install_kernel_spec, make_kernel_spec

__all__ = ["KERNEL_NAME", "FlinkKernel", "install_kernel_spec", "make_kernel_spec"]
