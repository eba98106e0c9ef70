"""Exceptions of the REST client, below :class:`~jupyter_flink.errors.RestError`.

Hierarchy::

    RestError                   an unexpected status (``status``, ``body``), or no answer
    |                           (``status`` None: the cluster is unreachable)
    +-- JobNotFound             Flink does not know the job (404), or the id is malformed
    +-- WaitTimeout             a wait reached its deadline (``timeout``, ``job_id``)
        +-- SavepointTimeout    ... for a savepoint (``request_id``)
        +-- JobStateTimeout     ... for a job state (``states``, ``last_state``)
        +-- CheckpointTimeout   ... for a completed checkpoint

A wait that ends in a state it cannot leave (a failed savepoint, a job that failed or finished
while we waited for RUNNING) raises :class:`~jupyter_flink.errors.JobError` instead, with
Flink's cause in the message and its Java stack trace in ``details``.
"""

from __future__ import annotations

from collections.abc import Collection

from ..errors import RestError


class JobNotFound(RestError):
    """Flink has no job with this id (never had, or it left the job history)."""

    def __init__(self, message: str, *, job_id: str, **kw):
        super().__init__(message, **kw)
        self.job_id = job_id


class WaitTimeout(RestError):
    """A wait on Flink reached its deadline; the operation may still complete later."""

    def __init__(self, message: str, *, job_id: str, timeout: float, **kw):
        super().__init__(message, **kw)
        self.job_id = job_id
        self.timeout = timeout


class SavepointTimeout(WaitTimeout):
    """A savepoint (or stop-with-savepoint) did not complete in time."""

    def __init__(self, message: str, *, request_id: str, **kw):
        super().__init__(message, **kw)
        self.request_id = request_id


class JobStateTimeout(WaitTimeout):
    """A job did not reach any of the wanted states in time."""

    def __init__(self, message: str, *, states: Collection[str], last_state: str | None, **kw):
        super().__init__(message, **kw)
        self.states = frozenset(states)
        self.last_state = last_state


class CheckpointTimeout(WaitTimeout):
    """No (new) checkpoint completed in time."""
