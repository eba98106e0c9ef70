"""What a job's output says, as data: the JSON of our MIME type, and the lines both the HTML
and the plain text show.

The JSON (:data:`MIME_TYPE`) is what the jupyter-flink labextension renders, in the display
bundle beside ``text/html`` and ``text/plain`` and in the messages of the jobs comm. It holds
the job's facts as the kernel saw them at ``observed_ms``, and which kernel process saw them
(``kernel``: a frontend that finds another kernel there knows this one was restarted)::

    {"version": 1, "kernel": "<id of this kernel process>", "cluster": "embedded",
     "job_id": "...", "name": "word_count", "cell_id": "...", "state": "RUNNING",
     "state_detail": "3/4 tasks running", "start_time_ms": ..., "end_time_ms": null,
     "observed_ms": ..., "checkpoints": {"completed": 12, "failed": 1, "in_progress": 0,
     "last_ms": ..., "duration_ms": 40, "size": 5961, "failure": "expired after 10 min",
     "failure_ms": ...}, "latest_checkpoint_path": ..., "savepoint_path": ...,
     "restored_from": ..., "restore_reason": ..., "auto_savepoint_s": ..., "restarts": 0,
     "failure": ..., "notice": ..., "recording_problem": ...,
     "health": {"latest": {...}, "busiest": "...", "series": {...}} or null}

``health.series`` (the charts' points) travels only in comm messages; display bundles carry
the latest numbers alone, to keep the outputs saved in the notebook small.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..jobs.health import JobHealth
from ..jobs.registry import TrackedJob
from ..secrets import mask
from .formatting import format_duration, format_time_ms

__all__ = ["MIME_TYPE", "PAYLOAD_VERSION", "TABLE_MIME_TYPE", "KernelFacts", "checkpoint_text",
           "format_bytes", "format_millis", "format_rate", "health_text", "job_payload",
           "state_detail"]

MIME_TYPE = "application/vnd.jupyter-flink.job+json"
TABLE_MIME_TYPE = "application/vnd.jupyter-flink.table+json"
PAYLOAD_VERSION = 1


@dataclass(frozen=True)
class KernelFacts:
    """What every output of this kernel says about where it comes from."""

    instance: str = field(default_factory=lambda: uuid.uuid4().hex)
    cluster: Callable[[], str] = lambda: "embedded"  # or "remote"


def state_detail(job: TrackedJob, cluster: str) -> str | None:
    """What RUNNING does not tell: tasks still starting, or waiting for a slot."""
    tasks = job.tasks
    if job.state != "RUNNING" or tasks is None or tasks.all_running:
        return None
    slots = job.slots
    if tasks.scheduled and slots is not None and slots.available == 0:
        if cluster == "embedded":
            return (f"waiting for a free slot: the embedded cluster has {slots.total}; raise "
                    "taskmanager.numberOfTaskSlots")
        return f"waiting for a free slot: all {slots.total} slots of the cluster are taken"
    return f"{tasks.running}/{tasks.total} tasks running"


def checkpoint_text(job: TrackedJob) -> str:
    text = (f"{job.checkpoints_completed} completed, {job.checkpoints_failed} failed, last at "
            f"{format_time_ms(job.last_checkpoint_ms)}")
    if job.checkpoint_duration_ms is not None and job.checkpoints_completed:
        text += f" (took {format_millis(job.checkpoint_duration_ms)}"
        if job.checkpoint_size is not None:
            text += f", {format_bytes(job.checkpoint_size)}"
        text += ")"
    if job.checkpoint_failure and job.checkpoints_failed:
        text += (f"; last failed at {format_time_ms(job.checkpoint_failure_ms)}: "
                 f"{job.checkpoint_failure}")
    return text


def health_text(health: JobHealth | None) -> str | None:
    """The latest sample in one line: "in 45/s · out 45/s · busiest task 100% busy ..."."""
    sample = health.latest if health is not None else None
    if sample is None:
        return None
    parts = []
    if sample.records_in is not None:
        parts.append(f"in {format_rate(sample.records_in)}")
    if sample.records_out is not None:
        parts.append(f"out {format_rate(sample.records_out)}")
    if sample.busy is not None or sample.backpressured is not None:
        shares = []
        if sample.busy is not None:
            shares.append(f"{sample.busy:.0%} busy")
        if sample.backpressured is not None:
            shares.append(f"{sample.backpressured:.0%} backpressured")
        parts.append("busiest task " + ", ".join(shares))
    if sample.watermark_lag_ms is not None:
        parts.append(f"watermark lag {format_millis(sample.watermark_lag_ms)}")
    return " \u00b7 ".join(parts) or None


def job_payload(job: TrackedJob, kernel: KernelFacts, health: JobHealth | None, *,
                now_ms: int, series: bool) -> dict[str, Any]:
    """The JSON of :data:`MIME_TYPE` (see the module docstring); secrets in its texts (URL
    credentials, values of ${env:...} references, e.g. in a job's name) masked, as in the
    text and HTML renderings: it is saved in the notebook and sent to every frontend."""
    cluster = kernel.cluster()
    return _masked({
        "version": PAYLOAD_VERSION,
        "kernel": kernel.instance,
        "cluster": cluster,
        "job_id": job.job_id,
        "name": job.name,
        "cell_id": job.owner.cell_id,
        "state": job.state,
        "state_detail": state_detail(job, cluster),
        "batch": job.batch,
        "start_time_ms": job.start_time_ms,
        "end_time_ms": job.end_time_ms,
        "observed_ms": now_ms,
        "checkpoints": {
            "completed": job.checkpoints_completed,
            "failed": job.checkpoints_failed,
            "in_progress": job.checkpoints_in_progress,
            "last_ms": job.last_checkpoint_ms,
            "duration_ms": job.checkpoint_duration_ms,
            "size": job.checkpoint_size,
            "failure": job.checkpoint_failure if job.checkpoints_failed else None,
            "failure_ms": job.checkpoint_failure_ms if job.checkpoints_failed else None,
        },
        "latest_checkpoint_path": job.latest_checkpoint_path,
        "savepoint_path": job.savepoint_path,
        "savepoint_dir": job.savepoint_dir,
        "restored_from": job.restored_from,
        "restore_reason": job.restore_reason,
        "auto_savepoint_s": job.auto_savepoint_s,
        "restarts": job.restarts,
        "failure": job.failure,
        "notice": job.notice,
        "recording_problem": job.recording_problem,
        "health": _health(health, series) if health is not None and
        job.state == "RUNNING" else None,
    })


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    return value


def _health(health: JobHealth, series: bool) -> dict[str, Any] | None:
    latest = health.latest
    if latest is None and not health.checkpoints:
        return None
    result: dict[str, Any] = {
        "latest": None if latest is None else {
            "at_ms": latest.at_ms, "in": latest.records_in, "out": latest.records_out,
            "busy": latest.busy, "backpressured": latest.backpressured,
            "watermark_lag_ms": latest.watermark_lag_ms},
        "busiest": health.busiest,
    }
    if series:
        samples = health.samples
        result["series"] = {
            "t": [s.at_ms for s in samples],
            "in": [_round(s.records_in) for s in samples],
            "out": [_round(s.records_out) for s in samples],
            "busy": [_round(s.busy, 3) for s in samples],
            "backpressured": [_round(s.backpressured, 3) for s in samples],
            "watermark_lag_ms": [s.watermark_lag_ms for s in samples],
        }
        result["checkpoints"] = {
            "t": [point.at_ms for point in health.checkpoints],
            "duration_ms": [point.duration_ms for point in health.checkpoints],
            "size": [point.size for point in health.checkpoints],
        }
    return result


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def format_rate(per_second: float) -> str:
    """Records per second: 0.5/s, 45/s, 12.3k/s, 1.2M/s."""
    if per_second >= 1e6:
        return f"{per_second / 1e6:.1f}M/s"
    if per_second >= 1e4:
        return f"{per_second / 1e3:.0f}k/s"
    if per_second >= 1e3:
        return f"{per_second / 1e3:.1f}k/s"
    if per_second >= 10:
        return f"{per_second:.0f}/s"
    return f"{per_second:.1f}/s"


def format_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # not reached


def format_millis(millis: int | float) -> str:
    """40 ms, 1.2 s, 3m 05s."""
    if millis < 1000:
        return f"{millis:.0f} ms"
    if millis < 60_000:
        return f"{millis / 1000:.1f} s"
    return format_duration(millis / 1000)
