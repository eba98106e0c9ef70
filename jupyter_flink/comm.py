"""Tell frontends about a cell's Flink metadata with a kernel-opened, stateless comm.

Each update is one ``comm_open`` with target :data:`TARGET_NAME` whose data is::

    {"version": 1, "notebook_path": "work/demo.ipynb", "cell_id": "6a8c...",
     "flink": {"latest_checkpoint_path": ..., "savepoint_path": ..., "job_id": ..., ...}}

followed at once by its ``comm_close``. Nothing is kept on either side, so an update reaches
every frontend connected at that moment, including pages reloaded since the job started. The
jupyter-flink labextension stores ``flink`` as the ``flink`` metadata key of the cell with that
id; a frontend without it closes the comm, which the kernel ignores.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["PROTOCOL_VERSION", "TARGET_NAME", "send_metadata_update"]

TARGET_NAME = "jupyter_flink.metadata"
PROTOCOL_VERSION = 1


def send_metadata_update(notebook_path: str | None, cell_id: str, flink: dict[str, Any]) -> None:
    """Send one cell's ``flink`` metadata (JSON values) to the frontends.

    A no-op outside a running kernel. Safe to call from any thread: ipykernel hands iopub
    messages from other threads to its IOPub thread, as it does for output printed from threads.
    """
    kernelbase = sys.modules.get("ipykernel.kernelbase")
    if kernelbase is None or not kernelbase.Kernel.initialized():
        return
    import comm  # ipykernel installs its create_comm on import, so look it up at call time

    data = {
        "version": PROTOCOL_VERSION,
        "notebook_path": notebook_path,
        "cell_id": cell_id,
        "flink": flink,
    }
    # primary=False: the comm is never registered with the kernel's comm manager, so there
    # is no state to clean up and no race with a frontend that answers with comm_close.
    channel = comm.create_comm(target_name=TARGET_NAME, primary=False)
    channel.publish_msg("comm_open", data=data, target_name=TARGET_NAME, target_module=None)
    channel.close(deleting=True)  # sends comm_close; deleting=True: nothing to unregister
