"""State you can trust: resume paths that cross features (real Flink, real kernels).

Each test walks a whole user path: run, stop, edit, re-run; live SELECTs resumed in the same
kernel; "latest" after a stop with a savepoint; history across fresh runs; a query changed
under its state; a journal that cannot be written.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import flink
from tests.support.counting import COUNTING_TABLES, assert_exactly_once, committed_rows
from tests.support.files import read_only_folder
from tests.support.kernel import KernelDriver, running_kernel
from tests.support.waiting import wait_until

pytestmark = pytest.mark.flink

CONF = """%%flink.conf
execution.checkpointing.interval 500 ms
state.checkpoints.dir file://{root}/chk
state.savepoints.dir file://{root}/savepoints
"""

# A bounded sequence: a resumed query must end with exact counts (200 ids per key).
BOUNDED = """CREATE TABLE IF NOT EXISTS bounded (id BIGINT) WITH (
  'connector' = 'datagen', 'rows-per-second' = '100',
  'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '1000')"""


class Notebook:
    """A notebook path (its journal beside it) and where its jobs keep their data."""

    def __init__(self, root: Path, data: Path | None = None):
        self.root = data or root
        self.folder = root
        self.path = root / "state.ipynb"
        root.mkdir(parents=True, exist_ok=True)
        self.path.write_text("{}")
        self.journal_path = root / ".state.ipynb.flink-journal.json"

    def kernel(self) -> Any:
        return running_kernel(env={"JPY_SESSION_NAME": str(self.path)}, cwd=str(self.folder))

    def journal(self, cell_id: str) -> dict[str, Any]:
        if not self.journal_path.exists():
            return {}
        return json.loads(self.journal_path.read_text())["cells"].get(cell_id, {})


@pytest.fixture(scope="module")
def notebook(tmp_path_factory: pytest.TempPathFactory) -> Notebook:
    return Notebook(tmp_path_factory.mktemp("state"))


@pytest.fixture(scope="module")
def kernel(notebook: Notebook) -> Iterator[KernelDriver]:
    with notebook.kernel() as driver:
        driver.execute(CONF.format(root=notebook.root), cell_id="conf")
        driver.execute(f"%%flink.ssql\n{BOUNDED}", cell_id="ddl")
        yield driver


def restored_from(url: str, job_id: str) -> str | None:
    checkpoints = flink.get(url, f"/jobs/{job_id}/checkpoints")
    if checkpoints["counts"]["restored"] != 1:
        return None
    return str(checkpoints["latest"]["restored"]["external_path"])


def on_storage(path: str) -> bool:
    return (flink.local_path(path) / "_metadata").exists()


def frame(kernel: KernelDriver, name: str) -> dict[int, tuple[int, int]]:
    """The live table bound to ``name``: {k: (count, max id)}."""
    out = kernel.execute(f"print({name}.to_json(orient='values') if '{name}' in globals() "
                         "else '[]')").stdout
    return {int(k): (int(c), int(m)) for k, c, m in json.loads(out)}


# ---------------------------------------------------------------------------- live SELECT


def test_a_live_select_resumes_from_its_savepoint_in_the_same_kernel(
        kernel: KernelDriver, notebook: Notebook) -> None:
    cell = "live-select"
    savepoints = notebook.root / "select-savepoints"
    header = (f"type=update, jobName=live_q, savepointDir=file://{savepoints}, "
              "maxParallelism=10, resultName=live_q, refreshInterval=200")
    query = "SELECT MOD(id, 5) AS k, COUNT(*) AS c, MAX(id) AS m FROM bounded GROUP BY MOD(id, 5)"
    reply = kernel.execute(f"%%flink.ssql({header})\n{query}", cell_id=cell)
    url = flink.rest_url_from("\n".join(reply.data()))
    wait_until(lambda: sum(c for c, _ in frame(kernel, "live_q").values()) >= 100,
               timeout=60, what="the first rows")
    kernel.execute("%flink.cancel live_q")
    counted = sum(c for c, _ in frame(kernel, "live_q").values())
    first = notebook.journal(cell)["savepoint_path"]
    assert on_storage(first)
    # Other queries in between change the JVM's counters; the resume must not care.
    kernel.execute("%%flink.ssql(type=update)\nSELECT COUNT(*) FROM bounded WHERE id < 3",
                   cell_id="other-select")
    kernel.execute("%flink.cancel --all", allow_error=True)

    for attempt, parallelism in enumerate((1, 2)):
        reply = kernel.execute(f"%%flink.ssql({header}, resumeFromSavepoint=true, "
                               f"parallelism={parallelism})\n{query}", cell_id=cell)
        job = flink.job_by_name(url, "live_q")
        assert job is not None and job["state"] == "RUNNING", reply.stdout
        saved = notebook.journal(cell)["savepoint_path"]
        assert flink.local_path(restored_from(url, job["jid"]) or "") == \
            flink.local_path(saved if attempt else first)
        # The restored counts go on from where the stopped job was.
        wait_until(lambda floor=counted: sum(c for c, _ in frame(kernel, "live_q").values())
                   > floor,
                   timeout=30, what="rows of the resumed job, counting on")
        if attempt == 0:
            kernel.execute("%flink.cancel live_q")
            counted = sum(c for c, _ in frame(kernel, "live_q").values())
    flink.wait_for_state(url, flink.job_by_name(url, "live_q")["jid"], {"FINISHED"},
                         timeout=90)
    final = wait_until(lambda: (f := frame(kernel, "live_q")) and
                       sum(c for c, _ in f.values()) == 1000 and f, timeout=30,
                       what="the final table")
    assert final == {0: (200, 1000), 1: (200, 996), 2: (200, 997), 3: (200, 998),
                     4: (200, 999)}, "counts lost or doubled across two resumes"


# ---------------------------------------------------------------------------- latest


def start_counting(kernel: KernelDriver, notebook: Notebook, cell: str, header: str,
                   *, metadata: dict[str, Any] | None = None, allow_error: bool = False
                   ) -> tuple[Any, Path]:
    sink = f"sink_{cell.replace('-', '_')}"
    path = notebook.root / sink
    reply = kernel.execute(f"%%flink.ssql({header})\n"
                           + COUNTING_TABLES.format(sink=sink, path=path),
                           cell_id=cell, metadata=metadata, allow_error=allow_error)
    return reply, path


def test_stop_with_savepoint_then_resume_from_latest(kernel: KernelDriver,
                                                     notebook: Notebook) -> None:
    cell = "latest-cell"
    header = f"jobName=latest_job, savepointDir=file://{notebook.root}/latest-sp"
    reply, sink = start_counting(kernel, notebook, cell, header)
    url = flink.rest_url_from("\n".join(reply.data()))
    checkpoint = wait_until(lambda: notebook.journal(cell).get("latest_checkpoint_path"),
                            timeout=60, what="a recorded checkpoint")
    wait_until(lambda: len(committed_rows(sink)) > 50, timeout=60, what="output")
    kernel.execute("%flink.cancel latest_job")  # stops with a savepoint: Flink drops chk-N
    record = notebook.journal(cell)
    savepoint = record["savepoint_path"]
    wait_until(lambda: not on_storage(record["latest_checkpoint_path"]), timeout=10,
               what="Flink to delete the stopped job's checkpoints")
    before = committed_rows(sink)

    reply, _ = start_counting(kernel, notebook, cell, header + ", resumeFromLatestCheckpoint=true")
    assert "the savepoint its last job was stopped with" in reply.stdout
    assert savepoint in reply.stdout and checkpoint not in reply.stdout
    job = flink.job_by_name(url, "latest_job")
    assert flink.local_path(restored_from(url, job["jid"]) or "") == flink.local_path(savepoint)
    wait_until(lambda: len(committed_rows(sink)) > len(before) + 50, timeout=60,
               what="output after the resume")
    kernel.execute("%flink.cancel latest_job")
    assert_exactly_once(committed_rows(sink))

    # The history kept both savepoints; a fresh run drops nothing; a deleted one is marked.
    start_counting(kernel, notebook, cell, "jobName=latest_job")
    fresh = flink.job_by_name(url, "latest_job")["jid"]
    wait_until(lambda: fresh in (notebook.journal(cell).get("latest_checkpoint_path") or ""),
               timeout=60, what="a checkpoint of the fresh run")
    kernel.execute("%flink.cancel latest_job")  # no savepointDir: its last checkpoint stays
    history = notebook.journal(cell)["history"]
    assert [e["origin"] for e in history if e["kind"] == "savepoint"] == ["cancel", "cancel"]
    assert [e["path"] for e in history if e["kind"] == "savepoint"][1] == savepoint
    assert history[0]["kind"] == "checkpoint" and history[0]["origin"] == "cancel"
    shutil.rmtree(flink.local_path(savepoint))
    table = kernel.execute("h = %flink.history latest_job\n"
                           "print(h[['#', 'kind', 'origin', 'on storage', 'path']]"
                           ".to_json(orient='records'))").stdout
    rows = json.loads(table)
    gone = [r for r in rows if flink.local_path(r["path"]) == flink.local_path(savepoint)]
    assert gone and gone[0]["on storage"] is False
    kept = next(r for r in rows if r["kind"] == "savepoint" and r["on storage"])
    # resumeFrom=N resumes from entry N of that table
    reply, _ = start_counting(kernel, notebook, cell,
                              f"jobName=latest_job, resumeFrom={kept['#']}")
    job = flink.job_by_name(url, "latest_job")
    assert flink.local_path(restored_from(url, job["jid"]) or "") == \
        flink.local_path(kept["path"])
    kernel.execute("%flink.cancel latest_job")


def test_automatic_savepoints_keep_only_the_newest(kernel: KernelDriver,
                                                   notebook: Notebook) -> None:
    cell = "auto-cell"
    directory = notebook.root / "auto-sp"
    start_counting(kernel, notebook, cell, f"jobName=auto_job, savepointDir=file://"
                   f"{directory}, autoSavepointInterval=1s, autoSavepointRetain=2")
    manual = kernel.execute(f"%flink.savepoint auto_job --dir file://{notebook.root}/manual")
    assert "Savepoint of auto_job" in manual.stdout
    seen: set[str] = set()

    def taken() -> int:
        seen.update(p.name for p in directory.glob("savepoint-*"))
        return len(seen)
    wait_until(lambda: taken() >= 5, timeout=60, what="five automatic savepoints")
    # and one more, the stop's own: automatic savepoints give way to it (triggered during a
    # stop-with-savepoint, they kept Flink from completing it)
    stopped = kernel.execute("%flink.cancel auto_job")
    assert "was stopped with savepoint" in stopped.stdout, stopped.stdout
    left = {p.name for p in directory.iterdir() if (p / "_metadata").exists()}
    assert len(left) <= 3, left  # the two newest automatic ones, and the stop's
    assert len(seen - left) >= 2, "older automatic savepoints were not deleted"
    automatic = [e["path"] for e in notebook.journal(cell)["history"]
                 if e["origin"] == "automatic"]
    assert 1 <= len(automatic) <= 2 and all(on_storage(path) for path in automatic)
    assert any((p / "_metadata").exists() for p in (notebook.root / "manual").iterdir()), \
        "a manual savepoint is never deleted by retention"


# ---------------------------------------------------------------------------- changed query

GROUPED = """CREATE TABLE IF NOT EXISTS grouped_sink (k BIGINT, c BIGINT) WITH (
  'connector' = 'blackhole');
INSERT INTO grouped_sink SELECT MOD(id, 5), {aggregate} FROM bounded GROUP BY MOD(id, 5)"""
UNGROUPED = """CREATE TABLE IF NOT EXISTS grouped_sink (k BIGINT, c BIGINT) WITH (
  'connector' = 'blackhole');
INSERT INTO grouped_sink SELECT id, id FROM bounded"""


def test_a_changed_query_is_explained_and_can_be_allowed(kernel: KernelDriver,
                                                         notebook: Notebook) -> None:
    cell = "changed-cell"
    header = f"jobName=changed, savepointDir=file://{notebook.root}/changed-sp"
    reply = kernel.execute(f"%%flink.ssql({header})\n"
                           + GROUPED.format(aggregate="COUNT(*)"), cell_id=cell)
    url = flink.rest_url_from("\n".join(reply.data()))
    wait_until(lambda: notebook.journal(cell).get("latest_checkpoint_path"), timeout=60,
               what="a checkpoint")
    kernel.execute("%flink.cancel changed")
    savepoint = notebook.journal(cell)["savepoint_path"]

    refused = kernel.execute(f"%%flink.ssql({header}, resumeFromSavepoint=true)\n" + UNGROUPED,
                             cell_id=cell, allow_error=True)
    message = refused.error["evalue"]
    assert "query changed in a way its saved state cannot follow" in message
    assert "GroupAggregate" in message and savepoint in message
    assert "allowNonRestoredState=true" in message and "%flink.history" in message
    assert "--allowNonRestoredState" not in message and "Fix the statement" not in message
    assert notebook.journal(cell)["savepoint_path"] == savepoint  # nothing overwritten

    kernel.execute(f"%%flink.ssql({header}, resumeFromSavepoint=true, "
                   "allowNonRestoredState=true)\n" + UNGROUPED, cell_id=cell)
    job = flink.job_by_name(url, "changed")
    assert flink.local_path(restored_from(url, job["jid"]) or "") == \
        flink.local_path(savepoint)
    kernel.execute("%flink.cancel changed")

    # The same from %%flink.conf: the cell header no longer overrides it with false.
    kernel.execute("%%flink.conf\nexecution.state-recovery.ignore-unclaimed-state true",
                   cell_id="conf-unclaimed")
    try:
        kernel.execute(f"%%flink.ssql({header}, execution.state-recovery.path={savepoint})\n"
                       + UNGROUPED, cell_id=cell)
        job = flink.job_by_name(url, "changed")
        assert restored_from(url, job["jid"]) is not None
        kernel.execute("%flink.cancel changed")
    finally:
        kernel.execute("%%flink.conf\n# nothing", cell_id="conf-unclaimed")


def test_a_state_type_change_is_reported_not_left_restarting(kernel: KernelDriver,
                                                             notebook: Notebook) -> None:
    cell = "typed-cell"
    header = f"jobName=typed, savepointDir=file://{notebook.root}/typed-sp"
    reply = kernel.execute(f"%%flink.ssql({header})\n" + GROUPED.format(aggregate="COUNT(*)"),
                           cell_id=cell)
    url = flink.rest_url_from("\n".join(reply.data()))
    wait_until(lambda: notebook.journal(cell).get("latest_checkpoint_path"), timeout=60,
               what="a checkpoint")
    kernel.execute("%flink.cancel typed")
    changed = GROUPED.replace("c BIGINT", "c DOUBLE").replace("grouped_sink", "typed_sink")
    refused = kernel.execute(
        f"%%flink.ssql({header}, resumeFromSavepoint=true)\n"
        + changed.format(aggregate="AVG(CAST(id AS DOUBLE))"), cell_id=cell, timeout=60,
        allow_error=True)
    message = refused.error["evalue"]
    assert "does not fit the changed query" in message and "restoring it failed" in message
    job = flink.job_by_name(url, "typed")
    assert flink.wait_for_state(url, job["jid"], {"CANCELED"}, timeout=30) == "CANCELED"


# ---------------------------------------------------------------------------- journal faults


def test_a_truncated_journal_is_moved_aside_and_recording_goes_on(
        tmp_path: Path) -> None:
    book = Notebook(tmp_path / "book", tmp_path / "data")
    book.journal_path.write_text('{"version": 1, "cells": {"x": {"latest_chec')
    with book.kernel() as kernel:
        kernel.execute(CONF.format(root=tmp_path), cell_id="conf")
        reply, _ = start_counting(kernel, book, "broken-journal", "jobName=broken_journal")
        assert "internal error" not in reply.stdout + reply.stderr
        update = kernel.wait_for(lambda: [u for u in kernel.metadata_updates("broken-journal")
                                          if u["flink"].get("latest_checkpoint_path")],
                                 timeout=60, what="a checkpoint in a metadata message")
        assert update
        kept = list(book.folder.glob(".state.ipynb.flink-journal.json.broken-*"))
        assert kept and kept[0].read_text().endswith("latest_chec")
        shown = reply.data() + [u["text/plain"] for u in
                                kernel.display_updates(reply.display_ids()[0])]
        assert any("was not a journal" in text and str(kept[0]) in text for text in shown)
        assert json.loads(book.journal_path.read_text())["cells"]["broken-journal"]
        kernel.execute("%flink.cancel broken_journal")


def test_a_read_only_notebook_folder_records_elsewhere(tmp_path: Path) -> None:
    book = Notebook(tmp_path / "book", tmp_path / "data")
    with book.kernel() as kernel, read_only_folder(book.folder):
        kernel.execute(CONF.format(root=book.root), cell_id="conf")
        reply, _ = start_counting(kernel, book, "read-only", "jobName=read_only")
        assert reply.status == "ok"
        kernel.wait_for(lambda: [u for u in kernel.metadata_updates("read-only")
                                 if u["flink"].get("latest_checkpoint_path")],
                        timeout=60, what="a checkpoint in a metadata message")
        display_id = reply.display_ids()[0]
        shown = kernel.wait_for(lambda: [text for text in reply.data() + [
            u["text/plain"] for u in kernel.display_updates(display_id)]
            if "cannot be written" in text], timeout=20, what="the status output to say so")
        assert "recording goes on in" in shown[-1]
        assert not book.journal_path.exists()
        kernel.execute("%flink.cancel read_only")


# ---------------------------------------------------------------------------- renames


def tell_notebook_path(kernel: KernelDriver, old: str, new: str) -> None:
    """What the labextension does: it opens a comm with the notebook's path when it
    connects, and sends the new path on it when the notebook is renamed."""
    comm_id = uuid.uuid4().hex
    for msg_type, content in (
            ("comm_open", {"comm_id": comm_id, "target_name": "jupyter_flink.notebook",
                           "data": {"path": old}}),
            ("comm_msg", {"comm_id": comm_id, "data": {"path": new}})):
        kernel.client.shell_channel.send(kernel.client.session.msg(msg_type, content))


def test_a_renamed_notebook_keeps_its_record(tmp_path: Path) -> None:
    server_root, data = tmp_path / "server", tmp_path / "data"
    folder = server_root / "work"
    folder.mkdir(parents=True)
    (folder / "old.ipynb").write_text("{}")
    old_journal = folder / ".old.ipynb.flink-journal.json"
    new_journal = folder / ".new.ipynb.flink-journal.json"
    book = Notebook(folder, data)
    header = f"jobName=renamed, savepointDir=file://{data}/renamed-sp"
    with running_kernel(env={"JPY_SESSION_NAME": "work/old.ipynb"}, cwd=str(folder)) as kernel:
        kernel.execute(CONF.format(root=data), cell_id="conf")
        start_counting(kernel, book, "renamed-cell", header)
        wait_until(lambda: old_journal.exists(), timeout=30, what="the journal")
        (folder / "old.ipynb").rename(folder / "new.ipynb")
        tell_notebook_path(kernel, "work/old.ipynb", "work/new.ipynb")
        wait_until(lambda: new_journal.exists() and not old_journal.exists(), timeout=10,
                   what="the journal to follow the notebook")
        kernel.execute("%flink.cancel renamed")  # the savepoint goes to the new journal
        record = json.loads(new_journal.read_text())["cells"]["renamed-cell"]
        assert record["savepoint_path"] and on_storage(record["savepoint_path"])
        assert json.loads(new_journal.read_text())["notebook"] == str(folder / "new.ipynb")
        assert kernel.metadata_updates("renamed-cell")[-1]["notebook_path"] == \
            str(folder / "new.ipynb")
    savepoint = record["savepoint_path"]

    # Renamed again while no kernel runs: the next kernel finds the record anyway.
    (folder / "new.ipynb").rename(folder / "third.ipynb")
    with running_kernel(env={"JPY_SESSION_NAME": "work/third.ipynb"},
                        cwd=str(folder)) as kernel:
        kernel.execute(CONF.format(root=data), cell_id="conf")
        reply, _ = start_counting(kernel, book, "renamed-cell",
                                  header + ", resumeFromSavepoint=true")
        url = flink.rest_url_from("\n".join(reply.data()))
        job = flink.job_by_name(url, "renamed")
        assert flink.local_path(restored_from(url, job["jid"]) or "") == \
            flink.local_path(savepoint)
        kernel.execute("%flink.cancel renamed")
    assert json.loads((folder / ".third.ipynb.flink-journal.json").read_text())[
        "cells"]["renamed-cell"]["history"]
