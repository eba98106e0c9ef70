"""Live results of streaming SELECTs: a table in the cell that refreshes in place.

The result is drained and kept inside the JVM (java/LiveResult.java) in the mode Zeppelin
offers: ``update`` (the materialized changelog), ``append`` (the newest rows) or ``single``
(one row through a template). Every ``refreshInterval`` a background thread fetches a
snapshot, if anything changed: the JVM writes it to a private file on tmpfs (a JSON header
with the counters and the end state, then an Arrow stream; py4j would send the bytes
base64-encoded, ~80 times slower), and Python turns it into a pandas DataFrame and updates
the cell's display. PyFlink's row iterator (three py4j round trips per row) is never used.

Memory stays bounded: the JVM holds at most ``maxRows`` rows, Python only the latest
snapshot. When the query ends, the JVM side is released and the display shows the final
table and why the query stopped.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .display import short_name
from .errors import JobError, StatementError
from .java_helpers import load_class, new_instance
from .jobs import TERMINAL_STATES, TrackedJob
from .properties import ParagraphProperties

if TYPE_CHECKING:
    import pandas as pd

    from .paragraphs import ParagraphExecutor, Prepared
    from .sql import Statement

__all__ = ["DEFAULT_MAX_ROWS", "LiveTable", "Snapshot", "open_live_result", "render_template",
           "run_live_select"]

log = logging.getLogger(__name__)

MODES = {"update": 0, "append": 1, "single": 2}
DEFAULT_MAX_ROWS = {"update": 100_000, "append": 1_000, "single": 1}
DISPLAY_ROWS = 100  # rows rendered in the cell; the whole result is in resultName
FINAL_FOLLOW_S = 60.0  # after the result ended, keep showing news of the job this long
_SETTLED_S = 5.0  # ... but stop once the job has ended and nothing changed for this long


# --------------------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class Snapshot:
    """One fetch of the JVM-side result: the rows and the counters, consistent with each other."""

    frame: pd.DataFrame | None
    version: int
    received: int  # changelog rows applied so far
    dropped: int  # rows not kept because of maxRows
    retractions: int  # -U/-D rows among ``received``
    rows: int  # rows in ``frame``
    done: bool  # the result stream ended; nothing will change any more
    job_status: str | None = None  # the job's state when the stream ended (JVM's view)
    error: str | None = None  # why the stream broke, one line
    error_trace: str | None = None
    problem: str | None = None  # why ``frame`` could not be built, if it could not
    jvm_seconds: float = 0.0  # time the JVM took for the previous snapshot


def parse_snapshot(data: bytes) -> Snapshot:
    """Decode a ``LiveResult.snapshotTo()`` file: 4-byte length, JSON header, Arrow stream."""
    import pyarrow as pa

    view = memoryview(data)
    size = int.from_bytes(view[:4], "big")
    header = json.loads(bytes(view[4:4 + size]))
    frame = None
    problem = None
    try:
        with pa.ipc.open_stream(pa.py_buffer(view[4 + size:])) as reader:
            frame = reader.read_pandas()
    except Exception as exc:  # a value pandas cannot hold (e.g. a timestamp beyond 2262)
        problem = f"The rows cannot be turned into a pandas DataFrame: {exc}"
    return Snapshot(
        frame=frame, version=header["version"], received=header["received"],
        dropped=header["dropped"], retractions=header["retractions"], rows=header["rows"],
        done=header["done"], job_status=header.get("job_status"), error=header.get("error"),
        error_trace=header.get("error_trace"), problem=problem,
        jvm_seconds=header.get("snapshot_ns", 0) / 1e9)


def snapshot_dir() -> str:
    """A private directory for one live table's snapshot file, on tmpfs where there is one."""
    shm = "/dev/shm"
    base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    return tempfile.mkdtemp(prefix="jupyter-flink-live-", dir=base)


def open_live_result(gateway: Any, table_result: Any, *, mode: str, max_rows: int) -> Any:
    """Start draining ``table_result`` (a PyFlink TableResult) into a JVM-side LiveResult."""
    java_class = load_class(gateway, "LiveResult.java", "jupyterflink.LiveResult")
    j_result = table_result._j_table_result
    row_type = j_result.getResolvedSchema().toPhysicalRowDataType().getLogicalType()
    result = new_instance(gateway, java_class, j_result, row_type, MODES[mode], max_rows)
    result.start()
    return result


