"""Small typed views of Flink's REST answers, for the poller, the health monitor and the magics.

They read the JSON of ``GET /jobs/{id}/checkpoints`` (Flink's ``CheckpointingStatistics``),
``GET /jobs/{id}/savepoints/{request-id}`` (``AsynchronousOperationResult``), the jobs and
cluster overviews, a job's details (its vertices and plan) and aggregated subtask metrics,
shapes checked against Flink 2.3.0. Missing or null fields give None rather than errors: a job
without checkpointing answers with all-zero counts and ``latest`` entries of null.

A checkpoint taken without ``execution.checkpointing.dir`` lives only in the JobManager's
memory; Flink reports its path as ``<checkpoint-not-externally-addressable>``. The views
turn that into ``external_path=None, addressable=False`` so nobody records it as a path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
        status = str(_mapping(body.get("status")).get("id") or "IN_PROGRESS")
        operation = _mapping(body.get("operation"))
        cause = _mapping(operation.get("failure-cause"))
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
    entries = _mapping(_mapping(exceptions).get("exceptionHistory")).get("entries")
    if not isinstance(entries, list) or not entries:
        return None
    entry = max((_mapping(e) for e in entries), key=lambda e: _int(e.get("timestamp")))
    trace = str(entry.get("stacktrace") or "")
    message = summarize_java_trace(trace) or str(entry.get("exceptionName") or "unknown failure")
    task = entry.get("taskName")
    return JobFailure(message, trace, _int(entry.get("timestamp")), str(task) if task else None)


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
    entries = _mapping(_mapping(exceptions).get("exceptionHistory")).get("entries")
    return len(entries) if isinstance(entries, list) else 0


def latest_checkpoint(checkpoints: Mapping[str, Any]) -> CheckpointInfo | None:
    """The latest completed checkpoint (``latest.completed``; savepoints are not included)."""
    return _checkpoint(_latest(checkpoints).get("completed"))


def latest_savepoint(checkpoints: Mapping[str, Any]) -> CheckpointInfo | None:
    """The latest completed savepoint of the job (``latest.savepoint``)."""
    return _checkpoint(_latest(checkpoints).get("savepoint"))


def restored_from(checkpoints: Mapping[str, Any]) -> RestoreInfo | None:
    """What the job last restored from (``latest.restored``), or None for a fresh start."""
    entry = _mapping(_latest(checkpoints).get("restored"))
    if not entry:
        return None
    path, addressable = _path(entry.get("external_path"))
    return RestoreInfo(
        id=_int(entry.get("id")),
        external_path=path,
        addressable=addressable,
        is_savepoint=bool(entry.get("is_savepoint")),
        restore_timestamp=_int(entry.get("restore_timestamp")),
    )


def checkpoint_interval_ms(checkpoint_config: Mapping[str, Any]) -> int | None:
    """The checkpoint interval of ``GET /jobs/{id}/checkpoints/config``, None if disabled.

    Flink reports a job without checkpointing with an interval of Long.MAX_VALUE.
    """
    interval = _int(_mapping(checkpoint_config).get("interval"))
    return interval if 0 < interval < _JAVA_LONG_MAX else None


def checkpoint_counts(checkpoints: Mapping[str, Any]) -> CheckpointCounts:
    counts = _mapping(checkpoints.get("counts"))
    return CheckpointCounts(
        completed=_int(counts.get("completed")),
        failed=_int(counts.get("failed")),
        in_progress=_int(counts.get("in_progress")),
        restored=_int(counts.get("restored")),
        total=_int(counts.get("total")),
    )


def _checkpoint(entry: Any) -> CheckpointInfo | None:
    entry = _mapping(entry)
    if not entry:
        return None
    path, addressable = _path(entry.get("external_path"))
    return CheckpointInfo(
        id=_int(entry.get("id")),
        status=str(entry.get("status") or "COMPLETED"),
        is_savepoint=bool(entry.get("is_savepoint")),
        external_path=path,
        addressable=addressable,
        trigger_timestamp=_int(entry.get("trigger_timestamp")),
        latest_ack_timestamp=_int(entry.get("latest_ack_timestamp")),
        checkpoint_type=entry.get("checkpoint_type"),
        discarded=bool(entry.get("discarded")),
        duration_ms=max(0, _int(entry.get("end_to_end_duration"))),
        state_size=max(0, _int(entry.get("state_size"))),
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
    entries = _mapping(checkpoints).get("history")
    if not isinstance(entries, list):
        return ()
    stats = [_stat(_mapping(entry)) for entry in entries
             if isinstance(entry, Mapping) and not entry.get("is_savepoint")]
    return tuple(sorted(stats, key=lambda stat: stat.id, reverse=True))


def latest_failed_checkpoint(checkpoints: Mapping[str, Any]) -> CheckpointStat | None:
    """The newest failed checkpoint that Flink has an entry for (``latest.failed``)."""
    entry = _mapping(_latest(checkpoints).get("failed"))
    return _stat(entry) if entry else None


def _stat(entry: Mapping[str, Any]) -> CheckpointStat:
    message = entry.get("failure_message")
    return CheckpointStat(
        id=_int(entry.get("id")),
        status=str(entry.get("status") or "UNKNOWN"),
        trigger_timestamp=_int(entry.get("trigger_timestamp")),
        duration_ms=max(0, _int(entry.get("end_to_end_duration"))),
        state_size=max(0, _int(entry.get("state_size"))),
        failure_message=str(message) if message else None,
    )


@dataclass(frozen=True)
class TaskCounts:
    """How many of a job's tasks are in which state (``tasks`` of ``GET /jobs/overview``)."""

    total: int
    running: int
    scheduled: int  # waiting for a slot
    waiting: int  # created, scheduled, deploying or initializing: not running yet
    finished_or_ending: int = 0  # finished, canceling, canceled, failed

    @property
    def all_running(self) -> bool:
        return self.total > 0 and self.running + self.finished_or_ending >= self.total


