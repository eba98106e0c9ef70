"""Run one paragraph (a ``%%flink``, ``%%flink.ssql`` or ``%%flink.bsql`` cell) as a job.

The steps, in order: a cell owns one job, so a still-running job of the cell is stopped
first (with a savepoint if it had ``savepointDir``, which the resume below may then use);
the restore path is chosen (resume.py) and checked on storage; the job's settings are put in
scope; the statements or code run; the new job is tracked, recorded and shown until it runs.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError, JobError, PropertyError, StatementError
from ..flink.gateway import java_error_summary
from ..flink.interrupts import interrupt_held
from ..flink.session import FlinkSession, Submissions
from ..jobs.registry import Owner, TrackedJob
from ..jobs.tracker import JobTracker
from ..kernel.cell import CellContext
from ..parsing.properties import ParagraphProperties
from ..parsing.sql import Statement, StatementKind, parse_reset, parse_set, split_statements
from ..recording.storage import check_restore_path, newest_restore_point
from .resume import RESTORE_KEY, choose_restore_path, recorded_for_cell

SAVEPOINT_DIR_KEY = "execution.checkpointing.savepoint-dir"
RESUBMIT_DELAY_S = 5.0  # times the attempt number
_JOB_KINDS = (StatementKind.INSERT, StatementKind.SELECT, StatementKind.STATEMENT_SET)


@dataclass(frozen=True)
class Prepared:
    """A paragraph ready to run: its owner, the job settings, where it restores from."""

    owner: Owner
    overrides: dict[str, str]
    restore_path: str | None
    restore_reason: str
    notes: tuple[str, ...]


@dataclass
class _Resubmission:
    """A cell run again in the background after its job failed (restartPolicy)."""

    failed: TrackedJob
    attempt: int
    notes: list[str]


class ParagraphExecutor:
    """Runs paragraphs on a session and hands their jobs to the tracker."""

    def __init__(self, session: FlinkSession, tracker: JobTracker, *,
                 say: Callable[[str], None], bind: Callable[[str, Any], None]):
        self.session = session
        self.tracker = tracker
        self._print = say  # print a short note in the cell
        self.bind = bind  # set a variable in the user's namespace (resultName)
        # Per thread: .run is the _Resubmission being run, .on_failure the cell's policy.
        self._background = threading.local()

    def _say(self, text: str) -> None:
        """A note for the user: in the cell, or with a background resubmission's status."""
        run: _Resubmission | None = getattr(self._background, "run", None)
        if run is None:
            self._print(text)
        else:
            run.notes.append(text)

    # ----------------------------------------------------------------- preparation

    def prepare(self, props: ParagraphProperties, cell: CellContext) -> Prepared:
        owner = Owner(cell.notebook_path, cell.cell_id, props.job_name or "")
        self._stop_previous(owner)
        overrides = self._job_overrides(props)
        recorded, notes = recorded_for_cell(
            cell.cell_id, cell.flink_metadata,
            self.tracker.recorded(owner) if owner.cell_id or owner.job_name else None)
        if not (owner.cell_id or owner.job_name) and (
                props.resume_from_savepoint or props.resume_from_latest_checkpoint):
            notes.append("Outside a notebook, paths are recorded per jobName: give this "
                         "paragraph a jobName to record and resume it.")
        choice = choose_restore_path(
            resume_from_savepoint=props.resume_from_savepoint,
            resume_from_latest_checkpoint=props.resume_from_latest_checkpoint,
            paragraph_path=props.restore_path,
            conf_path=self.session.flink_settings().get(RESTORE_KEY),
            recorded=recorded)
        notes.extend(choice.notes)
        if choice.path:
            note = check_restore_path(choice.path, savepoint_dirs=self._savepoint_dirs(props))
            if note:
                notes.append(note)
            overrides[RESTORE_KEY] = choice.path
        return Prepared(owner, overrides, choice.path, choice.reason, tuple(notes))

    def _stop_previous(self, owner: Owner) -> None:
        if not (owner.cell_id or owner.job_name):
            return
        previous = self.tracker.registry.for_owner(owner)
        if previous is not None and not previous.ended:
            outcome = self.tracker.cancel(previous.job_id)
            self._say(f"This cell's previous job is stopped first. {outcome.message}")

    def _job_overrides(self, props: ParagraphProperties) -> dict[str, str]:
        overrides: dict[str, str] = {}
        if props.job_name:
            overrides["pipeline.name"] = props.job_name
        if props.parallelism is not None:
            overrides["parallelism.default"] = str(props.parallelism)
        if props.max_parallelism is not None:
            overrides["pipeline.max-parallelism"] = str(props.max_parallelism)
        if props.allow_non_restored_state is not None:
            overrides["execution.state-recovery.ignore-unclaimed-state"] = \
                str(props.allow_non_restored_state).lower()
        if props.claim_mode:
            overrides["execution.state-recovery.claim-mode"] = props.claim_mode
        for key, value in props.flink_overrides.items():
            try:
                resolved = self.session.options.resolve(key, value)
            except ConfigurationError as exc:
                raise PropertyError(exc.message, name=key, fix=exc.fix,
                                    details=exc.details) from exc
            if self.session.options.scope(key) != "job":
                raise PropertyError(
                    f"{key} is a cluster setting and cannot differ per paragraph.", name=key,
                    fix="Set it in %%flink.conf instead.")
            overrides.update(dict(resolved.settings))
        return overrides

    def _savepoint_dirs(self, props: ParagraphProperties) -> tuple[str, ...]:
        dirs = [props.savepoint_dir, self.session.job_settings().get(SAVEPOINT_DIR_KEY)]
        return tuple(d for d in dirs if d)

    def default_savepoint_dir(self) -> str:
        return self.session.job_settings()[SAVEPOINT_DIR_KEY]

    # ----------------------------------------------------------------- SQL paragraphs

    def run_sql(self, props: ParagraphProperties, text: str, cell: CellContext, *,
                batch: bool) -> Any:
        """Run a ``%%flink.ssql`` (streaming) or ``%%flink.bsql`` (batch) cell."""
        statements = split_statements(text)
        if not statements:
            return None
        self._check_job_count(statements, props, batch)
        if props.restart_policy == "fromSavepointOnFailure" and (batch or any(
                s.kind is StatementKind.SELECT for s in statements)):
            raise PropertyError(
                "restartPolicy=fromSavepointOnFailure resubmits streaming INSERT jobs; this "
                "cell has a SELECT or is batch SQL.", name="restartPolicy",
                fix="Use it on %%flink.ssql cells that INSERT into a sink.")
        on_failure = self._resubmitter(props, text, cell)
        prepared = self.prepare(props, cell)
        for note in prepared.notes:
            self._say(note)
        tenv = self.session.envs.btenv if batch else self.session.envs.stenv
        result = None
        pending_inserts: list[Statement] = []
        self._background.on_failure = on_failure
        with self.session.job_scope(prepared.overrides, batch=batch) as submitted, \
                self._cancelled_on_interrupt(submitted):
            for statement in statements:
                if statement.kind is StatementKind.INSERT and props.run_as_one:
                    pending_inserts.append(statement)
                    continue
                result = self._run_statement(tenv, statement, props, prepared, batch)
            if pending_inserts:
                self._run_inserts(tenv, pending_inserts, props, prepared, batch)
        return result

    @contextmanager
    def _cancelled_on_interrupt(self, submitted: Submissions) -> Iterator[None]:
        """Interrupting the kernel while the cell runs cancels the jobs the cell started.

        ``submitted`` (Flink's JobListener, in the JVM) also has jobs not tracked yet. The
        cancel is the cell's: with a savepoint if the cell set savepointDir.
        """
        try:
            yield
        except KeyboardInterrupt:
            self.tracker.after_interrupt()
            for job_id in submitted.job_ids():
                try:
                    if self.tracker.registry.get(job_id) is not None:
                        self._say(self.tracker.cancel(job_id).message)
                    else:
                        self.tracker.rest.cancel(job_id)
                        self._say(f"Job {job_id} was cancelled.")
                except Exception as exc:  # keep cancelling the others; report this one
                    self._say(f"Cancelling job {job_id} failed: {exc}")
            raise

    def _check_job_count(self, statements: Sequence[Statement], props: ParagraphProperties,
                         batch: bool) -> None:
        jobs = [s for s in statements if s.kind in _JOB_KINDS]
        if batch or len(jobs) <= 1:
            return
        if props.run_as_one and all(s.kind is StatementKind.INSERT for s in jobs):
            return
        raise PropertyError(
            f"This cell has {len(jobs)} statements that each start a streaming job "
            f"(lines {', '.join(str(s.line) for s in jobs)}), and a cell owns one job.",
            name="runAsOne",
            fix="Add runAsOne=true to run the INSERTs as one job, or split the cell "
                "(a streaming SELECT needs a cell of its own).")

    def _run_statement(self, tenv: Any, statement: Statement, props: ParagraphProperties,
                       prepared: Prepared, batch: bool) -> Any:
        kind = statement.kind
        if kind is StatementKind.SET:
            return self._set(statement)
        if kind is StatementKind.RESET:
            return self._reset(statement)
        if kind is StatementKind.SELECT:
            return self._select(tenv, statement, props, prepared, batch)
        if kind is StatementKind.STATEMENT_SET:
            return self._run_inserts(tenv, [Statement(sql, statement.line, StatementKind.INSERT)
                                            for sql in statement.inserts],
                                     props, prepared, batch)
        result = self._execute_sql(tenv, statement)
        if result.get_job_client() is not None:  # INSERT, but also CTAS, EXECUTE INSERT...
            return self._started(result, props, prepared, batch)
        if kind in (StatementKind.SHOW, StatementKind.DESCRIBE, StatementKind.EXPLAIN,
                    StatementKind.OTHER):
            return self._table_result_frame(result)
        return None

    def _run_inserts(self, tenv: Any, inserts: Sequence[Statement], props: ParagraphProperties,
                     prepared: Prepared, batch: bool) -> Any:
        statement_set = tenv.create_statement_set()
        for insert in inserts:
            try:
                statement_set.add_insert_sql(insert.sql)
            except Exception as exc:
                raise self.statement_error(insert, exc) from exc
        try:
            with interrupt_held():
                result = statement_set.execute()
        except Exception as exc:
            raise self.statement_error(inserts[0], exc) from exc
        return self._started(result, props, prepared, batch)

    def _execute_sql(self, tenv: Any, statement: Statement) -> Any:
        try:
            with interrupt_held():  # an INSERT's job must reach the JobListener
                return tenv.execute_sql(statement.sql)
        except Exception as exc:
            raise self.statement_error(statement, exc) from exc

    @staticmethod
    def statement_error(statement: Statement, exc: BaseException) -> StatementError:
        summary = java_error_summary(exc)
        first_line = statement.sql.strip().splitlines()[0][:80]
        return StatementError(
            f"Line {statement.line}: Flink rejected `{first_line}`: {summary}",
            statement=statement.sql,
            fix="Fix the statement and run the cell again (%flink.trace shows Flink's trace).",
            details=getattr(exc, "stack_trace", None) or traceback.format_exc())

    def _set(self, statement: Statement) -> Any:
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
            self._say(resolved.notice)
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

    def _select(self, tenv: Any, statement: Statement, props: ParagraphProperties,
                prepared: Prepared, batch: bool) -> Any:
        if not batch:
            from .live_select import run_live_select

            return run_live_select(self, tenv, statement, props, prepared)
        limit = props.max_rows or int(self.session.interpreter_setting("flink.maxRows"))
        try:
            # One row more than shown tells whether the result was cut (Zeppelin's maxResult).
            table = tenv.sql_query(statement.sql).limit(limit + 1)
            frame = table.to_pandas()  # Arrow batches, not row by row
        except Exception as exc:
            raise self.statement_error(statement, exc) from exc
        if len(frame) > limit:
            frame = frame.head(limit)
            self._say(f"Showing the first {limit:,} rows: the result has more (maxRows="
                      f"{limit:,}; raise it in the cell header or flink.maxRows in "
                      "%%flink.conf, or aggregate further).")
        if props.result_name:
            self.bind(props.result_name, frame)
        return frame

    @staticmethod
    def _table_result_frame(result: Any) -> Any:
        """SHOW/DESCRIBE/EXPLAIN results as a DataFrame (small: row-by-row is fine)."""
        import pandas as pd

        columns = result.get_table_schema().get_field_names()
        with result.collect() as rows:
            data = [list(row) for row in rows]
        if columns == ["result"] and len(data) == 1:  # EXPLAIN: one long text
            return _Text(str(data[0][0]))
        return pd.DataFrame(data, columns=columns)

    # ----------------------------------------------------------------- jobs

    def _started(self, table_result: Any, props: ParagraphProperties, prepared: Prepared,
                 batch: bool) -> TrackedJob | None:
        client = table_result.get_job_client()
        if client is None:
            return None
        job = self.track_job(str(client.get_job_id()), props, prepared, batch=batch)
        if batch or props.wait:
            self.wait_for_end(job)
        return None  # the job's live status output is already in the cell

    def track_job(self, job_id: str, props: ParagraphProperties, prepared: Prepared,
                  *, batch: bool, primary: bool = True) -> TrackedJob:
        """Track a submitted job for this cell and block until it runs (or failed)."""
        name = self._job_name(job_id, props)
        owner = prepared.owner
        if not owner.job_name or not primary:
            owner = Owner(owner.notebook_path, owner.cell_id if primary else None, name)
        run: _Resubmission | None = getattr(self._background, "run", None)
        interval = props.auto_savepoint_interval
        job = self.tracker.track(
            job_id, name, owner, batch=batch, savepoint_dir=props.savepoint_dir,
            restored_from=prepared.restore_path, restore_reason=prepared.restore_reason,
            auto_savepoint_s=interval.total_seconds() if interval and not batch else None,
            on_failure=getattr(self._background, "on_failure", None) if primary else None,
            shown_in=run.failed.job_id if run else None,
            notice=" ".join(run.notes) if run else None)
        job = self.tracker.wait_until_running(job.job_id)
        if job.state == "FAILED":
            cause = self.tracker.failure_cause(job.job_id) or "see %flink.jobs"
            raise JobError(f"Job {name} failed while starting: {cause}", job_id=job_id,
                           fix="Fix the cause and run the cell again; the recorded paths "
                               "were not changed.")
        return job

    def _job_name(self, job_id: str, props: ParagraphProperties) -> str:
        if props.job_name:
            return props.job_name
        try:
            return str(self.tracker.rest.job(job_id).get("name") or job_id)
        except Exception:
            return job_id

    def wait_for_end(self, job: TrackedJob) -> None:
        ended = self.tracker.wait_until_ended(job.job_id)
        if ended.state == "FAILED":
            cause = self.tracker.failure_cause(job.job_id) or "see %flink.jobs"
            raise JobError(f"Job {job.name} failed: {cause}", job_id=job.job_id)

    # ----------------------------------------------------------------- restartPolicy

    def _resubmitter(self, props: ParagraphProperties, text: str, cell: CellContext
                     ) -> Callable[[TrackedJob], None] | None:
        """What to do when this cell's job fails for good (None: nothing; Flink's own
        restart strategy is all there is)."""
        if props.restart_policy != "fromSavepointOnFailure":
            return None
        run: _Resubmission | None = getattr(self._background, "run", None)
        attempt = run.attempt if run else 0
        return functools.partial(self._resubmit, props, text, cell, attempt)

    def _resubmit(self, props: ParagraphProperties, text: str, cell: CellContext,
                  attempt: int, failed: TrackedJob) -> None:
        """Run the cell again from its newest savepoint or checkpoint (a background thread)."""
        if attempt >= props.max_resubmits:
            self.tracker.note(failed.job_id, f"The job failed for good ({failed.failure}); "
                              f"it was resubmitted {attempt} times already (maxResubmits="
                              f"{props.max_resubmits}), so it stays stopped.")
            return
        # Give the cluster a moment (a lost TaskManager's slots come back, for instance):
        # resubmitting at once may fail for want of resources and use up the attempts.
        delay = RESUBMIT_DELAY_S * (attempt + 1)
        self.tracker.note(failed.job_id, f"The job failed ({failed.failure}); resubmitting "
                          f"in {delay:.0f} s (restartPolicy=fromSavepointOnFailure).")
        time.sleep(delay)
        recorded = self.tracker.recorded(failed.owner) or {}
        path = newest_restore_point((recorded.get("savepoint_path"),
                                     recorded.get("latest_checkpoint_path")))
        again = dataclasses.replace(props, resume_from_savepoint=False,
                                    resume_from_latest_checkpoint=False, restore_path=path)
        self._background.run = _Resubmission(failed, attempt + 1, [
            f"Resubmitted by restartPolicy=fromSavepointOnFailure ({attempt + 1} of "
            f"{props.max_resubmits}) after the previous job failed: {failed.failure}; "
            + (f"starting from {path}." if path else "nothing to restore from, so without "
               "state.")])
        try:
            self.run_sql(again, text, dataclasses.replace(cell, metadata={}), batch=False)
        except Exception as exc:  # shown where the cell's output is, not raised on a thread
            self.tracker.note(failed.job_id, f"Resubmitting the cell failed: {exc}")
        finally:
            self._background.run = None

    # ----------------------------------------------------------------- %%flink paragraphs

    def run_python(self, props: ParagraphProperties, code: str, cell: CellContext,
                   namespace: dict[str, Any], filename: str = "<flink cell>") -> Any:
        """Run ``%%flink`` code with senv/stenv/btenv; the jobs it submits become the cell's.

        A Python error in the code propagates as it is (the user's traceback); an error
        Flink raised becomes a short StatementError naming the line, its trace kept aside.
        """
        __tracebackhide__ = True
        if props.restart_policy == "fromSavepointOnFailure":
            raise PropertyError("restartPolicy=fromSavepointOnFailure is for %%flink.ssql "
                                "cells: Python code is not run again behind your back.",
                                name="restartPolicy",
                                fix="Use Flink's restart strategy (restart-strategy.type) "
                                    "for %%flink jobs.")
        self._background.on_failure = None
        prepared = self.prepare(props, cell)
        for note in prepared.notes:
            self._say(note)
        envs = self.session.envs
        namespace.update(senv=envs.senv, stenv=envs.stenv, btenv=envs.btenv)
        tracked: list[TrackedJob] = []

        def track(job_id: str) -> TrackedJob:
            job = self.track_job(job_id, props, prepared, batch=False, primary=not tracked)
            tracked.append(job)
            return job

        def wait(client: Any) -> Any:
            job = track(str(client.get_job_id()))
            self.wait_for_end(job)
            return client.get_job_execution_result().result()

        with self.session.job_scope(prepared.overrides, batch=None) as submitted, \
                self._cancelled_on_interrupt(submitted):
            envs.senv.wait_for_job = wait if props.wait else None
            try:
                value = run_code(code, namespace, filename)
            except Exception as exc:
                trace = java_trace(exc)
                if trace is None:
                    exc.__jupyter_flink_user_code__ = True  # type: ignore[attr-defined]
                    raise
                line = user_code_line(exc.__traceback__, filename)
                raise StatementError(
                    f"Line {line}: Flink rejected this call: {java_error_summary(exc)}",
                    fix="Fix the code and run the cell again (%flink.trace shows Flink's "
                        "trace).", details=trace) from None
            finally:
                envs.senv.wait_for_job = None
            known = {job.job_id for job in tracked}
            for job_id in submitted.job_ids():
                if job_id not in known:
                    track(job_id)
            if len(tracked) > 1:
                self._say(f"This cell started {len(tracked)} jobs; it owns {tracked[0].name}, "
                          "the others are recorded under their job names.")
            if props.wait:
                for job in tracked:
                    self.wait_for_end(job)
        return value


class _Text:
    """Plain text shown as such (EXPLAIN output), not as a quoted string."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def run_code(code: str, namespace: dict[str, Any], filename: str = "<flink cell>") -> Any:
    """Execute ``code`` like a notebook cell: the value of a final expression is returned."""
    __tracebackhide__ = True
    tree = ast.parse(code, filename=filename, mode="exec")
    last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    if last is not None:
        tree.body = tree.body[:-1]
    exec(compile(tree, filename, "exec"), namespace)
    if last is None:
        return None
    return eval(compile(ast.Expression(last.value), filename, "eval"), namespace)


def java_trace(exc: BaseException) -> str | None:
    """The Java stack trace behind a PyFlink/py4j exception, or None for a Python error."""
    trace = getattr(exc, "stack_trace", None)  # pyflink.util.exceptions.JavaException
    if trace:
        return str(trace)
    if type(exc).__name__ == "Py4JJavaError":
        return str(exc)
    return None


def user_code_line(tb: Any, filename: str) -> int | None:
    """The line of the user's cell where ``tb`` passed last."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
