"""Follow running jobs through Flink's REST API, on one background thread per kernel.

Every watched job is looked at each ``interval`` (Zeppelin's
``zeppelin.flink.job.check_interval``, 1 s by default), through one request for the states of
all jobs (the jobs overview): due times sit on a grid shared by all jobs, so that request
serves a whole round, and it is made once per ``interval``, or at once for a job it has not
listed yet or one asked about with :meth:`JobPoller.poll_now`.

A job's checkpoint details (and its exception history) cost a request per job, so they are
read only when there is news to expect: when its next checkpoint should have completed (a
checkpoint interval after the last one did; then every ``fast_interval`` until it shows, or
while one is in progress), when the overview says the job changed (its state, the time of
its last state change, its tasks' states), after :meth:`JobPoller.poll_now`, and otherwise
every ``DETAILS_EVERY_S``. Between those, a job's observation carries its last checkpoint
view: with many jobs the requests grow with the checkpoints taken, not with the rounds. A
round's observations are handed over together, so that what they record is written once.
REST errors back off exponentially and are reported. A job that ended gets two last looks
once REST's caches have caught up, then is no longer polled.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import RestError
from ..rest import (
    CheckpointInfo,
    CheckpointStat,
    FlinkRestClient,
    JobNotFound,
    RestoreInfo,
    SlotCounts,
    TaskCounts,
    checkpoint_counts,
    checkpoint_history,
    failure_count,
    latest_checkpoint,
    latest_failed_checkpoint,
    latest_failure,
    restore_failure,
    restored_from,
    slot_counts,
    task_counts,
)
from .registry import LOST, TERMINAL_STATES

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
FAILURES_EVERY_S = 30.0  # exception history: on changes, else this often
DETAILS_EVERY_S = 30.0  # checkpoint details of a job with no news expected: this often
VISIBLE_AFTER_S = 0.05  # a completed checkpoint shows in the REST API this much later
OVERDUE_S = 5.0  # poll fast at most this long (or two intervals) after a checkpoint was due
FAILURES_SETTLE_S = 4.0  # after a change, re-read it this long (REST caches up to 3 s)
LAST_LOOKS = 2  # at an ended job, FAILURES_SETTLE_S and then twice that after its end


@dataclass(frozen=True)
class Observation:
    """One poll's view of a job."""

    state: str
    start_time_ms: int | None
    end_time_ms: int | None
    completed: int = 0
    failed: int = 0
    in_progress: int = 0
    restored: int = 0
    latest: CheckpointInfo | None = None
    restored_from: RestoreInfo | None = None
    observed_at: float = 0.0  # time.time() when the answer arrived
    failures: int | None = None  # entries in the exception history; None: not asked
    last_failure: str | None = None
    restore_failed: bool = False  # the latest failure was one of restoring saved state
    tasks: TaskCounts | None = None  # from the jobs overview (None: not in it)
    slots: SlotCounts | None = None  # the cluster's, asked only while tasks wait for one
    # Flink's checkpoint history, newest first; None: unchanged since the last observation
    history: tuple[CheckpointStat, ...] | None = None
    last_failed: CheckpointStat | None = None  # the newest failed checkpoint Flink lists


@dataclass
class _Watch:
    job_id: str
    next_due: float = 0.0
    failures: int = 0
    checkpoint_interval_s: float | None = None
    checkpointing: bool | None = None  # None: not asked yet
    last_checkpoint_id: int | None = None
    expected_next: float | None = None
    last_state: str | None = None
    last_restored: int = 0
    failures_checked_at: float = 0.0
    failures_settle_until: float = 0.0
    ended: bool = False  # seen in a terminal state; LAST_LOOKS more polls follow
    last_looks: int = 0
    signature: tuple[Any, ...] | None = None  # what the overview said of the job last
    details: Observation | None = None  # the last observation with checkpoint details
    details_at: float = -math.inf  # time.monotonic() when they were read
    details_wanted: bool = False  # poll_now: read them in the next round
    watched_at: float = field(default_factory=time.monotonic)
    history_counts: tuple[int, int] = (-1, -1)  # (completed, failed) at the last history read


