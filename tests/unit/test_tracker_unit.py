"""JobTracker's recording of a poll round, without a cluster (the integration tests record
real checkpoints; this pins down that a round is written and sent once per notebook)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jupyter_flink.jobs.poller import Observation
from jupyter_flink.jobs.registry import Owner, TrackedJob
from jupyter_flink.jobs.tracker import JobTracker
from jupyter_flink.recording.journal import Journal, journal_path_for
from jupyter_flink.rest import CheckpointInfo


def checkpoint(job_id: str, number: int) -> CheckpointInfo:
    return CheckpointInfo(id=number, status="COMPLETED", is_savepoint=False,
                          external_path=f"file:/chk/{job_id}/chk-{number}", addressable=True,
                          trigger_timestamp=1_000, latest_ack_timestamp=1_100,
                          checkpoint_type="CHECKPOINT", discarded=False)


def running(number: int | None) -> Any:
    return lambda job_id: Observation(
        "RUNNING", 1, None, completed=number or 0,
        latest=checkpoint(job_id, number) if number else None)


def test_a_round_is_written_and_sent_once_per_notebook(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[str | None, dict[str, Any]]] = []
    writes: list[Path] = []
    write = Journal._write

    def counting_write(journal: Journal, data: Any) -> None:
        writes.append(journal.path)
        write(journal, data)

    monkeypatch.setattr(Journal, "_write", counting_write)
    tracker = JobTracker(lambda: "http://127.0.0.1:9", journal_dir=None,
                         send_updates=lambda path, cells: sent.append((path, dict(cells))))
    one, other = str(tmp_path / "one.ipynb"), str(tmp_path / "other.ipynb")
    owners = {"j1": Owner(one, "c1", "a"), "j2": Owner(one, "c2", "b"),
              "j3": Owner(other, "c3", "c"), "j4": Owner(one, "c4", "d")}
    for job_id, owner in owners.items():
        tracker.registry.add(TrackedJob(job_id=job_id, name=owner.job_name, owner=owner,
                                        state="RUNNING"))
    # j4 has no checkpoint yet: it is updated, not recorded
    tracker._on_round([(job_id, running(None if job_id == "j4" else 7)(job_id))
                       for job_id in owners])

    assert sorted(writes) == sorted([journal_path_for(one), journal_path_for(other)])
    assert {path: sorted(cells) for path, cells in sent} == {one: ["c1", "c2"], other: ["c3"]}
    recorded = json.loads(journal_path_for(one).read_text())["cells"]
    assert recorded["c2"]["latest_checkpoint_path"] == "file:/chk/j2/chk-7"
    assert recorded["c2"]["job_id"] == "j2" and "c4" not in recorded
    assert dict(sent)[one]["c1"] == {**recorded["c1"], "savepoint_path": None}
    for job_id in owners:
        job = tracker.registry.get(job_id)
        assert job is not None and job.checkpoints_completed == (0 if job_id == "j4" else 7)

    # the same checkpoints again: nothing new to record
    writes.clear()
    tracker._on_round([(job_id, running(7)(job_id)) for job_id in ("j1", "j2", "j3")])
    assert writes == [] and len(sent) == 2
