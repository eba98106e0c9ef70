"""Live results of streaming SELECTs: a table in the cell that refreshes in place.

The result is drained and kept inside the JVM (live_result.py). Every ``refreshInterval`` a
background thread fetches a snapshot, if anything changed, turns it into a pandas DataFrame
and updates the cell's display (live_view.py).

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

from ..display.live_view import LiveView
from ..errors import JobError, StatementError
from ..flink.interrupts import interrupt_held
from ..flink.live_result import (
    Snapshot,
    open_live_result,
    parse_snapshot,
    snapshot_dir,
    unsupported_column,
)
from ..jobs.registry import TrackedJob
from ..parsing.properties import ParagraphProperties

if TYPE_CHECKING:
    import pandas as pd

    from ..parsing.sql import Statement
    from .executor import ParagraphExecutor, Prepared

__all__ = ["DEFAULT_MAX_ROWS", "LiveTable", "run_live_select"]

log = logging.getLogger(__name__)

DEFAULT_MAX_ROWS = {"update": 100_000, "append": 1_000, "single": 1}
FINAL_FOLLOW_S = 60.0  # after the result ended, keep showing news of the job this long
_SETTLED_S = 5.0  # ... but stop once the job has ended and nothing changed for this long


# --------------------------------------------------------------------------- live table


def _display(bundle: dict[str, str]) -> Any:
    from IPython.display import display

    return display(bundle, raw=True, display_id=True)


class LiveTable:
    """One live SELECT result: the JVM-side result, a refresher thread, a display.

    ``result`` is the JVM ``LiveResult`` (see :func:`open_live_result`); ``job`` returns
    the tracked job (for its state and end notice); ``bind`` receives each new DataFrame
    (``resultName``); ``publish`` creates the display and returns a handle with
    ``update(bundle, raw=True)`` (IPython's ``display`` by default).
    """

    def __init__(self, result: Any, *, mode: str, max_rows: int, refresh_interval_s: float,
                 template: str | None = None,
                 job: Callable[[], TrackedJob | None] = lambda: None,
                 bind: Callable[[pd.DataFrame], None] | None = None,
                 publish: Callable[[dict[str, str]], Any] = _display):
        self.view = LiveView(mode=mode, max_rows=max_rows, template=template)
        self.refresh_interval_s = refresh_interval_s
        self._result: Any = result
        self._job = job
        self._bind = bind
        self._publish = publish
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

    def bundle(self) -> dict[str, str]:
        return self.view.bundle(self.snapshot, self._job(), refreshed_at=self.refreshed_at,
                                final=self._final, body=self._final_body)

    def _show(self) -> None:
        if self._handle is None:
            return
        try:
            self._handle.update(self.bundle(), raw=True)
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


# --------------------------------------------------------------------------- paragraphs


def default_max_rows(executor: ParagraphExecutor, mode: str) -> int:
    """maxRows when the paragraph does not say: in append mode Zeppelin's ``flink.maxRows``
    (``zeppelin.flink.maxResult``, default 1,000); update mode holds the whole result, up to
    100,000 rows; single mode one."""
    if mode == "append":
        try:
            return int(executor.session.interpreter_setting("flink.maxRows"))
        except (KeyError, ValueError):
            pass
    return DEFAULT_MAX_ROWS[mode]


def run_live_select(executor: ParagraphExecutor, tenv: Any, statement: Statement,
                    props: ParagraphProperties, prepared: Prepared) -> None:
    """Submit a streaming SELECT as the cell's job and show its result live."""
    try:
        table = tenv.sql_query(statement.sql)
    except Exception as exc:
        raise executor.statement_error(statement, exc) from exc
    gateway = executor.session.gateway
    problem = unsupported_column(gateway, table._j_table)
    if problem:
        name, type_text = problem
        raise StatementError(
            f"Line {statement.line}: the column {name} has the type {type_text}, which a "
            "live table cannot show.", statement=statement.sql,
            fix=f"CAST it in the SELECT, e.g. CAST({name} AS STRING), or select the fields "
                "you need from it.")
    try:
        with interrupt_held():
            result = table.execute()
    except Exception as exc:
        raise executor.statement_error(statement, exc) from exc
    mode = props.result_type
    max_rows = props.max_rows or default_max_rows(executor, mode)
    job_id = str(result.get_job_client().get_job_id())
    # Drain from the start: the job's collect sink holds only a few MB before it blocks.
    live_result = open_live_result(gateway, result, mode=mode, max_rows=max_rows)
    bind = None
    if props.result_name:
        name = props.result_name

        def bind(frame: pd.DataFrame) -> None:
            executor.bind(name, frame)

    live = LiveTable(live_result, mode=mode, max_rows=max_rows,
                     refresh_interval_s=props.refresh_interval_ms / 1000,
                     template=props.template,
                     job=lambda: executor.tracker.registry.get(job_id), bind=bind)
    try:
        job = executor.track_job(job_id, props, prepared, batch=False)
    except JobError:
        # It failed at once: still show the rows it produced before, then the error.
        executor.tracker.attach(job_id, live)
        live.start()
        raise
    except BaseException:
        live.close()
        raise
    executor.tracker.attach(job_id, live)
    live.start()
    if props.wait:
        executor.wait_for_end(job)
        live.finished.wait(timeout=30)
