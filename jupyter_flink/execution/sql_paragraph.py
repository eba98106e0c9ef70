"""``%%flink.ssql`` and ``%%flink.bsql`` cells: statements in order, one job per cell.

DDL, SET/RESET, SHOW, DESCRIBE and EXPLAIN run at once; an INSERT (or a statement set, or
several INSERTs with ``runAsOne``) starts the cell's job; a streaming SELECT starts a job
whose result is a live table (live_select.py), a batch SELECT returns a DataFrame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

from ..errors import ConfigurationError, PropertyError, StatementError
from ..flink.interrupts import interrupt_held
from ..flink.session import FlinkSession
from ..parsing.sql import (
    Statement,
    StatementKind,
    describe_done,
    parse_reset,
    parse_set,
    split_statements,
)
from .launcher import Launcher
from .live_select import run_live_select
from .preparation import Preparation
from .run import CellRun
from .state_fit import check_fit, refusal
from .statement_errors import statement_error

__all__ = ["SqlParagraphs"]

_JOB_KINDS = (StatementKind.INSERT, StatementKind.SELECT, StatementKind.STATEMENT_SET)


class _Text:
    """Plain text shown as such (EXPLAIN output), not as a quoted string."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


class SqlParagraphs:
    """Runs SQL cells on one session."""

    def __init__(self, session: FlinkSession, preparation: Preparation, launcher: Launcher, *,
                 bind: Callable[[str, Any], None]):
        self.session = session
        self.preparation = preparation
        self.launcher = launcher
        self.bind = bind  # set a variable in the user's namespace (resultName)

    def run(self, run: CellRun, *, batch: bool) -> Any:
        """Run a ``%%flink.ssql`` (streaming) or ``%%flink.bsql`` (batch) cell."""
        statements = split_statements(run.text, run.first_line)
        if not statements:
            return None
        props = run.props
        self._check_job_count(statements, run, batch)
        if props.restart_policy == "fromSavepointOnFailure" and (batch or any(
                s.kind is StatementKind.SELECT for s in statements)):
            raise PropertyError(
                "restartPolicy=fromSavepointOnFailure resubmits streaming INSERT jobs; this "
                "cell has a SELECT or is batch SQL.", name="restartPolicy",
                fix="Use it on %%flink.ssql cells that INSERT into a sink.")
        # A streaming cell submits at most one job (above): its id is chosen beforehand
        prepared = self.preparation.prepare(
            run, one_job=not batch and any(s.kind in _JOB_KINDS for s in statements))
        tenv = self.session.envs.btenv if batch else self.session.envs.stenv
        result = None
        pending_inserts: list[Statement] = []
        with self.session.job_scope(prepared.overrides, batch=batch) as submitted, \
                self.launcher.cancelled_on_interrupt(run, submitted):
            for statement in statements:
                if statement.kind is StatementKind.INSERT and props.run_as_one:
                    pending_inserts.append(statement)
                    continue
                result = self._run_statement(run, tenv, statement, batch)
            if pending_inserts:
                self._run_inserts(run, tenv, pending_inserts, batch)
        return result

    def _check_job_count(self, statements: Sequence[Statement], run: CellRun,
                         batch: bool) -> None:
        jobs = [s for s in statements if s.kind in _JOB_KINDS]
        if batch or len(jobs) <= 1:
            return
        if run.props.run_as_one and all(s.kind is StatementKind.INSERT for s in jobs):
            return
        raise PropertyError(
            f"This cell has {len(jobs)} statements that each start a streaming job "
            f"(lines {', '.join(str(s.line) for s in jobs)}), and a cell owns one job.",
            name="runAsOne",
            fix="Add runAsOne=true to run the INSERTs as one job, or split the cell "
                "(a streaming SELECT needs a cell of its own).")

    def _run_statement(self, run: CellRun, tenv: Any, statement: Statement,
                       batch: bool) -> Any:
        kind = statement.kind
        if kind is StatementKind.SET:
            return self._set(run, statement)
        if kind is StatementKind.RESET:
            return self._reset(statement)
        if kind is StatementKind.SELECT:
            if batch:
                return self._batch_select(run, tenv, statement)
            return run_live_select(run, tenv, statement, session=self.session,
                                   launcher=self.launcher, bind=self.bind)
        if kind is StatementKind.STATEMENT_SET:
            return self._run_inserts(run, tenv, [Statement(sql, statement.line,
                                                           StatementKind.INSERT)
                                                 for sql in statement.inserts], batch)
        if kind is StatementKind.INSERT and not batch:
            check_fit(self.session, run, tenv, statements=[statement.sql])
            with self.launcher.submitting(run, self.session):
                result = self._execute_sql(run, tenv, statement)
        else:
            result = self._execute_sql(run, tenv, statement)
        if result.get_job_client() is not None:  # INSERT, but also CTAS, EXECUTE INSERT...
            return self.launcher.started(run, result, batch=batch)
        if kind in (StatementKind.SHOW, StatementKind.DESCRIBE, StatementKind.EXPLAIN,
                    StatementKind.OTHER):
            return _table_result_frame(result)
        done = describe_done(statement)
        if done:
            run.note(done)
        return None

    def _run_inserts(self, run: CellRun, tenv: Any, inserts: Sequence[Statement],
                     batch: bool) -> Any:
        statement_set = tenv.create_statement_set()
        for insert in inserts:
            try:
                statement_set.add_insert_sql(insert.sql)
            except Exception as exc:
                raise statement_error(insert, exc) from exc
        if not batch:
            check_fit(self.session, run, tenv, statements=[i.sql for i in inserts])
        try:
            with interrupt_held(), self.launcher.submitting(
                    run, self.session) if not batch else nullcontext():
                result = statement_set.execute()
        except Exception as exc:
            raise self._error(run, inserts[0], exc) from exc
        return self.launcher.started(run, result, batch=batch)

    def _execute_sql(self, run: CellRun, tenv: Any, statement: Statement) -> Any:
        try:
            with interrupt_held():  # an INSERT's job must reach the JobListener
                return tenv.execute_sql(statement.sql)
        except Exception as exc:
            raise self._error(run, statement, exc) from exc

    def _error(self, run: CellRun, statement: Statement, exc: BaseException) -> Exception:
        """What to tell about a statement Flink refused: saved state that does not fit the
        changed query, in the user's words; else Flink's reason."""
        return refusal(self.session, run, exc) or statement_error(statement, exc)

    def _set(self, run: CellRun, statement: Statement) -> Any:
        parsed = parse_set(statement.sql)
        envs = self.session.envs
        if parsed is None:  # bare SET: show what SET statements configured
            import pandas as pd

            conf = envs.stenv.get_config().get_configuration()
            return pd.DataFrame(sorted(conf.to_dict().items()), columns=["key", "value"])
        key, value = parsed
        try:
            resolved = self.session.options.resolve(key, value)
        except ConfigurationError as exc:
            raise StatementError(f"Line {statement.line}: {exc.message}", fix=exc.fix,
                                 statement=statement.sql) from exc
        for tenv in (envs.stenv, envs.btenv):
            for k, v in resolved.settings:
                tenv.get_config().set(k, v)
        if resolved.notice:
            run.note(resolved.notice)
        return None

    def _reset(self, statement: Statement) -> None:
        key = parse_reset(statement.sql)
        envs = self.session.envs
        for tenv in (envs.stenv, envs.btenv):
            conf = tenv.get_config().get_configuration()._j_configuration
            if key is None:
                for existing in list(tenv.get_config().get_configuration().to_dict()):
                    conf.removeKey(existing)
            else:
                conf.removeKey(key)

    def _batch_select(self, run: CellRun, tenv: Any, statement: Statement) -> Any:
        props = run.props
        limit = props.max_rows or int(self.session.interpreter_setting("flink.maxRows"))
        try:
            # One row more than shown tells whether the result was cut (Zeppelin's maxResult).
            table = tenv.sql_query(statement.sql).limit(limit + 1)
            frame = table.to_pandas()  # Arrow batches, not row by row
        except Exception as exc:
            raise statement_error(statement, exc) from exc
        if len(frame) > limit:
            frame = frame.head(limit)
            run.note(f"Showing the first {limit:,} rows: the result has more (maxRows="
                     f"{limit:,}; raise it in the cell header or flink.maxRows in "
                     "%%flink.conf, or aggregate further).")
        if props.result_name:
            self.bind(props.result_name, frame)
        return frame


def _table_result_frame(result: Any) -> Any:
    """SHOW/DESCRIBE/EXPLAIN results as a DataFrame (small: row-by-row is fine)."""
    import pandas as pd

    columns = result.get_table_schema().get_field_names()
    with result.collect() as rows:
        data = [list(row) for row in rows]
    if columns == ["result"] and len(data) == 1:  # EXPLAIN: one long text
        return _Text(str(data[0][0]))
    return pd.DataFrame(data, columns=columns)