def task_counts(job_overview: Mapping[str, Any]) -> TaskCounts | None:
    """The task counts of one entry of ``GET /jobs/overview`` (None if it has none), or of
    a job's details (``GET /jobs/{id}``: ``status-counts``)."""
    body = _mapping(job_overview)
    tasks = _mapping(body.get("tasks")) or _mapping(body.get("status-counts"))
    if not tasks:
        return None
    count = {str(key).lower(): _int(value) for key, value in tasks.items()}
    count.setdefault("total", sum(count.values()))
    waiting = sum(count.get(key, 0) for key in ("created", "scheduled", "deploying",
                                                 "initializing", "reconciling"))
    ending = sum(count.get(key, 0) for key in ("finished", "canceling", "canceled", "failed"))
    return TaskCounts(total=count.get("total", 0), running=count.get("running", 0),
                      scheduled=count.get("scheduled", 0), waiting=waiting,
                      finished_or_ending=ending)


@dataclass(frozen=True)
class SlotCounts:
    """The task slots of a cluster (``GET /overview``)."""

    total: int
    available: int


def slot_counts(overview: Mapping[str, Any]) -> SlotCounts:
    body = _mapping(overview)
    return SlotCounts(total=_int(body.get("slots-total")),
                      available=_int(body.get("slots-available")))


@dataclass(frozen=True)
class Vertex:
    """One task of a job graph: a chain of operators, run by ``parallelism`` subtasks."""

    id: str
    name: str
    parallelism: int
    inputs: tuple[str, ...]  # ids of the vertices it reads from

    @property
    def operators(self) -> tuple[str, ...]:
        """The chained operators' names, in order (Flink names a vertex "a -> b -> c")."""
        return tuple(part.strip() for part in self.name.split(" -> ") if part.strip())


