"""A small typed client for Apache Flink's REST API, in three layers (as sparkmagic's for Livy).

- :mod:`~jupyter_flink.rest.http`: requests to one endpoint (base URL, headers, TLS, timeout)
  over a swappable :mod:`~jupyter_flink.rest.transport` (urllib3), and an injected
  :mod:`~jupyter_flink.rest.retry` policy that retries only GETs;
- :mod:`~jupyter_flink.rest.client`: :class:`FlinkRestClient`, one method per endpoint with
  the status codes it accepts, and waits with deadlines and known terminal states;
- :mod:`~jupyter_flink.rest.views`: typed views of the answers for the poller
  (latest checkpoint, restore source, counts, savepoint status, job failure), and
  :mod:`~jupyter_flink.rest.run_views` of how a job runs (tasks, slots, plan, metrics).

Errors are :class:`~jupyter_flink.errors.RestError` and the subclasses in
:mod:`~jupyter_flink.rest.exceptions`; a failed savepoint or job is a
:class:`~jupyter_flink.errors.JobError`.
"""

from __future__ import annotations

from .client import GLOBALLY_TERMINAL_STATES, FlinkRestClient
from .exceptions import (
    CheckpointTimeout,
    JobNotFound,
    JobStateTimeout,
    SavepointTimeout,
    WaitTimeout,
)
from .http import DEFAULT_TIMEOUT, ClientCertificate, HttpClient
from .retry import LinearRetryPolicy, NoRetry, RetryPolicy
from .run_views import (
    JobGraph,
    SlotCounts,
    TaskCounts,
    Vertex,
    job_graph,
    operator_metric,
    slot_counts,
    task_counts,
)
from .traces import summarize_java_trace
from .views import (
    NO_CHECKPOINT_DIR_FIX,
    NOT_EXTERNALLY_ADDRESSABLE,
    CheckpointCounts,
    CheckpointInfo,
    CheckpointStat,
    JobFailure,
    RestoreInfo,
    SavepointStatus,
    checkpoint_counts,
    checkpoint_history,
    checkpoint_interval_ms,
    failure_count,
    latest_checkpoint,
    latest_failed_checkpoint,
    latest_failure,
    latest_savepoint,
    restore_failure,
    restored_from,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "GLOBALLY_TERMINAL_STATES",
    "NOT_EXTERNALLY_ADDRESSABLE",
    "NO_CHECKPOINT_DIR_FIX",
    "CheckpointCounts",
    "CheckpointInfo",
    "CheckpointStat",
    "CheckpointTimeout",
    "ClientCertificate",
    "FlinkRestClient",
    "HttpClient",
    "JobFailure",
    "JobGraph",
    "JobNotFound",
    "JobStateTimeout",
    "LinearRetryPolicy",
    "NoRetry",
    "RestoreInfo",
    "RetryPolicy",
    "SavepointStatus",
    "SavepointTimeout",
    "SlotCounts",
    "TaskCounts",
    "Vertex",
    "WaitTimeout",
    "checkpoint_counts",
    "checkpoint_history",
    "checkpoint_interval_ms",
    "failure_count",
    "job_graph",
    "latest_checkpoint",
    "latest_failed_checkpoint",
    "latest_failure",
    "latest_savepoint",
    "operator_metric",
    "restore_failure",
    "restored_from",
    "slot_counts",
    "summarize_java_trace",
    "task_counts",
]
