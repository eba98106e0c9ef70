"""The labextension stores the kernel's metadata updates in live cells, across reloads and restarts.

A plain ``python3`` kernel stands in for the flink kernel: cell 0 sends the messages listed in
``updates.json`` with ``jupyter_flink.comm.send_metadata_updates`` from a background thread
once the cell has finished, as the job poller does (or as a kernel of protocol version 1 did);
cell 1 is the cell they are about.
"""

from __future__ import annotations

import json
from typing import Any

import nbformat
import pytest

NOTEBOOK = "work/metadata.ipynb"
UPDATES = "work/updates.json"
SENDER = """\
import json, os, threading
import comm
from jupyter_flink.recording.comm import TARGET_NAME, send_metadata_updates

def send_all(updates):
    path = os.environ.get("JPY_SESSION_NAME")
    for update in updates:
        if "cells" in update:
            send_metadata_updates(path, update["cells"])
        else:  # as a kernel of protocol version 1 did
            channel = comm.create_comm(target_name=TARGET_NAME, primary=False)
            channel.publish_msg("comm_open", target_name=TARGET_NAME, target_module=None,
                                data={"version": 1, "notebook_path": path, **update})
            channel.close(deleting=True)

updates = json.load(open("updates.json"))  # written by the test before each run
threading.Timer(0.5, send_all, (updates,)).start()  # after this cell has finished
print(f"sending {len(updates)} update(s)")
"""
TARGET_METADATA = {"tags": ["keep-me"], "custom": {"owner": "test", "nested": [1, 2]}}


