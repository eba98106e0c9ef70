"""The live status output of a job: shown in its cell, updated in place as the job runs.

Updates are ``update_display_data`` messages keyed by display id, sent from the poller
thread; JupyterLab routes them to the output that the cell created, whatever cell runs now.
The same changes go to the frontends subscribed through the jobs comm (job_comm.py), which
keep outputs live after a page reload. :class:`JobDisplays` keeps one :class:`JobView` per
job and listens to the job tracker.

The bundle holds our own MIME type (job_facts.py: the facts as JSON, for the labextension's
renderer), then ``text/html`` and ``text/plain`` for every other frontend and the saved file.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol

from ..jobs.health import JobHealth
from ..jobs.registry import TrackedJob
from ..secrets import mask
from .formatting import format_duration, short_name
from .job_facts import (
    MIME_TYPE,
    KernelFacts,
    checkpoint_text,
    health_text,
    job_payload,
    state_detail,
)

_STATE_COLOURS = {
    "LOST": "#6d6d6d",
    "RUNNING": "#2e7d32", "FINISHED": "#1565c0", "CANCELED": "#6d6d6d", "FAILED": "#c62828",
    "FAILING": "#c62828", "RESTARTING": "#ef6c00", "CANCELLING": "#6d6d6d",
}
# Counters (checkpoints, restarts) refresh the output at most this often, as Flink's own web
# UI does (web.refresh-interval, 3 s): each refresh costs the kernel and every frontend some
# work, and with checkpoints every second in ten cells they add up. Changes of state and
# notices show at once; recorded paths go to cell metadata on each checkpoint regardless.
# Both are FlinkMagics settings (status_refresh_interval, uptime_refresh_interval).
MIN_UPDATE_INTERVAL_S = 3.0
UPTIME_ONLY_EVERY_S = 15.0  # when only the uptime changed: the cell need not tick each second


NOT_BROWSABLE = ("needs this kernel's client certificate; browsers open the web UI through the "
                 "Jupyter server: the Flink UI link in JupyterLab, or jupyter-flink/ui/<kernel "
                 "id>/ under the server's URL")


@dataclass(frozen=True)
class ClusterAddress:
    """Where the job's cluster is; ``browsable`` False when a browser cannot open it (the
    embedded cluster takes only clients holding the kernel's certificate): then the address
    is shown as text, with the reason, rather than as a link that fails."""

    url: str
    browsable: bool = True

    def text(self) -> str:
        return self.url if self.browsable else f"{self.url} ({NOT_BROWSABLE})"

    def html(self) -> str:
        esc = html.escape
        if self.browsable:
            return f"<a href='{esc(self.url)}' target='_blank'>{esc(self.url)}</a>"
        return f"<code title='{esc(NOT_BROWSABLE)}'>{esc(self.url)}</code>"


class Share(Protocol):
    """Where a job's changes go besides its output: the frontends subscribed to them."""

    def interested(self, job_ids: Collection[str]) -> bool: ...

    def publish(self, job_ids: Collection[str], job: TrackedJob) -> None: ...

    def publish_table(self, job_id: str, html: str, *, final: bool) -> None: ...


def status_rows(job: TrackedJob, health: JobHealth | None = None) -> list[tuple[str, str]]:
    """The facts shown for a job, as (label, value) pairs, for both renderings; secrets in
    them (URL credentials, values of ${env:...} references) masked."""
    return [(label, mask(value)) for label, value in _rows(job, health)]


def _rows(job: TrackedJob, health: JobHealth | None) -> list[tuple[str, str]]:
    rows = [
        ("checkpoints", checkpoint_text(job)),
        ("latest checkpoint", job.latest_checkpoint_path or "-"),
        ("savepoint", job.savepoint_path or "-"),
    ]
    health_line = health_text(health) if job.state == "RUNNING" else None
    if health_line:
        rows.insert(0, ("health", health_line))
    if job.restored_from:
        rows.append(("restored from", f"{job.restored_from} ({job.restore_reason})"))
    if job.auto_savepoint_s:
        rows.append(("automatic savepoints", f"every {format_duration(job.auto_savepoint_s)}"))
    if job.restarts:
        rows.append(("restarts", str(job.restarts)))
    if job.failure:
        rows.append(("failure", job.failure))
    if job.notice:
        rows.append(("note", job.notice))
    if job.recording_problem:
        rows.append(("recording", job.recording_problem))
    return rows


def render_text(job: TrackedJob, address: ClusterAddress | None = None, *, uptime: bool = True,
                health: JobHealth | None = None, cluster: str = "embedded") -> str:
    detail = state_detail(job, cluster)
    state = f"{job.state}: {detail}" if detail else job.state
    head = (f"Flink job {short_name(mask(job.name))} [{state}] "
            f"id {job.job_id} {_ran(job)} "
            f"{format_duration(job.uptime_seconds()) if uptime else '...'}")
    lines = [head] + [f"  {label}: {value}" for label, value in status_rows(job, health)]
    if address:
        lines.append(f"  cluster: {address.text()}")
    return "\n".join(lines)


