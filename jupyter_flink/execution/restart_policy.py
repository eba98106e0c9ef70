"""``restartPolicy=fromSavepointOnFailure``: a streaming cell whose job fails for good is run
again from its newest savepoint or checkpoint (flink-operator's ``FromSavePointOnFailure``).

The resubmission runs on a thread of its own, after a delay that grows with each attempt
(a lost TaskManager's slots come back, for instance: resubmitting at once may fail for want
of resources and use up the attempts), at most ``maxResubmits`` times. Its job takes over the
failed job's status output, which says why.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from ..jobs.registry import TrackedJob
from ..jobs.tracker import JobTracker
from ..recording.storage import newest_restore_point
from .run import CellRun

__all__ = ["RESUBMIT_DELAY_S", "Resubmitter"]

RESUBMIT_DELAY_S = 5.0  # times the attempt number


class Resubmitter:
    """Gives cells with the restart policy an ``on_failure`` that runs them again."""

    def __init__(self, tracker: JobTracker, rerun: Callable[[CellRun], Any], *,
                 delay_s: float = RESUBMIT_DELAY_S):
        self.tracker = tracker
        self._rerun = rerun  # runs a CellRun as a %%flink.ssql cell
        self.delay_s = delay_s

    def arm(self, run: CellRun) -> None:
        """Set ``run.on_failure`` if the cell asked to be resubmitted when its job fails."""
        if run.props.restart_policy == "fromSavepointOnFailure":
            run.on_failure = lambda failed: self._resubmit(run, failed)

    def _resubmit(self, run: CellRun, failed: TrackedJob) -> None:
        """Run the cell again from its newest savepoint or checkpoint (a background thread)."""
        props, attempt = run.props, run.attempt
        if attempt >= props.max_resubmits:
            self.tracker.note(failed.job_id, f"The job failed for good ({failed.failure}); "
                              f"it was resubmitted {attempt} times already (maxResubmits="
                              f"{props.max_resubmits}), so it stays stopped.")
            return
        delay = self.delay_s * (attempt + 1)
        self.tracker.note(failed.job_id, f"The job failed ({failed.failure}); resubmitting "
                          f"in {delay:.0f} s (restartPolicy=fromSavepointOnFailure).")
        time.sleep(delay)
        recorded = self.tracker.recorded(failed.owner) or {}
        path = newest_restore_point((recorded.get("savepoint_path"),
                                     recorded.get("latest_checkpoint_path")))
        again = CellRun(
            props=dataclasses.replace(props, resume_from_savepoint=False,
                                      resume_from_latest_checkpoint=False, restore_path=path),
            cell=dataclasses.replace(run.cell, metadata={}), text=run.text, say=run.say,
            takes_over=failed.job_id, attempt=attempt + 1, background_notes=[
                f"Resubmitted by restartPolicy=fromSavepointOnFailure ({attempt + 1} of "
                f"{props.max_resubmits}) after the previous job failed: {failed.failure}; "
                + (f"starting from {path}." if path else "nothing to restore from, so "
                   "without state.")])
        self.arm(again)
        try:
            self._rerun(again)
        except Exception as exc:  # shown where the cell's output is, not raised on a thread
            self.tracker.note(failed.job_id, f"Resubmitting the cell failed: {exc}")
