"""Live results of streaming SELECTs: a table in the cell that refreshes in place.

The result is drained and kept inside the JVM (java/LiveResult.java) in the mode Zeppelin
offers: ``update`` (the materialized changelog), ``append`` (the newest rows) or ``single``
(one row through a template). Every ``refreshInterval`` a background thread fetches a
snapshot as one Arrow stream, if anything changed, and updates the cell's display.
"""

from __future__ import annotations

import contextlib
import html
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .errors import StatementError
from .java_helpers import load_class, new_instance
from .jobs import TrackedJob
from .properties import ParagraphProperties

if TYPE_CHECKING:
    import pandas as pd

    from .paragraphs import ParagraphExecutor, Prepared
    from .sql import Statement

log = logging.getLogger(__name__)

MODES = {"update": 0, "append": 1, "single": 2}
DEFAULT_MAX_ROWS = {"update": 100_000, "append": 1_000, "single": 1}
DISPLAY_ROWS = 100  # rows rendered in the cell; the whole result is in resultName


@dataclass(frozen=True)
class Counters:
    received: int
    dropped: int
    retractions: int
    held: int


def arrow_type_problem(table: Any) -> str | None:
    """A column whose type cannot travel as Arrow, described for the user, or None."""
    from pyflink.table.types import to_arrow_type

    schema = table.get_schema()
    for name, data_type in zip(schema.get_field_names(), schema.get_field_data_types()):
        try:
            to_arrow_type(data_type)
        except (TypeError, ValueError):
            return f"{name} ({data_type})"
    return None


