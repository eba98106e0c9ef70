"""The IPython extension: ``%load_ext jupyter_flink`` (the flink kernel loads it itself)."""

from __future__ import annotations

import atexit
from typing import Any

from .. import completion
from ..flink import secure_gateway
from ..kernel.cell import notebook_path_from_env
from ..parsing.header import rewrite_cell_magic_line
from ..recording import comm
from .flink_magics import FlinkMagics

__all__ = ["FlinkMagics", "load_ipython_extension", "unload_ipython_extension"]


def _zeppelin_headers(lines: list[str]) -> list[str]:
    """Input transformer: ``%%flink.ssql(a=b)`` -> ``%%flink.ssql (a=b)``.

    IPython takes everything up to the first space as the magic name, so Zeppelin's
    paragraph syntax would otherwise look up a magic called ``flink.ssql(a=b)``.
    """
    if lines and lines[0].startswith("%%"):
        lines = [rewrite_cell_magic_line(lines[0]), *lines[1:]]
    return lines


def load_ipython_extension(ipython: Any) -> None:
    if any(isinstance(m, FlinkMagics) for m in ipython.magics_manager.registry.values()):
        return
    notebook_path_from_env()  # where the notebook is, before user code changes directory
    # Before any user code: PyFlink's JVM, whoever starts it, takes commands only with a token.
    secure_gateway.install()
    magics = FlinkMagics(ipython)
    ipython.register_magics(magics)
    comm.listen_for_notebook_path(magics.service.notebook_moved)
    ipython.input_transformers_cleanup.append(_zeppelin_headers)
    if getattr(ipython, "Completer", None) is not None:
        magics.completion_matcher = completion.register(ipython, magics.completer)
    # A plain IPython kernel has no shutdown hook of ours: stop jobs while the JVM still runs.
    atexit.register(magics.shutdown)
    if getattr(ipython, "kernel", None) is not None:  # a Jupyter kernel, not a script or test
        magics.service.warm_up()


def unload_ipython_extension(ipython: Any) -> None:
    for magics in list(ipython.magics_manager.registry.values()):
        if isinstance(magics, FlinkMagics):
            magics.shutdown()
            atexit.unregister(magics.shutdown)
            if magics.completion_matcher is not None:
                completion.unregister(ipython, magics.completion_matcher)
    if _zeppelin_headers in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.remove(_zeppelin_headers)
    secure_gateway.uninstall()
