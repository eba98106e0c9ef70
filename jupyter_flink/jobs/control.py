"""Stopping and savepointing the kernel's jobs, as cells, magics and shutdown ask.

* cancel: as a cell does (interrupt, re-run, ``%flink.cancel``, kernel shutdown): with a
  savepoint if the cell set ``savepointDir``; if that savepoint fails, a plain cancel that
  says so (Zeppelin's ZEPPELIN-5412 behaviour);
* stop: with a savepoint, or not at all (the job keeps running and we say why);
* savepoint: without stopping.

Every savepoint taken is recorded as the cell's ``savepoint_path`` before anything else.
Savepoints of one job are taken one at a time (a stop waits for a savepoint under way), and an
automatic savepoint gives way: it is skipped while the job is being stopped or another
savepoint of it is under way. Triggered while a stop-with-savepoint was pending, automatic
savepoints kept Flink from ever completing the stop (measured: 120 s, then a plain cancel).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import JobError, RestError
from ..recording.record import history_entry
from ..recording.storage import written_at
from ..rest import FlinkRestClient
from .registry import TERMINAL_STATES, TrackedJob
from .tracker import JobTracker

__all__ = ["JobControl", "StopOutcome"]

log = logging.getLogger(__name__)

SAVEPOINT_TIMEOUT_S = 120.0
END_TIMEOUT_S = 60.0
MAX_PARALLEL_STOPS = 8


@dataclass(frozen=True)
class StopOutcome:
    """How a job ended when asked to: the savepoint taken, if any, and what to tell the user."""

    job: TrackedJob
    savepoint_path: str | None
    message: str


class JobControl:
    """Cancel, stop and savepoint the jobs of one tracker."""

    def __init__(self, tracker: JobTracker):
        self.tracker = tracker
        self._turns: dict[str, threading.Lock] = {}  # one savepoint of a job at a time
        self._stopping: set[str] = set()
        self._guard = threading.Lock()

    def cancel(self, job_id: str, *, rest: FlinkRestClient | None = None) -> StopOutcome:
        """Cancel as a cell does: with a savepoint if the cell set savepointDir.

        ``rest``: the client of the calling thread, if not the kernel's (as for all below).
        """
        job = self._get(job_id)
        rest = rest or self.tracker.rest
        if job.ended:
            return StopOutcome(job, None, f"Job {job.name} had already ended ({job.state}).")
        if job.savepoint_dir:
            try:
                return self._stop_with_savepoint(job, job.savepoint_dir, rest, origin="cancel")
            except (RestError, JobError) as exc:
                reason = getattr(exc, "message", str(exc))
                self._cancel_plain(job, rest)
                ended = self._after_end(job, f"The savepoint of job {job.name} failed "
                                             f"({reason}); the job was cancelled without one.",
                                        rest)
                message = f"{ended.notice} {self._what_remains(ended)}"
                return StopOutcome(self.tracker.apply(job.job_id, notice=message) or ended,
                                   None, message)
        self._cancel_plain(job, rest)
        message = f"Job {job.name} was cancelled."
        return StopOutcome(self._after_end(job, message, rest), None, message)

    def stop(self, job_id: str, target_dir: str, *,
             rest: FlinkRestClient | None = None) -> StopOutcome:
        """Stop with a savepoint; if the savepoint fails the job keeps running (and we say so)."""
        job = self._get(job_id)
        if job.ended:
            raise JobError(f"Job {job.name} has already ended ({job.state}).", job_id=job_id)
        return self._stop_with_savepoint(job, target_dir, rest or self.tracker.rest,
                                         origin="stop")

    def savepoint(self, job_id: str, target_dir: str, *, origin: str = "manual",
                  rest: FlinkRestClient | None = None) -> str:
        """Take a savepoint without stopping the job; records it as the cell's savepoint.

        ``origin``: manual (``%flink.savepoint``) or automatic; ``rest``: the client of the
        calling thread, if not the kernel's.
        """
        job = self._get(job_id)
        with self._turn(job_id):
            return self._savepoint(job, target_dir, origin, rest or self.tracker.rest)

    def automatic_savepoint(self, job_id: str, target_dir: str, *,
                            rest: FlinkRestClient | None = None) -> str | None:
        """An automatic savepoint, unless the job is being stopped, has ended, or another
        savepoint of it is under way (None: skipped; the next one is due an interval on)."""
        with self._guard:
            if job_id in self._stopping:
                return None
        with self._turn(job_id, wait=False) as mine:
            job = self.tracker.registry.get(job_id)
            if not mine or job is None or job.ended or job_id in self._stopping:
                return None
            return self._savepoint(job, target_dir, "automatic", rest or self.tracker.rest)

    def stop_all(self) -> list[StopOutcome]:
        """Cancel every running job (in parallel, with savepoints where set): at shutdown."""
        outcomes: list[StopOutcome] = []
        active = self.tracker.registry.active()
        if not active:
            return outcomes
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_STOPS, len(active))) as pool:
            for future in [pool.submit(self.cancel, job.job_id) for job in active]:
                try:
                    outcomes.append(future.result())
                except Exception:
                    log.exception("stopping a job at shutdown failed")
        return outcomes

    # ----------------------------------------------------------------- steps

    def _get(self, job_id: str) -> TrackedJob:
        job = self.tracker.registry.get(job_id)
        if job is None:
            raise JobError(f"Job {job_id} is not tracked by this kernel.", job_id=job_id)
        return job

    @contextmanager
    def _turn(self, job_id: str, *, wait: bool = True) -> Iterator[bool]:
        """Hold the job's savepoint turn (waiting for it, or not: yields whether it is ours)."""
        with self._guard:
            lock = self._turns.setdefault(job_id, threading.Lock())
        mine = lock.acquire(timeout=SAVEPOINT_TIMEOUT_S) if wait else lock.acquire(False)
        try:
            yield mine
        finally:
            if mine:
                lock.release()

    def _savepoint(self, job: TrackedJob, target_dir: str, origin: str,
                   rest: FlinkRestClient) -> str:
        request = rest.trigger_savepoint(job.job_id, target_dir)
        location = rest.wait_for_savepoint(job.job_id, request, timeout=SAVEPOINT_TIMEOUT_S)
        self._record_savepoint(job, location, origin)
        return location

    def _stop_with_savepoint(self, job: TrackedJob, target_dir: str, rest: FlinkRestClient,
                             *, origin: str) -> StopOutcome:
        with self._guard:
            self._stopping.add(job.job_id)  # automatic savepoints give way from now on
        try:
            with self._turn(job.job_id):  # after a savepoint under way, if any
                request = rest.trigger_stop_with_savepoint(job.job_id, target_dir)
                location = rest.wait_for_savepoint(job.job_id, request,
                                                   timeout=SAVEPOINT_TIMEOUT_S)
                self._record_savepoint(job, location, origin)
        finally:
            with self._guard:
                self._stopping.discard(job.job_id)
        message = f"Job {job.name} was stopped with savepoint {location}."
        return StopOutcome(self._after_end(job, message, rest), location, message)

    def _record_savepoint(self, job: TrackedJob, location: str, origin: str) -> None:
        self.tracker.registry.update(job.job_id, savepoint_path=location)
        self.tracker.record([(job, {"savepoint_path": location})], history={
            job.job_id: history_entry(location, "savepoint", origin, job.job_id)})

    @staticmethod
    def _what_remains(job: TrackedJob) -> str:
        """After a plain cancel: the restore point the cell is left with, and how to use it."""
        if job.latest_checkpoint_path and written_at(job.latest_checkpoint_path) is not None:
            return (f"Its latest checkpoint remains, {job.latest_checkpoint_path}: "
                    "resumeFromLatestCheckpoint=true resumes from it.")
        if job.savepoint_path:
            return (f"No checkpoint of it remains; resumeFromSavepoint=true resumes from the "
                    f"previous savepoint, {job.savepoint_path}.")
        return "No checkpoint or savepoint of it remains: its next run starts without state."

    def _cancel_plain(self, job: TrackedJob, rest: FlinkRestClient) -> None:
        try:
            rest.cancel(job.job_id)
        except RestError as exc:
            if exc.status != 404:  # 404: it is gone already
                raise JobError(f"Cancelling job {job.name} failed: {exc.message}",
                               job_id=job.job_id, details=exc.body) from exc

    def _after_end(self, job: TrackedJob, message: str, rest: FlinkRestClient) -> TrackedJob:
        """Wait for the job to end, then show the final state with ``message``."""
        try:
            state = rest.wait_for_job_state(job.job_id, set(TERMINAL_STATES),
                                            timeout=END_TIMEOUT_S)
        except RestError:
            state = job.state
        updated = self.tracker.apply(job.job_id, state=state, notice=message) or job
        self.tracker.poller.poll_now(job.job_id)
        return updated
