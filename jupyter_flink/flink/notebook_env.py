"""``senv`` as notebook users get it: ``execute()`` does not block the kernel.

In a script, ``StreamExecutionEnvironment.execute()`` blocks until the job ends, which for a
streaming job is forever; in a notebook that would freeze the kernel. So in ``%%flink``
cells ``execute()`` submits the job and returns its ``JobClient``, and the cell shows the
job's live status. With ``%%flink(wait=true)`` it blocks until the job ends (interrupting
the kernel cancels the job) and returns the ``JobExecutionResult`` as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyflink.common.job_client import JobClient
from pyflink.datastream import StreamExecutionEnvironment

from .interrupts import interrupt_held


class NotebookStreamExecutionEnvironment(StreamExecutionEnvironment):
    """A StreamExecutionEnvironment whose ``execute`` submits asynchronously."""

    def __init__(self, j_stream_execution_environment: Any):
        super().__init__(j_stream_execution_environment)
        # Set by the cell being run when it has wait=true: blocks until the job ends.
        self.wait_for_job: Callable[[JobClient], Any] | None = None

    def execute(self, job_name: str | None = None) -> Any:  # type: ignore[override]
        """Submit the job; block until it ends only in a ``wait=true`` cell."""
        client = self.execute_async(job_name)
        if self.wait_for_job is not None:
            return self.wait_for_job(client)
        return client

    def execute_async(self, job_name: str | None = "Flink Streaming Job") -> JobClient:
        """Submit the job; an interrupt waits until the cell knows the job to cancel it."""
        with interrupt_held():
            return super().execute_async(job_name)  # type: ignore[arg-type]
