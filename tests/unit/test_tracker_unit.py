"""JobTracker's recording of a poll round, without a cluster (the integration tests record
real checkpoints; this pins down that a round is written and sent once per notebook)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from jupyter_flink.errors import RestError
from jupyter_flink.jobs.clients import Endpoint, RestClients
from jupyter_flink.jobs.observations import changes_from
from jupyter_flink.jobs.poller import Observation
from jupyter_flink.jobs.registry import Owner, TrackedJob
from jupyter_flink.jobs.tracker import JobTracker
from jupyter_flink.recording.journal import Journal, journal_path_for
from jupyter_flink.recording.recorder import Recorder
from jupyter_flink.rest import CheckpointInfo, RestoreInfo


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
    recorder = Recorder(send_updates=lambda path, cells: sent.append((path, dict(cells))))
    tracker = JobTracker(RestClients(lambda: Endpoint("http://127.0.0.1:9")), recorder)
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


def make_tracker(recorder: Recorder | None = None) -> JobTracker:
    # Port 9 (discard) is closed: every REST call fails at once.
    return JobTracker(RestClients(lambda: Endpoint("http://127.0.0.1:9")),
                      recorder or Recorder(send_updates=lambda path, cells: None))


def test_a_failed_journal_write_keeps_the_job_watched_and_the_round_applied(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, Any]] = []
    problems: list[str] = []

    def refuse(self: Journal, changes: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Journal, "update_many", refuse)
    tracker = make_tracker(Recorder(send_updates=lambda path, cells: sent.append(dict(cells)),
                                    on_problem=lambda path, text: problems.append(text)))
    try:
        owner = Owner(str(tmp_path / "n.ipynb"), "c1", "job")
        tracker.track("a" * 32, "job", owner)
        assert tracker.poller.is_watching("a" * 32)
        tracker._on_round([("a" * 32, running(3)("a" * 32))])
        job = tracker.registry.get("a" * 32)
        assert job is not None and job.checkpoints_completed == 3 and job.state == "RUNNING"
        assert job.latest_checkpoint_path == "file:/chk/" + "a" * 32 + "/chk-3"
        assert sent[-1]["c1"]["latest_checkpoint_path"] == job.latest_checkpoint_path
        assert problems and "No space left on device" in problems[0]
        assert job.recording_problem is not None
        assert "No space left on device" in job.recording_problem
    finally:
        tracker.close()


def test_an_ended_job_does_not_come_back_to_life() -> None:
    tracker = make_tracker()
    try:
        owner = Owner(None, "c1", "job")
        tracker.registry.add(TrackedJob(job_id="b" * 32, name="job", owner=owner,
                                        state="FINISHED"))
        assert tracker.apply("b" * 32, state="RUNNING", notice="late") is not None
        job = tracker.registry.get("b" * 32)
        assert job is not None and job.state == "FINISHED" and job.notice == "late"
        # the cluster does not answer: waiting applies no made-up state
        assert tracker.wait_until_running("b" * 32, timeout=0.2).state == "FINISHED"
    finally:
        tracker.close()


def test_a_restart_note_is_corrected_when_flink_restores_after_its_delay() -> None:
    job = TrackedJob(job_id="c" * 32, name="job", owner=Owner(None, "c1", "job"),
                     state="RESTARTING", restarts=1, restored_count=0,
                     notice="Restarted by Flink (1 so far) after: TaskManager lost; "
                            "no checkpoint to restore from.")
    restored = RestoreInfo(id=9, external_path="file:/chk/x/chk-9", addressable=True,
                           is_savepoint=False, restore_timestamp=5)
    obs = Observation("RUNNING", 1, None, completed=9, restored=1, restored_from=restored)
    changes = changes_from(job, obs)
    assert changes is not None
    assert changes["notice"] == ("Restarted by Flink (1 so far) after: TaskManager lost; "
                                 "restored from file:/chk/x/chk-9.")


class Told:
    """A listener that keeps what it was told."""

    def __init__(self) -> None:
        self.changed: list[tuple[str, int, bool]] = []  # job id, completed, urgent

    def job_tracked(self, job: TrackedJob) -> None:
        pass

    def job_changed(self, job: TrackedJob, *, urgent: bool) -> None:
        self.changed.append((job.job_id, job.checkpoints_completed, urgent))

    def job_ended(self, job: TrackedJob) -> None:
        pass


def quiet_tracker(notify_every_s: float, idle_notify_every_s: float = 60.0
                  ) -> tuple[JobTracker, Told]:
    tracker = JobTracker(RestClients(lambda: Endpoint("http://127.0.0.1:9")),
                         Recorder(send_updates=lambda path, cells: None),
                         notify_every_s=notify_every_s,
                         idle_notify_every_s=idle_notify_every_s)
    told = Told()
    tracker.subscribe(told)
    return tracker, told


def add_running(tracker: JobTracker, job_id: str) -> None:
    tracker.registry.add(TrackedJob(job_id=job_id, name=job_id[:4], state="RUNNING",
                                    owner=Owner(None, None, job_id[:4])))


def test_a_round_that_changes_nothing_tells_the_listeners_nothing() -> None:
    tracker, told = quiet_tracker(notify_every_s=0.0)
    try:
        add_running(tracker, "d" * 32)
        for _ in range(20):  # a job between two checkpoints: the same view every round
            tracker._on_round([("d" * 32, running(5)("d" * 32))])
        assert len(told.changed) == 1, told.changed  # the first round changed the counters
    finally:
        tracker.close()


def test_counter_changes_are_held_back_and_told_on_a_later_round() -> None:
    tracker, told = quiet_tracker(notify_every_s=0.3)
    try:
        add_running(tracker, "e" * 32)
        for number in range(1, 21):  # a new checkpoint every round, rounds every 20 ms
            tracker._on_round([("e" * 32, running(number)("e" * 32))])
            time.sleep(0.02)
        assert 1 <= len(told.changed) <= 3, told.changed
        assert told.changed[-1][1] < 20  # the last change was held back...
        time.sleep(0.6)
        tracker._on_round([("e" * 32, running(20)("e" * 32))])  # ...and told now
        assert told.changed[-1] == ("e" * 32, 20, False)
        # a change of state is told at once, whatever the interval
        tracker._on_round([("e" * 32, Observation("RESTARTING", 1, None, completed=20,
                                                  latest=checkpoint("e" * 32, 20)))])
        assert told.changed[-1] == ("e" * 32, 20, True)
    finally:
        tracker.close()


def test_status_outputs_of_many_jobs_start_no_threads() -> None:
    """Fifty jobs whose counters change every round: their status outputs are refreshed
    through the tracker's rounds, never by a timer thread per output (display/job_status.py
    starts one when told within its own interval)."""
    from jupyter_flink.display.job_status import JobDisplays, JobView

    class Handle:
        def __init__(self) -> None:
            self.updates = 0

        def update(self, bundle: Any, raw: bool = False) -> None:
            self.updates += 1

    tracker, _ = quiet_tracker(notify_every_s=0.2, idle_notify_every_s=30.0)
    displays = JobDisplays(tracker.registry.get, min_update_interval_s=0.2,
                           uptime_only_every_s=30.0)
    tracker.subscribe(displays)
    jobs = [f"{i:032x}" for i in range(50)]
    handles = {}
    try:
        for job_id in jobs:
            add_running(tracker, job_id)
            view = JobView(lambda j=job_id: tracker.registry.get(j),
                           min_update_interval_s=0.2, uptime_only_every_s=30.0)
            view._handle = handles[job_id] = Handle()
            displays._views[job_id] = view
        threads = threading.active_count()
        most = threads
        for number in range(1, 41):
            tracker._on_round([(j, running(number)(j)) for j in jobs])
            most = max(most, threading.active_count())
            time.sleep(0.02)
        assert most == threads, f"{most - threads} threads started for {len(jobs)} outputs"
        assert all(h.updates >= 1 for h in handles.values())
    finally:
        tracker.close()


def test_a_replaced_job_no_longer_speaks_for_its_cell(tmp_path: Path) -> None:
    """The cell's previous job was cancelled and a new one submitted; a last look at the old
    job (Flink's REST cache shows its final checkpoint seconds late) must not name it the
    cell's job again: a kernel killed then would not find the new job, leave it running and
    restore a second copy (the remote kill -9 walk doubled ids that way)."""
    old, new = "a" * 32, "b" * 32
    tracker = make_tracker()
    try:
        owner = Owner(str(tmp_path / "n.ipynb"), "c1", "job")
        tracker.track(old, "job", owner)
        tracker._on_round([(old, running(17)(old))])
        tracker.apply(old, state="CANCELED")  # _stop_previous: cancelled, then ended
        tracker.track(new, "job", owner, restored_from=f"file:/chk/{old}/chk-17")
        late = Observation("CANCELED", 1, None, completed=19, latest=checkpoint(old, 19))
        tracker._on_round([(old, late)])

        entry = json.loads(journal_path_for(owner.notebook_path).read_text())["cells"]["c1"]
        assert entry["job_id"] == new
        assert entry["latest_checkpoint_path"] == f"file:/chk/{old}/chk-17"
        old_job = tracker.registry.get(old)
        assert old_job is not None and old_job.latest_checkpoint_path.endswith("chk-19")
        # its news still reaches the cell's history
        assert any(e["path"].endswith(f"{old}/chk-19") for e in entry.get("history", [])), entry
        tracker._on_round([(new, running(20)(new))])
        entry = json.loads(journal_path_for(owner.notebook_path).read_text())["cells"]["c1"]
        assert entry["job_id"] == new and entry["latest_checkpoint_path"].endswith(f"{new}/chk-20")
    finally:
        tracker.close()


def test_a_new_kernel_finds_the_job_its_predecessor_died_submitting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The journal names job A (cancelled) and, written before it was submitted, job B,
    which still runs on the cluster: B is tracked again as the cell's job."""
    a, b, gone = "a" * 32, "b" * 32, "c" * 32
    states = {a: "CANCELED", b: "RUNNING"}

    class Cluster:
        def job_status(self, job_id: str) -> str:
            if job_id not in states:
                raise RestError("no such job", status=404)
            return states[job_id]

    monkeypatch.setattr(JobTracker, "rest", property(lambda self: Cluster()))
    notebook = str(tmp_path / "n.ipynb")
    Journal.for_notebook(notebook).record("c1", {
        "cell_id": "c1", "job_id": a, "job_name": "job", "submitted_job_ids": [gone, b, a]})
    tracker = make_tracker()
    try:
        [job] = tracker.reattach(notebook)
        assert job.job_id == b and "while submitting" in (job.notice or "")
        current = tracker.registry.for_owner(Owner(notebook, "c1", "job"))
        assert current is not None and current.job_id == b
        assert tracker.reattach(notebook) == []  # once
    finally:
        tracker.close()