def render_html(job: TrackedJob, address: ClusterAddress | None = None, *,
                health: JobHealth | None = None, cluster: str = "embedded") -> str:
    colour = _STATE_COLOURS.get(job.state, "#555")
    esc = html.escape
    detail = state_detail(job, cluster)
    rows = "".join(
        f"<tr><th style='text-align:left;padding-right:1em;font-weight:normal;color:#666'>"
        f"{esc(label)}</th><td style='text-align:left'><code>{esc(value)}</code></td></tr>"
        for label, value in status_rows(job, health))
    link = f" &middot; {address.html()}" if address else ""
    name = mask(job.name)
    return (
        "<div class='jupyter-flink-job' style='font-size:0.9em'>"
        f"<b title='{esc(name)}'>{esc(short_name(name))}</b> "
        f"<span style='color:white;background:{colour};"
        f"padding:0 0.4em;border-radius:3px'>{esc(job.state)}</span> "
        + (f"<span style='color:#b26a00'>{esc(detail)}</span> " if detail else "") +
        f"{_ran(job)} {esc(format_duration(job.uptime_seconds()))} &middot; "
        f"<code>{esc(job.job_id)}</code>{link}"
        f"<table style='margin-top:0.3em'>{rows}</table></div>")


def _ran(job: TrackedJob) -> str:
    """"up" while a job runs, "ran" once it ended (for how long, not since when)."""
    return "ran" if job.ended else "up"


class JobView:
    """The display of one job in its cell; safe to update from any thread.

    The view renders whatever ``source()`` returns when it sends an update, so updates
    asked for by several threads can never show an older state after a newer one. A
    resubmitted job takes over its predecessor's view by replacing ``source``; ``ids`` are
    the jobs the output has shown (frontends subscribe by the id their output carries).
    A view without an output (a job tracked again after a restart, shown by no cell) still
    sends its changes to the subscribed frontends (the jobs panel).
    """

    def __init__(self, source: Callable[[], TrackedJob | None],
                 address: ClusterAddress | None = None, *,
                 min_update_interval_s: float = MIN_UPDATE_INTERVAL_S,
                 uptime_only_every_s: float = UPTIME_ONLY_EVERY_S,
                 kernel: KernelFacts | None = None,
                 health: Callable[[str], JobHealth | None] = lambda job_id: None,
                 share: Share | None = None, ids: Collection[str] = ()):
        self.source = source
        self.address = address
        self.min_update_interval_s = min_update_interval_s
        self.uptime_only_every_s = uptime_only_every_s
        self.kernel = kernel or KernelFacts()
        self.health = health
        self.share = share
        self.ids: set[str] = set(ids)
        self._handle: Any = None
        self._lock = threading.Lock()
        self._last_flush = 0.0  # when the output or the frontends were last sent anything
        self._last_sent = 0.0  # when the output was last updated
        self._last_facts = ""  # what was shown, uptime and health aside
        self._last_sample: int | None = None  # the health sample the frontends got last
        self._timer: threading.Timer | None = None

    def bundle(self, job: TrackedJob) -> dict[str, Any]:
        health = self.health(job.job_id)
        cluster = self.kernel.cluster()
        return {
            MIME_TYPE: job_payload(job, self.kernel, health, now_ms=int(time.time() * 1000),
                                   series=False),
            "text/plain": render_text(job, self.address, health=health, cluster=cluster),
            "text/html": render_html(job, self.address, health=health, cluster=cluster),
        }

    def _facts(self, job: TrackedJob) -> str:
        """What the output says, but its uptime and health figures (those refresh the
        output only now and then; the frontends that chart them get each sample)."""
        return render_text(job, self.address, uptime=False, cluster=self.kernel.cluster())

    def show(self) -> None:
        """Create the output in the cell being executed (call on the kernel thread)."""
        from IPython.display import display

        job = self.source()
        if job is not None:
            self._handle = display(self.bundle(job), raw=True, display_id=True)
            self._last_sent = self._last_flush = time.monotonic()
            self._last_facts = self._facts(job)
            self._publish(job)

    def update(self, *, force: bool = False) -> None:
        """Refresh the output; bursts are throttled, the final state always lands."""
        if self._handle is None and not self._shared():
            return
        with self._lock:
            wait = self._last_flush + self.min_update_interval_s - time.monotonic()
            if not force and wait > 0:
                if self._timer is None:
                    self._timer = threading.Timer(wait, self._flush)
                    self._timer.daemon = True
                    self._timer.start()
                return
        self._flush(force=force)

    def _shared(self) -> bool:
        return self.share is not None and self.share.interested(self._all_ids())

    def _all_ids(self) -> set[str]:
        job = self.source()
        return self.ids | {job.job_id} if job is not None else set(self.ids)

    def _publish(self, job: TrackedJob) -> None:
        if self.share is not None:
            self.share.publish(self.ids | {job.job_id}, job)

    def _flush(self, *, force: bool = False) -> None:
        with self._lock:
            if self._timer is not None:
                # A forced update came first: the pending one has nothing left to do, and
                # left pending it would start a second chain of throttled updates.
                self._timer.cancel()
                self._timer = None
            job = self.source()
            if job is None:
                return
            # Each update costs the kernel and every frontend some work: skip those that
            # would only move the uptime or the health figures on, but let them catch up
            # now and then. The subscribed frontends get each health sample (their charts).
            facts = self._facts(job)
            health = self.health(job.job_id)
            sample = health.latest.at_ms if health is not None and health.latest else None
            now = time.monotonic()
            show = force or facts != self._last_facts or \
                now - self._last_sent >= self.uptime_only_every_s
            if not show and sample == self._last_sample:
                return
            self._last_flush = now
            if show:
                self._last_facts = facts
                self._last_sent = now
                if self._handle is not None:
                    self._handle.update(self.bundle(job), raw=True)
            self._last_sample = sample
            self._publish(job)


