"""What one poll of a job changes in what the kernel knows about it.

Pure functions of the previous :class:`~jupyter_flink.jobs.registry.TrackedJob` and a new
:class:`~jupyter_flink.jobs.poller.Observation`, so the rules can be tested without Flink:

* an answer sent before a job ended never brings it back to life;
* a new completed checkpoint's path is to be recorded (one that Flink keeps only in the
  JobManager's memory has no path: the job gets a notice instead);
* restarts are counted from the exception history, and the notice says what Flink restored
  (or that there was nothing to restore from).
"""

from __future__ import annotations

from typing import Any

from .poller import Observation
from .registry import TERMINAL_STATES, TrackedJob

__all__ = ["NOT_ADDRESSABLE", "UNREACHABLE", "UNREACHABLE_PREFIX", "changes_from"]

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
    latest = obs.latest
    if latest is not None:
        changes["last_checkpoint_ms"] = latest.latest_ack_timestamp
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
