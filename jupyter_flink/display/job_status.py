"""The live status output of a job: shown in its cell, updated in place as the job runs.

Updates are ``update_display_data`` messages keyed by display id, sent from the poller
thread; JupyterLab routes them to the output that the cell created, whatever cell runs now.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..jobs.registry import TrackedJob

_STATE_COLOURS = {
    "LOST": "#6d6d6d",
    "RUNNING": "#2e7d32", "FINISHED": "#1565c0", "CANCELED": "#6d6d6d", "FAILED": "#c62828",
    "FAILING": "#c62828", "RESTARTING": "#ef6c00", "CANCELLING": "#6d6d6d",
}
# Counters (checkpoints, restarts) refresh the output at most this often, as Flink's own web
# UI does (web.refresh-interval, 3 s): each refresh costs the kernel and every frontend some
# work, and with checkpoints every second in ten cells they add up. Changes of state and
# notices show at once; recorded paths go to cell metadata on each checkpoint regardless.
MIN_UPDATE_INTERVAL_S = 3.0
UPTIME_ONLY_EVERY_S = 15.0  # when only the uptime changed: the cell need not tick each second


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def format_time_ms(millis: int | None) -> str:
    if not millis:
        return "-"
    return datetime.fromtimestamp(millis / 1000).strftime("%H:%M:%S")


def short_name(name: str, limit: int = 60) -> str:
    """A job name fit for a heading: unnamed SQL jobs are named after their statement."""
    first = " ".join(name.split())
    return first if len(first) <= limit else first[:limit - 1] + "\u2026"


def status_rows(job: TrackedJob) -> list[tuple[str, str]]:
    """The facts shown for a job, as (label, value) pairs, for both renderings."""
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
    return rows


def render_text(job: TrackedJob, rest_url: str | None = None, *, uptime: bool = True) -> str:
    head = (f"Flink job {short_name(job.name)} [{job.state}] id {job.job_id} "
            f"up {format_duration(job.uptime_seconds()) if uptime else '...'}")
    lines = [head] + [f"  {label}: {value}" for label, value in status_rows(job)]
    if rest_url:
        lines.append(f"  cluster: {rest_url}")
    return "\n".join(lines)


def render_html(job: TrackedJob, rest_url: str | None = None) -> str:
    colour = _STATE_COLOURS.get(job.state, "#555")
    esc = html.escape
    rows = "".join(
        f"<tr><th style='text-align:left;padding-right:1em;font-weight:normal;color:#666'>"
        f"{esc(label)}</th><td style='text-align:left'><code>{esc(value)}</code></td></tr>"
        for label, value in status_rows(job))
    link = (f" &middot; <a href='{esc(rest_url)}' target='_blank'>{esc(rest_url)}</a>"
            if rest_url else "")
    return (
        "<div class='jupyter-flink-job' style='font-size:0.9em'>"
        f"<b title='{esc(job.name)}'>{esc(short_name(job.name))}</b> "
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

    def __init__(self, source: Callable[[], TrackedJob | None], rest_url: str | None = None):
        self.source = source
        self.rest_url = rest_url
        self._handle: Any = None
        self._lock = threading.Lock()
        self._last_sent = 0.0
        self._last_facts = ""  # what was shown, uptime aside
        self._timer: threading.Timer | None = None

    def bundle(self, job: TrackedJob) -> dict[str, str]:
        return {"text/plain": render_text(job, self.rest_url),
                "text/html": render_html(job, self.rest_url)}

    def show(self) -> None:
        """Create the output in the cell being executed (call on the kernel thread)."""
        from IPython.display import display

        job = self.source()
        if job is not None:
            self._handle = display(self.bundle(job), raw=True, display_id=True)
            self._last_sent = time.monotonic()
            self._last_facts = render_text(job, self.rest_url, uptime=False)

    def update(self, *, force: bool = False) -> None:
        """Refresh the output; bursts are throttled, the final state always lands."""
        if self._handle is None:
            return
        with self._lock:
            wait = self._last_sent + MIN_UPDATE_INTERVAL_S - time.monotonic()
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
            facts = render_text(job, self.rest_url, uptime=False)
            now = time.monotonic()
            if not force and facts == self._last_facts and \
                    now - self._last_sent < UPTIME_ONLY_EVERY_S:
                return
            self._last_facts = facts
            self._last_sent = now
            self._handle.update(self.bundle(job), raw=True)
