"""A cell's record: its restore-point history, and how records of one cell merge."""

from __future__ import annotations

from jupyter_flink.recording.record import (
    add_history,
    history_entry,
    merge_records,
    submitted_job_ids,
    with_submitted,
)


def entry(path: str, time: str, origin: str = "manual") -> dict[str, str]:
    return history_entry(path, "savepoint", origin, "j1", time=time)


def test_history_is_newest_first_bounded_and_one_entry_per_path() -> None:
    history: list = []
    for minute in range(12):
        history = add_history(history, entry(f"file:/sp/{minute}",
                                             f"2026-11-29T10:{minute:02d}:00+00:00"), limit=10)
    assert [e["path"] for e in history] == [f"file:/sp/{m}" for m in range(11, 1, -1)]
    again = add_history(history, entry("file:/sp/5", "2026-11-29T11:00:00+00:00", "stop"))
    assert again[0]["path"] == "file:/sp/5" and again[0]["origin"] == "stop"
    assert [e["path"] for e in again].count("file:/sp/5") == 1


def test_history_entries_never_carry_credentials() -> None:
    point = history_entry("s3://KEY:SECRET@bucket/sp/savepoint-1", "savepoint", "stop", "j")
    assert point["path"] == "s3://bucket/sp/savepoint-1"


def test_a_fresh_record_keeps_the_history_of_the_older_one() -> None:
    old = {"cell_id": "c", "savepoint_path": "file:/sp/1", "updated": "2026-11-29T10:00:00Z",
           "history": [entry("file:/sp/1", "2026-11-29T10:00:00+00:00")]}
    fresh = {"cell_id": "c", "job_id": "j2", "savepoint_path": None,
             "updated": "2026-11-29T11:00:00Z",
             "history": [entry("file:/sp/2", "2026-11-29T11:00:00+00:00")]}
    merged = merge_records(old, fresh)
    assert merged["savepoint_path"] == "file:/sp/1"  # None never erases
    assert [e["path"] for e in merged["history"]] == ["file:/sp/2", "file:/sp/1"]
    assert merged["job_id"] == "j2"


def test_a_record_of_another_cell_is_replaced_whole() -> None:
    copied = {"cell_id": "other", "history": [entry("file:/sp/x", "2026-11-29T10:00:00Z")]}
    mine = {"cell_id": "c", "job_id": "j", "updated": "2026-11-29T09:00:00Z"}
    assert "history" not in merge_records(copied, mine)


def test_the_last_three_submitted_jobs_are_kept_newest_first() -> None:
    record: dict = {"job_id": "j1"}
    for job in ("j2", "j3", "j4"):
        record["submitted_job_ids"] = with_submitted(record, job)
    assert record["submitted_job_ids"] == ["j4", "j3", "j2"]
    # the recorded job counts too; a hand-edited list keeps its texts only
    assert submitted_job_ids({"job_id": "j9", "submitted_job_ids": ["j8", 7, "j9"]}) == \
        ("j8", "j9")
    assert submitted_job_ids({"submitted_job_ids": "j8"}) == ()
