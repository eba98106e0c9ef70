"""Small typed views of Flink's REST answers, for the poller and the magics.

They read the JSON of ``GET /jobs/{id}/checkpoints`` (Flink's ``CheckpointingStatistics``),
``GET /jobs/{id}/savepoints/{request-id}`` (``AsynchronousOperationResult``) and a job's
exception history, shapes checked against Flink 2.3.0. Missing or null fields give None
rather than errors: a job without checkpointing answers with all-zero counts and ``latest``
entries of null.

A checkpoint taken without ``execution.checkpointing.dir`` lives only in the JobManager's
memory; Flink reports its path as ``<checkpoint-not-externally-addressable>``. The views
turn that into ``external_path=None, addressable=False`` so nobody records it as a path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .fields import as_int, as_mapping
from .traces import summarize_java_trace

NOT_EXTERNALLY_ADDRESSABLE = "<checkpoint-not-externally-addressable>"
_JAVA_LONG_MAX = 2**63 - 1
NO_CHECKPOINT_DIR_FIX = (
    "Set execution.checkpointing.dir (e.g. file:///tmp/flink-checkpoints) in %%flink.conf "
    "so that checkpoints are written to storage and can be resumed from."
)


@dataclass(frozen=True)
class CheckpointInfo:
    """One completed checkpoint or savepoint (timestamps in epoch milliseconds)."""

    id: int
    status: str
    is_savepoint: bool
    external_path: str | None
    addressable: bool
    trigger_timestamp: int
    latest_ack_timestamp: int
    checkpoint_type: str | None
    discarded: bool
    """Flink has deleted it: a checkpoint subsumed by a newer one, or of a job that ended
    without retained checkpoints (``execution.checkpointing.externalized-checkpoint-retention``)."""
    duration_ms: int = 0  # end_to_end_duration: trigger to the last acknowledgement
    state_size: int = 0  # bytes of state it covers (its full size, incremental or not)


@dataclass(frozen=True)
class RestoreInfo:
    """The checkpoint or savepoint a job was started (or restarted) from."""

    id: int
    external_path: str | None
    addressable: bool
    is_savepoint: bool
    restore_timestamp: int


@dataclass(frozen=True)
class CheckpointCounts:
    """``counts`` of the checkpoint statistics. ``restored`` counts restores, including
    restarts from the job's own checkpoints after a failure."""

    completed: int
    failed: int
    in_progress: int
    restored: int
    total: int


@dataclass(frozen=True)
class SavepointStatus:
    """The state of a triggered savepoint or stop-with-savepoint.

    ``status`` is ``IN_PROGRESS`` or ``COMPLETED``; a COMPLETED operation has either a
    ``location`` or a ``failure`` (one line) with Flink's Java stack trace in ``failure_trace``.
    """

    status: str
    location: str | None = None
    failure: str | None = None
    failure_trace: str | None = None

    @property
    def done(self) -> bool:
        return self.status == "COMPLETED"

    @property
    def succeeded(self) -> bool:
        return self.done and self.failure is None and self.location is not None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> SavepointStatus:
        status = str(as_mapping(body.get("status")).get("id") or "IN_PROGRESS")
        operation = as_mapping(body.get("operation"))
        cause = as_mapping(operation.get("failure-cause"))
        trace = cause.get("stack-trace") or None
        failure = None
        if cause:
            failure = summarize_java_trace(str(trace or "")) or str(cause.get("class") or "")
            failure = failure or "unknown failure"
        location = operation.get("location")
        return cls(status, str(location) if location else None, failure, trace)


@dataclass(frozen=True)
class JobFailure:
    """The latest entry of a job's exception history (``GET /jobs/{id}/exceptions``)."""

    message: str
    trace: str
    timestamp: int
    task_name: str | None


def latest_failure(exceptions: Mapping[str, Any]) -> JobFailure | None:
    """The most recent failure of a job, or None if it never failed."""
    entries = as_mapping(as_mapping(exceptions).get("exceptionHistory")).get("entries")
    if not isinstance(entries, list) or not entries:
        return None
    entry = max((as_mapping(e) for e in entries), key=lambda e: as_int(e.get("timestamp")))
    trace = str(entry.get("stacktrace") or "")
    message = summarize_java_trace(trace) or str(entry.get("exceptionName") or "unknown failure")
    task = entry.get("taskName")
    return JobFailure(message, trace, as_int(entry.get("timestamp")), str(task) if task else None)


# What Flink's tasks raise when restored state does not fit the operator that reads it (a
# state type changed: COUNT became AVG), or cannot be read at all. Measured on Flink 2.3 with
# the heap and RocksDB backends; "Error while getting state" alone is too generic.
_RESTORE_FAILURE = re.compile(
    r"StateMigrationException|must not be incompatible with the old state serializer"
    r"|Exception while creating StreamOperatorStateContext"
    r"|Could not restore (?:keyed|operator) state backend|Failed when trying to restore")


def restore_failure(exceptions: Mapping[str, Any]) -> JobFailure | None:
    """The latest failure, if it is one of restoring state (see _RESTORE_FAILURE)."""
    failure = latest_failure(exceptions)
    if failure is None or not _RESTORE_FAILURE.search(failure.trace):
        return None
    return failure


