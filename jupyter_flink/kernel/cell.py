"""Which cell, of which notebook, is executing now.

The ``flink`` kernel receives ``cell_id`` and the cell's metadata with each execute request
(JupyterLab sends the whole cell metadata; ipykernel >= 6.27 hands it to ``do_execute``)
and sets :data:`current`. In a plain ipykernel with ``%load_ext jupyter_flink`` the same
facts are read from the request the kernel is handling.
"""

from __future__ import annotations

import contextvars
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Keys JupyterLab adds to the execute request's metadata that are not cell metadata.
_REQUEST_ONLY_KEYS = ("cellId", "deletedCells", "recordTiming")


@dataclass(frozen=True)
class CellContext:
    """The executing cell: its id, its metadata as the client sent it, its notebook."""

    cell_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    notebook_path: str | None = None

    @property
    def flink_metadata(self) -> Mapping[str, Any]:
        value = self.metadata.get("flink")
        return value if isinstance(value, Mapping) else {}

    @classmethod
    def from_request(cls, request_metadata: Mapping[str, Any] | None,
                     cell_id: str | None = None) -> CellContext:
        meta = dict(request_metadata or {})
        cell_id = cell_id or meta.get("cellId")
        for key in _REQUEST_ONLY_KEYS:
            meta.pop(key, None)
        return cls(cell_id=cell_id, metadata=meta, notebook_path=notebook_path_from_env())


current: contextvars.ContextVar[CellContext | None] = contextvars.ContextVar(
    "jupyter_flink_cell", default=None)


def current_cell(shell: Any = None) -> CellContext:
    """The executing cell, from the flink kernel, else from the request being handled."""
    cell = current.get()
    if cell is not None:
        return cell
    kernel = getattr(shell, "kernel", None)
    parent: Mapping[str, Any] = {}
    if kernel is not None and hasattr(kernel, "get_parent"):
        try:
            parent = kernel.get_parent() or {}
        except Exception:  # an older ipykernel without channel-aware get_parent
            parent = getattr(shell, "parent_header", None) or {}
    return CellContext.from_request(parent.get("metadata"))


# JPY_SESSION_NAME -> the notebook's absolute path, resolved once: user code may change the
# working directory later (os.chdir), which must not move the journal. A rename the frontend
# reports (notebook_moved) updates it.
_resolved: dict[str, str] = {}


def notebook_path_from_env() -> str | None:
    """The notebook of this kernel: jupyter_server (and our runner) set JPY_SESSION_NAME.

    An API path relative to the server root is resolved against the working directory the
    first time (the kernel starts in the notebook's folder); call this once at start-up.
    """
    name = os.environ.get("JPY_SESSION_NAME")
    if not name or not name.endswith(".ipynb"):
        return None
    if name not in _resolved:
        path = Path(name)
        _resolved[name] = str(path if path.is_absolute() else Path.cwd() / path.name)
    return _resolved[name]


def notebook_moved(api_path: str) -> tuple[str, str] | None:
    """The frontend says the notebook is now at ``api_path`` (relative to the server root,
    as jupyter_server names it). Returns (old, new) absolute paths if that moved it."""
    name = os.environ.get("JPY_SESSION_NAME")
    old = notebook_path_from_env()
    if not name or old is None or not api_path.endswith(".ipynb"):
        return None
    old_api, new_path = Path(name), Path(api_path)
    if not new_path.is_absolute():
        if old_api.is_absolute():
            return None  # no server root to resolve it against (a headless run)
        # The server root: as many levels above the notebook as its API path is deep.
        new_path = Path(old).parents[len(old_api.parts) - 1] / new_path
    new = str(new_path)
    if new == old:
        return None
    _resolved[name] = new
    return old, new


def kernel_id() -> str | None:
    """This kernel's id, as jupyter_server knows it (from ``kernel-<id>.json``, the
    connection file it gave the kernel); None outside a kernel started that way."""
    app_module = sys.modules.get("ipykernel.kernelapp")
    if app_module is None or not app_module.IPKernelApp.initialized():
        return None
    name = Path(app_module.IPKernelApp.instance().connection_file or "").stem
    return name[len("kernel-"):] if name.startswith("kernel-") else None