def unsupported_column(gateway: Any, j_table: Any) -> tuple[str, str] | None:
    """The first column of a Java Table whose type the live table cannot carry: (name, type)."""
    java_class = load_class(gateway, "LiveResult.java", "jupyterflink.LiveResult")
    row_type = j_table.getResolvedSchema().toPhysicalRowDataType().getLogicalType()
    types = gateway.new_array(gateway.jvm.Class, 1)
    types[0] = row_type.getClass()
    args = gateway.new_array(gateway.jvm.Object, 1)
    args[0] = row_type
    found = java_class.getMethod("unsupportedColumn", types).invoke(None, args)
    if found is None:
        return None
    name, _, type_text = str(found).partition("\t")
    return name, type_text


# --------------------------------------------------------------------------- rendering


def render_template(template: str, values: list[Any]) -> str:
    """Zeppelin's single-value template: ``{0}``, ``{1}``... become the row's values.

    Only numbered placeholders are replaced, so CSS or other braces in the HTML stay as
    they are; values are HTML-escaped, a placeholder beyond the row is left visible.
    """
    def value(match: re.Match[str]) -> str:
        index = int(match.group(1))
        if index >= len(values):
            return match.group(0)
        return html.escape(_format_value(values[index]))

    return re.sub(r"\{(\d+)\}", value, template)


def _format_value(value: Any) -> str:
    if value is None:
        return "null"
    try:
        if value != value:  # NaN: pandas' null for numbers
            return "null"
    except (TypeError, ValueError):
        pass
    return str(value)


def _cell(value: Any) -> str:
    if isinstance(value, float) and value == value:
        return f"{value:.6g}"
    return _format_value(value)


def html_table(frame: pd.DataFrame) -> str:
    """A plain HTML table of ``frame`` (8x faster than ``DataFrame.to_html``: it is redrawn
    at every refresh)."""
    escape = html.escape
    head = "".join(f"<th>{escape(str(name))}</th>" for name in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(_cell(v))}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False, name=None))
    return (f"<table class='dataframe'><thead><tr style='text-align: right;'>{head}</tr>"
            f"</thead><tbody>{body}</tbody></table>")


def text_table(frame: pd.DataFrame) -> str:
    """``frame`` as right-aligned plain text columns (for frontends without HTML)."""
    names = [str(name) for name in frame.columns]
    rows = [[_cell(v) for v in row] for row in frame.itertuples(index=False, name=None)]
    widths = [max([len(name)] + [len(row[i]) for row in rows]) for i, name in enumerate(names)]
    return "\n".join(" ".join(cell.rjust(width) for cell, width in zip(line, widths))
                     for line in [names, *rows])


