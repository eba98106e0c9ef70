"""The kernel side of a headless run: requests carry the cell like JupyterLab's, the kernel
gets time to stop its jobs with savepoints, and a failed cell is described in one line."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.client import KernelClient
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import CellExecutionError, CellTimeoutError
from nbformat import NotebookNode
from traitlets import DottedObjectName, Float, Type

__all__ = ["SHUTDOWN_WAIT_S", "CellAwareKernelClient", "CellFailure", "FlinkKernelManager",
           "request_metadata"]

SHUTDOWN_WAIT_S = 120.0  # stop-with-savepoint of every running job happens inside it


def request_metadata(cell: NotebookNode) -> dict[str, Any]:
    """The execute request metadata JupyterLab 4 sends for ``cell`` (``CodeCell.execute``)."""
    return {**copy.deepcopy(dict(cell.get("metadata", {}))), "cellId": cell.get("id"),
            "deletedCells": [], "recordTiming": False}


class CellAwareKernelClient(AsyncKernelClient):
    """An async kernel client whose next execute request carries a cell's id and metadata.

    ``KernelClient.execute`` cannot send request metadata; when ``next_request_metadata``
    is set, this client builds the request itself with it (once: it is then cleared).
    """

    next_request_metadata: dict[str, Any] | None = None

    def execute(self, code: str, silent: bool = False, store_history: bool = True,  # type: ignore[override]
                user_expressions: dict[str, Any] | None = None,
                allow_stdin: bool | None = None, stop_on_error: bool = True) -> str:
        metadata, self.next_request_metadata = self.next_request_metadata, None
        content = {
            "code": code,
            "silent": silent,
            "store_history": store_history,
            "user_expressions": user_expressions or {},
            "allow_stdin": self.allow_stdin if allow_stdin is None else allow_stdin,
            "stop_on_error": stop_on_error,
        }
        msg = self.session.msg("execute_request", content, metadata=metadata)
        self.shell_channel.send(msg)
        return str(msg["header"]["msg_id"])


class FlinkKernelManager(AsyncKernelManager):
    """An async kernel manager with the cell-aware client and time for savepoints at shutdown."""

    client_class = DottedObjectName(f"{__name__}.CellAwareKernelClient", config=True)
    client_factory = Type(CellAwareKernelClient, klass=KernelClient, config=True)
    shutdown_wait_time = Float(
        SHUTDOWN_WAIT_S, config=True,
        help="Seconds a shutting-down kernel gets (SIGTERM after half, SIGKILL at the end); "
             "its jobs stop with savepoints during it.")


@dataclass(frozen=True)
class CellFailure:
    """The cell that stopped the run, and why."""

    index: int
    cell_id: str | None
    ename: str
    evalue: str
    first_line: str

    @classmethod
    def from_exception(cls, exc: BaseException, cell: NotebookNode, index: int) -> CellFailure:
        if isinstance(exc, CellExecutionError):
            ename, evalue = exc.ename, exc.evalue
        elif isinstance(exc, CellTimeoutError):
            ename, evalue = "Timeout", str(exc).strip().splitlines()[0]
        else:
            ename, evalue = type(exc).__name__, "the kernel died while the cell ran"
        source = cell.get("source", "").strip().splitlines()
        return cls(index, cell.get("id"), ename or "Error", evalue or "",
                   source[0] if source else "")

    def describe(self) -> str:
        """One line: which cell failed and how."""
        reason = (self.evalue.strip().splitlines() or [""])[0]
        if len(reason) > 240:
            reason = reason[:237] + "..."
        line = self.first_line if len(self.first_line) <= 60 else self.first_line[:57] + "..."
        error = f"{self.ename}: {reason}" if reason else self.ename
        return f"cell {self.index + 1} (id {self.cell_id}, `{line}`) failed: {error}"