class JobPoller:
    """Polls watched jobs and reports observations (a round's at once, as ``(job id,
    observation)`` pairs) and REST failures to callbacks."""

    def __init__(self, rest: FlinkRestClient, *, interval_s: float = 1.0,
                 fast_interval_s: float = 0.2,
                 on_round: Callable[[list[tuple[str, Observation]]], None],
                 on_error: Callable[[str, RestError, int], None]):
        self.rest = rest
        self.interval_s = interval_s
        self.fast_interval_s = fast_interval_s
        self._on_round = on_round
        self._on_error = on_error
        self._watches: dict[str, _Watch] = {}
        self._overview: dict[str, dict] = {}  # the last jobs overview, by job id
        self._overview_at = -math.inf  # time.monotonic() when it was read
        self._overview_wanted = False  # poll_now: read it afresh in the next round
        self._slots: tuple[float, SlotCounts] | None = None  # (when, what) /overview said
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, job_id: str) -> None:
        with self._lock:
            self._watches.setdefault(job_id, _Watch(job_id))
        self._ensure_thread()
        self._wake.set()

    def is_watching(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._watches

    def unwatch(self, job_id: str) -> None:
        with self._lock:
            self._watches.pop(job_id, None)

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def poll_now(self, job_id: str) -> None:
        """Poll ``job_id`` at once (e.g. right after a savepoint), on the poller thread."""
        with self._lock:
            watch = self._watches.get(job_id)
            if watch is not None and not watch.ended:  # an ended job's last look waits
                watch.next_due = 0.0
                watch.details_wanted = True
                self._overview_wanted = True
        self._wake.set()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="flink-job-poller",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            with self._lock:
                due = [w for w in self._watches.values() if w.next_due <= now]
            if due:
                try:
                    self._poll_round(due)
                except Exception:  # a bug must not end recording for every job
                    log.exception("a polling round failed")
                    for watch in due:
                        watch.next_due = time.monotonic() + self.interval_s
            with self._lock:
                next_due = min((w.next_due for w in self._watches.values()),
                               default=time.monotonic() + self.interval_s)
            self._wake.wait(max(0.0, next_due - time.monotonic()))
            self._wake.clear()

    def _poll_round(self, due: list[_Watch]) -> None:
        """The states of all jobs in one request (if due), then the checkpoints of each due
        job; then the round's observations are handed over.

        If the cluster does not answer, every due job is told at once (the user sees
        "unreachable" on each job within one round, not one timeout per job).
        """
        observations: list[tuple[str, Observation]] = []
        try:
            overview = self._jobs_overview(due)
        except RestError as exc:
            self._back_off(due, exc)
            return
        try:
            for index, watch in enumerate(due):
                if self._stop.is_set():
                    return
                try:
                    observation = self._observe(watch, overview.get(watch.job_id))
                except RestError as exc:
                    if exc.status is None:  # the cluster went away mid-round
                        self._back_off(due[index:], exc)
                        return
                    self._back_off([watch], exc)
                    continue
                watch.failures = 0
                observations.append((watch.job_id, observation))
                self._schedule(watch, observation)
        finally:
            if observations:
                self._on_round(observations)

    def _jobs_overview(self, due: list[_Watch]) -> dict[str, dict]:
        """The states of all jobs: read once per interval, or at once when a due job is not
        in the last one or poll_now asked for it; in between, the last one."""
        now = time.monotonic()
        if self._overview_wanted or now - self._overview_at >= \
                self.interval_s - self.fast_interval_s / 2 or \
                any(watch.job_id not in self._overview for watch in due):
            self._overview_wanted = False
            self._overview = {str(entry.get("jid")): entry
                              for entry in self.rest.jobs_overview()}
            self._overview_at = now
        return self._overview

    def _schedule(self, watch: _Watch, observation: Observation) -> None:
        """When ``watch`` is due next, after ``observation`` (never, once it ended)."""
        if observation.state not in TERMINAL_STATES:
            watch.next_due = self._on_grid(self._next_delay(watch, observation))
            return
        if watch.ended:
            watch.last_looks += 1  # this was one
        if observation.state == LOST or watch.last_looks == LAST_LOOKS:
            self.unwatch(watch.job_id)
            return
        # Last looks once REST's caches have caught up: the exception history may not have
        # had the failure that ended the job yet (later still on a loaded machine).
        watch.ended = True
        watch.next_due = time.monotonic() + FAILURES_SETTLE_S * 2 ** watch.last_looks

    def _on_grid(self, delay: float) -> float:
        """When a job is next due: about ``delay`` from now, on a grid shared by all jobs,
        so that jobs come due in the same round (fewer rounds, and what they record is
        written together). Off by half a grid step at most."""
        grid = self.interval_s if delay >= self.interval_s else self.fast_interval_s
        now = time.monotonic()
        due = math.ceil((now + delay - grid / 2) / grid) * grid
        return due if due > now else due + grid

    def _back_off(self, watches: list[_Watch], exc: RestError) -> None:
        for watch in watches:
            watch.failures += 1
            delay = min(self.interval_s * 2 ** watch.failures, MAX_BACKOFF_S)
            watch.next_due = time.monotonic() + delay
            self._on_error(watch.job_id, exc, watch.failures)

    def _observe(self, watch: _Watch, entry: dict | None) -> Observation:
        if entry is None:  # not in the overview: ask for it directly (404: it is gone)
            try:
                entry = {"state": self.rest.job_status(watch.job_id)}
            except JobNotFound:
                entry = {"state": LOST}
        state = str(entry.get("state", "UNKNOWN"))
        start, end = entry.get("start-time"), entry.get("end-time")
        tasks = task_counts(entry)
        # Tasks that wait for a slot: say how many the cluster has (one request per interval)
        slots = self._cluster_slots() if tasks is not None and tasks.scheduled and \
            state in ("CREATED", "RUNNING") else None
        base = Observation(state, start if start and start > 0 else None,
                           end if end and end > 0 else None, observed_at=time.time(),
                           tasks=tasks, slots=slots)
        if watch.checkpointing is None and state == "RUNNING":
            interval_ms = self.rest.checkpoint_interval_ms(watch.job_id)
            watch.checkpointing = interval_ms is not None
            watch.checkpoint_interval_s = interval_ms / 1000 if interval_ms else None
        if not watch.checkpointing or state == LOST:  # unknown until RUNNING, or disabled
            return base
        now = time.monotonic()
        signature = (state, entry.get("last-modification"), _task_states(entry))
        changed = watch.signature is not None and signature != watch.signature
        watch.signature = signature
        if changed:  # REST caches the details: look again for a while
            watch.failures_settle_until = now + FAILURES_SETTLE_S
        if not (changed or self._details_due(watch, now)):
            known = watch.details
            assert known is not None  # read when the job was first seen
            return replace(known, state=state, start_time_ms=base.start_time_ms,
                           end_time_ms=base.end_time_ms, observed_at=base.observed_at,
                           failures=None, last_failure=None, restore_failed=False,
                           tasks=base.tasks, slots=base.slots, history=None)
        watch.details_wanted = False
        watch.details_at = now
        observation = self._details(watch, base)
        watch.details = observation
        return observation

    def _details_due(self, watch: _Watch, now: float) -> bool:
        """Whether a job's checkpoint details may hold news (see the module docstring)."""
        known = watch.details
        if known is None or watch.details_wanted or watch.ended or known.in_progress > 0:
            return True
        since = now - watch.details_at
        if now < watch.failures_settle_until or since >= DETAILS_EVERY_S:
            return True
        interval = watch.checkpoint_interval_s or DETAILS_EVERY_S
        now_and_then = since >= min(interval, DETAILS_EVERY_S)
        expected = watch.expected_next
        if expected is None:
            # Flink triggers a job's first checkpoint at a random time within its first
            # interval: look each round then, and now and then if none comes.
            young = now - watch.watched_at < interval + OVERDUE_S
            return since >= self.interval_s - self.fast_interval_s / 2 if young \
                else now_and_then
        if now < expected - self.fast_interval_s / 2:
            return False
        if now <= expected + max(2 * interval, OVERDUE_S):
            return True  # due: each (fast) round until it shows
        return now_and_then  # long overdue: checkpoints fail, or take long

    def _details(self, watch: _Watch, base: Observation) -> Observation:
        """The job's checkpoints (and, now and then, its exception history) from REST."""
        state = base.state
        checkpoints = self.rest.checkpoints(watch.job_id)
        counts = checkpoint_counts(checkpoints)
        failures, last_failure, restore_failed = self._failures(watch, state, counts.restored)
        if failures is not None and state not in TERMINAL_STATES:
            # The state to count restarts by (the final failure is not one) must not be
            # older than the history: read after it, a failure in between makes the count
            # low for a round (corrected later), never high.
            state = self.rest.job_status(watch.job_id)
        history = None
        if (counts.completed, counts.failed) != watch.history_counts:  # one ended since
            watch.history_counts = (counts.completed, counts.failed)
            history = checkpoint_history(checkpoints)
        return Observation(
            state, base.start_time_ms, base.end_time_ms,
            completed=counts.completed, failed=counts.failed, in_progress=counts.in_progress,
            restored=counts.restored, latest=latest_checkpoint(checkpoints),
            restored_from=restored_from(checkpoints), observed_at=time.time(),
            failures=failures, last_failure=last_failure, restore_failed=restore_failed,
            tasks=base.tasks, slots=base.slots, history=history,
            last_failed=latest_failed_checkpoint(checkpoints))

    def _cluster_slots(self) -> SlotCounts | None:
        """The cluster's task slots (GET /overview), at most once per interval."""
        now = time.monotonic()
        if self._slots is None or now - self._slots[0] >= self.interval_s:
            try:
                self._slots = (now, slot_counts(self.rest.overview()))
            except RestError:
                return None
        return self._slots[1]

    def _failures(self, watch: _Watch, state: str, restored: int
                  ) -> tuple[int | None, str | None, bool]:
        """The exception history: re-read for a few seconds after the job changed (a
        restart restored a checkpoint, or the state moved), since Flink's REST API serves
        it from a cache, and otherwise every FAILURES_EVERY_S."""
        now = time.monotonic()
        if watch.last_state is not None and (state != watch.last_state or
                                             restored != watch.last_restored):
            watch.failures_settle_until = now + FAILURES_SETTLE_S
        watch.last_state, watch.last_restored = state, restored
        if not watch.ended and now > watch.failures_settle_until and \
                now - watch.failures_checked_at < FAILURES_EVERY_S:
            return None, None, False
        watch.failures_checked_at = now
        exceptions = self.rest.job_exceptions(watch.job_id)
        failure = latest_failure(exceptions)
        return (failure_count(exceptions), failure.message if failure else None,
                restore_failure(exceptions) is not None)

    def _next_delay(self, watch: _Watch, observation: Observation) -> float:
        """Until the next checkpoint should be visible, the regular interval at most; then
        fast until it is seen (or long overdue)."""
        now = time.monotonic()
        latest = observation.latest
        if latest is not None and latest.id != watch.last_checkpoint_id:
            watch.last_checkpoint_id = latest.id
            if watch.checkpoint_interval_s:
                watch.expected_next = now + _until_next_checkpoint(
                    latest, watch.checkpoint_interval_s)
        if observation.in_progress > 0:
            return self.fast_interval_s
        expected = watch.expected_next
        interval = watch.checkpoint_interval_s
        if expected is not None and interval is not None and observation.state == "RUNNING":
            if now < expected:
                return min(self.interval_s, expected - now)
            if now <= expected + max(2 * interval, OVERDUE_S):
                return self.fast_interval_s
        return self.interval_s


def _task_states(entry: dict) -> tuple[tuple[str, Any], ...]:
    """The overview's counts of the job's tasks by state (they move when tasks restart,
    even while the job stays RUNNING: a region failover)."""
    tasks = entry.get("tasks")
    return tuple(sorted(tasks.items())) if isinstance(tasks, dict) else ()


def _until_next_checkpoint(latest: CheckpointInfo, interval_s: float) -> float:
    """Seconds from now until the checkpoint after ``latest`` should show in the REST API.

    Flink triggers it ``interval`` after ``latest``'s trigger, and it should take about as
    long as ``latest`` did: so it completes about ``interval`` after ``latest`` did. Flink's
    clock is not ours: if it runs behind, this comes out early, which costs a few more polls
    but no lag; if it runs ahead, at most one interval late.
    """
    since_completed = max(0.0, time.time() - latest.latest_ack_timestamp / 1000)
    return max(0.0, interval_s - since_completed) + VISIBLE_AFTER_S