def _strip_tags(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def stop_reason(snapshot: Snapshot | None, job: TrackedJob | None) -> tuple[str, bool]:
    """Why the live result stopped, for the final display; and whether it is a failure."""
    state = job.state if job is not None and job.state in TERMINAL_STATES else None
    state = state or (snapshot.job_status if snapshot is not None else None)
    notice = job.notice if job is not None else None
    received = snapshot.received if snapshot is not None else 0
    error = snapshot.error if snapshot is not None else None
    if state == "FAILED":
        cause = (job.failure if job is not None else None) or error or "see %flink.jobs"
        return (f"The query failed after {received:,} result changes: {cause}. The table "
                "shows the result up to the failure; fix the query and run the cell again.",
                True)
    if state == "CANCELED":
        return notice or "The query was cancelled.", False
    if state == "FINISHED":
        if notice:
            return notice, False
        if job is not None and job.savepoint_path:
            return f"The query was stopped with savepoint {job.savepoint_path}.", False
        return "The query finished: it read all of its input.", False
    if error:
        where = f" (the job is {job.state})" if job is not None else ""
        return (f"The result stream broke{where}: {error}. The table shows what was "
                "received until then.", True)
    return notice or f"The query ended{f' ({state})' if state else ''}.", False


_NOTE_HTML = {
    "warning": "<div style='color:#b26a00'>&#9888; {}</div>",
    "error": "<div style='color:#c62828'>&#9888; {}</div>",
    "end": "<div style='color:#555'>{}</div>",
}


class LiveView:
    """What one live table shows, as a display bundle (text/plain and text/html)."""

    def __init__(self, *, mode: str, max_rows: int, template: str | None):
        self.mode = mode
        self.max_rows = max_rows
        self.template = template

    def warnings(self, snapshot: Snapshot | None) -> list[str]:
        if snapshot is None:
            return []
        notes = []
        if snapshot.dropped and self.mode == "append":
            notes.append(f"{snapshot.dropped:,} older rows were dropped: append mode keeps the "
                         f"newest maxRows={self.max_rows:,} rows.")
        elif snapshot.dropped:
            notes.append(f"{snapshot.dropped:,} result rows were not kept: the table holds at "
                         f"most maxRows={self.max_rows:,} rows, so it is incomplete. Raise "
                         "maxRows, or aggregate further.")
        if snapshot.retractions and self.mode == "append":
            notes.append(f"This query also retracts rows it emitted ({snapshot.retractions:,} "
                         "retractions), which append mode does not apply: type=update shows "
                         "the current result.")
        if snapshot.problem:
            notes.append(snapshot.problem)
        return notes

    def status(self, snapshot: Snapshot | None, job: TrackedJob | None,
               refreshed_at: float | None, final: bool) -> str:
        parts = []
        if job is not None:
            state = job.state
            if final and state not in TERMINAL_STATES and snapshot is not None and \
                    snapshot.job_status in TERMINAL_STATES:
                state = snapshot.job_status  # the JVM saw the end before the poller did
            parts.append(f"{short_name(job.name)} [{state}]")
        if snapshot is not None:
            if self.mode != "single":
                parts.append(f"{snapshot.rows:,} rows")
            parts.append(f"{snapshot.received:,} changes received")
        if refreshed_at:
            parts.append(f"refreshed {datetime.fromtimestamp(refreshed_at):%H:%M:%S}")
        if final:
            parts.append("final")
        return " · ".join(parts)

    def body(self, snapshot: Snapshot | None) -> tuple[str, str]:
        frame = snapshot.frame if snapshot is not None else None
        if self.mode == "single":
            if frame is None or frame.empty:
                return "<i>no value yet</i>", "no value yet"
            values = list(frame.iloc[0])
            if self.template:
                rendered = render_template(self.template, values)
                return rendered, _strip_tags(rendered)
            text = " ".join(_format_value(v) for v in values)
            return f"<h3>{html.escape(text)}</h3>", text
        if frame is None:
            return "<i>waiting for the first rows</i>", "waiting for the first rows"
        # append: the newest rows matter; update: the table in its stable order
        shown = frame.tail(DISPLAY_ROWS) if self.mode == "append" else frame.head(DISPLAY_ROWS)
        more = ""
        if len(frame) > len(shown):
            which = "newest" if self.mode == "append" else "first"
            more = f"showing the {which} {len(shown):,} of {len(frame):,} rows"
        body_html, body_text = html_table(shown), text_table(shown)
        if more:
            body_html += f"<div style='color:#666;font-size:0.85em'>{more}</div>"
            body_text += f"\n({more})"
        return body_html, body_text

    def bundle(self, snapshot: Snapshot | None, job: TrackedJob | None, *,
               refreshed_at: float | None, final: bool,
               body: tuple[str, str] | None = None) -> dict[str, str]:
        status = self.status(snapshot, job, refreshed_at, final)
        notes = [(text, "warning") for text in self.warnings(snapshot)]
        trace = ""
        if final:
            reason, failed = stop_reason(snapshot, job)
            notes.append((reason, "error" if failed else "end"))
            if failed and snapshot is not None and snapshot.error_trace:
                # the Java trace, one click away
                trace = (f"<details><summary style='color:#666;font-size:0.85em'>Java trace"
                         f"</summary><pre style='font-size:0.8em'>"
                         f"{html.escape(snapshot.error_trace)}</pre></details>")
        body_html, body_text = body or self.body(snapshot)
        notes_html = "".join(_NOTE_HTML[kind].format(html.escape(text)) for text, kind in notes)
        return {
            "text/plain": "\n".join([status, *(text for text, _ in notes), body_text]),
            "text/html": (f"<div class='jupyter-flink-live'><div style='color:#666;"
                          f"font-size:0.85em'>{html.escape(status)}</div>{notes_html}"
                          f"{trace}{body_html}</div>"),
        }


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
