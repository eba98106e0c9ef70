"""After a paragraph submitted its job: the job becomes the cell's, shows, and runs.

The launcher hands a submitted job to the tracker (recorded, polled), shows its status in
the cell (or in the output of the job it replaces, for a resubmission), and blocks until
the job runs, so the cell returns showing RUNNING or the reason it failed. Interrupting the
kernel while a cell runs cancels the jobs the cell started.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..display.job_status import JobDisplays
from ..errors import JobError, StateMismatchError
from ..flink.environments import Submissions
from ..flink.session import FlinkSession
from ..jobs.control import JobControl
from ..jobs.registry import Owner, TrackedJob
from .run import CellRun
from .state_fit import ELSEWHERE

__all__ = ["Launcher"]


class Launcher:
    """Tracks, shows and waits for the jobs of paragraphs."""

    def __init__(self, control: JobControl, displays: JobDisplays):
        self.control = control
        self.tracker = control.tracker
        self.displays = displays

    @contextmanager
    def submitting(self, run: CellRun, session: FlinkSession) -> Iterator[None]:
        """Around the call that submits the run's job: it gets the id chosen when the run
        was prepared, recorded first, so that a kernel killed before :meth:`track` leaves a
        job that the next kernel finds, stops and resumes from. Not earlier: nothing is
        recorded for a job that was never submitted (a cluster that does not answer, a SQL
        error)."""
        job_id = run.must_be_prepared().job_id
        if job_id is not None:
            self.tracker.announce(run.must_be_prepared().owner, job_id)
        with session.submitting_as(job_id):
            yield

    def track(self, run: CellRun, job_id: str, *, batch: bool,
              primary: bool = True) -> TrackedJob:
        """Make ``job_id`` the cell's job (``primary``; a cell's other jobs are recorded
        under their names), show it, and block until it runs or failed."""
        prepared = run.must_be_prepared()
        props = run.props
        name = props.job_name or self._job_name(job_id)
        owner = prepared.owner
        if not owner.job_name or not primary:
            owner = Owner(owner.notebook_path, owner.cell_id if primary else None, name)
        interval = props.auto_savepoint_interval
        job = self.tracker.track(
            job_id, name, owner, batch=batch, savepoint_dir=props.savepoint_dir,
            restored_from=prepared.restore_path, restore_reason=prepared.restore_reason,
            auto_savepoint_s=interval.total_seconds() if interval and not batch else None,
            auto_savepoint_retain=props.auto_savepoint_retain,
            on_failure=run.on_failure if primary else None, notice=run.notice)
        self.displays.show(job_id, takes_over=run.takes_over)
        run.jobs.append(job)
        job = self.tracker.wait_until_running(job.job_id)
        if job.restore_failed:
            raise StateMismatchError(
                f"Job {name} was stopped: its saved state ({prepared.restore_path}) does not "
                f"fit the changed query; restoring it failed in the job's tasks "
                f"({job.restore_failed}).", path=prepared.restore_path or "",
                fix="Ways out: " + ELSEWHERE)
        if job.state == "FAILED":
            cause = self.tracker.failure_cause(job.job_id) or "see %flink.jobs"
            raise JobError(f"Job {name} failed while starting: {cause}", job_id=job_id,
                           fix="Fix the cause and run the cell again; the recorded paths "
                               "were not changed.")
        return job

    def started(self, run: CellRun, table_result: Any, *, batch: bool) -> None:
        """A statement's TableResult: if it started a job, the job is the cell's."""
        client = table_result.get_job_client()
        if client is None:
            return
        job = self.track(run, str(client.get_job_id()), batch=batch)
        if batch or run.props.wait:
            self.wait_for_end(job)

    def wait_for_end(self, job: TrackedJob) -> None:
        ended = self.tracker.wait_until_ended(job.job_id)
        if ended.state == "FAILED":
            cause = self.tracker.failure_cause(job.job_id) or "see %flink.jobs"
            raise JobError(f"Job {job.name} failed: {cause}", job_id=job.job_id)

    def _job_name(self, job_id: str) -> str:
        try:
            return str(self.tracker.rest.job(job_id).get("name") or job_id)
        except Exception:
            return job_id

    @contextmanager
    def cancelled_on_interrupt(self, run: CellRun, submitted: Submissions) -> Iterator[None]:
        """Interrupting the kernel while the cell runs cancels the jobs the cell started.

        ``submitted`` (Flink's JobListener, in the JVM) also has jobs not tracked yet. The
        cancel is the cell's: with a savepoint if the cell set savepointDir.
        """
        try:
            yield
        except KeyboardInterrupt:
            self.tracker.after_interrupt()
            for job_id in submitted.job_ids():
                try:
                    if self.tracker.registry.get(job_id) is not None:
                        run.note(self.control.cancel(job_id).message)
                    else:
                        self.tracker.rest.cancel(job_id)
                        run.note(f"Job {job_id} was cancelled.")
                except Exception as exc:  # keep cancelling the others; report this one
                    run.note(f"Cancelling job {job_id} failed: {exc}")
            raise
