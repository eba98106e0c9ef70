"""What one poll of a job changes in what the kernel knows about it.

Pure functions of the previous :class:`~jupyter_flink.jobs.registry.TrackedJob` and a new
:class:`~jupyter_flink.jobs.poller.Observation`, so the rules can be tested without Flink:

* an answer sent before a job ended never brings it back to life;
* a new completed checkpoint's path is to be recorded (one that Flink keeps only in the
  JobManager's memory has no path: the job gets a notice instead);
* restarts are counted from the exception history, and the notice says what Flink restored
  (or that there was nothing to restore from);
* a failed checkpoint gets its reason in a few words: Flink's message for one it listed, "not
  all tasks running yet" for one it failed as it was triggered while tasks were starting
  (Flink counts those without listing them, so they have no message).
"""

from __future__ import annotations

import re
from typing import Any

from ..rest import CheckpointStat
from .poller import Observation
from .registry import TERMINAL_STATES, TrackedJob

__all__ = ["NOT_ADDRESSABLE", "UNREACHABLE", "UNREACHABLE_PREFIX", "changes_from",
           "checkpoint_failure_reason"]

UNREACHABLE_PREFIX = "Flink's REST API at"
UNREACHABLE = UNREACHABLE_PREFIX + " {url} is unreachable"
NOTHING_RESTORED = "; no checkpoint to restore from."
NOT_ADDRESSABLE = ("Checkpoints of this job are not written to a file system, so there is no "
                   "path to record: set execution.checkpointing.dir in %%flink.conf.")


def changes_from(previous: TrackedJob, obs: Observation) -> dict[str, Any] | None:
    """The fields ``obs`` changes in ``previous`` (None: it must be ignored)."""
    if previous.ended and obs.state not in TERMINAL_STATES:
        return None  # an answer sent before the job ended must not bring it back to life
    changes: dict[str, Any] = {
        "state": obs.state, "start_time_ms": obs.start_time_ms,
        "end_time_ms": obs.end_time_ms, "checkpoints_completed": obs.completed,
        "checkpoints_failed": obs.failed, "checkpoints_in_progress": obs.in_progress,
        "restored_count": obs.restored,
    }
    if previous.unreachable_since is not None:
        changes["unreachable_since"] = None
    if previous.notice and previous.notice.startswith(UNREACHABLE_PREFIX):
        changes["notice"] = None  # reachable again
    if obs.tasks is not None:
        changes.update(tasks=obs.tasks, slots=obs.slots)
    if obs.history is not None:
        changes["recent_checkpoints"] = obs.history
    changes.update(_checkpoint_failure(previous, obs))
    latest = obs.latest
    if latest is not None:
        changes["last_checkpoint_ms"] = latest.latest_ack_timestamp
        changes["checkpoint_duration_ms"] = latest.duration_ms
        changes["checkpoint_size"] = latest.state_size
        if latest.external_path is None:
            changes["notice"] = NOT_ADDRESSABLE
        elif latest.external_path != previous.latest_checkpoint_path:
            changes["latest_checkpoint_path"] = latest.external_path
    restored = obs.restored_from.external_path if obs.restored_from else None
    restarts = max(0, obs.failures - (1 if obs.state == "FAILED" else 0)) \
        if obs.failures is not None else previous.restarts
    if restarts > previous.restarts:
        # The exception history can lag behind the restore count (REST caches it),
        # so compare with the count when the last restart was reported.
        changes.update(restarts=restarts, restored_at_last_restart=obs.restored)
        changes["notice"] = (
            f"Restarted by Flink ({restarts} so far) after: {obs.last_failure}"
            + (f"; restored from {restored}." if restored and obs.restored >
               previous.restored_at_last_restart else NOTHING_RESTORED))
    elif restored and obs.restored > previous.restored_at_last_restart and \
            previous.notice and previous.notice.endswith(NOTHING_RESTORED):
        # Flink restarts after its restart delay, so what it restored shows only then.
        changes.update(restored_at_last_restart=obs.restored, notice=previous.notice[
            :-len(NOTHING_RESTORED)] + f"; restored from {restored}.")
    return changes


def _checkpoint_failure(previous: TrackedJob, obs: Observation) -> dict[str, Any]:
    """The reason of a checkpoint that failed since ``previous`` (nothing if none did)."""
    if obs.failed <= previous.checkpoints_failed:
        return {}
    listed = obs.last_failed
    if listed is not None and listed.id != previous.last_failed_checkpoint_id:
        return {"checkpoint_failure": checkpoint_failure_reason(listed),
                "checkpoint_failure_ms": listed.ended_at_ms,
                "last_failed_checkpoint_id": listed.id}
    # Failed as it was triggered: Flink counts it but keeps no entry, hence no message. The
    # usual cause is tasks that are not all running: the job starts (no checkpoint has
    # completed yet) or restarts.
    tasks = [counts for counts in (previous.tasks, obs.tasks) if counts is not None]
    starting = obs.state != "RUNNING" or previous.checkpoints_completed == 0 or \
        any(not counts.all_running for counts in tasks)
    return {"checkpoint_failure": "not all tasks running yet" if starting else
            "failed as it was triggered (Flink keeps no reason for those)",
            "checkpoint_failure_ms": int(obs.observed_at * 1000)}


# Flink's CheckpointFailureReason messages, as a user would say them.
_REASONS = (
    ("checkpoint expired before completing", "expired after {duration}"),
    ("not all required tasks are currently running", "not all tasks running yet"),
    ("checkpoint was declined (tasks not ready)", "not all tasks running yet"),
    ("checkpoint was declined (task is closing)", "a task was finishing"),
    ("checkpoint was canceled because a barrier from newer checkpoint", "overtaken by a newer "
                                                                          "checkpoint"),
    ("checkpoint has been subsumed", "overtaken by a newer checkpoint"),
    ("checkpoint coordinator is suspending", "the job was restarting"),
    ("checkpointcoordinator shutdown", "the job was stopping"),
    ("failoverregion is cancelling", "the job was restarting"),
    ("task received cancellation from one of its inputs", "a task was cancelled"),
    ("asynchronous task checkpoint failed", "a task could not write its state"),
    ("task local checkpoint failure", "a task could not write its state"),
    ("failure to finalize checkpoint", "its metadata could not be written"),
    ("the maximum number of queued checkpoint requests exceeded", "too many checkpoints queued"),
)


def checkpoint_failure_reason(stat: CheckpointStat) -> str:
    """Why ``stat`` failed, in a few words ("expired after 10 min")."""
    message = " ".join((stat.failure_message or "").split())
    lowered = message.lower()
    for prefix, reason in _REASONS:
        if lowered.startswith(prefix):
            return reason.format(duration=_duration_text(stat.duration_ms))
    if not message:
        return "Flink gave no reason"
    first = re.split(r"(?<=\.)\s", message, maxsplit=1)[0].rstrip(".")
    first = first[:1].lower() + first[1:]
    return first if len(first) <= 160 else first[:159] + "\u2026"


def _duration_text(millis: int) -> str:
    """10 min, 3 s, 1 h 5 min: a timeout as people say it."""
    seconds = round(millis / 1000)
    if seconds < 120:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 120:
        return f"{minutes} min" + (f" {rest} s" if rest else "")
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h" + (f" {minutes} min" if minutes else "")
