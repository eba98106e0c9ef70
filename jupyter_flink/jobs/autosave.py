"""Periodic savepoints of running jobs (``autoSavepointInterval``, as flink-operator's
``autoSavePointSeconds``), each recorded as the cell's ``savepoint_path``.

:class:`AutoSavepoints` is the scheduler (one thread for all jobs); :class:`AutoSavepointJobs`
connects it to the tracker: a job that asks for automatic savepoints is scheduled when it is
tracked and dropped when it ends. Savepoints are taken with a REST client of their own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..recording.storage import delete_restore_point, same_place

if TYPE_CHECKING:
    from .control import JobControl
    from .registry import TrackedJob

log = logging.getLogger(__name__)


@dataclass
class _Schedule:
    interval_s: float
    target_dir: str
    next_at: float


class AutoSavepoints:
    """One thread that takes the savepoints that are due, one at a time."""

    def __init__(self, take: Callable[[str, str], None],
                 report: Callable[[str, Exception], None]):
        self._take = take  # (job id, target dir); records the savepoint
        self._report = report  # a savepoint failed: tell the user, keep the schedule
        self._schedules: dict[str, _Schedule] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, job_id: str, interval_s: float, target_dir: str) -> None:
        with self._lock:
            self._schedules[job_id] = _Schedule(interval_s, target_dir,
                                                time.monotonic() + interval_s)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="flink-autosavepoint",
                                                daemon=True)
                self._thread.start()
        self._wake.set()

    def remove(self, job_id: str) -> None:
        with self._lock:
            self._schedules.pop(job_id, None)

    def close(self, timeout: float = 10.0) -> None:
        """Stop scheduling; waits (up to ``timeout``) for a savepoint under way."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            with self._lock:
                due = [(job_id, s) for job_id, s in self._schedules.items() if s.next_at <= now]
                for _, schedule in due:
                    schedule.next_at = now + schedule.interval_s
                wake_at = min((s.next_at for s in self._schedules.values()), default=now + 60)
            for job_id, schedule in due:
                if self._stop.is_set():
                    return
                try:
                    self._take(job_id, schedule.target_dir)
                except Exception as exc:  # reported to the user; the schedule stays
                    self._report(job_id, exc)
            self._wake.wait(max(0.0, wake_at - time.monotonic()))
            self._wake.clear()


class AutoSavepointJobs:
    """Schedules the tracker's jobs that set ``autoSavepointInterval`` (a job listener)."""

    def __init__(self, control: JobControl, default_dir: Callable[[], str]):
        self._control = control
        self._default_dir = default_dir
        self.scheduler = AutoSavepoints(take=self._take, report=self._failed)
        self._taken: dict[str, list[str]] = {}  # automatic savepoints by cell (journal key)

    def job_tracked(self, job: TrackedJob) -> None:
        if job.auto_savepoint_s and not job.batch:
            self.scheduler.add(job.job_id, job.auto_savepoint_s,
                               job.savepoint_dir or self._default_dir())

    def job_changed(self, job: TrackedJob, *, urgent: bool) -> None:
        pass

    def job_ended(self, job: TrackedJob) -> None:
        self.scheduler.remove(job.job_id)

    def close(self) -> None:
        self.scheduler.close()

    def _take(self, job_id: str, target_dir: str) -> None:
        tracker = self._control.tracker
        rest = tracker.clients.get("autosave")
        location = self._control.automatic_savepoint(job_id, target_dir, rest=rest)
        if location is None:
            return  # the job is being stopped, or another savepoint of it is under way
        deleted = self._retain(job_id, location)
        gone = f"; {len(deleted)} older automatic one(s) deleted" if deleted else ""
        tracker.note(job_id, f"Automatic savepoint taken at {time.strftime('%H:%M:%S')}: "
                             f"{location}{gone}.")

    def _retain(self, job_id: str, location: str) -> list[str]:
        """Delete the cell's automatic savepoints beyond ``autoSavepointRetain``, newest
        kept; never the one recorded as ``savepoint_path`` nor one a running job restored
        from (the operator's ``savepoint.history.max.count``). Returns what was deleted."""
        tracker = self._control.tracker
        job = tracker.registry.get(job_id)
        if job is None:
            return []
        taken = self._taken.setdefault(job.owner.key, [])
        taken.insert(0, location)
        record = tracker.recorded(job.owner) or {}
        in_history = [e["path"] for e in record.get("history") or []
                      if isinstance(e, dict) and e.get("origin") == "automatic"]
        automatic = list(dict.fromkeys(taken + in_history))  # newest first, once each
        protected = [record.get("savepoint_path"), location] + [
            j.restored_from for j in tracker.registry.active()]
        deleted = []
        for path in automatic[job.auto_savepoint_retain:]:
            if any(same_place(path, keep) for keep in protected):
                continue
            try:
                delete_restore_point(path)
            except OSError as exc:
                log.warning("could not delete the automatic savepoint %s: %s", path, exc)
                continue
            deleted.append(path)
        if deleted:
            self._taken[job.owner.key] = [p for p in taken if p not in deleted]
            tracker.forget(job.owner, deleted)
        return deleted

    def _failed(self, job_id: str, exc: Exception) -> None:
        self._control.tracker.note(job_id, f"The automatic savepoint failed "
                                   f"({getattr(exc, 'message', exc)}); the next one is still "
                                   "scheduled.")
