"""The jobs panel's buttons: take a savepoint, stop with a savepoint, cancel; as
``%flink.savepoint``, ``%flink.stop`` and ``%flink.cancel`` do, recorded the same way.

They run on the jobs comm's request thread (display/job_comm.py), with a REST client of
their own: a savepoint can take minutes and must not hold up the kernel's cells.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import JobError
from ..jobs.control import JobControl
from ..rest import FlinkRestClient

__all__ = ["JobActions"]


class JobActions:
    """Carry out a panel request on a job of this kernel; returns what to tell the user."""

    def __init__(self, control: JobControl, default_savepoint_dir: Callable[[], str],
                 rest: Callable[[], FlinkRestClient]):
        self.control = control
        self._default_dir = default_savepoint_dir
        self._rest = rest

    def __call__(self, action: str, job_id: str) -> str:
        job = self.control.tracker.registry.get(job_id)
        if job is None:
            raise JobError(f"Job {job_id} is not tracked by this kernel.", job_id=job_id)
        rest = self._rest()
        if action == "cancel":
            return self.control.cancel(job_id, rest=rest).message
        if job.ended:
            raise JobError(f"Job {job.name} has already ended ({job.state}).", job_id=job_id)
        directory = job.savepoint_dir or self._default_dir()
        if action == "stop":
            return self.control.stop(job_id, directory, rest=rest).message
        if action == "savepoint":
            location = self.control.savepoint(job_id, directory, origin="manual", rest=rest)
            return f"Savepoint of {job.name}: {location}"
        raise JobError(f"Unknown action {action!r}.", job_id=job_id)
