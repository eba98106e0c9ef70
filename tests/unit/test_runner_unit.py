"""The runner's pieces without a kernel: parsing, parameters, metadata merging, safe writes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from jupyter_flink.headless import cli
from jupyter_flink.headless.notebooks import ensure_cell_ids, read_notebook, write_notebook
from jupyter_flink.headless.parameters import (
    INJECTED_TAG,
    inject_parameters,
    parse_param,
)
from jupyter_flink.headless.runner import (
    CellAwareKernelClient,
    CellFailure,
    FlinkNotebookClient,
    request_metadata,
)
from jupyter_flink.headless.sync import apply_entries, apply_update, sync_notebook
from jupyter_flink.parsing.durations import parse_duration
from jupyter_flink.recording import comm
from jupyter_flink.recording.journal import Journal
from jupyter_flink.recording.record import merge_records as merge_flink_metadata

CHK = "file:/tmp/chk/job/chk-4"
SP = "file:/tmp/sp/savepoint-1"


def notebook(*cells: Any) -> nbformat.NotebookNode:
    nb = new_notebook(cells=list(cells))
    for index, cell in enumerate(nb.cells):
        cell["id"] = cell.get("id") or f"c{index}"
    return nb


def code(cell_id: str, source: str = "1", **metadata: Any) -> nbformat.NotebookNode:
    cell = new_code_cell(source, metadata=metadata)
    cell["id"] = cell_id
    return cell


def record(cell_id: str, updated: str = "2024-01-01T00:00:00.000+00:00",
           **fields: Any) -> dict[str, Any]:
    return {"cell_id": cell_id, "job_id": "j1", "job_name": "job", "updated": updated,
            **fields}


# ----------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("2min", 120), ("1m30s", 90), ("500ms", 0.5), ("1.5h", 5400), ("20", 20),
    (" 2 min ", 120), ("0s", 0), ("1h 2m 3s", 3723),
])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text, bare_unit="s").total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "soon", "5x", "-3s", "inf", "nan", "1m x", "s"])
def test_parse_duration_rejects_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match=r"e\.g\. 30s, 2min"):
        parse_duration(text, bare_unit="s")


@pytest.mark.parametrize(("text", "expected"), [
    ("rows=1000", ("rows", 1000)), ("ratio=0.5", ("ratio", 0.5)), ("on=true", ("on", True)),
    ("off=False", ("off", False)), ("nothing=None", ("nothing", None)),
    ("name=word count", ("name", "word count")), ("code='42'", ("code", "42")),
    ("path=file:///tmp/a=b", ("path", "file:///tmp/a=b")), ("x=nan", ("x", "nan")),
])
def test_parse_param_infers_types(text: str, expected: tuple[str, Any]) -> None:
    assert parse_param(text) == expected


@pytest.mark.parametrize("text", ["rows", "=1", "1x=2", "a-b=3"])
def test_parse_param_needs_an_identifier(text: str) -> None:
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_param(text)


# ----------------------------------------------------------------------------- parameters


def test_parameters_go_after_the_parameters_cell() -> None:
    nb = notebook(code("a"), code("params", "rows = 1", tags=["parameters"]), code("b"))
    cell = inject_parameters(nb, {"rows": 5, "name": "x"})
    assert [c.id for c in nb.cells] == ["a", "params", "injected-parameters", "b"]
    assert cell is not None and cell.source == "# Parameters\nrows = 5\nname = 'x'\n"
    assert cell.metadata["tags"] == [INJECTED_TAG]
    nbformat.validate(nb)


def test_parameters_go_to_the_top_without_a_parameters_cell() -> None:
    nb = notebook(code("a"), code("b"))
    inject_parameters(nb, {"rows": 5})
    assert [c.id for c in nb.cells] == ["injected-parameters", "a", "b"]


def test_injecting_again_replaces_the_injected_cell() -> None:
    nb = notebook(code("params", tags=["parameters"]), code("b"))
    inject_parameters(nb, {"rows": 5})
    inject_parameters(nb, {"rows": 6})
    injected = [c for c in nb.cells if INJECTED_TAG in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "rows = 6" in injected[0].source
    assert [c.id for c in nb.cells] == ["params", "injected-parameters", "b"]


def test_no_parameters_leave_the_notebook_alone() -> None:
    nb = notebook(code("a"))
    assert inject_parameters(nb, {}) is None
    assert [c.id for c in nb.cells] == ["a"]


# ----------------------------------------------------------------------------- merging


def test_new_paths_replace_old_ones() -> None:
    old = record("c1", latest_checkpoint_path="file:/old/chk-1")
    new = record("c1", updated="2024-01-02T00:00:00.000+00:00", latest_checkpoint_path=CHK)
    assert merge_flink_metadata(old, new)["latest_checkpoint_path"] == CHK


def test_none_never_erases_a_recorded_path() -> None:
    old = record("c1", latest_checkpoint_path=CHK, savepoint_path=SP)
    new = record("c1", updated="2024-01-02T00:00:00.000+00:00", job_id="j2",
                 latest_checkpoint_path=None, savepoint_path=None)
    merged = merge_flink_metadata(old, new)
    assert merged["savepoint_path"] == SP and merged["latest_checkpoint_path"] == CHK
    assert merged["job_id"] == "j2" and merged["updated"].startswith("2024-01-02")


def test_an_older_record_does_not_overwrite_a_newer_one() -> None:
    newer = record("c1", updated="2024-01-02T00:00:00.000+00:00", savepoint_path=SP)
    older = record("c1", savepoint_path="file:/tmp/sp/savepoint-0", job_id="j0")
    merged = merge_flink_metadata(newer, older)
    assert merged["savepoint_path"] == SP and merged["job_id"] == "j1"


def test_metadata_of_another_cell_is_replaced_whole() -> None:
    copied = record("other", savepoint_path=SP, latest_checkpoint_path=CHK)
    mine = record("c1", updated="2024-01-02T00:00:00.000+00:00", latest_checkpoint_path=None)
    merged = merge_flink_metadata(copied, mine)
    assert merged["cell_id"] == "c1"
    assert merged["savepoint_path"] is None and merged["latest_checkpoint_path"] is None


def test_merged_metadata_has_the_contract_keys_first() -> None:
    merged = merge_flink_metadata(None, {"cell_id": "c1", "state": "RUNNING"})
    assert list(merged)[:6] == ["latest_checkpoint_path", "savepoint_path", "job_id",
                                "job_name", "cell_id", "updated"]
    assert merged["state"] == "RUNNING"


def test_apply_update_touches_no_other_metadata_key() -> None:
    cell = code("c1", tags=["keep"], custom={"nested": [1, 2]}, collapsed=True)
    before = json.loads(json.dumps(cell.metadata))
    changes = apply_update(cell, record("c1", latest_checkpoint_path=CHK))
    assert changes["latest_checkpoint_path"] == (None, CHK)
    assert {k: v for k, v in cell.metadata.items() if k != "flink"} == before
    assert apply_update(cell, record("c1", latest_checkpoint_path=CHK)) == {}


def test_apply_entries_by_cell_id() -> None:
    nb = notebook(code("c1"), code("c2"), new_markdown_cell("text"))
    changes = apply_entries(nb, {"c2": record("c2", savepoint_path=SP),
                                 "gone": record("gone", savepoint_path=SP),
                                 "job:lonely": {"savepoint_path": SP}})
    assert [(c.index, c.cell_id) for c in changes] == [(1, "c2")]
    assert nb.cells[1].metadata["flink"]["savepoint_path"] == SP
    assert "flink" not in nb.cells[0].metadata and "flink" not in nb.cells[2].metadata


def test_cell_ids_are_added_where_missing() -> None:
    nb = new_notebook(cells=[new_code_cell("1"), new_code_cell("2")])
    nb.nbformat_minor = 4
    for cell in nb.cells:
        del cell["id"]
    assert ensure_cell_ids(nb) == 2
    assert nb.nbformat_minor == 5 and len({c.id for c in nb.cells}) == 2
    nb.cells[1]["id"] = nb.cells[0]["id"]
    assert ensure_cell_ids(nb) == 1 and len({c.id for c in nb.cells}) == 2


# ----------------------------------------------------------------------------- writing


def test_write_is_atomic_and_valid(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "nb.ipynb"
    nb = notebook(code("c1", "print('é')"))
    write_notebook(nb, path)
    assert read_notebook(path).cells[0].source == "print('é')"
    nbformat.validate(nbformat.read(path, as_version=4))
    assert [p.name for p in path.parent.iterdir()] == ["nb.ipynb"]  # no temp files left


def test_an_invalid_notebook_never_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    write_notebook(notebook(code("c1")), path)
    before = path.read_bytes()
    broken = notebook(code("c1"))
    broken.cells[0]["outputs"] = [{"output_type": "no such type"}]
    with pytest.raises(nbformat.ValidationError):
        write_notebook(broken, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["nb.ipynb"]


def test_write_keeps_the_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    write_notebook(notebook(code("c1")), path)
    os.chmod(path, 0o640)
    write_notebook(notebook(code("c1", "2")), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


# ----------------------------------------------------------------------------- sync


def test_sync_copies_journal_entries(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    write_notebook(notebook(code("c1", custom=1), code("c2")), path)
    Journal.for_notebook(str(path)).record("c1", {"cell_id": "c1", "job_name": "job",
                                                  "latest_checkpoint_path": CHK})
    dry = sync_notebook(path, dry_run=True)
    assert [c.cell_id for c in dry.changes] == ["c1"] and not dry.written
    assert "flink" not in read_notebook(path).cells[0].metadata
    report = sync_notebook(path)
    assert report.written and report.entries == 1
    cell = read_notebook(path).cells[0]
    assert cell.metadata["flink"]["latest_checkpoint_path"] == CHK
    assert cell.metadata["custom"] == 1
    assert sync_notebook(path).changes == []  # a second sync has nothing to do


def test_sync_without_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    write_notebook(notebook(code("c1")), path)
    report = sync_notebook(path)
    assert not report.journal_found and not report.written


# ----------------------------------------------------------------------------- the client


def test_request_metadata_is_what_jupyterlab_sends() -> None:
    cell = code("c1", tags=["t"], flink={"savepoint_path": SP})
    meta = request_metadata(cell)
    assert meta["cellId"] == "c1" and meta["flink"] == {"savepoint_path": SP}
    assert meta["tags"] == ["t"] and meta["deletedCells"] == []
    meta["flink"]["savepoint_path"] = "changed"
    assert cell.metadata["flink"]["savepoint_path"] == SP  # a copy


class RecordingChannel:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, msg: dict[str, Any]) -> None:
        self.sent.append(msg)


def test_the_client_sends_metadata_once() -> None:
    client = CellAwareKernelClient()
    channel = RecordingChannel()
    client._shell_channel = channel  # the channel the client would create, as a test double
    client.next_request_metadata = {"cellId": "c1", "flink": {"savepoint_path": SP}}
    first = client.execute("1 + 1", stop_on_error=False)
    client.execute("2")
    assert channel.sent[0]["header"]["msg_id"] == first
    assert channel.sent[0]["metadata"]["cellId"] == "c1"
    assert channel.sent[0]["content"]["stop_on_error"] is False
    assert "cellId" not in channel.sent[1]["metadata"]


def comm_open(cells: dict[str, dict[str, Any]], path: str | None = None,
              version: int = comm.PROTOCOL_VERSION) -> dict[str, Any]:
    if version == 1:  # as a kernel of protocol version 1 sent it: one cell per message
        [(cell_id, flink)] = cells.items()
        data = {"version": 1, "notebook_path": path, "cell_id": cell_id, "flink": flink}
    else:
        data = {"version": version, "notebook_path": path, "cells": cells}
    return {"msg_type": "comm_open", "parent_header": {"msg_id": "an-old-cell"},
            "header": {"msg_type": "comm_open"},
            "content": {"comm_id": "x", "target_name": comm.TARGET_NAME, "data": data}}


def test_metadata_from_any_request_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    nb = notebook(code("c1", custom="kept"), code("c2"))
    client = FlinkNotebookClient(nb, notebook_path=str(path))
    client.handle_background_message(comm_open({"c1": record("c1", latest_checkpoint_path=CHK)},
                                               str(path)))
    assert nb.cells[0].metadata["flink"]["latest_checkpoint_path"] == CHK
    assert nb.cells[0].metadata["custom"] == "kept"
    client.handle_background_message(comm_open({"c2": record("c2")}, "/elsewhere/other.ipynb"))
    client.handle_background_message(comm_open({"nope": record("nope")}))
    assert "flink" not in nb.cells[1].metadata
    client.save()
    assert read_notebook(path).cells[0].metadata["flink"]["latest_checkpoint_path"] == CHK


def test_display_updates_from_any_request_are_applied() -> None:
    cell = code("c1")
    cell.outputs = [new_output("display_data", data={"text/plain": "RUNNING"})]
    nb = notebook(cell)
    client = FlinkNotebookClient(nb)
    client._display_id_map = {"d1": {0: [0]}}  # as nbclient recorded it for the cell
    client.handle_background_message({
        "msg_type": "update_display_data", "parent_header": {"msg_id": "an-old-cell"},
        "header": {"msg_type": "update_display_data"},
        "content": {"data": {"text/plain": "FINISHED"}, "metadata": {},
                    "transient": {"display_id": "d1"}}})
    assert nb.cells[0].outputs[0]["data"] == {"text/plain": "FINISHED"}


def test_failure_names_the_cell() -> None:
    failure = CellFailure(3, "abc", "UsageError", "Line 1: bad\nmore", "%%flink.ssql(x=1)")
    assert failure.describe() == ("cell 4 (id abc, `%%flink.ssql(x=1)`) failed: "
                                  "UsageError: Line 1: bad")


# ----------------------------------------------------------------------------- the CLI


def test_show_lists_recorded_cells(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nb.ipynb"
    cell = code("c1", flink=record("c1", job_name="word_count", latest_checkpoint_path=CHK,
                                   savepoint_path=SP))
    write_notebook(notebook(cell, code("c2")), path)
    assert cli.main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "1 cell(s)" in out and "word_count" in out and CHK in out and SP in out
    assert "(missing)" in out  # nothing on disk at those paths
    assert cli.main(["show", "--json", str(path)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown[0]["cell_id"] == "c1" and shown[0]["flink"]["savepoint_path"] == SP


def test_render_state_fits_the_width() -> None:
    cells = [(0, code("c1", flink=record("c1", job_name="j", latest_checkpoint_path=CHK)))]
    wide = cli.render_state(cells, width=300)
    assert wide.splitlines()[0].split() == ["cell", "id", "job", "latest", "checkpoint",
                                            "savepoint", "updated"]
    narrow = cli.render_state(cells, width=60)
    assert narrow.splitlines()[0].startswith("cell 1  id c1  job j")
    assert "latest checkpoint  " + CHK in narrow


def test_sync_command_reports_changes(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nb.ipynb"
    write_notebook(notebook(code("c1")), path)
    assert cli.main(["sync", str(path)]) == 0
    assert "nothing to sync" in capsys.readouterr().out
    Journal.for_notebook(str(path)).record("c1", {"cell_id": "c1", "savepoint_path": SP})
    assert cli.main(["sync", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Updated metadata.flink of 1 cell(s)" in out and f"savepoint_path: {SP}" in out


@pytest.mark.parametrize("args", [["run", "missing.ipynb"], ["show", "missing.ipynb"]])
def test_missing_notebook_is_a_one_line_error(args: list[str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(args) == cli.EXIT_USAGE
    assert capsys.readouterr().err.strip() == "jupyter-flink: missing.ipynb is not a notebook file."


def test_bad_duration_is_a_one_line_error(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nb.ipynb"
    write_notebook(notebook(code("c1")), path)
    assert cli.main(["run", str(path), "--run-for", "soon"]) == cli.EXIT_USAGE
    assert "is not a duration" in capsys.readouterr().err


def test_run_without_the_kernel_still_writes_the_output(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.ipynb"
    output = tmp_path / "out" / "run.ipynb"
    write_notebook(notebook(code("c1", custom=1)), source)
    Journal.for_notebook(str(source)).record("c1", {"cell_id": "c1", "savepoint_path": SP})
    status = cli.main(["run", str(source), "-o", str(output), "-k", "no-such-kernel", "-q",
                      "-p", "rows=3"])
    assert status == cli.EXIT_USAGE
    assert "there is no 'no-such-kernel' kernel" in capsys.readouterr().err
    written = read_notebook(output)
    assert [c.id for c in written.cells] == ["injected-parameters", "c1"]
    assert written.cells[1].metadata == {"custom": 1, "flink": written.cells[1].metadata["flink"]}
    assert written.cells[1].metadata["flink"]["savepoint_path"] == SP  # the input's journal
    assert "flink" not in read_notebook(source).cells[0].metadata  # the input is untouched


def test_one_message_updates_several_cells_and_version_1_still_applies() -> None:
    nb = notebook(code("c1"), code("c2"), code("c3"))
    client = FlinkNotebookClient(nb)
    client.handle_background_message(comm_open({
        "c1": record("c1", latest_checkpoint_path=CHK), "gone": record("gone"),
        "c3": record("c3", savepoint_path=SP)}))
    assert nb.cells[0].metadata["flink"]["latest_checkpoint_path"] == CHK
    assert nb.cells[2].metadata["flink"]["savepoint_path"] == SP
    assert "flink" not in nb.cells[1].metadata
    client.handle_background_message(comm_open({"c2": record("c2", savepoint_path=SP)},
                                               version=1))
    assert nb.cells[1].metadata["flink"]["savepoint_path"] == SP
    for unusable in ({"version": 3, "cells": {"c2": {"x": 1}}}, {"version": 2, "cells": [1]},
                     {"version": 1, "cell_id": "c2", "flink": "not a mapping"}):
        assert comm.updates_in(unusable) == {}
        assert not client.apply_metadata_update(unusable)
    assert nb.cells[1].metadata["flink"]["savepoint_path"] == SP