@dataclass(frozen=True)
class JobGraph:
    """A job's vertices and how they connect (``GET /jobs/{id}``: ``vertices`` and ``plan``)."""

    vertices: tuple[Vertex, ...]

    @property
    def sources(self) -> tuple[Vertex, ...]:
        """The vertices that read from no other vertex: where records enter the job."""
        return tuple(vertex for vertex in self.vertices if not vertex.inputs)

    @property
    def sinks(self) -> tuple[Vertex, ...]:
        """The vertices no other vertex reads from: where records leave the job."""
        read = {source for vertex in self.vertices for source in vertex.inputs}
        return tuple(vertex for vertex in self.vertices if vertex.id not in read)


def job_graph(details: Mapping[str, Any]) -> JobGraph:
    """The graph of ``GET /jobs/{id}``: vertices in Flink's order, inputs from the plan."""
    body = _mapping(details)
    inputs: dict[str, tuple[str, ...]] = {}
    nodes = _mapping(body.get("plan")).get("nodes")
    for node in nodes if isinstance(nodes, list) else []:
        node = _mapping(node)
        edges = node.get("inputs")
        inputs[str(node.get("id"))] = tuple(
            str(_mapping(edge).get("id")) for edge in edges if _mapping(edge).get("id")
        ) if isinstance(edges, list) else ()
    vertices = body.get("vertices")
    return JobGraph(tuple(
        Vertex(id=str(vertex.get("id")), name=str(vertex.get("name") or ""),
               parallelism=_int(vertex.get("parallelism")),
               inputs=inputs.get(str(vertex.get("id")), ()))
        for vertex in (_mapping(v) for v in (vertices if isinstance(vertices, list) else []))
        if vertex.get("id")))


# Flink reports a watermark that has not been set yet as Long.MIN_VALUE.
_NO_WATERMARK = -(2**63) + 1


def aggregated_metrics(body: Any) -> dict[str, dict[str, float]]:
    """``GET .../subtasks/metrics?get=...&agg=...`` as ``{metric: {"min": .., "max": ..}}``.

    Values Flink cannot compute ("NaN", e.g. a source task's busy time) are left out, and
    so is a watermark that was never set.
    """
    result: dict[str, dict[str, float]] = {}
    for entry in body if isinstance(body, list) else []:
        entry = _mapping(entry)
        name = entry.get("id")
        if not isinstance(name, str):
            continue
        values = {}
        for agg in ("min", "max", "avg", "sum", "skew"):
            value = _float(entry.get(agg))
            if value is not None and not (name.endswith("Watermark")
                                          and value <= _NO_WATERMARK):
                values[agg] = value
        if values:
            result[name] = values
    return result


def metric_names(body: Any) -> tuple[str, ...]:
    """The names ``GET .../subtasks/metrics`` (without ``get``) lists."""
    return tuple(str(_mapping(entry).get("id")) for entry in (body if isinstance(body, list)
                                                              else [])
                 if _mapping(entry).get("id"))


def operator_metric(names: tuple[str, ...], operator: str, metric: str) -> str | None:
    """The name under which Flink reports ``metric`` of the chained ``operator``.

    Flink prefixes an operator's metrics with its name, cut to 80 characters and with what
    is not a letter, digit or bracket replaced ("Source: src[1]" becomes "Source__src[1]").
    """
    wanted = _metric_key(operator)
    suffix = "." + metric
    for name in names:
        if not name.endswith(suffix) or not wanted:
            continue
        prefix = name[:-len(suffix)]
        key = _metric_key(prefix)
        if key == wanted or (len(prefix) >= _OPERATOR_NAME_LIMIT and key and
                             wanted.startswith(key)):
            return name
    return None


_OPERATOR_NAME_LIMIT = 80  # Flink's metrics cut operator names to this length


def _metric_key(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z\[\]]", "", name)


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and number not in (float("inf"), float("-inf")) else None


def _path(value: Any) -> tuple[str | None, bool]:
    if not value or value == NOT_EXTERNALLY_ADDRESSABLE:
        return None, False
    return str(value), True


def _latest(checkpoints: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(_mapping(checkpoints).get("latest"))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
