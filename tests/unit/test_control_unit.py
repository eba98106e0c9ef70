"""Savepoints of one job one at a time: a stop outranks automatic savepoints.

A scripted REST client stands in for Flink (whose stop-with-savepoint never completed while
automatic savepoints were triggered during it; the integration test in test_state.py walks
that path on real Flink).
"""

from __future__ import annotations

import threading
from typing import Any

from jupyter_flink.jobs.control import JobControl
from jupyter_flink.jobs.registry import JobRegistry, Owner, TrackedJob
from tests.support.waiting import wait_until

JOB = "a" * 32


class ScriptedRest:
    """Savepoints complete when the test says so; every call is listed."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.release = {"savepoint": threading.Event(), "stop": threading.Event()}

    def trigger_savepoint(self, job_id: str, target_dir: str) -> str:
        self.calls.append("savepoint")
        return "savepoint"

    def trigger_stop_with_savepoint(self, job_id: str, target_dir: str) -> str:
        self.calls.append("stop")
        return "stop"

    def wait_for_savepoint(self, job_id: str, request: str, timeout: float) -> str:
        assert self.release[request].wait(10), f"the {request} was never released"
        self.calls.append(f"{request} done")
        return f"file:/sp/{request}-{len(self.calls)}"

    def wait_for_job_state(self, job_id: str, states: Any, timeout: float) -> str:
        return "FINISHED"


class FakeTracker:
    def __init__(self, rest: ScriptedRest):
        self.rest = rest
        self.registry = JobRegistry()
        self.recorded: list[Any] = []
        self.poller = type("Poller", (), {"poll_now": lambda self, job_id: None})()

    def record(self, records: Any, *, history: Any = None) -> None:
        self.recorded.append(history)

    def apply(self, job_id: str, **changes: Any) -> TrackedJob | None:
        return self.registry.update(job_id, **changes)


def control() -> tuple[JobControl, ScriptedRest]:
    rest = ScriptedRest()
    tracker = FakeTracker(rest)
    tracker.registry.add(TrackedJob(job_id=JOB, name="auto", owner=Owner(None, "c", "auto"),
                                    state="RUNNING", savepoint_dir="file:/sp"))
    return JobControl(tracker), rest  # type: ignore[arg-type]


def in_thread(work: Any) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(work()), daemon=True)
    thread.start()
    return thread, result


def test_automatic_savepoints_give_way_to_a_stop() -> None:
    jobs, rest = control()
    thread, stopped = in_thread(lambda: jobs.cancel(JOB))
    wait_until(lambda: rest.calls == ["stop"], timeout=5, what="the stop to be triggered")
    assert jobs.automatic_savepoint(JOB, "file:/sp") is None  # skipped, nothing triggered
    rest.release["stop"].set()
    thread.join(10)
    assert rest.calls == ["stop", "stop done"]
    assert stopped[0].savepoint_path is not None and "stopped with savepoint" in \
        stopped[0].message


def test_a_stop_waits_for_the_savepoint_under_way() -> None:
    jobs, rest = control()
    auto, taken = in_thread(lambda: jobs.automatic_savepoint(JOB, "file:/sp"))
    wait_until(lambda: rest.calls == ["savepoint"], timeout=5, what="an automatic savepoint")
    stop, _ = in_thread(lambda: jobs.stop(JOB, "file:/sp"))
    assert jobs.automatic_savepoint(JOB, "file:/sp") is None  # one under way, one stopping
    assert rest.calls == ["savepoint"], "the stop was triggered during the savepoint"
    rest.release["savepoint"].set()
    rest.release["stop"].set()
    auto.join(10)
    stop.join(10)
    assert rest.calls == ["savepoint", "savepoint done", "stop", "stop done"]
    assert taken[0] is not None
