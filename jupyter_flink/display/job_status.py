"""The live status output of a job: shown in its cell, updated in place as the job runs.

Updates are ``update_display_data`` messages keyed by display id, sent from the poller
thread; JupyterLab routes them to the output that the cell created, whatever cell runs now.
:class:`JobDisplays` keeps one :class:`JobView` per job and listens to the job tracker.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..jobs.registry import TrackedJob
from ..secrets import mask
from .formatting import format_duration, format_time_ms, short_name

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


NOT_BROWSABLE = ("needs this kernel's client certificate: reachable from the kernel only, "
                 "not from a browser")


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


def status_rows(job: TrackedJob) -> list[tuple[str, str]]:
    """The facts shown for a job, as (label, value) pairs, for both renderings; secrets in
    them (URL credentials, values of ${env:...} references) masked."""
    return [(label, mask(value)) for label, value in _rows(job)]


def _rows(job: TrackedJob) -> list[tuple[str, str]]:
    rows = [
        ("checkpoints", f"{job.checkpoints_completed} completed, {job.checkpoints_failed} "
                        f"failed, last at {format_time_ms(job.last_checkpoint_ms)}"),
        ("latest checkpoint", job.latest_checkpoint_path or "-"),
        ("savepoint", job.savepoint_path or "-"),
    ]
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


def render_text(job: TrackedJob, cluster: ClusterAddress | None = None, *,
                uptime: bool = True) -> str:
    head = (f"Flink job {short_name(mask(job.name))} [{job.state}] id {job.job_id} "
            f"up {format_duration(job.uptime_seconds()) if uptime else '...'}")
    lines = [head] + [f"  {label}: {value}" for label, value in status_rows(job)]
    if cluster:
        lines.append(f"  cluster: {cluster.text()}")
    return "\n".join(lines)


def render_html(job: TrackedJob, cluster: ClusterAddress | None = None) -> str:
    colour = _STATE_COLOURS.get(job.state, "#555")
    esc = html.escape
    rows = "".join(
        f"<tr><th style='text-align:left;padding-right:1em;font-weight:normal;color:#666'>"
        f"{esc(label)}</th><td style='text-align:left'><code>{esc(value)}</code></td></tr>"
        for label, value in status_rows(job))
    link = f" &middot; {cluster.html()}" if cluster else ""
    name = mask(job.name)
    return (
        "<div class='jupyter-flink-job' style='font-size:0.9em'>"
        f"<b title='{esc(name)}'>{esc(short_name(name))}</b> "
        f"<span style='color:white;background:{colour};"
        f"padding:0 0.4em;border-radius:3px'>{esc(job.state)}</span> "
        f"up {esc(format_duration(job.uptime_seconds()))} &middot; "
        f"<code>{esc(job.job_id)}</code>{link}"
        f"<table style='margin-top:0.3em'>{rows}</table></div>")


class JobView:
    """The display of one job in its cell; safe to update from any thread.

    The view renders whatever ``source()`` returns when it sends an update, so updates
    asked for by several threads can never show an older state after a newer one. A
    resubmitted job takes over its predecessor's view by replacing ``source``.
    """

    def __init__(self, source: Callable[[], TrackedJob | None],
                 cluster: ClusterAddress | None = None, *,
                 min_update_interval_s: float = MIN_UPDATE_INTERVAL_S,
                 uptime_only_every_s: float = UPTIME_ONLY_EVERY_S):
        self.source = source
        self.cluster = cluster
        self.min_update_interval_s = min_update_interval_s
        self.uptime_only_every_s = uptime_only_every_s
        self._handle: Any = None
        self._lock = threading.Lock()
        self._last_sent = 0.0
        self._last_facts = ""  # what was shown, uptime aside
        self._timer: threading.Timer | None = None

    def bundle(self, job: TrackedJob) -> dict[str, str]:
        return {"text/plain": render_text(job, self.cluster),
                "text/html": render_html(job, self.cluster)}

    def show(self) -> None:
        """Create the output in the cell being executed (call on the kernel thread)."""
        from IPython.display import display

        job = self.source()
        if job is not None:
            self._handle = display(self.bundle(job), raw=True, display_id=True)
            self._last_sent = time.monotonic()
            self._last_facts = render_text(job, self.cluster, uptime=False)

    def update(self, *, force: bool = False) -> None:
        """Refresh the output; bursts are throttled, the final state always lands."""
        if self._handle is None:
            return
        with self._lock:
            wait = self._last_sent + self.min_update_interval_s - time.monotonic()
            if not force and wait > 0:
                if self._timer is None:
                    self._timer = threading.Timer(wait, self._flush)
                    self._timer.daemon = True
                    self._timer.start()
                return
        self._flush(force=force)

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
            # would only move the uptime on, but let the uptime catch up now and then.
            facts = render_text(job, self.cluster, uptime=False)
            now = time.monotonic()
            if not force and facts == self._last_facts and \
                    now - self._last_sent < self.uptime_only_every_s:
                return
            self._last_facts = facts
            self._last_sent = now
            self._handle.update(self.bundle(job), raw=True)


class JobDisplays:
    """The status output of each job of the kernel (a listener of the job tracker)."""

    def __init__(self, get_job: Callable[[str], TrackedJob | None],
                 cluster: Callable[[], ClusterAddress | None] = lambda: None, *,
                 min_update_interval_s: float = MIN_UPDATE_INTERVAL_S,
                 uptime_only_every_s: float = UPTIME_ONLY_EVERY_S):
        self._get_job = get_job
        self._cluster = cluster
        self.min_update_interval_s = min_update_interval_s
        self.uptime_only_every_s = uptime_only_every_s
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
                view = JobView(source, self._cluster(),
                               min_update_interval_s=self.min_update_interval_s,
                               uptime_only_every_s=self.uptime_only_every_s)
                self._views[job_id] = view
                shown = False
            else:
                self._views[job_id] = view
                view.source = source
                shown = True
        if shown:
            view.update(force=True)
        else:
            view.show()

    def job_tracked(self, job: TrackedJob) -> None:
        pass  # shown by the cell that runs it (show), which knows where

    def job_changed(self, job: TrackedJob, *, urgent: bool) -> None:
        view = self._views.get(job.job_id)
        if view is not None:
            view.update(force=urgent)

    def job_ended(self, job: TrackedJob) -> None:
        pass  # its last change is urgent: job_changed shows it
