"""Waiting on Flink through its REST API: every wait has a deadline, knows the terminal
states, and ends in a typed timeout (as sparkmagic's ``LivySession.wait_for_idle``).

:class:`Waits` is part of :class:`~jupyter_flink.rest.client.FlinkRestClient`; it builds on
the client's endpoint methods.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, TypeVar

from ..errors import JobError, RestError
from .exceptions import CheckpointTimeout, JobNotFound, JobStateTimeout, SavepointTimeout
from .traces import mentions_missing_job
from .views import CheckpointInfo, SavepointStatus, latest_checkpoint, latest_failure

__all__ = ["DEFAULT_POLL", "GLOBALLY_TERMINAL_STATES", "Waits"]

# States a job never leaves (JobStatus.isGloballyTerminalState). SUSPENDED is terminal only
# for one JobManager: another one takes the job over.
GLOBALLY_TERMINAL_STATES = frozenset({"FINISHED", "CANCELED", "FAILED"})
DEFAULT_POLL = 0.2

T = TypeVar("T")


class Waits:
    """The waits of the REST client (see the module docstring)."""

    _clock: Callable[[], float]
    _sleep: Callable[[float], None]

    # The endpoints the waits use, implemented by FlinkRestClient.
    def savepoint_status(self, job_id: str, request_id: str) -> SavepointStatus:
        raise NotImplementedError

    def job_status(self, job_id: str) -> str:
        raise NotImplementedError

    def checkpoints(self, job_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def job_exceptions(self, job_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def wait_for_savepoint(
        self, job_id: str, request_id: str, timeout: float, poll: float = DEFAULT_POLL
    ) -> str:
        """Poll a triggered savepoint until it completes; return its location.

        Raises JobError with Flink's cause if it failed (JobNotFound if the cause is that
        the job does not exist), SavepointTimeout when ``timeout`` seconds have passed.
        """

        def probe() -> str | None:
            status = self.savepoint_status(job_id, request_id)
            if not status.done:
                return None
            if status.location and not status.failure:
                return status.location
            failure = status.failure or "Flink reported no location and no cause"
            if mentions_missing_job(status.failure_trace or failure):
                raise JobNotFound(
                    f"The savepoint of job {job_id} failed: Flink has no such job.",
                    job_id=job_id,
                    details=status.failure_trace,
                )
            raise JobError(
                f"The savepoint of job {job_id} failed: {failure}",
                job_id=job_id,
                details=status.failure_trace,
            )

        def expired() -> RestError:
            return SavepointTimeout(
                f"The savepoint of job {job_id} (request {request_id}) did not complete "
                f"within {timeout:g} s.",
                job_id=job_id,
                request_id=request_id,
                timeout=timeout,
                fix="It may still complete: large state takes longer to write. Wait longer, "
                "or check the job's checkpoint statistics in the Flink UI.",
            )

        return self._poll(probe, expired, timeout, poll)

    def wait_for_job_state(
        self, job_id: str, states: Collection[str], timeout: float, poll: float = DEFAULT_POLL
    ) -> str:
        """Poll the job until its state is one of ``states``; return that state.

        Raises JobError if the job reaches a state it never leaves (FINISHED, CANCELED,
        FAILED) that is not wanted, with the failure cause for FAILED; JobStateTimeout when
        ``timeout`` seconds have passed.
        """
        wanted = frozenset(state.upper() for state in states)
        if not wanted:
            raise ValueError("states must name at least one job state")
        last_state: str | None = None

        def probe() -> str | None:
            nonlocal last_state
            state = last_state = self.job_status(job_id)
            if state in wanted:
                return state
            if state in GLOBALLY_TERMINAL_STATES:
                raise self._ended(job_id, state, f"waiting for {_names(wanted)}")
            return None

        def expired() -> RestError:
            return JobStateTimeout(
                f"Job {job_id} did not become {_names(wanted)} within {timeout:g} s "
                f"(it is {last_state}).",
                job_id=job_id,
                states=wanted,
                last_state=last_state,
                timeout=timeout,
            )

        return self._poll(probe, expired, timeout, poll)

    def wait_for_checkpoint(
        self,
        job_id: str,
        timeout: float,
        poll: float = DEFAULT_POLL,
        newer_than: int | None = None,
    ) -> CheckpointInfo:
        """Poll until the job has a completed checkpoint (with an id above ``newer_than``).

        Raises JobError if the job ends first, CheckpointTimeout after ``timeout`` seconds.
        """

        def probe() -> CheckpointInfo | None:
            info = latest_checkpoint(self.checkpoints(job_id))
            if info is not None and (newer_than is None or info.id > newer_than):
                return info
            state = self.job_status(job_id)
            if state in GLOBALLY_TERMINAL_STATES:
                raise self._ended(job_id, state, "waiting for a checkpoint")
            return None

        def expired() -> RestError:
            newer = f" newer than {newer_than}" if newer_than is not None else ""
            return CheckpointTimeout(
                f"Job {job_id} completed no checkpoint{newer} within {timeout:g} s.",
                job_id=job_id,
                timeout=timeout,
                fix="Check execution.checkpointing.interval and the job's checkpoint "
                "statistics (failed checkpoints) in the Flink UI.",
            )

        return self._poll(probe, expired, timeout, poll)

    def _poll(
        self,
        probe: Callable[[], T | None],
        expired: Callable[[], RestError],
        timeout: float,
        poll: float,
    ) -> T:
        """Call ``probe`` until it returns a value; at least once, and once more at the deadline.

        A single request may overrun the deadline by the HTTP timeout (and its retries).
        """
        if timeout < 0 or poll <= 0:
            raise ValueError(f"timeout must be >= 0 and poll > 0 (got {timeout}, {poll})")
        deadline = self._clock() + timeout
        while True:
            result = probe()
            if result is not None:
                return result
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise expired()
            self._sleep(min(poll, remaining))

    def _ended(self, job_id: str, state: str, while_doing: str) -> JobError:
        if state != "FAILED":
            return JobError(f"Job {job_id} is {state} ({while_doing}).", job_id=job_id)
        try:
            failure = latest_failure(self.job_exceptions(job_id))
        except RestError:  # the cause is a bonus; the state is the news
            failure = None
        cause = f": {failure.message}" if failure else "."
        return JobError(
            f"Job {job_id} FAILED ({while_doing}){cause}",
            job_id=job_id,
            details=failure.trace if failure else None,
        )


def _names(states: Collection[str]) -> str:
    return " or ".join(sorted(states))
