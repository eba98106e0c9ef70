"""JobView's throttling of status updates (what each refresh shows is covered by the kernel
tests; these pin down how often it is sent)."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import pytest

from jupyter_flink.display.job_status import JobView
from jupyter_flink.jobs.registry import Owner, TrackedJob
from tests.support.waiting import wait_until

INTERVAL_S = 0.1


class RecordingHandle:
    """Stands in for IPython's DisplayHandle: notes when each update was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, str]] = []
        self.lock = threading.Lock()

    def update(self, bundle: dict[str, str], raw: bool = False) -> None:
        with self.lock:
            self.sent.append((time.monotonic(), bundle["text/plain"]))


@pytest.fixture
def job() -> dict[str, TrackedJob]:
    return {"now": TrackedJob(job_id="a" * 32, name="counting", owner=Owner(None, "c", "n"),
                              state="RUNNING")}


def make_view(job: dict[str, TrackedJob], monkeypatch: pytest.MonkeyPatch
              ) -> tuple[JobView, RecordingHandle]:
    view = JobView(lambda: job["now"], min_update_interval_s=INTERVAL_S)
    handle = RecordingHandle()
    view._handle = handle  # as show() leaves it, without a kernel to display in
    return view, handle


def checkpoint(job: dict[str, TrackedJob]) -> None:
    job["now"] = dataclasses.replace(
        job["now"], checkpoints_completed=job["now"].checkpoints_completed + 1)


def test_counter_updates_are_throttled_and_the_last_one_lands(
        job: dict[str, TrackedJob], monkeypatch: pytest.MonkeyPatch) -> None:
    view, handle = make_view(job, monkeypatch)
    for _ in range(20):  # a burst: at most one update now, the rest coalesced
        checkpoint(job)
        view.update()
    wait_until(lambda: any("20 completed" in text for _, text in handle.sent), timeout=5,
               what="the last count to be shown")
    assert len(handle.sent) <= 2


def test_a_forced_update_does_not_start_a_second_train_of_updates(
        job: dict[str, TrackedJob], monkeypatch: pytest.MonkeyPatch) -> None:
    view, handle = make_view(job, monkeypatch)
    view.update(force=True)
    checkpoint(job)
    view.update()  # throttled: a delayed update is now pending
    time.sleep(INTERVAL_S / 2)
    checkpoint(job)
    view.update(force=True)  # e.g. the state changed: shown at once
    forced = len(handle.sent)
    deadline = time.monotonic() + 12 * INTERVAL_S
    while time.monotonic() < deadline:  # a checkpoint every 10 ms, as polls would report
        checkpoint(job)
        view.update()
        time.sleep(0.01)
    times = [at for at, _ in handle.sent[forced:]]
    assert len(times) >= 5, "throttled updates stopped"
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    assert min(gaps) >= INTERVAL_S * 0.9, f"updates closer than the interval: {gaps}"


def test_an_update_that_changes_nothing_is_not_sent(
        job: dict[str, TrackedJob], monkeypatch: pytest.MonkeyPatch) -> None:
    view, handle = make_view(job, monkeypatch)
    view.update(force=True)
    sent: Any = len(handle.sent)
    view._last_sent -= INTERVAL_S  # as if the interval had passed
    view.update()
    assert len(handle.sent) == sent
