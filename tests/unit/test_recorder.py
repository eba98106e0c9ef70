"""The recorder: the journal first, then the comm message, and neither stops for a broken file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_flink.recording.journal import Journal, fallback_journal_path, journal_path_for
from jupyter_flink.recording.recorder import CellRecord, Recorder
from tests.support.files import read_only_file, read_only_folder

CHK = "file:/chk/job/chk-{}"


@pytest.fixture
def notebook(tmp_path: Path) -> str:
    folder = tmp_path / "work"
    folder.mkdir()
    return str(folder / "demo.ipynb")


@pytest.fixture
def sent() -> list[tuple[str | None, dict[str, Any]]]:
    return []


@pytest.fixture
def problems() -> list[str]:
    return []


@pytest.fixture
def recorder(sent: list[tuple[str | None, dict[str, Any]]], problems: list[str]) -> Recorder:
    return Recorder(send_updates=lambda path, cells: sent.append((path, dict(cells))),
                    on_problem=lambda notebook, text: problems.append(text))


@pytest.fixture
def read_only(notebook: str) -> Iterator[Path]:
    """The notebook's folder, read-only for the test (as on a shared, read-only share)."""
    with read_only_folder(Path(notebook).parent) as folder:
        yield folder


def checkpoint(notebook: str, cell: str, number: int) -> CellRecord:
    return CellRecord(notebook, cell, {"cell_id": cell, "job_id": "j1",
                                       "latest_checkpoint_path": CHK.format(number)})


def test_journal_then_comm_with_the_whole_record(recorder: Recorder, notebook: str,
                                                 sent: list[Any]) -> None:
    recorder.record([CellRecord(notebook, "c1", {"cell_id": "c1", "savepoint_path": "file:/sp"})])
    recorder.record([checkpoint(notebook, "c1", 3)])
    on_disk = Journal.for_notebook(notebook).get("c1")
    assert on_disk is not None and on_disk["savepoint_path"] == "file:/sp"
    assert sent[-1][1]["c1"]["savepoint_path"] == "file:/sp"  # the whole record, not the change
    assert sent[-1][1]["c1"]["latest_checkpoint_path"] == CHK.format(3)


def test_credentials_never_reach_journal_or_comm(recorder: Recorder, notebook: str,
                                                 sent: list[Any]) -> None:
    recorder.record([CellRecord(notebook, "c1", {
        "cell_id": "c1", "savepoint_path": "s3://KEY:SECRET@bucket/sp/savepoint-1"})])
    assert "SECRET" not in journal_path_for(notebook).read_text()
    assert "SECRET" not in json.dumps(sent)
    assert sent[-1][1]["c1"]["savepoint_path"] == "s3://bucket/sp/savepoint-1"


def test_a_truncated_journal_is_moved_aside_and_recording_goes_on(
        recorder: Recorder, notebook: str, sent: list[Any], problems: list[str]) -> None:
    journal = journal_path_for(notebook)
    journal.write_text('{"version": 1, "cells": {"c1": {"latest_chec')
    recorder.record([checkpoint(notebook, "c1", 4)])
    kept = list(journal.parent.glob(journal.name + ".broken-*"))
    assert len(kept) == 1 and kept[0].read_text().endswith("latest_chec")  # nothing lost
    assert json.loads(journal.read_text())["cells"]["c1"]["latest_checkpoint_path"] == \
        CHK.format(4)
    assert sent[-1][1]["c1"]["latest_checkpoint_path"] == CHK.format(4)
    assert len(problems) == 1 and "moved to" in problems[0] and str(kept[0]) in problems[0]


def test_a_journal_that_is_not_an_object_is_moved_aside(recorder: Recorder, notebook: str,
                                                        problems: list[str]) -> None:
    journal_path_for(notebook).write_text('["not", "a", "journal"]')
    assert recorder.recorded(notebook, "c1") is None
    assert problems and "was not a journal" in problems[0]


def test_a_read_only_folder_falls_back_to_the_data_dir(
        recorder: Recorder, notebook: str, read_only: Path, sent: list[Any],
        problems: list[str]) -> None:
    recorder.record([checkpoint(notebook, "c1", 1)])
    recorder.record([checkpoint(notebook, "c1", 2)])
    fallback = fallback_journal_path(notebook)
    assert json.loads(fallback.read_text())["cells"]["c1"]["latest_checkpoint_path"] == \
        CHK.format(2)
    assert [cells["c1"]["latest_checkpoint_path"] for _, cells in sent] == \
        [CHK.format(1), CHK.format(2)]
    assert len(problems) == 1, "said once, not at every checkpoint"
    assert "cannot be written" in problems[0] and str(fallback) in problems[0]
    # a new kernel (a new recorder) resumes from the fallback journal
    assert Recorder().recorded(notebook, "c1")["latest_checkpoint_path"] == CHK.format(2)


def test_nothing_writable_still_sends_the_comm(recorder: Recorder, notebook: str,
                                              monkeypatch: pytest.MonkeyPatch, sent: list[Any],
                                              problems: list[str]) -> None:
    def refuse(self: Journal, changes: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Journal, "update_many", refuse)
    recorder.record([CellRecord(notebook, "c1", {"cell_id": "c1", "savepoint_path": "file:/a"})])
    recorder.record([checkpoint(notebook, "c1", 5)])
    assert sent[-1][1]["c1"] | {"updated": None} == {
        "latest_checkpoint_path": CHK.format(5), "savepoint_path": "file:/a", "job_id": "j1",
        "job_name": None, "cell_id": "c1", "updated": None}
    assert recorder.recorded(notebook, "c1")["latest_checkpoint_path"] == CHK.format(5)
    assert problems and all("Permission denied" in text for text in problems)


def test_recorded_is_the_newest_by_time_not_by_text(recorder: Recorder, notebook: str) -> None:
    journal = Journal.for_notebook(notebook)
    # 09:30 UTC is newer than 10:00+01:00 (09:00 UTC), though it sorts first as text.
    journal.replace_entries({"c1": {"latest_checkpoint_path": CHK.format(1),
                                    "updated": "2026-11-29T10:00:00+01:00"}})
    fallback = Journal(fallback_journal_path(notebook))
    fallback.replace_entries({"c1": {"latest_checkpoint_path": CHK.format(2),
                                     "updated": "2026-11-29T09:30:00Z"}})
    assert recorder.recorded(notebook, "c1")["latest_checkpoint_path"] == CHK.format(2)


def test_a_read_only_journal_falls_back_too(recorder: Recorder, notebook: str,
                                            sent: list[Any], problems: list[str]) -> None:
    recorder.record([checkpoint(notebook, "c1", 1)])
    journal = journal_path_for(notebook)
    with read_only_file(journal):
        recorder.record([checkpoint(notebook, "c1", 2)])
        assert json.loads(journal.read_text())["cells"]["c1"]["latest_checkpoint_path"] == \
            CHK.format(1)  # untouched
    assert sent[-1][1]["c1"]["latest_checkpoint_path"] == CHK.format(2)
    fallback = json.loads(fallback_journal_path(notebook).read_text())
    assert fallback["cells"]["c1"]["latest_checkpoint_path"] == CHK.format(2)
    assert len(problems) == 1 and str(journal) in problems[0]
    assert Recorder().recorded(notebook, "c1")["latest_checkpoint_path"] == CHK.format(2)
