"""The health figures of a job, from scripted REST answers (the integration tests read them
from real jobs: rates, backpressure, watermark lag, failed checkpoints, slots)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from jupyter_flink.jobs import health as health_module
from jupyter_flink.jobs.health import HealthMonitor
from jupyter_flink.jobs.observations import changes_from, checkpoint_failure_reason
from jupyter_flink.jobs.poller import Observation
from jupyter_flink.jobs.registry import Owner, TrackedJob
from jupyter_flink.rest import CheckpointInfo, CheckpointStat, SlotCounts, TaskCounts
from tests.support.waiting import wait_until

JOB = "13db265d5da22e3140d67bc53961a45b"
SOURCE = "cbc357ccb763df2852fee8c4fc7d55f2"
SINK = "f6dc7f4d2283f4605b127b9364e21148"
DETAILS = {
    "jid": JOB,
    "vertices": [{"id": SOURCE, "name": "Source: src[1] -> Calc[2]", "parallelism": 1},
                 {"id": SINK, "name": "GroupAggregate[6] -> snk[7]: Writer",
                  "parallelism": 2}],
    "plan": {"nodes": [{"id": SINK, "inputs": [{"id": SOURCE}]}, {"id": SOURCE}]},
}
SOURCE_NAMES = ("Source__src[1].numRecordsOut", "numRecordsOut", "busyTimeMsPerSecond",
                "backPressuredTimeMsPerSecond")
SINK_NAMES = ("snk[7]__Writer.numRecordsIn", "numRecordsIn", "busyTimeMsPerSecond",
              "backPressuredTimeMsPerSecond", "currentInputWatermark")


class FakeRest:
    """The three endpoints the monitor calls, answering from ``values``."""

    def __init__(self) -> None:
        self.names = {SOURCE: SOURCE_NAMES, SINK: SINK_NAMES}
        self.values: dict[str, dict[str, dict[str, float]]] = {}
        self.calls: list[tuple[str, ...]] = []
        # the job's runningTime (ms) each request for it answers, in turn; none: not known
        self.running_ms: list[float] = []

    def job_metrics(self, job_id: str, names: Any) -> dict[str, float]:
        self.calls.append(("clock",))
        if not self.running_ms:
            return {}
        return {"runningTime": self.running_ms.pop(0) if len(self.running_ms) > 1
                else self.running_ms[0]}

    def job(self, job_id: str) -> dict[str, Any]:
        self.calls.append(("job",))
        return DETAILS

    def vertex_metric_names(self, job_id: str, vertex_id: str) -> tuple[str, ...]:
        self.calls.append(("names", vertex_id))
        return self.names[vertex_id]

    def vertex_metrics(self, job_id: str, vertex_id: str, names: Any) -> Any:
        self.calls.append(("metrics", vertex_id, *names))
        return {name: value for name, value in self.values.get(vertex_id, {}).items()
                if name in names}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1_000.0]
    monkeypatch.setattr(health_module.time, "time", lambda: now[0])
    return now


def running_job(**changes: Any) -> TrackedJob:
    return TrackedJob(job_id=JOB, name="agg", owner=Owner(None, "c", "agg"), state="RUNNING",
                      **changes)


def set_metrics(rest: FakeRest, *, records_in: float, records_out: float, busy: float = 500,
                back: float = 0, watermark: float | None = None) -> None:
    rest.values = {
        SOURCE: {"Source__src[1].numRecordsOut": {"sum": records_in},
                 "backPressuredTimeMsPerSecond": {"max": back}},  # a source's busy: NaN
        SINK: {"snk[7]__Writer.numRecordsIn": {"sum": records_out},
               "busyTimeMsPerSecond": {"max": busy}, "backPressuredTimeMsPerSecond":
               {"max": 0.0}, **({"currentInputWatermark": {"min": watermark}}
                                if watermark is not None else {})},
    }


def test_a_sample_reads_rates_shares_and_the_watermark_lag(clock: list[float]) -> None:
    rest = FakeRest()
    monitor = HealthMonitor(lambda: rest, get_job=lambda job_id: running_job())
    set_metrics(rest, records_in=1000, records_out=100, watermark=990_000)
    assert monitor.sample(JOB)
    first = monitor.health(JOB)
    assert first is not None and first.latest is not None
    assert (first.latest.records_in, first.latest.records_out) == (None, None)  # one look
    assert first.latest.busy == 0.5 and first.latest.backpressured == 0.0
    assert first.latest.watermark_lag_ms == 10_000
    assert first.busiest == "GroupAggregate[6] -> snk[7]: Writer"

    clock[0] += 3
    set_metrics(rest, records_in=1150, records_out=130, busy=1000, back=950,
                watermark=1_000_000)
    monitor.sample(JOB)
    latest = monitor.health(JOB).latest  # type: ignore[union-attr]
    assert latest is not None
    assert latest.records_in == pytest.approx(50) and latest.records_out == pytest.approx(10)
    assert (latest.busy, latest.backpressured) == (1.0, 0.95)
    assert latest.watermark_lag_ms == 3_000
    # The graph and metric names are read once; then one request per vertex and sample
    assert [call[0] for call in rest.calls] == [
        "job", "names", "names", "clock", "metrics", "metrics", "clock",
        "clock", "metrics", "metrics", "clock"]
    source_query = next(call for call in rest.calls if call[:2] == ("metrics", SOURCE))
    assert "Source__src[1].numRecordsOut" in source_query
    assert "currentInputWatermark" not in source_query  # a source reads no watermark


def test_a_counter_that_stood_still_keeps_its_rate_until_it_is_stale(
        clock: list[float]) -> None:
    rest = FakeRest()
    monitor = HealthMonitor(lambda: rest, get_job=lambda job_id: running_job())
    for records_in, step in ((0, 0), (300, 3), (300, 3), (600, 3), (600, 20)):
        clock[0] += step
        set_metrics(rest, records_in=records_in, records_out=0)
        monitor.sample(JOB)
    rates = [sample.records_in for sample in monitor.health(JOB).samples]  # type: ignore
    # Flink had not refreshed the counter at the third sample: the rate is kept; the rate
    # at the fourth is over the six seconds since it moved first; 20 s without: zero.
    assert rates == [None, pytest.approx(100), pytest.approx(100), pytest.approx(50), 0.0]


def test_rates_span_several_moves_so_the_counters_age_does_not_swing_them(
        clock: list[float]) -> None:
    """A steady 50/s whose counters Flink served alternately fresh and 2.5 s old: over one
    sample interval that reads 25/s, then 75/s (what the suite once saw on a loaded
    machine); over the last moves it stays near 50/s."""
    rest = FakeRest()
    monitor = HealthMonitor(lambda: rest, get_job=lambda job_id: running_job())
    for step in range(16):
        age = 2.5 if step % 2 else 0.0
        set_metrics(rest, records_in=50 * (step * 5 - age + 10), records_out=0)
        monitor.sample(JOB)
        clock[0] += 5
    rates = [sample.records_in for sample in monitor.health(JOB).samples]  # type: ignore
    assert rates[0] is None and min(rates[1:3]) < 40  # few moves yet: the age shows
    assert all(43 <= rate <= 57 for rate in rates[5:]), rates  # over four moves: it does not
    # and the span is bounded: 20 s at one move per sample
    assert monitor._jobs[JOB].counters[0].moves[0][1] == clock[0] - 5 - 20


def test_rates_are_timed_by_when_flink_measured_the_counters(clock: list[float]) -> None:
    """We ask every 5 s, but Flink's fetches happened 2.5 s and 7.5 s apart (a poll of the job
    started one in between): its runningTime from the same fetch times the counters, so a
    steady 50/s reads 50/s from the first rate on."""
    rest = FakeRest()
    monitor = HealthMonitor(lambda: rest, get_job=lambda job_id: running_job())
    fetched_at = [10.0, 12.5, 20.0, 22.5, 30.0, 32.5]
    for at in fetched_at:
        rest.running_ms = [at * 1000]
        set_metrics(rest, records_in=50 * at, records_out=0)
        monitor.sample(JOB)
        clock[0] += 5
    rates = [sample.records_in for sample in monitor.health(JOB).samples]  # type: ignore
    assert rates == [None, *[pytest.approx(50)] * 5]


def test_a_fetch_landing_between_the_requests_reads_the_counters_again(
        clock: list[float]) -> None:
    rest = FakeRest()
    monitor = HealthMonitor(lambda: rest, get_job=lambda job_id: running_job())
    rest.running_ms = [10_000]
    set_metrics(rest, records_in=500, records_out=0)
    monitor.sample(JOB)
    rest.running_ms = [10_000, 15_000, 15_000]  # a fetch landed while the counters were read
    set_metrics(rest, records_in=750, records_out=0)
    rest.calls.clear()
    monitor.sample(JOB)
    assert [call[0] for call in rest.calls] == ["clock", "metrics", "metrics", "clock",
                                                "clock", "metrics", "metrics", "clock"]
    assert monitor.health(JOB).latest.records_in == pytest.approx(50)  # type: ignore


def test_a_sample_taken_early_keeps_the_rate(clock: list[float]) -> None:
    """A frontend that subscribes wakes the sampler: a counter that moved over half a second
    says more about when Flink fetched it than about the rate."""
    rest = FakeRest()
    monitor = HealthMonitor(lambda: rest, get_job=lambda job_id: running_job())
    for records_in, step in ((0, 0), (100, 5), (104, 0.5), (200, 4.5)):
        clock[0] += step
        set_metrics(rest, records_in=records_in, records_out=0)
        monitor.sample(JOB)
    rates = [sample.records_in for sample in monitor.health(JOB).samples]  # type: ignore
    assert rates == [None, pytest.approx(20), pytest.approx(20), pytest.approx(20)]


def test_a_counter_that_starts_late_does_not_pull_the_rates_down(clock: list[float]) -> None:
    """The first look at a starting job's counter may come long before its source emits:
    only the first rate includes that wait, not the ones after it."""
    rest = FakeRest()
    monitor = HealthMonitor(lambda: rest, get_job=lambda job_id: running_job())
    for records_in in (0, 100, 350, 600, 850, 1100):  # 50/s, from 3 s before the 2nd look
        set_metrics(rest, records_in=records_in, records_out=0)
        monitor.sample(JOB)
        clock[0] += 5
    rates = [sample.records_in for sample in monitor.health(JOB).samples]  # type: ignore
    assert rates == [None, pytest.approx(20), *[pytest.approx(50)] * 4]


def test_a_restart_resets_the_rates() -> None:
    rest = FakeRest()
    monitor = HealthMonitor(lambda: rest, get_job=lambda job_id: running_job())
    set_metrics(rest, records_in=500, records_out=50)
    monitor.sample(JOB)
    set_metrics(rest, records_in=10, records_out=1)
    monitor.sample(JOB)
    latest = monitor.health(JOB).latest  # type: ignore[union-attr]
    assert latest is not None and latest.records_in is None and latest.records_out is None


def test_metric_names_are_listed_again_until_the_operators_report(clock: list[float]) -> None:
    rest = FakeRest()
    rest.names[SOURCE] = ("numRecordsOut", "busyTimeMsPerSecond",
                          "backPressuredTimeMsPerSecond")  # the task started a moment ago
    monitor = HealthMonitor(lambda: rest, get_job=lambda job_id: running_job())
    set_metrics(rest, records_in=0, records_out=0)
    monitor.sample(JOB)
    rest.names[SOURCE] = SOURCE_NAMES
    monitor.sample(JOB)
    monitor.sample(JOB)
    lookups = [call for call in rest.calls if call == ("names", SOURCE)]
    assert len(lookups) == 2  # listed again once, then no more: all there
    assert "Source__src[1].numRecordsOut" in [c for c in rest.calls if c[0] == "metrics"][-2]


def test_no_sample_before_flink_lists_any_metric() -> None:
    rest = FakeRest()
    rest.names[SINK] = ()
    monitor = HealthMonitor(lambda: rest, get_job=lambda job_id: running_job())
    assert not monitor.sample(JOB)
    assert monitor.health(JOB).samples == ()  # type: ignore[union-attr]


def test_checkpoints_are_kept_beyond_flinks_history() -> None:
    monitor = HealthMonitor(lambda: FakeRest(), get_job=lambda job_id: None)

    def stat(number: int, status: str = "COMPLETED") -> CheckpointStat:
        return CheckpointStat(number, status, number * 1000, 10 + number, 100 * number)

    monitor.job_changed(running_job(recent_checkpoints=(stat(2), stat(1))), urgent=False)
    monitor.job_changed(running_job(recent_checkpoints=(stat(4, "FAILED"), stat(3), stat(2))),
                        urgent=False)
    points = monitor.health(JOB).checkpoints  # type: ignore[union-attr]
    assert [(p.id, p.duration_ms, p.size) for p in points] == [(1, 11, 100), (2, 12, 200),
                                                               (3, 13, 300)]
    # once the job ended (no charts any more) nothing of it is kept
    ended = dataclasses.replace(running_job(recent_checkpoints=(stat(5), stat(3))),
                                state="CANCELED")
    monitor.job_ended(ended)
    monitor.job_changed(ended, urgent=True)  # the poller's last looks
    assert monitor.health(JOB) is None


def test_show_starts_sampling_and_stops_when_nobody_looks() -> None:
    rest = FakeRest()
    set_metrics(rest, records_in=0, records_out=0)
    sampled: list[str] = []
    monitor = HealthMonitor(lambda: rest, get_job=lambda job_id: running_job(),
                            on_sample=sampled.append, interval_s=0.05)
    try:
        assert monitor._thread is None  # nothing shown: no thread, no requests
        monitor.show([JOB])
        wait_until(lambda: len(sampled) >= 2, timeout=5, what="two samples")
        monitor.show([])
        calls = len(rest.calls)
        time.sleep(0.3)  # six intervals: nothing more is sampled
        assert len(rest.calls) - calls <= 4  # at most the round under way
    finally:
        monitor.close()


# --- failed checkpoints ------------------------------------------------------------------


@pytest.mark.parametrize(("message", "duration", "reason"), [
    ("Checkpoint expired before completing.", 600_012, "expired after 10 min"),
    ("Checkpoint expired before completing.", 3_010, "expired after 3 s"),
    ("Checkpoint expired before completing.", 3_725_000, "expired after 62 min 5 s"),
    ("Checkpoint expired before completing.", 7_325_000, "expired after 2 h 2 min"),
    ("Not all required tasks are currently running.", 0, "not all tasks running yet"),
    ("Asynchronous task checkpoint failed.", 5, "a task could not write its state"),
    ("Something new. With details.", 5, "something new"),
    (None, 5, "Flink gave no reason"),
])
def test_checkpoint_failure_reasons(message: str | None, duration: int, reason: str) -> None:
    stat = CheckpointStat(9, "FAILED", 1_000, duration, 0, message)
    assert checkpoint_failure_reason(stat) == reason


def observation(**fields: Any) -> Observation:
    return Observation("RUNNING", 1, None, observed_at=2.0, **fields)


def test_a_listed_failure_gives_its_reason() -> None:
    failed = CheckpointStat(7, "FAILED", 1_000, 3_005, 0, "Checkpoint expired before "
                                                          "completing.")
    changes = changes_from(running_job(), observation(failed=1, last_failed=failed))
    assert changes is not None
    assert (changes["checkpoint_failure"], changes["checkpoint_failure_ms"],
            changes["last_failed_checkpoint_id"]) == ("expired after 3 s", 4_005, 7)
    # the same failure seen again changes nothing
    seen = dataclasses.replace(running_job(), checkpoints_failed=1,
                               last_failed_checkpoint_id=7)
    assert "checkpoint_failure" not in changes_from(seen, observation(  # type: ignore
        failed=1, last_failed=failed))


def test_an_unlisted_failure_while_tasks_start_is_not_all_tasks_running() -> None:
    starting = TaskCounts(total=4, running=3, scheduled=0, waiting=1)
    changes = changes_from(running_job(tasks=starting), observation(failed=2, tasks=starting))
    assert changes is not None and changes["checkpoint_failure"] == "not all tasks running yet"
    assert changes["checkpoint_failure_ms"] == 2_000
    up = TaskCounts(total=4, running=4, scheduled=0, waiting=0)
    changes = changes_from(running_job(tasks=up), observation(failed=1, tasks=up))
    # no checkpoint completed yet: the job is starting (its first triggers fail so)
    assert changes is not None and changes["checkpoint_failure"] == "not all tasks running yet"
    changes = changes_from(running_job(tasks=up, checkpoints_completed=5),
                           observation(failed=1, tasks=up, completed=6))
    assert changes is not None and "no reason" in changes["checkpoint_failure"]


def test_an_observation_carries_tasks_slots_and_checkpoint_figures() -> None:
    latest = CheckpointInfo(3, "COMPLETED", False, "file:/c/chk-3", True, 1, 2, None, False,
                            duration_ms=40, state_size=5961)
    tasks = TaskCounts(total=20, running=0, scheduled=20, waiting=20)
    changes = changes_from(running_job(), observation(
        completed=3, latest=latest, tasks=tasks, slots=SlotCounts(8, 0), history=()))
    assert changes is not None
    assert (changes["tasks"], changes["slots"]) == (tasks, SlotCounts(8, 0))
    assert (changes["checkpoint_duration_ms"], changes["checkpoint_size"]) == (40, 5961)
    assert changes["recent_checkpoints"] == ()
    assert "recent_checkpoints" not in changes_from(running_job(), observation())  # type: ignore
