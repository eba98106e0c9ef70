"""The job service: track jobs, record their paths, cancel, stop and savepoint them.

Recording is the mission: whenever a job completes a checkpoint or takes a savepoint, the
path goes to the notebook's journal and to the frontends (a comm message the JupyterLab
extension or the headless runner turns into ``cell.metadata["flink"]``). Paths are only
ever added or replaced by newer ones of a later success; nothing here erases them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from . import comm
from .display import JobView
from .errors import JobError, RestError
from .jobs import ENDING_STATES, TERMINAL_STATES, JobRegistry, Owner, TrackedJob
from .journal import Journal
from .poller import JobPoller, Observation
from .rest import FlinkRestClient

log = logging.getLogger(__name__)

SAVEPOINT_TIMEOUT_S = 120.0
END_TIMEOUT_S = 60.0
NOT_ADDRESSABLE = ("Checkpoints of this job are not written to a file system, so there is no "
                   "path to record: set execution.checkpointing.dir in %%flink.conf.")

# The keys of cell.metadata["flink"] (DESIGN.md "Contract").
METADATA_KEYS = ("latest_checkpoint_path", "savepoint_path", "job_id", "job_name", "cell_id",
                 "updated")


def strip_credentials(path: str | None) -> str | None:
    """Drop ``user:password@`` from a URL: secrets never go into notebook metadata."""
    if not path or "@" not in path or "://" not in path:
        return path
    parts = urlsplit(path)
    if parts.username is None and parts.password is None:
        return path
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def cell_metadata(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The journal entry as ``cell.metadata["flink"]`` holds it."""
    return {key: entry.get(key) for key in METADATA_KEYS} | {
        key: value for key, value in entry.items() if key not in METADATA_KEYS}


@dataclass(frozen=True)
class StopOutcome:
    """How a job ended when asked to: the savepoint taken, if any, and what to tell the user."""

    job: TrackedJob
    savepoint_path: str | None
    message: str


