"""Periodic savepoints of running jobs (``autoSavepointInterval``, as flink-operator's
``autoSavePointSeconds``), each recorded as the cell's ``savepoint_path``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

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

    def close(self) -> None:
        self._stop.set()
        self._wake.set()

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
