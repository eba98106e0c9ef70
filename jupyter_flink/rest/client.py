"""Flink's REST API: one method per endpoint, with the status codes each accepts, and the waits
built on them.

Paths, methods, accepted codes and body field names are those of Flink 2.3.0's
``MessageHeaders`` (e.g. ``JobCancellationHeaders``: PATCH /jobs/:jobid -> 202;
``StopWithSavepointTriggerHeaders``: POST /jobs/:jobid/stop -> 202), checked on a live cluster.
Quirks worth knowing, all measured:

- The two trigger bodies spell their fields differently: ``/stop`` takes ``targetDirectory``,
  ``/savepoints`` takes ``target-directory`` and ``cancel-job``; both take ``formatType`` and
  an optional ``triggerId`` (32 hex digits) that makes a repeated POST return the same
  operation instead of starting a second one.
- Triggering for an unknown or finished job is still accepted (202); the failure shows up in
  the operation's status (``FlinkJobNotFoundException``). Without a target directory and
  without ``execution.checkpointing.savepoint-dir`` the trigger itself answers 400.
- Flink keeps operation results for ``rest.async.store-duration`` (5 min) and, on shutdown,
  waits until every result has been fetched once (or that time has passed): poll every
  operation you trigger to its end, or a MiniCluster's close() blocks for minutes.
- Checkpoint statistics are cached for ``rest.cache.checkpoint-statistics.timeout``
  (3 s by default), so a completed checkpoint can show up that much later.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from ..errors import RestError
from .exceptions import JobNotFound
from .http import DEFAULT_TIMEOUT, ClientCertificate, HttpClient, Verify, decode_json
from .retry import RetryPolicy
from .run_views import aggregated_metrics, metric_names, metric_values
from .traces import mentions_missing_job
from .transport import Transport
from .views import SavepointStatus
from .views import checkpoint_interval_ms as interval_from_config
from .waits import GLOBALLY_TERMINAL_STATES, Waits

__all__ = ["GLOBALLY_TERMINAL_STATES", "FlinkRestClient"]

SAVEPOINT_FORMATS = frozenset({"CANONICAL", "NATIVE"})
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")


class FlinkRestClient(Waits):
    """A typed client for one Flink cluster's REST API.

    The connection settings are those of :class:`~jupyter_flink.rest.http.HttpClient`;
    ``clock`` and ``sleep`` drive the waits (tests pass a fake clock). Thread-safe: the
    poller thread and the kernel thread may share one client.
    """

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        verify: Verify = True,
        client_cert: ClientCertificate | None = None,
        check_hostname: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: Transport | None = None,
        trust_env: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.http = HttpClient(
            base_url,
            headers=headers,
            verify=verify,
            client_cert=client_cert,
            check_hostname=check_hostname,
            timeout=timeout,
            retry=retry,
            transport=transport,
            trust_env=trust_env,
            sleep=sleep,
        )
        self._clock = clock
        self._sleep = sleep

    @classmethod
    def for_cluster(cls, cluster: Any, **kwargs: Any) -> FlinkRestClient:
        """A client for a :class:`~jupyter_flink.cluster.Cluster` (its URL and headers)."""
        kwargs.setdefault("headers", getattr(cluster, "headers", None))
        return cls(cluster.rest_url, **kwargs)

    @property
    def base_url(self) -> str:
        return self.http.base_url

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> FlinkRestClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FlinkRestClient({self.base_url!r})"

    # -- cluster ---------------------------------------------------------------------------

    def overview(self) -> dict[str, Any]:
        """GET /overview -> 200: slots, job counts, ``flink-version``."""
        return self._get("/overview")

    def config(self) -> dict[str, Any]:
        """GET /config -> 200: the web UI's configuration, with ``flink-version``."""
        return self._get("/config")

    def jobs_overview(self) -> list[dict[str, Any]]:
        """GET /jobs/overview -> 200: one summary per job (``jid``, ``name``, ``state``, ...)."""
        jobs = self._get("/jobs/overview").get("jobs")
        return [job for job in jobs if isinstance(job, dict)] if isinstance(jobs, list) else []

    # -- one job (404 -> JobNotFound) --------------------------------------------------------

    def job(self, job_id: str) -> dict[str, Any]:
        """GET /jobs/{id} -> 200: details, vertices and plan."""
        return self._get(_job_path(job_id), job_id=job_id)

    def job_status(self, job_id: str) -> str:
        """GET /jobs/{id}/status -> 200: the job's state (RUNNING, FINISHED, ...), cheaply."""
        path = _job_path(job_id) + "/status"
        return str(self._require(self._get(path, job_id=job_id), "status", "GET", path))

    def job_config(self, job_id: str) -> dict[str, Any]:
        """GET /jobs/{id}/config -> 200."""
        return self._get(_job_path(job_id) + "/config", job_id=job_id)

    def job_exceptions(self, job_id: str) -> dict[str, Any]:
        """GET /jobs/{id}/exceptions -> 200: ``exceptionHistory`` (see ``latest_failure``)."""
        return self._get(_job_path(job_id) + "/exceptions", job_id=job_id)

    def checkpoints(self, job_id: str) -> dict[str, Any]:
        """GET /jobs/{id}/checkpoints -> 200: counts, summary, latest, history.

        A streaming job without checkpointing answers 200 with zero counts and null
        ``latest`` entries; a job without a checkpoint coordinator answers 404 "Checkpointing
        has not been enabled" (a RestError; JobNotFound only if the job is missing).
        """
        return self._get(_job_path(job_id) + "/checkpoints", job_id=job_id, only_jobs_404=False)

    def checkpoint_config(self, job_id: str) -> dict[str, Any]:
        """GET /jobs/{id}/checkpoints/config -> 200: interval, mode, storage, retention.

        404 as for :meth:`checkpoints` ("Checkpointing is not enabled for this job").
        """
        path = _job_path(job_id) + "/checkpoints/config"
        return self._get(path, job_id=job_id, only_jobs_404=False)

    def checkpoint_interval_ms(self, job_id: str) -> int | None:
        """The job's checkpoint interval in ms, or None if it does not checkpoint."""
        try:
            return interval_from_config(self.checkpoint_config(job_id))
        except JobNotFound:
            raise
        except RestError as exc:
            if exc.status == 404:  # no checkpoint coordinator
                return None
            raise

    def checkpoint_details(self, job_id: str, checkpoint_id: int) -> dict[str, Any]:
        """GET /jobs/{id}/checkpoints/details/{checkpoint} -> 200.

        404 is JobNotFound only if Flink says the job is missing; an unknown (or already
        forgotten: Flink keeps ``web.checkpoints.history`` entries) checkpoint is a RestError.
        """
        path = f"{_job_path(job_id)}/checkpoints/details/{int(checkpoint_id)}"
        return self._get(path, job_id=job_id, only_jobs_404=False)

    def vertex_metric_names(self, job_id: str, vertex_id: str) -> tuple[str, ...]:
        """GET /jobs/{id}/vertices/{vertex}/subtasks/metrics -> 200: the metrics its subtasks
        report (task metrics like ``numRecordsIn``, and ``<operator>.<metric>`` ones).

        Empty until the JobManager has fetched the task's metrics once
        (``metrics.fetcher.update-interval``).
        """
        return metric_names(self._get_list(_vertex_path(job_id, vertex_id) +
                                           "/subtasks/metrics", job_id))

    def vertex_metrics(self, job_id: str, vertex_id: str, names: Collection[str],
                       aggregations: Collection[str] = ("min", "max", "sum")
                       ) -> dict[str, dict[str, float]]:
        """GET /jobs/{id}/vertices/{vertex}/subtasks/metrics?get=..&agg=.. -> 200: each metric
        aggregated over the vertex's subtasks (see ``aggregated_metrics``).

        One request serves the rates, busy and backpressured times and the input watermark
        of a vertex (``/backpressure`` and ``/watermarks`` report the same metrics per
        subtask). Flink serves what it fetched from the task managers last, refreshed at most
        every ``metrics.fetcher.update-interval`` (10 s by default) and only when asked.
        """
        if not names:
            return {}
        params = {"get": ",".join(names), "agg": ",".join(aggregations)}
        return aggregated_metrics(self._get_list(
            _vertex_path(job_id, vertex_id) + "/subtasks/metrics", job_id, params=params))

    def job_metrics(self, job_id: str, names: Collection[str]) -> dict[str, float]:
        """GET /jobs/{id}/metrics?get=.. -> 200: the job's own metrics (``runningTime``...),
        from the JobManager's part of the same fetch that serves the task metrics."""
        return metric_values(self._get_list(f"{_job_path(job_id)}/metrics", job_id,
                                            params={"get": ",".join(names)}))

    def cancel(self, job_id: str) -> bool:
        """PATCH /jobs/{id}?mode=cancel -> 202 (True): cancellation has started.

        Flink answers 409 when the job already reached another terminal state (FINISHED,
        FAILED): nothing to cancel, and this returns False. A job that is already CANCELED
        is acknowledged with 202 again. The job is CANCELED shortly after; use
        :meth:`wait_for_job_state` to wait for it.
        """
        path = _job_path(job_id)
        status, _ = self._call(
            "PATCH", path, accepted=(202, 409), params={"mode": "cancel"}, job_id=job_id
        )
        return status == 202

    def trigger_stop_with_savepoint(
        self,
        job_id: str,
        target_directory: str | None = None,
        *,
        drain: bool = False,
        format_type: str = "CANONICAL",
        trigger_id: str | None = None,
    ) -> str:
        """POST /jobs/{id}/stop -> 202: returns the request id to poll.

        ``target_directory`` None uses the cluster's ``execution.checkpointing.savepoint-dir``
        (400 if that is not set). ``drain`` emits MAX_WATERMARK first (ends event-time
        windows). The job is FINISHED shortly after the savepoint completes; if the savepoint
        fails, the job keeps running.
        """
        body: dict[str, Any] = {"drain": bool(drain), "formatType": _format(format_type)}
        if target_directory is not None:
            body["targetDirectory"] = target_directory
        return self._trigger(_job_path(job_id) + "/stop", body, job_id, trigger_id)

    def trigger_savepoint(
        self,
        job_id: str,
        target_directory: str | None = None,
        *,
        cancel_job: bool = False,
        format_type: str = "CANONICAL",
        trigger_id: str | None = None,
    ) -> str:
        """POST /jobs/{id}/savepoints -> 202: returns the request id to poll."""
        body: dict[str, Any] = {"cancel-job": bool(cancel_job), "formatType": _format(format_type)}
        if target_directory is not None:
            body["target-directory"] = target_directory
        return self._trigger(_job_path(job_id) + "/savepoints", body, job_id, trigger_id)

    def savepoint_status(self, job_id: str, request_id: str) -> SavepointStatus:
        """GET /jobs/{id}/savepoints/{request-id} -> 200, for both trigger kinds.

        404 means Flink knows no such operation for this job (also when the job is unknown,
        or the result expired after ``rest.async.store-duration``): a RestError.
        """
        path = f"{_job_path(job_id)}/savepoints/{_hex32(request_id, 'request id')}"
        return SavepointStatus.from_json(self._get(path, job_id=job_id, only_jobs_404=False))

    # -- internals ---------------------------------------------------------------------------

    def _trigger(
        self, path: str, body: dict[str, Any], job_id: str, trigger_id: str | None
    ) -> str:
        if trigger_id is not None:
            body["triggerId"] = _hex32(trigger_id, "trigger id")
        _, answer = self._call("POST", path, accepted=(202,), json=body, job_id=job_id)
        return str(self._require(answer, "request-id", "POST", path))

    def _get_list(self, path: str, job_id: str, params: Mapping[str, str] | None = None
                  ) -> list[Any]:
        """GET an endpoint that answers with a JSON array; a 404 names a missing job or
        vertex (JobNotFound only for a missing job)."""
        _, body = self._call("GET", path, accepted=(200,), job_id=job_id, params=params,
                             only_jobs_404=False)
        if not isinstance(body, list):
            raise RestError(f"Flink answered GET {path} with {type(body).__name__}, not a "
                            "list.", status=200, body=str(body))
        return body

    def _get(self, path: str, *, job_id: str | None = None, only_jobs_404: bool = True) -> Any:
        _, body = self._call("GET", path, accepted=(200,), job_id=job_id,
                             only_jobs_404=only_jobs_404)
        if not isinstance(body, dict):
            raise RestError(f"Flink answered GET {path} with {type(body).__name__}, not an "
                            "object.", status=200, body=str(body))
        return body

    def _call(
        self,
        method: str,
        path: str,
        *,
        accepted: Collection[int],
        job_id: str | None = None,
        only_jobs_404: bool = True,
        params: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> tuple[int, Any]:
        """Send; a 404 about ``job_id`` becomes JobNotFound.

        ``only_jobs_404`` says the path has no other 404 (an unknown checkpoint or request id
        is a 404 too): if False, Flink's error text must name the missing job.
        """
        try:
            response = self.http.request(
                method, path, accepted=accepted, params=params, json=json
            )
        except RestError as exc:
            if (job_id is not None and exc.status == 404
                    and (only_jobs_404 or mentions_missing_job(exc.body or ""))):
                raise JobNotFound(
                    f"Flink has no job {job_id} ({method} {path} answered 404).",
                    job_id=job_id,
                    status=404,
                    body=exc.body,
                    details=exc.details,
                    fix="Jobs leave Flink's history some time after they end, and a restarted "
                    "embedded cluster starts empty.",
                ) from None
            raise
        return response.status_code, decode_json(method, path, response)

    @staticmethod
    def _require(body: Any, key: str, method: str, path: str) -> Any:
        if not isinstance(body, dict) or body.get(key) in (None, ""):
            raise RestError(f"Flink answered {method} {path} without {key!r}.", body=str(body))
        return body[key]


def _job_path(job_id: str) -> str:
    """``/jobs/{id}``; a malformed id (which could also escape the path) is JobNotFound."""
    if not isinstance(job_id, str) or not _HEX32.fullmatch(job_id):
        raise JobNotFound(f"{job_id!r} is not a Flink job id (32 hexadecimal digits).",
                          job_id=str(job_id))
    return f"/jobs/{job_id}"


def _vertex_path(job_id: str, vertex_id: str) -> str:
    """``/jobs/{id}/vertices/{vertex}``; a malformed vertex id is a ValueError."""
    return f"{_job_path(job_id)}/vertices/{_hex32(vertex_id, 'vertex id')}"


def _hex32(value: str, what: str) -> str:
    if not isinstance(value, str) or not _HEX32.fullmatch(value):
        raise ValueError(f"{value!r} is not a Flink {what} (32 hexadecimal digits)")
    return value


def _format(format_type: str) -> str:
    upper = str(format_type).upper()
    if upper not in SAVEPOINT_FORMATS:
        raise ValueError(f"format_type must be one of {sorted(SAVEPOINT_FORMATS)}, "
                         f"not {format_type!r}")
    return upper
