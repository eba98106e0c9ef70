"""The automatic savepoint scheduler, with a fake savepoint taker."""

from __future__ import annotations

import threading

from jupyter_flink.jobs.autosave import AutoSavepoints
from tests.support.waiting import wait_until


def test_takes_savepoints_periodically_and_keeps_going_after_a_failure() -> None:
    taken: list[tuple[str, str]] = []
    failures: list[str] = []
    fail_once = threading.Event()

    def take(job_id: str, target: str) -> None:
        taken.append((job_id, target))
        if not fail_once.is_set():
            fail_once.set()
            raise RuntimeError("savepoint failed")

    scheduler = AutoSavepoints(take, lambda job_id, exc: failures.append(str(exc)))
    try:
        scheduler.add("job-a", 0.1, "file:///sp")
        wait_until(lambda: len(taken) >= 3, timeout=10, what="three savepoints")
        assert failures == ["savepoint failed"]
        assert set(taken) == {("job-a", "file:///sp")}
    finally:
        scheduler.close()


def test_nothing_is_due_before_the_interval() -> None:
    taken: list[str] = []
    scheduler = AutoSavepoints(lambda job_id, target: taken.append(job_id),
                               lambda job_id, exc: None)
    try:
        scheduler.add("job", 30, "file:///sp")
        assert taken == []
    finally:
        scheduler.close()