def failure_count(exceptions: Mapping[str, Any]) -> int:
    """How many failures the job's exception history holds (each restart adds one)."""
    entries = as_mapping(as_mapping(exceptions).get("exceptionHistory")).get("entries")
    return len(entries) if isinstance(entries, list) else 0


def latest_checkpoint(checkpoints: Mapping[str, Any]) -> CheckpointInfo | None:
    """The latest completed checkpoint (``latest.completed``; savepoints are not included)."""
    return _checkpoint(_latest(checkpoints).get("completed"))


def latest_savepoint(checkpoints: Mapping[str, Any]) -> CheckpointInfo | None:
    """The latest completed savepoint of the job (``latest.savepoint``)."""
    return _checkpoint(_latest(checkpoints).get("savepoint"))


def restored_from(checkpoints: Mapping[str, Any]) -> RestoreInfo | None:
    """What the job last restored from (``latest.restored``), or None for a fresh start."""
    entry = as_mapping(_latest(checkpoints).get("restored"))
    if not entry:
        return None
    path, addressable = _path(entry.get("external_path"))
    return RestoreInfo(
        id=as_int(entry.get("id")),
        external_path=path,
        addressable=addressable,
        is_savepoint=bool(entry.get("is_savepoint")),
        restore_timestamp=as_int(entry.get("restore_timestamp")),
    )


def checkpoint_interval_ms(checkpoint_config: Mapping[str, Any]) -> int | None:
    """The checkpoint interval of ``GET /jobs/{id}/checkpoints/config``, None if disabled.

    Flink reports a job without checkpointing with an interval of Long.MAX_VALUE.
    """
    interval = as_int(as_mapping(checkpoint_config).get("interval"))
    return interval if 0 < interval < _JAVA_LONG_MAX else None


def checkpoint_counts(checkpoints: Mapping[str, Any]) -> CheckpointCounts:
    counts = as_mapping(checkpoints.get("counts"))
    return CheckpointCounts(
        completed=as_int(counts.get("completed")),
        failed=as_int(counts.get("failed")),
        in_progress=as_int(counts.get("in_progress")),
        restored=as_int(counts.get("restored")),
        total=as_int(counts.get("total")),
    )


def _checkpoint(entry: Any) -> CheckpointInfo | None:
    entry = as_mapping(entry)
    if not entry:
        return None
    path, addressable = _path(entry.get("external_path"))
    return CheckpointInfo(
        id=as_int(entry.get("id")),
        status=str(entry.get("status") or "COMPLETED"),
        is_savepoint=bool(entry.get("is_savepoint")),
        external_path=path,
        addressable=addressable,
        trigger_timestamp=as_int(entry.get("trigger_timestamp")),
        latest_ack_timestamp=as_int(entry.get("latest_ack_timestamp")),
        checkpoint_type=entry.get("checkpoint_type"),
        discarded=bool(entry.get("discarded")),
        duration_ms=max(0, as_int(entry.get("end_to_end_duration"))),
        state_size=max(0, as_int(entry.get("state_size"))),
    )


@dataclass(frozen=True)
class CheckpointStat:
    """One entry of a job's checkpoint history: completed, failed or in progress.

    Flink keeps the newest ``web.checkpoints.history`` (10) of them. A checkpoint that
    failed before it started (e.g. "Not all required tasks are currently running") is only
    counted, never listed: it has no entry and so no failure message.
    """

    id: int
    status: str  # COMPLETED, FAILED or IN_PROGRESS
    trigger_timestamp: int
    duration_ms: int  # end_to_end_duration; of a failed one: until it failed
    state_size: int
    failure_message: str | None = None

    @property
    def ended_at_ms(self) -> int:
        return self.trigger_timestamp + self.duration_ms


def checkpoint_history(checkpoints: Mapping[str, Any]) -> tuple[CheckpointStat, ...]:
    """The checkpoints Flink still lists (``history``), newest first; savepoints left out."""
    entries = as_mapping(checkpoints).get("history")
    if not isinstance(entries, list):
        return ()
    stats = [_stat(as_mapping(entry)) for entry in entries
             if isinstance(entry, Mapping) and not entry.get("is_savepoint")]
    return tuple(sorted(stats, key=lambda stat: stat.id, reverse=True))


def latest_failed_checkpoint(checkpoints: Mapping[str, Any]) -> CheckpointStat | None:
    """The newest failed checkpoint that Flink has an entry for (``latest.failed``)."""
    entry = as_mapping(_latest(checkpoints).get("failed"))
    return _stat(entry) if entry else None


def _stat(entry: Mapping[str, Any]) -> CheckpointStat:
    message = entry.get("failure_message")
    return CheckpointStat(
        id=as_int(entry.get("id")),
        status=str(entry.get("status") or "UNKNOWN"),
        trigger_timestamp=as_int(entry.get("trigger_timestamp")),
        duration_ms=max(0, as_int(entry.get("end_to_end_duration"))),
        state_size=max(0, as_int(entry.get("state_size"))),
        failure_message=str(message) if message else None,
    )


def _path(value: Any) -> tuple[str | None, bool]:
    if not value or value == NOT_EXTERNALLY_ADDRESSABLE:
        return None, False
    return str(value), True


def _latest(checkpoints: Mapping[str, Any]) -> Mapping[str, Any]:
    return as_mapping(as_mapping(checkpoints).get("latest"))