class LiveTable:
    """One live SELECT result: JVM-side drain, refresher thread, display handle."""

    def __init__(self, gateway: Any, table_result: Any, *, mode: str, max_rows: int,
                 refresh_interval_s: float, template: str | None,
                 job: Callable[[], TrackedJob | None],
                 bind: Callable[[pd.DataFrame], None] | None = None):
        self.mode = mode
        self.max_rows = max_rows
        self.refresh_interval_s = refresh_interval_s
        self.template = template
        self._job = job
        self._bind = bind
        java_class = load_class(gateway, "LiveResult.java", "jupyterflink.LiveResult")
        j_result = table_result._j_table_result
        row_type = j_result.getResolvedSchema().toPhysicalRowDataType().getLogicalType()
        self._result = new_instance(gateway, java_class, j_result, row_type, MODES[mode],
                                    max_rows)
        self._version = -1
        self.frame: pd.DataFrame | None = None
        self.counters = Counters(0, 0, 0, 0)
        self.refreshed_at: float | None = None
        self.last_refresh_s: float | None = None
        self._handle: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.finished = threading.Event()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        from IPython.display import display

        self._handle = display(self._bundle(), raw=True, display_id=True)
        self._thread = threading.Thread(target=self._run, name="flink-live-table", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop refreshing and release the JVM-side iterator (the job is not touched)."""
        self._stop.set()
        with contextlib.suppress(Exception):  # the JVM may be gone already at shutdown
            self._result.close()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                done = self._result.isDone()
                self.refresh()
                if done:
                    break
                self._stop.wait(self.refresh_interval_s)
        except Exception:
            log.exception("live table refresh failed")
        finally:
            self.finished.set()
            self._show()

    def refresh(self) -> bool:
        """Fetch a snapshot if the result changed; returns whether it did."""
        import pyarrow as pa

        started = time.perf_counter()
        data = self._result.snapshot(self._version)
        if data is None:
            return False
        version = self._result.version()
        with pa.ipc.open_stream(data) as reader:
            self.frame = reader.read_pandas()
        received, dropped, retractions, held = (int(x) for x in
                                                self._result.counters().split())
        self.counters = Counters(received, dropped, retractions, held)
        self._version = version
        if self._bind is not None:
            self._bind(self.frame)
        self._show()
        self.refreshed_at = time.time()
        self.last_refresh_s = time.perf_counter() - started
        return True

    def _show(self) -> None:
        if self._handle is not None:
            self._handle.update(self._bundle(), raw=True)

    # ----------------------------------------------------------------- rendering

    def _status_line(self) -> str:
        job = self._job()
        parts = [f"{self.counters.held:,} rows" if self.mode != "single" else "",
                 f"{self.counters.received:,} changes received"]
        if self.refreshed_at:
            parts.append(f"refreshed {datetime.fromtimestamp(self.refreshed_at):%H:%M:%S}")
        if job is not None:
            parts.insert(0, f"{job.name} [{job.state}]")
        error = self._result.error() if self.finished.is_set() else None
        if self.finished.is_set():
            parts.append("final" + (f": {job.notice}" if job and job.notice else ""))
        if error:
            parts.append("the result stream broke: " + error.strip().splitlines()[0])
        return " · ".join(p for p in parts if p)

    def _warnings(self) -> list[str]:
        if not self.counters.dropped:
            return []
        if self.mode == "append":
            return [f"{self.counters.dropped:,} older rows were dropped: append mode keeps the "
                    f"newest maxRows={self.max_rows:,} rows."]
        return [f"{self.counters.dropped:,} new rows were not added: the table holds at most "
                f"maxRows={self.max_rows:,} rows (raise maxRows, or aggregate further)."]

    def _bundle(self) -> dict[str, str]:
        status = self._status_line()
        warnings = self._warnings()
        frame = self.frame
        if self.mode == "single":
            body_html, body_text = self._single()
        elif frame is None:
            body_html, body_text = "<i>waiting for the first rows</i>", "waiting for the first rows"
        else:
            shown = frame.head(DISPLAY_ROWS)
            more = (f"<div>showing {len(shown):,} of {len(frame):,} rows</div>"
                    if len(frame) > len(shown) else "")
            body_html = shown.to_html(index=False, max_cols=50) + more
            body_text = shown.to_string(index=False)
        warn_html = "".join(f"<div style='color:#b26a00'>&#9888; {html.escape(w)}</div>"
                            for w in warnings)
        return {
            "text/plain": "\n".join([status, *warnings, body_text]),
            "text/html": (f"<div class='jupyter-flink-live'><div style='color:#666;"
                          f"font-size:0.85em'>{html.escape(status)}</div>{warn_html}"
                          f"{body_html}</div>"),
        }

    def _single(self) -> tuple[str, str]:
        frame = self.frame
        if frame is None or frame.empty:
            return "<i>no value yet</i>", "no value yet"
        values = list(frame.iloc[0])
        if self.template:
            try:
                rendered = self.template.format(*values)
            except (IndexError, KeyError, ValueError) as exc:
                rendered = html.escape(f"template {self.template!r} does not fit the row "
                                       f"{values}: {exc}")
            return rendered, html.unescape(_strip_tags(rendered))
        text = " ".join(str(v) for v in values)
        return f"<h3>{html.escape(text)}</h3>", text


def _strip_tags(markup: str) -> str:
    import re

    return re.sub(r"<[^>]+>", "", markup)


def run_live_select(executor: ParagraphExecutor, tenv: Any, statement: Statement,
                    props: ParagraphProperties, prepared: Prepared) -> None:
    """Submit a streaming SELECT as the cell's job and show its result live."""
    try:
        table = tenv.sql_query(statement.sql)
    except Exception as exc:
        raise executor.statement_error(statement, exc) from exc
    problem = arrow_type_problem(table)
    if problem:
        raise StatementError(
            f"Line {statement.line}: the column {problem} cannot be shown in a live table.",
            statement=statement.sql,
            fix="CAST it to STRING in the SELECT (or select the fields you need).")
    try:
        result = table.execute()
    except Exception as exc:
        raise executor.statement_error(statement, exc) from exc
    job = executor.track_job(str(result.get_job_client().get_job_id()), props, prepared,
                             batch=False)
    mode = props.result_type
    max_rows = props.max_rows or DEFAULT_MAX_ROWS[mode]
    bind = None
    if props.result_name:
        name = props.result_name

        def bind(frame: pd.DataFrame) -> None:
            executor.bind(name, frame)

    live = LiveTable(executor.session.gateway, result, mode=mode, max_rows=max_rows,
                     refresh_interval_s=props.refresh_interval_ms / 1000,
                     template=props.template,
                     job=lambda: executor.tracker.registry.get(job.job_id), bind=bind)
    executor.tracker.attach(job.job_id, live)
    live.start()
    if props.wait:
        executor.wait_for_end(job)
        live.finished.wait(timeout=30)
