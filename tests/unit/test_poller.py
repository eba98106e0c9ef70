"""JobPoller against a scripted stand-in for Flink's REST API (the real API is exercised by
the integration tests; these pin down scheduling and error handling)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from jupyter_flink.errors import RestError
from jupyter_flink.jobs import poller as poller_module
from jupyter_flink.jobs.poller import JobPoller, Observation
from tests.support.waiting import wait_until


class ScriptedRest:
    """Answers like Flink's REST API for a few jobs; counts the requests."""

    def __init__(self, job_ids: list[str], *, interval_ms: int | None = 60_000,
                 on_the_clock: bool = False):
        self.states = {job_id: "RUNNING" for job_id in job_ids}
        self.modified = {job_id: 1 for job_id in job_ids}  # overview's last-modification
        self.completed = {job_id: 0 for job_id in job_ids}
        self.interval_ms = interval_ms
        self.down = False
        # on_the_clock: a checkpoint completes every interval (each taking 20 ms), as in
        # Flink; otherwise the test sets ``completed``.
        self.period_s = interval_ms / 1000 if on_the_clock and interval_ms else 0.0
        self.started = time.time()
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _count(self, what: str) -> None:
        with self._lock:
            self.calls[what] += 1
        if self.down:
            raise RestError("connection refused", status=None)

    def jobs_overview(self) -> list[dict[str, Any]]:
        self._count("overview")
        return [{"jid": j, "state": s, "start-time": 1, "last-modification": self.modified[j]}
                for j, s in self.states.items()]

    def job_status(self, job_id: str) -> str:
        self._count("status")
        return self.states[job_id]

    def checkpoint_interval_ms(self, job_id: str) -> int | None:
        self._count("config")
        return self.interval_ms

    def checkpoints(self, job_id: str) -> dict[str, Any]:
        self._count("checkpoints")
        done = self.completed[job_id]
        acked_ms = int(time.time() * 1000)
        if self.period_s:
            done = int((time.time() - self.started) // self.period_s)
            acked_ms = int((self.started + done * self.period_s) * 1000)
        latest = {"id": done, "status": "COMPLETED", "trigger_timestamp": acked_ms - 20,
                  "latest_ack_timestamp": acked_ms,
                  "external_path": f"file:/tmp/{job_id}/chk-{done}"} if done else None
        return {"counts": {"completed": done}, "latest": {"completed": latest}}

    def job_exceptions(self, job_id: str) -> dict[str, Any]:
        self._count("exceptions")
        return {"exceptionHistory": {"entries": []}}


def collect(observed: dict[str, list[Observation]]
            ) -> Callable[[list[tuple[str, Observation]]], None]:
    def on_round(observations: list[tuple[str, Observation]]) -> None:
        for job_id, observation in observations:
            observed.setdefault(job_id, []).append(observation)
    return on_round


@pytest.fixture
def observed() -> dict[str, list[Observation]]:
    return {}


def _poller(rest: ScriptedRest, observed: dict[str, list[Observation]],
            errors: list[tuple[str, int]] | None = None) -> JobPoller:
    def on_error(job_id: str, exc: RestError, failures: int) -> None:
        if errors is not None:
            errors.append((job_id, failures))
    return JobPoller(rest, interval_s=0.2, fast_interval_s=0.05,  # type: ignore[arg-type]
                     on_round=collect(observed),
                     on_error=on_error)


def test_a_completed_checkpoint_is_observed(observed: dict[str, list[Observation]]) -> None:
    rest = ScriptedRest(["a"])
    poller = _poller(rest, observed)
    poller.watch("a")
    try:
        wait_until(lambda: observed.get("a"), timeout=10, what="a first observation")
        rest.completed["a"] = 1
        latest = wait_until(lambda: observed["a"][-1].latest, timeout=10,
                            what="the checkpoint to be observed")
        assert latest.external_path == "file:/tmp/a/chk-1"
        assert observed["a"][-1].completed == 1
    finally:
        poller.close()


def test_jobs_share_the_overview_request(observed: dict[str, list[Observation]]) -> None:
    jobs = [f"job{i}" for i in range(5)]
    rest = ScriptedRest(jobs)
    poller = _poller(rest, observed)
    try:
        for job_id in jobs:  # started a little apart, as cells are run one after another
            poller.watch(job_id)
            time.sleep(0.07)
        wait_until(lambda: all(len(observed.get(j, [])) >= 5 for j in jobs), timeout=20,
                   what="five polls of every job")
    finally:
        poller.close()
    # one overview per round, each round polling the checkpoints of several jobs
    assert rest.calls["overview"] * 2 < rest.calls["checkpoints"], rest.calls


def test_an_ended_job_gets_its_last_looks_then_no_more(
        observed: dict[str, list[Observation]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(poller_module, "FAILURES_SETTLE_S", 0.2)
    rest = ScriptedRest(["a", "b"])
    poller = _poller(rest, observed)
    poller.watch("a")
    try:
        wait_until(lambda: observed.get("a"), timeout=10, what="a first observation")
        rest.states["a"] = "FAILED"
        def failed() -> int:
            return sum(1 for o in observed["a"] if o.state == "FAILED")
        wait_until(failed, timeout=10, what="the end to be observed")
        # each last look reads the exception history again (REST may have served it stale)
        asked = rest.calls["exceptions"]
        looks = 1 + poller_module.LAST_LOOKS
        wait_until(lambda: failed() == looks, timeout=10, what="the last looks")
        assert observed["a"][-1].state == "FAILED" and observed["a"][-1].failures is not None
        assert rest.calls["exceptions"] == asked + poller_module.LAST_LOOKS
        count = len(observed["a"])
        poller.poll_now("a")  # nothing to poll: it was unwatched
        poller.watch("b")  # rounds run for b, and would poll a if it were still watched
        wait_until(lambda: len(observed.get("b", [])) >= 8, timeout=10, what="b to be polled")
        assert len(observed["a"]) == count
    finally:
        poller.close()


def test_an_unreachable_cluster_backs_off_and_recovers(
        observed: dict[str, list[Observation]]) -> None:
    rest = ScriptedRest(["a", "b"])
    errors: list[tuple[str, int]] = []
    poller = _poller(rest, observed, errors)
    rest.down = True
    poller.watch("a")
    poller.watch("b")
    try:
        wait_until(lambda: {("a", 2), ("b", 2)} <= set(errors), timeout=10,
                   what="two failed rounds reported for both jobs")
        # backing off: after n failed rounds the next waits interval * 2**n (0.8 s, 1.6 s)
        failed_overviews = rest.calls["overview"]
        assert failed_overviews <= 4, rest.calls
        rest.down = False
        wait_until(lambda: observed.get("a") and observed.get("b"), timeout=15,
                   what="polling to resume for both jobs")
    finally:
        poller.close()


def test_checkpoints_are_followed_closely_but_not_hammered(
        observed: dict[str, list[Observation]]) -> None:
    """Checkpoints every 0.5 s, regular polls every 1 s: the poller sees (nearly) every
    checkpoint, soon after it completed, with few requests for each."""
    rest = ScriptedRest(["a"], interval_ms=500, on_the_clock=True)
    poller = JobPoller(rest, interval_s=1.0, fast_interval_s=0.05,  # type: ignore[arg-type]
                       on_round=collect(observed),
                       on_error=lambda *_: None)
    poller.watch("a")
    try:
        wait_until(lambda: any(o.completed >= 12 for o in observed.get("a", [])), timeout=30,
                   what="twelve checkpoints")
    finally:
        poller.close()
    first_seen: dict[int, float] = {}
    for o in observed["a"]:
        if o.latest is not None:
            lag = o.observed_at - o.latest.latest_ack_timestamp / 1000
            first_seen.setdefault(o.latest.id, lag)
    seen = [i for i in first_seen if i >= 2]  # from the second on, the poller knows the rhythm
    lags = sorted(first_seen[i] for i in seen)
    assert len(seen) >= 8, "checkpoints were missed: not polled closely enough"
    assert lags[len(lags) // 2] < 0.5, "checkpoints were seen late"
    assert rest.calls["checkpoints"] <= 2 * len(seen) + 4, "polled much more than needed"


def test_state_is_read_once_per_interval_and_at_once_when_asked(
        observed: dict[str, list[Observation]]) -> None:
    """Polling for checkpoints (here every 0.1 s) does not re-read every job's state:
    that is read once per interval (1 s), and at once after poll_now (a cancel, a savepoint)."""
    rest = ScriptedRest(["a"], interval_ms=100, on_the_clock=True)
    poller = JobPoller(rest, interval_s=1.0, fast_interval_s=0.05,  # type: ignore[arg-type]
                       on_round=collect(observed), on_error=lambda *_: None)
    began = time.monotonic()
    poller.watch("a")
    try:
        wait_until(lambda: any(o.completed >= 25 for o in observed.get("a", [])), timeout=30,
                   what="25 checkpoints")
        elapsed = time.monotonic() - began
        assert rest.calls["overview"] <= elapsed / 1.0 + 2, (rest.calls, elapsed)
        assert rest.calls["checkpoints"] >= 3 * rest.calls["overview"], rest.calls
        rest.states["a"] = "CANCELED"
        seen = len(observed["a"])
        poller.poll_now("a")
        wait_until(lambda: observed["a"][-1].state == "CANCELED", timeout=10,
                   what="the new state")
        # a round already under way may still report the old state, no later one does
        assert len(observed["a"]) - seen <= 2
    finally:
        poller.close()


def test_a_round_hands_over_its_observations_together() -> None:
    rounds: list[list[str]] = []
    rest = ScriptedRest(["a", "b", "c"])
    poller = JobPoller(rest, interval_s=0.2, fast_interval_s=0.05,  # type: ignore[arg-type]
                       on_round=lambda obs: rounds.append([job_id for job_id, _ in obs]),
                       on_error=lambda *_: None)
    try:
        for job_id in "abc":
            poller.watch(job_id)
        wait_until(lambda: sum(map(len, rounds)) >= 15, timeout=10, what="15 observations")
    finally:
        poller.close()
    assert any(sorted(r) == ["a", "b", "c"] for r in rounds), rounds


def test_checkpoint_details_are_read_per_checkpoint_not_per_round(
        observed: dict[str, list[Observation]]) -> None:
    """Twenty jobs checkpointing every 0.6 s, rounds every 0.1 s: after each job's first
    checkpoint, its details are read about once per checkpoint (they were read in every
    round before), while one overview a round serves all jobs."""
    jobs = [f"job{i}" for i in range(20)]
    rest = ScriptedRest(jobs, interval_ms=600, on_the_clock=True)
    poller = JobPoller(rest, interval_s=0.1, fast_interval_s=0.05,  # type: ignore[arg-type]
                       on_round=collect(observed), on_error=lambda *_: None)
    try:
        for job_id in jobs:
            poller.watch(job_id)

        def seen(at_least: int) -> bool:
            return all(any(o.completed >= at_least for o in observed.get(j, [])) for j in jobs)
        wait_until(lambda: seen(1), timeout=30, what="every job's first checkpoint")
        before, rounds_before = rest.calls["checkpoints"], rest.calls["overview"]
        first = {j: max(o.completed for o in observed[j]) for j in jobs}
        wait_until(lambda: seen(max(first.values()) + 5), timeout=60,
                   what="five more checkpoints of every job")
        after, rounds = rest.calls["checkpoints"], rest.calls["overview"] - rounds_before
        taken = sum(max(o.completed for o in observed[j]) - first[j] for j in jobs)
    finally:
        poller.close()
    reads = after - before
    assert reads <= 2.5 * taken, (reads, taken, rest.calls)
    assert reads < rounds * len(jobs) / 2, (reads, rounds)  # far from one per job per round


def test_a_change_in_the_overview_reads_the_details_at_once(
        observed: dict[str, list[Observation]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Between checkpoints a job's details are not read; when the overview says the job
    changed (the time of its last state change), they are, in the next round."""
    monkeypatch.setattr(poller_module, "FAILURES_SETTLE_S", 0.2)
    rest = ScriptedRest(["a"], interval_ms=60_000)
    rest.completed["a"] = 3  # a checkpoint just completed: the next is a minute away
    poller = _poller(rest, observed)
    poller.watch("a")
    try:
        wait_until(lambda: len(observed.get("a", [])) >= 3, timeout=10, what="three rounds")
        time.sleep(0.5)  # the settling after the first look is over
        reads = rest.calls["checkpoints"]
        count = len(observed["a"])
        wait_until(lambda: len(observed["a"]) >= count + 5, timeout=10, what="five rounds")
        assert rest.calls["checkpoints"] == reads, rest.calls  # nothing new was expected
        assert observed["a"][-1].completed == 3  # the last view is carried
        assert observed["a"][-1].latest is not None
        rest.completed["a"] = 4
        rest.modified["a"] = 2  # e.g. a restart
        wait_until(lambda: observed["a"][-1].completed == 4, timeout=10,
                   what="the details read after the change")
    finally:
        poller.close()


def test_poll_now_reads_the_details(observed: dict[str, list[Observation]],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(poller_module, "FAILURES_SETTLE_S", 0.2)
    rest = ScriptedRest(["a"], interval_ms=60_000)
    rest.completed["a"] = 1
    poller = _poller(rest, observed)
    poller.watch("a")
    try:
        wait_until(lambda: len(observed.get("a", [])) >= 3, timeout=10, what="three rounds")
        time.sleep(0.5)
        rest.completed["a"] = 2  # e.g. a savepoint's checkpoint id
        poller.poll_now("a")
        wait_until(lambda: observed["a"][-1].completed == 2, timeout=10,
                   what="the details read at once")
    finally:
        poller.close()
