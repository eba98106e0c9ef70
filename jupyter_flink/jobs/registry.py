"""The jobs of a kernel: who owns each one and what is known about it.

A cell owns at most one job at a time. Outside a notebook (a plain IPython shell) the job
name stands in for the cell. The registry is shared by the kernel thread (cells, magics) and
the poller thread, so it hands out consistent snapshots under a lock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

from ..rest import CheckpointStat, SlotCounts, TaskCounts

# The cluster no longer knows the job (e.g. it was restarted without high availability).
LOST = "LOST"
# Flink's JobStatus values in which a job will not change any more, and ours.
TERMINAL_STATES = frozenset({"FINISHED", "CANCELED", "FAILED", "SUSPENDED", LOST})
# Globally terminal plus the states where it is still shutting down.
ENDING_STATES = TERMINAL_STATES | {"CANCELLING", "FAILING"}


@dataclass(frozen=True)
class Owner:
    """The cell (or, outside notebooks, the job name) a job belongs to."""

    notebook_path: str | None
    cell_id: str | None
    job_name: str

    @property
    def key(self) -> str:
        """The journal key: the cell id, else ``job:<name>``."""
        return self.cell_id or f"job:{self.job_name}"


@dataclass
class TrackedJob:
    """What the kernel knows about one Flink job (mutated only through the registry)."""

    job_id: str
    name: str
    owner: Owner
    batch: bool = False
    savepoint_dir: str | None = None  # the cell's savepointDir: a cancel takes a savepoint
    restored_from: str | None = None
    restore_reason: str | None = None
    auto_savepoint_s: float | None = None
    auto_savepoint_retain: int = 5
    submitted_at: float = field(default_factory=time.time)
    state: str = "CREATED"
    start_time_ms: int | None = None
    end_time_ms: int | None = None
    checkpoints_completed: int = 0
    checkpoints_failed: int = 0
    checkpoints_in_progress: int = 0
    last_checkpoint_ms: int | None = None  # latest_ack_timestamp of the latest completed one
    latest_checkpoint_path: str | None = None
    savepoint_path: str | None = None
    restored_count: int = 0
    restarts: int = 0
    restored_at_last_restart: int = 0
    failure: str | None = None
    notice: str | None = None  # e.g. "cluster unreachable since 10:02:03"
    unreachable_since: float | None = None  # time.time() of the first failed poll in a row
    recording_problem: str | None = None  # the journal cannot be written, and where to instead
    restore_failed: str | None = None  # the saved state did not fit: why, in one line
    tasks: TaskCounts | None = None  # how many tasks run (the jobs overview)
    slots: SlotCounts | None = None  # the cluster's slots, known while tasks wait for one
    checkpoint_duration_ms: int | None = None  # of the latest completed checkpoint
    checkpoint_size: int | None = None  # bytes of state the latest completed one covers
    checkpoint_failure: str | None = None  # why the last failed checkpoint failed, one line
    checkpoint_failure_ms: int | None = None  # when it failed (epoch ms)
    last_failed_checkpoint_id: int | None = None  # Flink's id of it, if Flink listed it
    recent_checkpoints: tuple[CheckpointStat, ...] = ()  # Flink's history, newest first
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def ended(self) -> bool:
        return self.state in TERMINAL_STATES

    def uptime_seconds(self, now_ms: int | None = None) -> float | None:
        if self.start_time_ms is None:
            return None
        end = self.end_time_ms or now_ms or int(time.time() * 1000)
        return max(0.0, (end - self.start_time_ms) / 1000)


class JobRegistry:
    """All jobs of this kernel, by id, and the job each cell currently owns."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._jobs: dict[str, TrackedJob] = {}
        self._by_owner: dict[str, str] = {}

    def add(self, job: TrackedJob) -> TrackedJob:
        with self._lock:
            self._jobs[job.job_id] = job
            self._by_owner[job.owner.key] = job.job_id
            return replace(job)

    def update(self, job_id: str, **changes: Any) -> TrackedJob | None:
        """Apply ``changes`` and return a snapshot (None if the job is unknown)."""
        result = self.transition(job_id, **changes)
        return result[1] if result else None

    def transition(self, job_id: str, **changes: Any
                   ) -> tuple[TrackedJob, TrackedJob] | None:
        """Apply ``changes`` atomically; returns (before, after) snapshots, so that exactly
        one caller sees a job end even when several threads report it."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            before = replace(job)
            for name, value in changes.items():
                setattr(job, name, value)
            return before, replace(job)

    def get(self, job_id: str) -> TrackedJob | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return replace(job) if job else None

    def for_owner(self, owner: Owner) -> TrackedJob | None:
        with self._lock:
            job_id = self._by_owner.get(owner.key)
            return self.get(job_id) if job_id else None

    def all(self) -> list[TrackedJob]:
        with self._lock:
            return [replace(job) for job in self._jobs.values()]

    def active(self) -> list[TrackedJob]:
        return [job for job in self.all() if not job.ended]

    def count_active(self) -> int:
        with self._lock:
            return sum(1 for job in self._jobs.values() if not job.ended)

    def find(self, name_or_id: str) -> list[TrackedJob]:
        """Jobs whose id starts with, or whose name equals, ``name_or_id`` (newest first)."""
        needle = name_or_id.strip()
        jobs = sorted(self.all(), key=lambda j: j.submitted_at, reverse=True)
        exact = [j for j in jobs if j.job_id == needle]
        if exact:
            return exact
        named = [j for j in jobs if j.name == needle]
        if named:
            return named
        return [j for j in jobs if len(needle) >= 4 and j.job_id.startswith(needle)]