class JobDisplays:
    """The status output of each job of the kernel (a listener of the job tracker)."""

    def __init__(self, get_job: Callable[[str], TrackedJob | None],
                 address: Callable[[], ClusterAddress | None] = lambda: None, *,
                 min_update_interval_s: float = MIN_UPDATE_INTERVAL_S,
                 uptime_only_every_s: float = UPTIME_ONLY_EVERY_S,
                 kernel: KernelFacts | None = None,
                 health: Callable[[str], JobHealth | None] = lambda job_id: None):
        self._get_job = get_job
        self._address = address
        self.min_update_interval_s = min_update_interval_s
        self.uptime_only_every_s = uptime_only_every_s
        self.kernel = kernel or KernelFacts()
        self.health = health
        self.share: Share | None = None  # the jobs comm, once it is set up
        self._views: dict[str, JobView] = {}
        self._lock = threading.Lock()

    def show(self, job_id: str, *, takes_over: str | None = None) -> None:
        """Show the job's status: in the cell being executed (call on the kernel thread), or
        in place of an earlier job's output (a resubmission shows where its cell is)."""
        def source() -> TrackedJob | None:
            return self._get_job(job_id)

        with self._lock:
            view = self._views.get(takes_over) if takes_over else None
            if view is None:
                view = self._views.get(job_id)
                if view is None or view._handle is not None:
                    view = self._new_view(job_id)
                    self._views[job_id] = view
                shown = False
            else:
                self._views[job_id] = view
                view.source = source
                view.ids.add(job_id)
                shown = True
            if view.address is None:
                view.address = self._address()
        if shown:
            view.update(force=True)
        else:
            view.show()

    def _new_view(self, job_id: str) -> JobView:
        return JobView(lambda: self._get_job(job_id), None,
                       min_update_interval_s=self.min_update_interval_s,
                       uptime_only_every_s=self.uptime_only_every_s, kernel=self.kernel,
                       health=self.health, share=self.share, ids=(job_id,))

    def view(self, job_id: str) -> JobView | None:
        with self._lock:
            return self._views.get(job_id)

    def current(self, job_id: str) -> TrackedJob | None:
        """The job an output made for ``job_id`` shows now (its successor, after a
        resubmission took the output over); None if this kernel does not know it."""
        view = self.view(job_id)
        job = view.source() if view is not None else None
        return job or self._get_job(job_id)

    def payload(self, job: TrackedJob, *, series: bool) -> dict[str, Any]:
        return job_payload(job, self.kernel, self.health(job.job_id),
                           now_ms=int(time.time() * 1000), series=series)

    def table_share(self, job_id: str) -> Callable[[str, bool], None]:
        """Where a live table of ``job_id`` sends each rendering (see LiveTable)."""
        def share(html: str, final: bool) -> None:
            if self.share is not None:
                self.share.publish_table(job_id, html, final=final)
        return share

    def sampled(self, job_id: str) -> None:
        """New health figures of a job: refresh its output like a change of its counters."""
        for view in self._views_showing(job_id):
            view.update()

    def _views_showing(self, job_id: str) -> list[JobView]:
        with self._lock:
            views = list(self._views.values())
        unique = {id(view): view for view in views}.values()
        return [view for view in unique if (job := view.source()) is not None and
                job.job_id == job_id]

    def job_tracked(self, job: TrackedJob) -> None:
        # Shown by the cell that runs it (show), which knows where; until then, and for a
        # job no cell shows (tracked again after a restart), the subscribed frontends see it.
        with self._lock:
            view = self._views.get(job.job_id)
            if view is None:
                view = self._views[job.job_id] = self._new_view(job.job_id)
        view.update(force=True)

    def job_changed(self, job: TrackedJob, *, urgent: bool) -> None:
        view = self.view(job.job_id)
        if view is not None:
            view.update(force=urgent)

    def job_ended(self, job: TrackedJob) -> None:
        pass  # its last change is urgent: job_changed shows it
