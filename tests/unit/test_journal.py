"""The journal: merge-only records, atomic writes, several writers at once."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from jupyter_flink.recording.journal import Journal, journal_path_for


def test_beside_the_notebook(tmp_path: Path) -> None:
    assert journal_path_for(tmp_path / "a.ipynb") == tmp_path / ".a.ipynb.flink-journal.json"


def test_record_merges_and_stamps(tmp_path: Path) -> None:
    journal = Journal.for_notebook(str(tmp_path / "n.ipynb"))
    journal.record("cell", {"latest_checkpoint_path": "file:/a/chk-1", "job_id": "j1"})
    entry = journal.record("cell", {"job_id": "j2"})  # a new job keeps the old path
    assert entry["latest_checkpoint_path"] == "file:/a/chk-1" and entry["job_id"] == "j2"
    assert entry["updated"].endswith("+00:00")
    on_disk = json.loads(journal.path.read_text())
    assert on_disk["cells"]["cell"] == entry and on_disk["notebook"].endswith("n.ipynb")


def test_unreadable_journal_is_not_silently_replaced(tmp_path: Path) -> None:
    journal = Journal.for_notebook(str(tmp_path / "n.ipynb"))
    journal.path.write_text("{not json")
    with pytest.raises(OSError, match="Move it aside"):
        journal.record("cell", {"job_id": "x"})
    assert journal.path.read_text() == "{not json"


def _writer(path: str, worker: int, count: int) -> None:
    journal = Journal(path)
    for i in range(count):
        journal.record(f"cell-{worker}", {"latest_checkpoint_path": f"file:/w{worker}/chk-{i}"})


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / ".nb.ipynb.flink-journal.json")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(path, w, 40)) for w in range(3)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    entries = Journal(path).entries()
    assert {k: v["latest_checkpoint_path"] for k, v in entries.items()} == {
        f"cell-{w}": f"file:/w{w}/chk-39" for w in range(3)}
    assert not list(tmp_path.glob("*.tmp"))  # no temporary file left behind


def test_record_many_writes_several_entries_at_once(tmp_path: Path) -> None:
    journal = Journal.for_notebook(str(tmp_path / "n.ipynb"))
    journal.record("a", {"job_id": "j1", "savepoint_path": "file:/sp/1"})
    written = journal.record_many({
        "a": {"latest_checkpoint_path": "file:/a/chk-2"},
        "b": {"job_id": "j2", "latest_checkpoint_path": "file:/b/chk-1"}})
    on_disk = json.loads(journal.path.read_text())["cells"]
    assert on_disk == written
    assert written["a"] == {"job_id": "j1", "savepoint_path": "file:/sp/1",
                            "latest_checkpoint_path": "file:/a/chk-2",
                            "updated": written["a"]["updated"]}
    assert written["a"]["updated"] == written["b"]["updated"]