class JobTracker:
    """All jobs of one kernel: registry, poller, recording, and control."""

    def __init__(self, rest_url: Callable[[], str], *, journal_dir: str | None = None,
                 poll_interval_s: Callable[[], float] = lambda: 1.0,
                 rest_headers: Callable[[], Mapping[str, str]] = dict,
                 send_update: Callable[[str | None, str, dict[str, Any]], None]
                 = comm.send_metadata_update):
        self.registry = JobRegistry()
        self._rest_url = rest_url
        self._rest_headers = rest_headers
        self._poll_interval_s = poll_interval_s
        self._journal_dir = journal_dir
        self._send_update = send_update
        self._journals: dict[str | None, Journal] = {}
        self._views: dict[str, JobView] = {}
        self._attachments: dict[str, list[Any]] = {}  # e.g. live tables, closed at shutdown
        self._rest: FlinkRestClient | None = None
        self._poller: JobPoller | None = None
        self._lock = threading.RLock()
        self.on_job_ended: list[Callable[[TrackedJob], None]] = []

    # ----------------------------------------------------------------- plumbing

    @property
    def rest(self) -> FlinkRestClient:
        with self._lock:
            url = self._rest_url()
            if self._rest is None or self._rest.base_url != url:
                if self._rest is not None:
                    self._close_rest()
                self._rest = FlinkRestClient(url, headers=dict(self._rest_headers()))
            return self._rest

    @property
    def poller(self) -> JobPoller:
        with self._lock:
            rest = self.rest
            if self._poller is None or self._poller.rest is not rest:
                if self._poller is not None:
                    self._poller.close()
                self._poller = JobPoller(rest, interval_s=self._poll_interval_s(),
                                         on_observation=self._on_observation,
                                         on_error=self._on_error)
            self._poller.interval_s = self._poll_interval_s()
            return self._poller

    def journal(self, notebook_path: str | None) -> Journal:
        with self._lock:
            if notebook_path not in self._journals:
                self._journals[notebook_path] = Journal.for_notebook(notebook_path,
                                                                     self._journal_dir)
            return self._journals[notebook_path]

    def recorded(self, owner: Owner) -> dict[str, Any] | None:
        return self.journal(owner.notebook_path).get(owner.key)

    def is_busy(self) -> bool:
        return bool(self.registry.active())

    # ----------------------------------------------------------------- tracking

    def track(self, job_id: str, name: str, owner: Owner, *, batch: bool = False,
              savepoint_dir: str | None = None, restored_from: str | None = None,
              restore_reason: str | None = None, show: bool = True) -> TrackedJob:
        """Start following a submitted job: record its id, show its status, poll it."""
        job = self.registry.add(TrackedJob(
            job_id=job_id, name=name, owner=owner, batch=batch, savepoint_dir=savepoint_dir,
            restored_from=restored_from, restore_reason=restore_reason))
        self._record(job, {})
        view = JobView(self._rest_url())
        self._views[job_id] = view
        if show:
            view.show(job)
        self.poller.watch(job_id)
        return job

    def attach(self, job_id: str, resource: Any) -> None:
        """Keep ``resource`` (anything with ``close()``) until the kernel shuts down."""
        with self._lock:
            self._attachments.setdefault(job_id, []).append(resource)

    def _record(self, job: TrackedJob, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Write the job's entry to the journal and tell the frontends."""
        entry = self.journal(job.owner.notebook_path).record(job.owner.key, {
            "job_id": job.job_id, "job_name": job.name, "cell_id": job.owner.cell_id,
            **{key: strip_credentials(value) for key, value in fields.items()}})
        if job.owner.cell_id:
            try:
                self._send_update(job.owner.notebook_path, job.owner.cell_id,
                                  cell_metadata(entry))
            except Exception:  # the journal has it; a frontend hiccup must not stop recording
                log.exception("sending the metadata update for %s failed", job.job_id)
        return entry

    def _on_observation(self, job_id: str, obs: Observation) -> None:
        previous = self.registry.get(job_id)
        if previous is None or (previous.ended and obs.state not in TERMINAL_STATES):
            return  # an answer sent before the job ended must not bring it back to life
        changes: dict[str, Any] = {
            "state": obs.state, "start_time_ms": obs.start_time_ms,
            "end_time_ms": obs.end_time_ms, "checkpoints_completed": obs.completed,
            "checkpoints_failed": obs.failed, "checkpoints_in_progress": obs.in_progress,
            "restored_count": obs.restored, "notice": None,
        }
        latest = obs.latest
        if latest is not None:
            changes["last_checkpoint_ms"] = latest.latest_ack_timestamp
            if latest.external_path is None:
                changes["notice"] = NOT_ADDRESSABLE
            elif latest.external_path != previous.latest_checkpoint_path:
                changes["latest_checkpoint_path"] = latest.external_path
                self._record(previous, {"latest_checkpoint_path": latest.external_path})
        job = self.registry.update(job_id, **changes)
        if job is None:
            return
        if job.ended and not previous.ended:
            job = self._finish(job)
        self._refresh(job, force=job.ended)

    def _on_error(self, job_id: str, exc: RestError, failures: int) -> None:
        job = self.registry.update(
            job_id, notice=f"Flink's REST API at {self._rest_url()} is unreachable "
                           f"({exc.message}); retrying (attempt {failures}).")
        if job is not None:
            self._refresh(job)

    def _finish(self, job: TrackedJob) -> TrackedJob:
        if job.state == "FAILED" and not job.failure:
            job = self.registry.update(job.job_id, failure=self.failure_cause(job.job_id)) or job
        for callback in list(self.on_job_ended):
            try:
                callback(job)
            except Exception:
                log.exception("job-ended callback failed for %s", job.job_id)
        return job

    def _refresh(self, job: TrackedJob, *, force: bool = False) -> None:
        view = self._views.get(job.job_id)
        if view is not None:
            view.update(job, force=force)

    def failure_cause(self, job_id: str) -> str | None:
        """The first line of the job's root exception, from Flink's exception history."""
        try:
            exceptions = self.rest.job_exceptions(job_id)
        except RestError:
            return None
        entries = (exceptions.get("exceptionHistory") or {}).get("entries") or []
        text = (entries[0].get("stacktrace") if entries else None) or \
            exceptions.get("root-exception") or ""
        causes = [line.strip() for line in text.splitlines()
                  if line.strip().startswith("Caused by:")]
        line = causes[-1][len("Caused by:"):].strip() if causes else text.strip().split("\n")[0]
        return line or None

    # ----------------------------------------------------------------- waiting

    def wait_until_running(self, job_id: str, timeout: float = 120.0) -> TrackedJob:
        """Block until the job and all its tasks run (or it ended), up to ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                details = self.rest.job(job_id)
            except RestError:
                details = {}
            state = details.get("state", "CREATED")
            vertices = details.get("vertices") or []
            tasks_up = all(v.get("status") in ("RUNNING", "FINISHED") for v in vertices)
            if state in ENDING_STATES or (state == "RUNNING" and vertices and tasks_up):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        job = self.registry.update(job_id, state=state) or self._must_get(job_id)
        self._refresh(job, force=True)  # the cell returns showing the state it waited for
        self.poller.poll_now(job_id)
        return job

    def wait_until_ended(self, job_id: str, *, poll_s: float = 0.2) -> TrackedJob:
        """Block until the job ends (interruptible: the cell then cancels its jobs)."""
        while True:
            state = self.rest.job_status(job_id)
            if state in TERMINAL_STATES:
                self.poller.poll_now(job_id)
                return self.registry.update(job_id, state=state) or self._must_get(job_id)
            time.sleep(poll_s)

    def _must_get(self, job_id: str) -> TrackedJob:
        job = self.registry.get(job_id)
        if job is None:
            raise JobError(f"Job {job_id} is not tracked by this kernel.", job_id=job_id)
        return job

    # ----------------------------------------------------------------- control

    def cancel(self, job_id: str) -> StopOutcome:
        """Cancel as a cell does: with a savepoint if the cell set savepointDir.

        A failed savepoint falls back to a plain cancel and says so (ZEPPELIN-5412).
        """
        job = self._must_get(job_id)
        if job.ended:
            return StopOutcome(job, None, f"Job {job.name} had already ended ({job.state}).")
        if job.savepoint_dir:
            try:
                return self._stop_with_savepoint(job, job.savepoint_dir)
            except (RestError, JobError) as exc:
                reason = getattr(exc, "message", str(exc))
                message = (f"The savepoint of job {job.name} failed ({reason}); the job was "
                           "cancelled without one, so resumeFromSavepoint will use the "
                           "previous savepoint, if any.")
                self._cancel_plain(job)
                return StopOutcome(self._after_end(job, message), None, message)
        self._cancel_plain(job)
        message = f"Job {job.name} was cancelled."
        return StopOutcome(self._after_end(job, message), None, message)

    def stop(self, job_id: str, target_dir: str) -> StopOutcome:
        """Stop with a savepoint; if the savepoint fails the job keeps running (and we say so)."""
        job = self._must_get(job_id)
        if job.ended:
            raise JobError(f"Job {job.name} has already ended ({job.state}).", job_id=job_id)
        return self._stop_with_savepoint(job, target_dir)

    def savepoint(self, job_id: str, target_dir: str) -> str:
        """Take a savepoint without stopping the job; records it as the cell's savepoint."""
        job = self._must_get(job_id)
        request = self.rest.trigger_savepoint(job_id, target_dir)
        location = self.rest.wait_for_savepoint(job_id, request, timeout=SAVEPOINT_TIMEOUT_S)
        self._record_savepoint(job, location)
        return location

    def _stop_with_savepoint(self, job: TrackedJob, target_dir: str) -> StopOutcome:
        request = self.rest.trigger_stop_with_savepoint(job.job_id, target_dir)
        location = self.rest.wait_for_savepoint(job.job_id, request,
                                                timeout=SAVEPOINT_TIMEOUT_S)
        self._record_savepoint(job, location)
        message = f"Job {job.name} was stopped with savepoint {location}."
        return StopOutcome(self._after_end(job, message), location, message)

    def _record_savepoint(self, job: TrackedJob, location: str) -> None:
        self.registry.update(job.job_id, savepoint_path=location)
        self._record(job, {"savepoint_path": location})

    def _cancel_plain(self, job: TrackedJob) -> None:
        try:
            self.rest.cancel(job.job_id)
        except RestError as exc:
            if exc.status != 404:  # 404: it is gone already
                raise JobError(f"Cancelling job {job.name} failed: {exc.message}",
                               job_id=job.job_id, details=exc.body) from exc

    def _after_end(self, job: TrackedJob, message: str) -> TrackedJob:
        """Wait for the job to end, then show the final state with ``message``."""
        try:
            state = self.rest.wait_for_job_state(job.job_id, set(TERMINAL_STATES),
                                                 timeout=END_TIMEOUT_S)
        except RestError:
            state = job.state
        updated = self.registry.update(job.job_id, state=state, notice=message) or job
        self._refresh(updated, force=True)
        self.poller.poll_now(job.job_id)
        return updated

    # ----------------------------------------------------------------- shutdown

    def shutdown(self, *, stop_jobs: bool) -> list[StopOutcome]:
        """Cancel the kernel's running jobs (in parallel, with savepoints where set)."""
        outcomes: list[StopOutcome] = []
        active = self.registry.active() if stop_jobs else []
        if active:
            with ThreadPoolExecutor(max_workers=min(8, len(active))) as pool:
                for future in [pool.submit(self.cancel, job.job_id) for job in active]:
                    try:
                        outcomes.append(future.result())
                    except Exception:
                        log.exception("stopping a job at shutdown failed")
        with self._lock:
            for resource in [r for rs in self._attachments.values() for r in rs]:
                resource.close()
            self._attachments.clear()
            if self._poller is not None:
                self._poller.close()
                self._poller = None
            self._close_rest()
        return outcomes

    def _close_rest(self) -> None:
        if self._rest is not None:
            self._rest.close()
            self._rest = None
