"""Tell frontends about cells' Flink metadata with a kernel-opened, stateless comm.

Each update is one ``comm_open`` with target :data:`TARGET_NAME` whose data is::

    {"version": 2, "notebook_path": "work/demo.ipynb",
     "cells": {"6a8c...": {"latest_checkpoint_path": ..., "savepoint_path": ..., ...}, ...}}

followed at once by its ``comm_close``. One message carries every cell of a notebook that a
poll round recorded (10 jobs checkpointing every second would otherwise cost 20 messages a
second). Version 1, still accepted by our frontends, carried one cell as ``cell_id`` and
``flink``. Nothing is kept on either side, so an update reaches every frontend connected at
that moment, including pages reloaded since the job started. The jupyter-flink labextension
stores each value as the ``flink`` metadata key of the cell with that id; a frontend without
it closes the comm, which the kernel ignores.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["NOTEBOOK_TARGET_NAME", "PROTOCOL_VERSION", "TARGET_NAME", "listen_for_notebook_path",
           "send_metadata_update", "send_metadata_updates", "updates_in"]

TARGET_NAME = "jupyter_flink.metadata"
PROTOCOL_VERSION = 2
# Frontend -> kernel: {"path": "<API path of the notebook>"} when the notebook's kernel
# connects and whenever the notebook is renamed or moved, so that its journal follows it.
NOTEBOOK_TARGET_NAME = "jupyter_flink.notebook"


def send_metadata_updates(notebook_path: str | None,
                          cells: Mapping[str, Mapping[str, Any]]) -> None:
    """Send the ``flink`` metadata (JSON values) of ``cells`` (by cell id) to the frontends.

    A no-op outside a running kernel. Safe to call from any thread: ipykernel hands iopub
    messages from other threads to its IOPub thread, as it does for output printed from threads.
    """
    kernelbase = sys.modules.get("ipykernel.kernelbase")
    if not cells or kernelbase is None or not kernelbase.Kernel.initialized():
        return
    import comm  # ipykernel installs its create_comm on import, so look it up at call time

    data = {
        "version": PROTOCOL_VERSION,
        "notebook_path": notebook_path,
        "cells": {cell_id: dict(flink) for cell_id, flink in cells.items()},
    }
    # primary=False: the comm is never registered with the kernel's comm manager, so there
    # is no state to clean up and no race with a frontend that answers with comm_close.
    channel = comm.create_comm(target_name=TARGET_NAME, primary=False)
    channel.publish_msg("comm_open", data=data, target_name=TARGET_NAME, target_module=None)
    channel.close(deleting=True)  # sends comm_close; deleting=True: nothing to unregister


def send_metadata_update(notebook_path: str | None, cell_id: str,
                         flink: Mapping[str, Any]) -> None:
    """Send one cell's ``flink`` metadata (see :func:`send_metadata_updates`)."""
    send_metadata_updates(notebook_path, {cell_id: flink})


def updates_in(data: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The ``{cell id: flink metadata}`` of a message's data, of either protocol version;
    empty for a malformed or unknown message."""
    version = data.get("version")
    if version == 1:
        cell_id, flink = data.get("cell_id"), data.get("flink")
        return {cell_id: flink} if isinstance(cell_id, str) and isinstance(flink, Mapping) \
            else {}
    cells = data.get("cells")
    if version != PROTOCOL_VERSION or not isinstance(cells, Mapping):
        return {}
    return {cell_id: flink for cell_id, flink in cells.items()
            if isinstance(cell_id, str) and isinstance(flink, Mapping)}


def listen_for_notebook_path(callback: Callable[[str], None]) -> bool:
    """Call ``callback(api_path)`` when a frontend tells where this kernel's notebook is.

    A no-op (False) outside an ipykernel process. The frontend opens a comm with target
    :data:`NOTEBOOK_TARGET_NAME` and the path as its data; the kernel closes it. Safe to call while
    the kernel is still being built (the flink kernel loads the magics in its constructor):
    ipykernel's comm manager exists from its import on.
    """
    if "ipykernel.ipkernel" not in sys.modules:
        return False
    import comm

    def opened(channel: Any, msg: Mapping[str, Any]) -> None:
        path = (msg.get("content") or {}).get("data", {}).get("path")
        try:
            if isinstance(path, str) and path:
                callback(path)
        finally:
            # The kernel closes it, as one without this target does: the frontend need not
            # (closing it too, it would hear of a comm it no longer knows).
            channel.close()

    comm.get_comm_manager().register_target(NOTEBOOK_TARGET_NAME, opened)
    return True
