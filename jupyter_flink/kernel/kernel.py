"""``FlinkKernel``: an IPython kernel that loads the Flink magics and knows the current cell.

ipykernel (>= 6.27) passes each execute request's ``cell_id`` and metadata to ``do_execute``;
JupyterLab puts the whole cell metadata there, so the magics can read the paths recorded in
``cell.metadata["flink"]``. On shutdown the kernel stops its jobs cleanly (with savepoints
where the cell asked for them) before the JVM goes away with the process.
"""

from __future__ import annotations

import contextlib
import inspect
from importlib.metadata import version
from typing import Any

from ipykernel.ipkernel import IPythonKernel

from .cell import CellContext, current

__version__ = version("jupyter-flink")


class FlinkKernel(IPythonKernel):
    """IPython with jupyter-flink loaded."""

    implementation = "jupyter_flink"
    implementation_version = __version__
    banner = f"Flink (PyFlink) kernel {__version__}: %flink.help lists the Flink magics."

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        assert self.shell is not None
        self.shell.extension_manager.load_extension("jupyter_flink")

    async def do_execute(self, code: str, silent: bool, store_history: bool = True,
                         user_expressions: dict[str, Any] | None = None,
                         allow_stdin: bool = False, *, cell_meta: dict[str, Any] | None = None,
                         cell_id: str | None = None) -> Any:
        token = current.set(CellContext.from_request(cell_meta, cell_id))
        try:
            reply = super().do_execute(code, silent, store_history, user_expressions,
                                       allow_stdin, cell_meta=cell_meta, cell_id=cell_id)
            if inspect.isawaitable(reply):
                reply = await reply
            return reply
        finally:
            current.reset(token)

    def do_complete(self, code: str, cursor_pos: int | None) -> Any:
        """Tab: in a Flink magic, only Flink's completions (never Python's mixed in when
        Flink has none); elsewhere IPython's, as in any IPython kernel."""
        position = len(code) if cursor_pos is None else cursor_pos
        for magics in self._flink_magics():
            complete_cell = getattr(magics, "complete_cell", None)
            reply = complete_cell(code, position) if callable(complete_cell) else None
            if reply is not None:
                return reply
        return super().do_complete(code, cursor_pos)

    def do_inspect(self, code: str, cursor_pos: int | None, detail_level: int = 0,
                   omit_sections: Any = ()) -> Any:
        """Shift+Tab: help on the Flink magic's part under the cursor (a conf key, a cell
        property, a table or function in SQL), else IPython's object help."""
        position = len(code) if cursor_pos is None else cursor_pos
        for magics in self._flink_magics():
            inspect_cell = getattr(magics, "inspect_cell", None)
            bundle = inspect_cell(code, position) if callable(inspect_cell) else None
            if bundle:
                return {"status": "ok", "found": True, "data": bundle, "metadata": {}}
        return super().do_inspect(code, cursor_pos, detail_level, omit_sections)

    def do_shutdown(self, restart: bool) -> Any:
        for magics in self._flink_magics():
            stop = getattr(magics, "shutdown", None)
            if callable(stop):
                stop()
        stop_java_children()
        return super().do_shutdown(restart)

    def _flink_magics(self) -> list[Any]:
        """The registered magics of jupyter-flink (found by module: this stage imports none
        of the stages above it)."""
        assert self.shell is not None
        return [magics for magics in list(self.shell.magics_manager.registry.values())
                if type(magics).__module__.startswith("jupyter_flink")]


def stop_java_children(timeout: float = 10.0) -> None:
    """End and reap PyFlink's JVM now that its jobs are stopped.

    PyFlink never waits on the JVM it starts, so the JVM lingers as a zombie and
    ipykernel's shutdown then spends its whole SIGTERM/SIGKILL schedule (~30 s) on it.
    """
    import psutil

    children = [p for p in psutil.Process().children()
                if "java" in (_name(p) or "")]
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=timeout)
    for child in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(alive, timeout=timeout)


def _name(process: Any) -> str | None:
    try:
        return process.name()
    except Exception:  # psutil.Error: gone or not ours to inspect
        return None