def write_notebook(server) -> tuple[str, str]:
    """Write the two-cell notebook; return the ids of the sender and the target cell."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    notebook.cells = [
        nbformat.v4.new_code_cell(SENDER),
        nbformat.v4.new_code_cell('print("the Flink job cell")', metadata=TARGET_METADATA),
    ]
    server.write_notebook(NOTEBOOK, notebook)
    return notebook.cells[0].id, notebook.cells[1].id


def send(lab, target_id: str, *flinks: dict[str, Any], retype: bool = False,
         version: int = 2) -> None:
    """Run the sender cell (typing its code anew if ``retype``) to send ``flinks`` in order,
    one message each."""
    updates = [{"cells": {target_id: flink}} if version == 2 else
               {"cell_id": target_id, "flink": flink} for flink in flinks]
    send_messages(lab, updates, retype=retype)


def send_messages(lab, updates: list[dict[str, Any]], retype: bool = False) -> None:
    (lab.server.root_dir / UPDATES).write_text(json.dumps(updates))
    outputs = lab.run_code(0, SENDER) if retype else lab.run_cell(0)
    assert outputs[0]["text"] == f"sending {len(updates)} update(s)\n"


def flink_metadata(cell_id: str, **paths: Any) -> dict[str, Any]:
    return {
        "latest_checkpoint_path": None,
        "savepoint_path": None,
        "job_id": "a3f1c0de5eed00000000000000000001",
        "job_name": "word_count",
        "cell_id": cell_id,
        "updated": "2026-11-22T10:00:00+00:00",
        **paths,
    }


def without_trusted(metadata: dict[str, Any]) -> dict[str, Any]:
    """JupyterLab itself records ``trusted`` in the metadata of every cell it saves."""
    return {key: value for key, value in metadata.items() if key != "trusted"}


def target_has(flink: dict[str, Any]):
    return lambda saved: saved["cells"][1]["metadata"].get("flink") == flink


def assert_only_flink_changed(saved: dict[str, Any], flink: dict[str, Any]) -> None:
    assert without_trusted(saved["cells"][1]["metadata"]) == {**TARGET_METADATA, "flink": flink}
    assert without_trusted(saved["cells"][0]["metadata"]) == {}


@pytest.mark.browser
def test_updates_land_in_cell_metadata(lab, jupyter_server, browser_console):
    sender_id, target_id = write_notebook(jupyter_server)

    # 1. A checkpoint path reaches the cell and the saved file.
    lab.open_notebook(NOTEBOOK)
    checkpoint = flink_metadata(target_id, latest_checkpoint_path="file:/tmp/chk/a3f1/chk-4")
    send(lab, target_id, checkpoint)
    saved = lab.wait_for_saved_notebook(NOTEBOOK, target_has(checkpoint), what="the checkpoint")
    assert_only_flink_changed(saved, checkpoint)
    assert [cell["id"] for cell in saved["cells"]] == [sender_id, target_id]
    lab.show_cell_metadata(1)
    lab.screenshot("1-checkpoint")

    # 2. After a reload the page listens again; a repeated update changes nothing; updates
    # of a kernel of protocol version 1 are still applied.
    lab.reload()
    lab.page.evaluate(
        f"""() => {{
            window.__jfFlinkChanges = 0;
            {lab.panel_js}.content.widgets[1].model.metadataChanged.connect((_, change) => {{
                if (change.key === 'flink') window.__jfFlinkChanges++;
            }});
        }}"""
    )
    savepoint = {**checkpoint, "savepoint_path": "file:/tmp/sp/savepoint-a3f1-0123456789ab"}
    send(lab, target_id, checkpoint, savepoint, version=1)
    saved = lab.wait_for_saved_notebook(NOTEBOOK, target_has(savepoint), what="the savepoint")
    assert_only_flink_changed(saved, savepoint)
    assert lab.page.evaluate("window.__jfFlinkChanges") == 1, "the repeated update was applied"
    lab.show_cell_metadata(1)
    lab.screenshot("2-savepoint-after-reload")

    # 3. After a kernel restart the same connection still listens; one message updates
    # several cells (a cell id the notebook does not have is skipped).
    lab.restart_kernel()
    restarted = {**savepoint, "latest_checkpoint_path": "file:/tmp/chk/a3f1/chk-9"}
    other = flink_metadata(sender_id, latest_checkpoint_path="file:/tmp/chk/b7e2/chk-1")
    send_messages(lab, [{"cells": {sender_id: other, "no-such-cell": other,
                                   target_id: restarted}}], retype=True)
    saved = lab.wait_for_saved_notebook(NOTEBOOK, target_has(restarted), what="the restart")
    assert without_trusted(saved["cells"][1]["metadata"]) == {**TARGET_METADATA,
                                                              "flink": restarted}
    assert without_trusted(saved["cells"][0]["metadata"]) == {"flink": other}
    assert saved["cells"][0]["source"] == SENDER
    assert without_trusted(lab.cell_metadata(1)) == {**TARGET_METADATA, "flink": restarted}
    lab.show_cell_metadata(1)
    lab.screenshot("3-after-restart")

    complaints = [
        line
        for line in browser_console
        if line.startswith(("error", "warning", "pageerror"))
        and ("comm" in line.lower() or "jupyter-flink" in line)
    ]
    assert not complaints, complaints


@pytest.mark.browser
def test_updates_reach_a_notebook_whose_kernel_another_connection_handles(lab, jupyter_server):
    """Per page, only the first connection to a kernel handles comms (e.g. a console's)."""
    _, target_id = write_notebook(jupyter_server)
    session = jupyter_server.api(
        "POST",
        "sessions",
        json={"path": NOTEBOOK, "type": "notebook", "name": "", "kernel": {"name": "python3"}},
    ).json()
    lab.open_lab()
    lab.page.evaluate(
        """model => {
            window.__jfOther = window.jupyterapp.serviceManager.kernels.connectTo({model});
        }""",
        session["kernel"],
    )
    lab.open_notebook(NOTEBOOK, new_page=False)
    assert lab.page.evaluate(
        f"""() => window.__jfOther.handleComms &&
            !{lab.panel_js}.sessionContext.session.kernel.handleComms"""
    )

    savepoint = flink_metadata(target_id, savepoint_path="file:/tmp/sp/savepoint-a3f1-42")
    send(lab, target_id, savepoint)
    saved = lab.wait_for_saved_notebook(NOTEBOOK, target_has(savepoint), what="the savepoint")
    assert_only_flink_changed(saved, savepoint)
    lab.show_cell_metadata(1)
    lab.screenshot("savepoint")
