"""Following the kernel's jobs: what each one reached, recorded as soon as it is seen.

Recording is the mission: whenever a job completes a checkpoint or takes a savepoint, the
path goes to the recorder (the notebook's journal, then the frontends' cell metadata). Paths
are only ever added or replaced by newer ones of a later success; nothing here erases them.

The tracker tells others what happens through listeners (:class:`JobListener`): the status
outputs redraw, automatic savepoints are scheduled and cancelled. It owns no display. What
listeners must show at once (a new state, a notice, the end) they are told at once; other
changes (counters) at most every ``notify_every_s`` per job, and no more than
``MAX_NOTIFICATIONS_PER_S`` for all jobs together (with a hundred jobs each is told every
20 s), on a later poll round; a job that did not change only every ``idle_notify_every_s``
(its uptime moves). So a poll round that changes nothing costs the listeners nothing, and
they need no timers (threads) of their own to hold updates back.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from ..errors import JobError, RestError
from ..recording.record import SUBMITTED_KEY, history_entry, submitted_job_ids, with_submitted
from ..recording.recorder import CellRecord, Recorder
from ..rest import FlinkRestClient, latest_failure, restore_failure, task_counts
from .clients import RestClients
from .observations import UNREACHABLE, changes_from
from .poller import JobPoller, Observation
from .registry import ENDING_STATES, TERMINAL_STATES, JobRegistry, Owner, TrackedJob
from .slot_wait import SlotWait

__all__ = ["JobListener", "JobTracker"]

log = logging.getLogger(__name__)

DEFAULT_STARTUP_TIMEOUT_S = 120.0
MAX_NOTIFICATIONS_PER_S = 5.0  # non-urgent job_changed calls, all jobs together
# A little over the listeners' own intervals (display/job_status.py throttles to the same
# settings): told later than their throttle would hold it, a status output never needs to
# start a timer thread to send an update later.
NOTIFY_MARGIN_S = 0.25


class JobListener(Protocol):
    """Told about jobs as they are tracked, change and end (on any thread)."""

    def job_tracked(self, job: TrackedJob) -> None: ...

    def job_changed(self, job: TrackedJob, *, urgent: bool) -> None:
        """``urgent``: a change of state or notice, to show at once (counters can wait)."""

    def job_ended(self, job: TrackedJob) -> None: ...


class JobTracker:
    """All jobs of one kernel: the registry, the poller and what they record."""

    def __init__(self, clients: RestClients, recorder: Recorder, *,
                 poll_interval_s: Callable[[], float] = lambda: 1.0,
                 startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S,
                 notify_every_s: float = 3.0, idle_notify_every_s: float = 15.0):
        self.registry = JobRegistry()
        self.clients = clients
        self.recorder = recorder
        self.startup_timeout_s = startup_timeout_s
        self._poll_interval_s = poll_interval_s
        self._listeners: list[JobListener] = []
        self._attachments: dict[str, list[Any]] = {}  # e.g. live tables, closed at shutdown
        self._on_failure: dict[str, Callable[[TrackedJob], None]] = {}
        self._poller: JobPoller | None = None
        self._lock = threading.RLock()
        self.notify_every_s = notify_every_s
        self.idle_notify_every_s = idle_notify_every_s
        self._told: dict[str, float] = {}  # job id -> time.monotonic() listeners were told
        self._untold: set[str] = set()  # jobs with changes the listeners were not told yet
        self._told_lock = threading.Lock()
        self._active_jobs = 0  # as of the last poll round
        recorder.on_problem(self._recording_problem)

    # ----------------------------------------------------------------- plumbing

    @property
    def rest(self) -> FlinkRestClient:
        """The kernel thread's REST client."""
        return self.clients.get("kernel")

    @property
    def poller(self) -> JobPoller:
        with self._lock:
            url = self.clients.endpoint().url
            if self._poller is None or self._poller.rest.base_url != url:
                if self._poller is not None:
                    self._poller.close()  # joins its thread before its client is replaced
                self._poller = JobPoller(self.clients.get("poller"),
                                         interval_s=self._poll_interval_s(),
                                         on_round=self._on_round, on_error=self._on_error)
            self._poller.interval_s = self._poll_interval_s()
            return self._poller

    def subscribe(self, listener: JobListener) -> None:
        self._listeners.append(listener)

    def after_interrupt(self) -> None:
        """Drop the kernel thread's REST client: a request cut off by KeyboardInterrupt can
        leave its connection pool unusable, and the cancel that follows must get through."""
        self.clients.drop("kernel")

    def recorded(self, owner: Owner) -> dict[str, Any] | None:
        """What was recorded for ``owner``'s cell (this kernel's record or the journal's)."""
        return self.recorder.recorded(owner.notebook_path, owner.key)

    def is_busy(self) -> bool:
        return bool(self.registry.active())

    # ----------------------------------------------------------------- tracking

    def track(self, job_id: str, name: str, owner: Owner, *, batch: bool = False,
              savepoint_dir: str | None = None, restored_from: str | None = None,
              restore_reason: str | None = None, auto_savepoint_s: float | None = None,
              auto_savepoint_retain: int = 5,
              on_failure: Callable[[TrackedJob], None] | None = None,
              notice: str | None = None) -> TrackedJob:
        """Start following a submitted job: record its id, tell the listeners, poll it.

        ``on_failure`` is called, on a thread of its own, if the job fails for good.
        """
        job = self.registry.add(TrackedJob(
            job_id=job_id, name=name, owner=owner, batch=batch, savepoint_dir=savepoint_dir,
            restored_from=restored_from, restore_reason=restore_reason,
            auto_savepoint_s=auto_savepoint_s, auto_savepoint_retain=auto_savepoint_retain,
            notice=notice, recording_problem=self.recorder.problem(owner.notebook_path)))
        if on_failure is not None:
            self._on_failure[job_id] = on_failure
        try:
            # savepointDir is kept so that a reattached job is cancelled the way its cell asked
            self.record([(job, {"savepoint_dir": savepoint_dir})])
        finally:  # whatever recording met, the job is watched
            self.poller.watch(job_id)
            self._tell("job_tracked", job)
        return job

    def attach(self, job_id: str, resource: Any) -> None:
        """Keep ``resource`` (anything with ``close()``) until the kernel shuts down."""
        with self._lock:
            self._attachments.setdefault(job_id, []).append(resource)

    def record(self, records: Sequence[tuple[TrackedJob, Mapping[str, Any]]], *,
               history: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """Record fields of several jobs: one journal write and one message per notebook.
        ``history``: a restore point to add to the record of some of them, by job id."""
        history = history or {}
        cells = []
        for job, fields in records:
            point = history.get(job.job_id)
            if self._replaced(job):
                # A late look at a job its cell replaced (Flink's REST cache shows a final
                # checkpoint seconds late) must not name it the cell's job again: a kernel
                # killed then would not stop the new job and would restore a second copy.
                # What it reached goes to the cell's history only.
                path = fields.get("latest_checkpoint_path")
                if point is None and isinstance(path, str):
                    point = history_entry(path, "checkpoint", "failure" if job.state ==
                                          "FAILED" else "cancel", job.job_id)
                if point is not None:
                    cells.append(CellRecord(job.owner.notebook_path, job.owner.key, {}, point))
                continue
            cells.append(CellRecord(job.owner.notebook_path, job.owner.key,
                                    {"job_id": job.job_id, "job_name": job.name,
                                     "cell_id": job.owner.cell_id, **fields}, point))
        if cells:
            self.recorder.record(cells)

    def _replaced(self, job: TrackedJob) -> bool:
        """Whether a newer job of the same cell (or job name) took ``job``'s place."""
        current = self.registry.for_owner(job.owner)
        return current is not None and current.job_id != job.job_id

    def forget(self, owner: Owner, paths: Sequence[str]) -> None:
        """Drop deleted restore points from the history of ``owner``'s cell."""
        self.recorder.record([CellRecord(owner.notebook_path, owner.key, {},
                                         forget=tuple(paths))])

    def announce(self, owner: Owner, job_id: str) -> None:
        """Record the id of ``owner``'s next job before it is submitted: a kernel killed
        before :meth:`track` leaves it running (on a remote cluster), and the next kernel
        finds it through this (:meth:`reattach`, and resuming from its checkpoints)."""
        fields = {"cell_id": owner.cell_id} if owner.cell_id else {}
        self.recorder.record([CellRecord(owner.notebook_path, owner.key, {
            **fields, SUBMITTED_KEY: with_submitted(self.recorded(owner), job_id)})])

    def remember(self, owner: Owner, entry: Mapping[str, Any]) -> None:
        """Add a restore point to the history of ``owner``'s cell (no job of it runs)."""
        fields = {"cell_id": owner.cell_id} if owner.cell_id else {}
        self.recorder.record([CellRecord(owner.notebook_path, owner.key, fields, entry)])

    def _on_round(self, observations: list[tuple[str, Observation]]) -> None:
        """A poll round's observations: new checkpoint paths are recorded together, then
        each job is updated."""
        updates: list[tuple[TrackedJob, dict[str, Any]]] = []
        restored: dict[str, Mapping[str, Any]] = {}  # restarts: what Flink restored from
        self._active_jobs = self.registry.count_active()
        for job_id, obs in observations:
            previous = self.registry.get(job_id)
            changes = changes_from(previous, obs) if previous is not None else None
            if previous is not None and changes is not None:
                updates.append((previous, changes))
                if "restored_at_last_restart" in changes and obs.restored_from and \
                        obs.restored_from.external_path:
                    restored[job_id] = history_entry(
                        obs.restored_from.external_path, "savepoint" if
                        obs.restored_from.is_savepoint else "checkpoint", "restart", job_id)
        records = [(job, {"latest_checkpoint_path": changes["latest_checkpoint_path"]}
                    if "latest_checkpoint_path" in changes else {})
                   for job, changes in updates
                   if "latest_checkpoint_path" in changes or job.job_id in restored]
        try:
            if records:
                self.record(records, history=restored)
        finally:  # the round is applied whatever recording met
            for job, changes in updates:
                if all(getattr(job, name) == value for name, value in changes.items()):
                    # Nothing new (a job between two checkpoints): only what was held back
                    # from the listeners may be due.
                    self._changed(job, urgent=False, changed=False)
                else:
                    self.apply(job.job_id, **changes)
        for job_id, obs in observations:
            current = self.registry.get(job_id)
            if current is not None and obs.restore_failed and current.restored_from and \
                    not current.restore_failed and obs.completed == 0 and not current.ended:
                self.stop_unfit(job_id, obs.last_failure or "restoring failed",
                                self.clients.get("poller"))

    def apply(self, job_id: str, **changes: Any) -> TrackedJob | None:
        """Change a job; the one change that ends it also finishes it (and only that one).

        A job that ended stays ended: a late answer cannot set it to a live state again.
        """
        before = self.registry.get(job_id)
        if before is not None and before.ended and \
                changes.get("state", before.state) not in TERMINAL_STATES:
            changes.pop("state")
        result = self.registry.transition(job_id, **changes)
        if result is None:
            return None
        before, job = result
        if job.ended and not before.ended:
            job = self._finish(job)
        # Counters are throttled; what the user must see at once is not.
        self._changed(job, urgent=job.ended or job.state != before.state
                      or job.notice != before.notice, changed=job != before)
        return job

    def _changed(self, job: TrackedJob, *, urgent: bool, changed: bool = True) -> None:
        """Tell the listeners that ``job`` changed: at once if ``urgent``, else as the module
        docstring says (what is held back is told on a later round: every running job's
        round calls this)."""
        now = time.monotonic()
        with self._told_lock:
            pending = changed or job.job_id in self._untold
            if not urgent:
                every = max(self.notify_every_s, self._active_jobs / MAX_NOTIFICATIONS_PER_S)
                wait = every if pending else max(every, self.idle_notify_every_s)
                if now - self._told.get(job.job_id, -math.inf) < wait + NOTIFY_MARGIN_S:
                    if pending:
                        self._untold.add(job.job_id)
                    return
            self._told[job.job_id] = now
            self._untold.discard(job.job_id)
            if job.ended:
                self._told.pop(job.job_id, None)
        self._tell("job_changed", job, urgent=urgent)

    def stop_unfit(self, job_id: str, failure: str, rest: FlinkRestClient) -> None:
        """Stop a job whose tasks fail restoring its saved state (a state type changed), so
        that it does not restart for ever behind "0 completed" checkpoints."""
        job = self.registry.get(job_id)
        if job is None:
            return
        try:
            rest.cancel(job_id)
        except RestError:
            log.debug("cancelling unfit job %s failed", job_id, exc_info=True)
        self.apply(job_id, restore_failed=failure, notice=(
            f"Its saved state ({job.restored_from}) does not fit this query: restoring it "
            f"failed in the job's tasks ({failure}). The job was stopped rather than left "
            "restarting; start it fresh, or from another restore point (%flink.history)."))

    def note(self, job_id: str, notice: str) -> None:
        """Show ``notice`` in the job's status output."""
        job = self.registry.update(job_id, notice=notice)
        if job is not None:
            self._changed(job, urgent=True)

    def _on_error(self, job_id: str, exc: RestError, failures: int) -> None:
        before = self.registry.get(job_id)
        since = before.unreachable_since if before and before.unreachable_since else time.time()
        job = self.registry.update(
            job_id, unreachable_since=since, notice=UNREACHABLE.format(
                url=self.clients.endpoint().url)
            + f" ({exc.message}); retrying (attempt {failures}); recording resumes when it "
              "answers again.")
        if job is not None:
            self._changed(job, urgent=failures == 1)  # the outage shows at once

    def _recording_problem(self, notebook_path: str | None, text: str) -> None:
        """A journal problem: say it in the status of the notebook's running jobs."""
        for job in self.registry.active():
            if job.owner.notebook_path == notebook_path:
                changed = self.registry.update(job.job_id, recording_problem=text)
                if changed is not None:
                    self._changed(changed, urgent=True)

    def _finish(self, job: TrackedJob) -> TrackedJob:
        with self._lock:  # an ended job's live table releases itself; forget it here
            self._attachments.pop(job.job_id, None)
        if job.state in ("CANCELED", "FAILED") and job.latest_checkpoint_path and not job.batch:
            # Its last checkpoint is the cell's last word now (retained on cancellation).
            origin = "cancel" if job.state == "CANCELED" else "failure"
            self.record([(job, {})], history={job.job_id: history_entry(
                job.latest_checkpoint_path, "checkpoint", origin, job.job_id)})
        if job.state == "FAILED" and not job.failure:
            job = self.registry.update(job.job_id, failure=self.failure_cause(
                job.job_id, self.clients.get("poller"))) or job
        self._tell("job_ended", job)
        on_failure = self._on_failure.pop(job.job_id, None)
        if job.state == "FAILED" and on_failure is not None:
            # Resubmitting plans SQL and waits for the new job: not on the poller's thread.
            threading.Thread(target=on_failure, args=(job,), name="flink-resubmit",
                             daemon=True).start()
        return job

    def _tell(self, event: str, job: TrackedJob, **kwargs: Any) -> None:
        for listener in list(self._listeners):
            try:
                getattr(listener, event)(job, **kwargs)
            except Exception:  # a listener's bug must not stop tracking
                log.exception("a job listener failed on %s", event)

    def failure_cause(self, job_id: str, rest: FlinkRestClient | None = None) -> str | None:
        """The one-line summary of the job's latest failure, from its exception history."""
        try:
            failure = latest_failure((rest or self.rest).job_exceptions(job_id))
        except RestError:
            return None
        return failure.message if failure else None

    def reattach(self, notebook_path: str | None) -> list[TrackedJob]:
        """Track again the journal's jobs that still run on the cluster (a remote one
        outlives the kernel): each cell's recorded job, and those it was about to submit when
        its kernel died; returns those newly tracked. Nothing is resubmitted."""
        reattached = []
        for key, entry in self.recorder.entries(notebook_path).items():
            owner = Owner(notebook_path, entry.get("cell_id"),
                          entry.get("job_name") or key.removeprefix("job:"))
            for job_id in reversed(submitted_job_ids(entry)):  # the newest becomes the cell's
                if self.registry.get(job_id) is not None:
                    continue
                try:
                    state = self.rest.job_status(job_id)
                except RestError:
                    continue  # not on this cluster (any more), or never submitted
                if state in ENDING_STATES:
                    continue
                recorded = job_id == entry.get("job_id")
                job = self.registry.add(TrackedJob(
                    job_id=job_id, name=owner.job_name, owner=owner, state=state,
                    savepoint_dir=entry.get("savepoint_dir"),
                    latest_checkpoint_path=entry.get("latest_checkpoint_path"),
                    savepoint_path=entry.get("savepoint_path"),
                    notice="Reattached after a kernel restart." if recorded else
                    "Reattached after a kernel restart (its kernel died while submitting it)."))
                self.poller.watch(job.job_id)
                reattached.append(job)
        return reattached

    # ----------------------------------------------------------------- waiting

    def wait_until_running(self, job_id: str, timeout: float | None = None) -> TrackedJob:
        """Block until the job and all its tasks run (or it ended, or its tasks wait for slots
        the cluster does not have free), up to ``timeout`` (default:
        :attr:`startup_timeout_s`); the cell then returns showing that state."""
        deadline = time.monotonic() + (self.startup_timeout_s if timeout is None else timeout)
        state: str | None = None
        tracked = self.registry.get(job_id)
        restoring = bool(tracked and tracked.restored_from)
        slots = SlotWait()
        while True:
            try:
                details = self.rest.job(job_id)
            except RestError:
                details = {}  # no news: keep what the poller knows
            state = details.get("state", state)
            vertices = details.get("vertices") or []
            tasks_up = all(v.get("status") in ("RUNNING", "FINISHED") for v in vertices)
            if state in ENDING_STATES or (state == "RUNNING" and vertices and tasks_up):
                break
            if slots.hopeless(vertices, self.rest):
                break  # its status output says so, and keeps following it
            if restoring and state in ("RESTARTING", "FAILING") and self._unfit(job_id):
                return self._must_get(job_id)
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        # What it waited for shows at once (the poller's task counts may be a round old)
        tasks = task_counts(details) if state and details else None
        changes: dict[str, Any] = {"state": state, **({"tasks": tasks} if tasks else {})}
        job = (self.apply(job_id, **changes) if state else None) or self._must_get(job_id)
        self._changed(job, urgent=True)
        self.poller.poll_now(job_id)
        return job

    def wait_until_ended(self, job_id: str, *, poll_s: float = 0.2) -> TrackedJob:
        """Block until the job ends (interruptible: the cell then cancels its jobs)."""
        while True:
            state = self.rest.job_status(job_id)
            if state in TERMINAL_STATES:
                self.poller.poll_now(job_id)
                return self.apply(job_id, state=state) or self._must_get(job_id)
            time.sleep(poll_s)

    def _unfit(self, job_id: str) -> bool:
        """Whether the job failed restoring its state (and was stopped for it)."""
        try:
            failure = restore_failure(self.rest.job_exceptions(job_id))
        except RestError:
            return False
        if failure is None:
            return False
        self.stop_unfit(job_id, failure.message, self.rest)
        return True

    def _must_get(self, job_id: str) -> TrackedJob:
        job = self.registry.get(job_id)
        if job is None:
            raise JobError(f"Job {job_id} is not tracked by this kernel.", job_id=job_id)
        return job

    # ----------------------------------------------------------------- shutdown

    def close(self) -> None:
        """Stop polling, release what jobs held (live tables), close the REST clients."""
        with self._lock:
            resources = [r for rs in self._attachments.values() for r in rs]
            self._attachments.clear()
            poller, self._poller = self._poller, None
        for resource in resources:
            try:
                resource.close()
            except Exception:  # the JVM may be gone already
                log.debug("closing %r failed", resource, exc_info=True)
        if poller is not None:
            poller.close()
        self.clients.close()
