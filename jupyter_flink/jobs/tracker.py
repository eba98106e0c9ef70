"""The job service: track jobs, record their paths, cancel, stop and savepoint them.

Recording is the mission: whenever a job completes a checkpoint or takes a savepoint, the
path goes to the notebook's journal and to the frontends (a comm message the JupyterLab
extension or the headless runner turns into ``cell.metadata["flink"]``). Paths are only
ever added or replaced by newer ones of a later success; nothing here erases them.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..display.job_status import JobView
from ..errors import JobError, RestError
from ..recording import comm
from ..recording.journal import Journal
from ..rest import FlinkRestClient, NoRetry, latest_failure
from .autosave import AutoSavepoints
from .poller import JobPoller, Observation
from .registry import ENDING_STATES, TERMINAL_STATES, JobRegistry, Owner, TrackedJob

log = logging.getLogger(__name__)

SAVEPOINT_TIMEOUT_S = 120.0
POLL_TIMEOUT_S = 2.0
END_TIMEOUT_S = 60.0
UNREACHABLE_PREFIX = "Flink's REST API at"
UNREACHABLE = UNREACHABLE_PREFIX + " {url} is unreachable"
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
                 default_savepoint_dir: Callable[[], str] = lambda: "",
                 poll_interval_s: Callable[[], float] = lambda: 1.0,
                 rest_headers: Callable[[], Mapping[str, str]] = dict,
                 send_updates: Callable[[str | None, Mapping[str, dict[str, Any]]], None]
                 = comm.send_metadata_updates):
        self.registry = JobRegistry()
        self._rest_url = rest_url
        self._default_savepoint_dir = default_savepoint_dir
        self._rest_headers = rest_headers
        self._poll_interval_s = poll_interval_s
        self._journal_dir = journal_dir
        self._send_updates = send_updates
        self._journals: dict[str | None, Journal] = {}
        self._views: dict[str, JobView] = {}
        self._attachments: dict[str, list[Any]] = {}  # e.g. live tables, closed at shutdown
        self._rest: FlinkRestClient | None = None
        self._poller: JobPoller | None = None
        self._lock = threading.RLock()
        self._on_failure: dict[str, Callable[[TrackedJob], None]] = {}
        self.autosave = AutoSavepoints(take=self._auto_savepoint,
                                       report=self._auto_savepoint_failed)

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
            url = self._rest_url()
            if self._poller is None or self._poller.rest.base_url != url:
                if self._poller is not None:
                    self._poller.close()
                    self._poller.rest.close()
                # A client of its own: the kernel thread's client can be interrupted
                # mid-request (KeyboardInterrupt), which must not disturb recording.
                # No retries and a short timeout: the poller has its own backoff, and an
                # unreachable cluster must show up quickly, not after retries per job.
                rest = FlinkRestClient(url, headers=dict(self._rest_headers()),
                                       timeout=POLL_TIMEOUT_S, retry=NoRetry())
                self._poller = JobPoller(rest, interval_s=self._poll_interval_s(),
                                         on_round=self._on_round,
                                         on_error=self._on_error)
            self._poller.interval_s = self._poll_interval_s()
            return self._poller

    def after_interrupt(self) -> None:
        """Drop the kernel thread's REST client: a request cut off by KeyboardInterrupt can
        leave its connection pool unusable, and the cancel that follows must get through."""
        with self._lock:
            self._close_rest()

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
              restore_reason: str | None = None, auto_savepoint_s: float | None = None,
              on_failure: Callable[[TrackedJob], None] | None = None,
              shown_in: str | None = None, notice: str | None = None) -> TrackedJob:
        """Start following a submitted job: record its id, show its status, poll it.

        ``shown_in`` names an earlier job whose status output this job takes over (a
        resubmission shows up where its cell is, not in whatever cell runs now).
        ``on_failure`` is called, on a thread of its own, if the job fails for good.
        """
        job = self.registry.add(TrackedJob(
            job_id=job_id, name=name, owner=owner, batch=batch, savepoint_dir=savepoint_dir,
            restored_from=restored_from, restore_reason=restore_reason,
            auto_savepoint_s=auto_savepoint_s, notice=notice))
        # savepointDir is kept so that a reattached job is cancelled the way its cell asked
        self._record(job, {"savepoint_dir": savepoint_dir})
        source = functools.partial(self.registry.get, job_id)
        if shown_in is not None and shown_in in self._views:
            view = self._views[job_id] = self._views[shown_in]
            view.source = source
            view.update(force=True)
        else:
            view = self._views[job_id] = JobView(source, self._rest_url())
            view.show()
        if on_failure is not None:
            self._on_failure[job_id] = on_failure
        if auto_savepoint_s:
            target = savepoint_dir or self._default_savepoint_dir()
            self.autosave.add(job_id, auto_savepoint_s, target)
        self.poller.watch(job_id)
        return job

    def attach(self, job_id: str, resource: Any) -> None:
        """Keep ``resource`` (anything with ``close()``) until the kernel shuts down."""
        with self._lock:
            self._attachments.setdefault(job_id, []).append(resource)

    def _record(self, job: TrackedJob, fields: Mapping[str, Any]) -> None:
        """Write the job's entry to the journal and tell the frontends."""
        self._record_many([(job, fields)])

    def _record_many(self, records: Sequence[tuple[TrackedJob, Mapping[str, Any]]]) -> None:
        """:meth:`_record` for several jobs: one journal write and one message per notebook."""
        by_notebook: dict[str | None, dict[str, dict[str, Any]]] = {}
        for job, fields in records:
            by_notebook.setdefault(job.owner.notebook_path, {})[job.owner.key] = {
                "job_id": job.job_id, "job_name": job.name, "cell_id": job.owner.cell_id,
                **{key: strip_credentials(value) for key, value in fields.items()}}
        for notebook_path, changes in by_notebook.items():
            written = self.journal(notebook_path).record_many(changes)
            cells = {entry["cell_id"]: cell_metadata(entry)
                     for entry in written.values() if entry.get("cell_id")}
            try:
                self._send_updates(notebook_path, cells)
            except Exception:  # the journal has it; a frontend hiccup must not stop recording
                log.exception("sending the metadata updates of %s failed", notebook_path)

    def _on_round(self, observations: list[tuple[str, Observation]]) -> None:
        """A poll round's observations: new checkpoint paths are recorded together, then
        each job is updated."""
        updates = [update for job_id, obs in observations
                   if (update := self._changes(job_id, obs)) is not None]
        records = [(job, {"latest_checkpoint_path": changes["latest_checkpoint_path"]})
                   for job, changes in updates if "latest_checkpoint_path" in changes]
        if records:
            self._record_many(records)
        for job, changes in updates:
            self._apply(job.job_id, **changes)

    def _changes(self, job_id: str, obs: Observation
                 ) -> tuple[TrackedJob, dict[str, Any]] | None:
        """What ``obs`` changes in the job (None: nothing, it is not ours or it ended)."""
        previous = self.registry.get(job_id)
        if previous is None or (previous.ended and obs.state not in TERMINAL_STATES):
            return None  # an answer sent before the job ended must not bring it back to life
        changes: dict[str, Any] = {
            "state": obs.state, "start_time_ms": obs.start_time_ms,
            "end_time_ms": obs.end_time_ms, "checkpoints_completed": obs.completed,
            "checkpoints_failed": obs.failed, "checkpoints_in_progress": obs.in_progress,
            "restored_count": obs.restored,
        }
        if previous.notice and previous.notice.startswith(UNREACHABLE_PREFIX):
            changes["notice"] = None  # reachable again
        latest = obs.latest
        if latest is not None:
            changes["last_checkpoint_ms"] = latest.latest_ack_timestamp
            if latest.external_path is None:
                changes["notice"] = NOT_ADDRESSABLE
            elif latest.external_path != previous.latest_checkpoint_path:
                changes["latest_checkpoint_path"] = latest.external_path
        if obs.failures is not None:
            restarts = max(0, obs.failures - (1 if obs.state == "FAILED" else 0))
            if restarts > previous.restarts:
                # The exception history can lag behind the restore count (REST caches it),
                # so compare with the count when the last restart was reported.
                restored = obs.restored_from.external_path if obs.restored_from else None
                changes.update(restarts=restarts, restored_at_last_restart=obs.restored)
                changes["notice"] = (
                    f"Restarted by Flink ({restarts} so far) after: {obs.last_failure}"
                    + (f"; restored from {restored}." if restored and obs.restored >
                       previous.restored_at_last_restart else
                       "; no checkpoint to restore from."))
        return previous, changes

    def _apply(self, job_id: str, **changes: Any) -> TrackedJob | None:
        """Change a job; the one change that ends it also finishes it (and only that one)."""
        result = self.registry.transition(job_id, **changes)
        if result is None:
            return None
        before, job = result
        if job.ended and not before.ended:
            job = self._finish(job)
        # Counters are throttled; what the user must see at once is not.
        self._refresh(job, force=job.ended or job.state != before.state
                      or job.notice != before.notice)
        return job

    def note(self, job_id: str, notice: str) -> None:
        """Show ``notice`` in the job's status output."""
        job = self.registry.update(job_id, notice=notice)
        if job is not None:
            self._refresh(job, force=True)

    def _auto_savepoint(self, job_id: str, target_dir: str) -> None:
        location = self.savepoint(job_id, target_dir)
        self.note(job_id, f"Automatic savepoint taken at {time.strftime('%H:%M:%S')}: "
                          f"{location}")

    def _auto_savepoint_failed(self, job_id: str, exc: Exception) -> None:
        self.note(job_id, f"The automatic savepoint failed ({getattr(exc, 'message', exc)}); "
                          "the next one is still scheduled.")

    def _on_error(self, job_id: str, exc: RestError, failures: int) -> None:
        job = self.registry.update(
            job_id, notice=UNREACHABLE.format(url=self._rest_url())
            + f" ({exc.message}); retrying (attempt {failures}); recording resumes when it "
              "answers again.")
        if job is not None:
            self._refresh(job, force=failures == 1)  # the outage shows at once

    def _finish(self, job: TrackedJob) -> TrackedJob:
        self.autosave.remove(job.job_id)
        with self._lock:  # an ended job's live table releases itself; forget it here
            self._attachments.pop(job.job_id, None)
        if job.state == "FAILED" and not job.failure:
            job = self.registry.update(job.job_id, failure=self.failure_cause(job.job_id)) or job
        on_failure = self._on_failure.pop(job.job_id, None)
        if job.state == "FAILED" and on_failure is not None:
            # Resubmitting plans SQL and waits for the new job: not on the poller's thread.
            threading.Thread(target=on_failure, args=(job,), name="flink-resubmit",
                             daemon=True).start()
        return job

    def _refresh(self, job: TrackedJob, *, force: bool = False) -> None:
        view = self._views.get(job.job_id)
        if view is not None:
            view.update(force=force)

    def failure_cause(self, job_id: str) -> str | None:
        """The one-line summary of the job's latest failure, from its exception history."""
        try:
            failure = latest_failure(self.rest.job_exceptions(job_id))
        except RestError:
            return None
        return failure.message if failure else None

    def reattach(self, notebook_path: str | None) -> list[TrackedJob]:
        """Track again the journal's jobs that still run on the cluster (a remote one
        outlives the kernel); returns those newly tracked. Nothing is resubmitted."""
        reattached = []
        for key, entry in self.journal(notebook_path).entries().items():
            job_id = entry.get("job_id")
            if not job_id or self.registry.get(job_id) is not None:
                continue
            try:
                state = self.rest.job_status(job_id)
            except RestError:
                continue  # not on this cluster (any more)
            if state in ENDING_STATES:
                continue
            owner = Owner(notebook_path, entry.get("cell_id"),
                          entry.get("job_name") or key.removeprefix("job:"))
            job = self.registry.add(TrackedJob(
                job_id=job_id, name=owner.job_name, owner=owner, state=state,
                savepoint_dir=entry.get("savepoint_dir"),
                latest_checkpoint_path=entry.get("latest_checkpoint_path"),
                savepoint_path=entry.get("savepoint_path"),
                notice="Reattached after a kernel restart."))
            self.poller.watch(job.job_id)
            reattached.append(job)
        return reattached

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
        # the cell returns showing the state it waited for
        job = self._apply(job_id, state=state) or self._must_get(job_id)
        self._refresh(job, force=True)
        self.poller.poll_now(job_id)
        return job

    def wait_until_ended(self, job_id: str, *, poll_s: float = 0.2) -> TrackedJob:
        """Block until the job ends (interruptible: the cell then cancels its jobs)."""
        while True:
            state = self.rest.job_status(job_id)
            if state in TERMINAL_STATES:
                self.poller.poll_now(job_id)
                return self._apply(job_id, state=state) or self._must_get(job_id)
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
        updated = self._apply(job.job_id, state=state, notice=message) or job
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
        self.autosave.close()
        with self._lock:
            for resource in [r for rs in self._attachments.values() for r in rs]:
                resource.close()
            self._attachments.clear()
            if self._poller is not None:
                self._poller.close()
                self._poller.rest.close()
                self._poller = None
            self._close_rest()
        return outcomes

    def _close_rest(self) -> None:
        if self._rest is not None:
            self._rest.close()
            self._rest = None
