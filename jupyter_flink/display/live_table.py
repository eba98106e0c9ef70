"""A live streaming SELECT result in its cell: a table that refreshes in place.

The result is drained and kept inside the JVM (:mod:`jupyter_flink.flink.live_result`). Every
``refreshInterval`` a background thread fetches a snapshot, if anything changed, turns it
into a pandas DataFrame and updates the cell's display (live_view.py).

Memory stays bounded: the JVM holds at most ``maxRows`` rows, Python only the latest
snapshot. When the query ends, the JVM side is released and the display shows the final
table and why the query stopped.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..jobs.registry import TrackedJob
from .job_facts import PAYLOAD_VERSION, TABLE_MIME_TYPE
from .live_view import LiveView
from .snapshots import Snapshot, parse_snapshot, snapshot_dir

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FINAL_FOLLOW_S", "LiveTable"]

log = logging.getLogger(__name__)

FINAL_FOLLOW_S = 60.0  # after the result ended, keep showing news of the job this long
_SETTLED_S = 5.0  # ... but stop once the job has ended and nothing changed for this long


def _display(bundle: dict[str, Any]) -> Any:
    from IPython.display import display

    return display(bundle, raw=True, display_id=True)


class LiveTable:
    """One live SELECT result: the JVM-side result, a refresher thread, a display.

    ``result`` is the JVM ``LiveResult`` (see :func:`open_live_result`); ``job`` returns
    the tracked job (for its state and end notice); ``bind`` receives each new DataFrame
    (``resultName``); ``publish`` creates the display and returns a handle with
    ``update(bundle, raw=True)`` (IPython's ``display`` by default); ``share(html, final)``
    hands each new rendering to the frontends subscribed to this table through the jobs comm
    (they keep it live after a page reload). ``job_id`` and ``kernel`` (the kernel process's
    id) go into the bundle's JSON (:data:`TABLE_MIME_TYPE`), which the labextension renders.
    """

    def __init__(self, result: Any, *, mode: str, max_rows: int, refresh_interval_s: float,
                 template: str | None = None,
                 job: Callable[[], TrackedJob | None] = lambda: None,
                 bind: Callable[[pd.DataFrame], None] | None = None,
                 publish: Callable[[dict[str, Any]], Any] = _display,
                 job_id: str | None = None, kernel: str | None = None,
                 share: Callable[[str, bool], None] | None = None):
        self.view = LiveView(mode=mode, max_rows=max_rows, template=template)
        self.refresh_interval_s = refresh_interval_s
        self._result: Any = result
        self._job = job
        self._bind = bind
        self._publish = publish
        self._share = share
        self.job_id = job_id
        self.kernel = kernel
        self._version = -1
        self.snapshot: Snapshot | None = None
        self.refreshed_at: float | None = None
        self.last_refresh_s: float | None = None
        self._final = False
        self._final_body: tuple[str, str] | None = None
        self._handle: Any = None
        self._dir = snapshot_dir()
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.finished = threading.Event()  # the result ended and its final state is shown

    @property
    def mode(self) -> str:
        return self.view.mode

    @property
    def frame(self) -> pd.DataFrame | None:
        return self.snapshot.frame if self.snapshot is not None else None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Show the table (call on the kernel thread, in the cell) and start refreshing."""
        self._handle = self._publish(self.bundle())
        self._thread = threading.Thread(target=self._run, name="flink-live-table", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop refreshing and release the JVM side (which cancels the job if it still runs)."""
        self._stop.set()
        locked = self._refresh_lock.acquire(timeout=5)  # let a refresh under way finish
        try:
            result, self._result = self._result, None
            if result is not None:
                try:
                    result.close()
                except Exception:  # the JVM may be gone already at shutdown
                    log.debug("closing a live result failed", exc_info=True)
            shutil.rmtree(self._dir, ignore_errors=True)
        finally:
            if locked:
                self._refresh_lock.release()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.refresh()
                if self.snapshot is not None and self.snapshot.done:
                    break
                self._stop.wait(self.refresh_interval_s)
        except Exception as exc:
            log.exception("live table refresh failed")
            self.snapshot = _failed(self.snapshot, f"refreshing the table failed: {exc}")
        finally:
            self._finish()
        self._follow_job_end()

    def _finish(self) -> None:
        """Show the final state and let the JVM forget the rows (Python keeps the last frame)."""
        with self._refresh_lock:
            result = self._result
            if result is not None:
                try:
                    result.release()
                except Exception:
                    log.debug("releasing a live result failed", exc_info=True)
            # The job has ended (or the stream broke: then the job is left to the user).
            self._result = None
            shutil.rmtree(self._dir, ignore_errors=True)
        self._final = True
        # The table body no longer changes: render it once, then drop the frame
        # (resultName, if given, keeps its own reference).
        self._final_body = self.view.body(self.snapshot)
        if self.snapshot is not None and self._bind is None:
            self.snapshot = _without_frame(self.snapshot)
        self._show()
        self.finished.set()

    def _follow_job_end(self) -> None:
        """Re-render when the job's end state or notice arrives (e.g. the savepoint path)."""
        if self._job() is None:
            return
        deadline = time.monotonic() + FINAL_FOLLOW_S
        last_seen = _job_facts(self._job())
        settled_since = time.monotonic()
        while not self._stop.wait(0.25) and time.monotonic() < deadline:
            job = self._job()
            facts = _job_facts(job)
            if facts != last_seen:
                last_seen = facts
                settled_since = time.monotonic()
                self._show()
            elif (job is None or job.ended) and \
                    time.monotonic() - settled_since > _SETTLED_S:
                break

    def refresh(self, *, force: bool = False) -> bool:
        """Fetch a snapshot if the result changed (or ``force``); returns whether it did."""
        with self._refresh_lock:
            result = self._result
            if result is None:
                return False
            started = time.perf_counter()
            path = os.path.join(self._dir, "snapshot")
            if result.snapshotTo(-1 if force else self._version, path) < 0:
                return False  # nothing changed
            with open(path, "rb") as file:
                data = file.read()
            os.unlink(path)
            snapshot = parse_snapshot(data)
            self._version = snapshot.version
            self.snapshot = snapshot
            if self._bind is not None and snapshot.frame is not None:
                self._bind(snapshot.frame)
            self.refreshed_at = time.time()
            self._show()
            self.last_refresh_s = time.perf_counter() - started
            return True

    # ----------------------------------------------------------------- display

    def bundle(self) -> dict[str, Any]:
        bundle: dict[str, Any] = self.view.bundle(
            self.snapshot, self._job(), refreshed_at=self.refreshed_at, final=self._final,
            body=self._final_body)
        if self.job_id is not None:
            # Our renderer shows the bundle's HTML, live through the jobs comm.
            bundle = {TABLE_MIME_TYPE: {
                "version": PAYLOAD_VERSION, "kernel": self.kernel, "job_id": self.job_id,
                "final": self._final, "observed_ms": int(time.time() * 1000)}, **bundle}
        return bundle

    def _show(self) -> None:
        if self._handle is None:
            return
        try:
            bundle = self.bundle()
            self._handle.update(bundle, raw=True)
            if self._share is not None:
                self._share(bundle["text/html"], self._final)
        except Exception:  # e.g. the kernel is shutting down; the next refresh tries again
            log.debug("updating the live table's display failed", exc_info=True)


def _job_facts(job: TrackedJob | None) -> tuple[Any, ...]:
    if job is None:
        return ()
    return (job.state, job.notice, job.failure, job.savepoint_path)


def _without_frame(snapshot: Snapshot) -> Snapshot:
    return replace(snapshot, frame=None)


def _failed(snapshot: Snapshot | None, message: str) -> Snapshot:
    if snapshot is None:
        return Snapshot(None, -1, 0, 0, 0, 0, True, error=message)
    return replace(snapshot, done=True, error=message)
