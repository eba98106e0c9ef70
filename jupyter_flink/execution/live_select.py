"""A streaming SELECT cell: its job runs, its result shows as a live table.

The query's changelog is drained in the JVM from the start (the job's collect sink holds only
a few MB before it blocks) and shown by :class:`~jupyter_flink.display.live_table.LiveTable`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..display.live_table import LiveTable
from ..errors import JobError, StatementError
from ..flink.interrupts import interrupt_held
from ..flink.live_result import open_live_result, unsupported_column
from ..flink.session import FlinkSession
from ..parsing.sql import Statement
from .launcher import Launcher
from .run import CellRun
from .state_fit import check_fit, refusal, select_restores
from .statement_errors import statement_error

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DEFAULT_MAX_ROWS", "default_max_rows", "run_live_select"]

DEFAULT_MAX_ROWS = {"update": 100_000, "append": 1_000, "single": 1}


def default_max_rows(session: FlinkSession, mode: str) -> int:
    """maxRows when the paragraph does not say: in append mode Zeppelin's ``flink.maxRows``
    (``zeppelin.flink.maxResult``, default 1,000); update mode holds the whole result, up to
    100,000 rows; single mode one."""
    if mode == "append":
        try:
            return int(session.interpreter_setting("flink.maxRows"))
        except (KeyError, ValueError):
            pass
    return DEFAULT_MAX_ROWS[mode]


def run_live_select(run: CellRun, tenv: Any, statement: Statement, *, session: FlinkSession,
                    launcher: Launcher, bind: Callable[[str, Any], None]) -> None:
    """Submit a streaming SELECT as the cell's job and show its result live."""
    props = run.props
    try:
        table = tenv.sql_query(statement.sql)
    except Exception as exc:
        raise statement_error(statement, exc) from exc
    gateway = session.gateway
    problem = unsupported_column(gateway, table._j_table)
    if problem:
        name, type_text = problem
        raise StatementError(
            f"Line {statement.line}: the column {name} has the type {type_text}, which a "
            "live table cannot show.", statement=statement.sql,
            fix=f"CAST it in the SELECT, e.g. CAST({name} AS STRING), or select the fields "
                "you need from it.")
    saved = check_fit(session, run, tenv, query=table._j_table)
    try:
        with interrupt_held(), select_restores(session, saved), \
                launcher.submitting(run, session):
            result = table.execute()
    except Exception as exc:
        raise (refusal(session, run, exc) or statement_error(statement, exc)) from exc
    mode = props.result_type
    max_rows = props.max_rows or default_max_rows(session, mode)
    job_id = str(result.get_job_client().get_job_id())
    live_result = open_live_result(gateway, result, mode=mode, max_rows=max_rows)
    bind_frame = None
    if props.result_name:
        result_name = props.result_name

        def bind_frame(frame: pd.DataFrame) -> None:
            bind(result_name, frame)

    tracker = launcher.tracker
    live = LiveTable(live_result, mode=mode, max_rows=max_rows,
                     refresh_interval_s=props.refresh_interval_ms / 1000,
                     template=props.template,
                     job=lambda: tracker.registry.get(job_id), bind=bind_frame,
                     job_id=job_id, kernel=launcher.displays.kernel.instance,
                     share=launcher.displays.table_share(job_id))
    try:
        job = launcher.track(run, job_id, batch=False)
    except JobError:
        # It failed at once: still show the rows it produced before, then the error.
        tracker.attach(job_id, live)
        live.start()
        raise
    except BaseException:
        live.close()
        raise
    tracker.attach(job_id, live)
    live.start()
    if props.wait:
        launcher.wait_for_end(job)
        live.finished.wait(timeout=30)
