"""``%%flink`` cells: PyFlink code with ``senv``, ``stenv`` and ``btenv``.

The jobs the code submits become the cell's (the first one; others are recorded under their
job names). A Python error in the code propagates as it is, with the user's traceback; an
error Flink raised becomes a short StatementError naming the line, its trace kept aside.
"""

from __future__ import annotations

import ast
from typing import Any

from ..errors import PropertyError
from ..flink.listeners import exposure_note, wide_listeners
from ..flink.session import FlinkSession
from ..jobs.registry import TrackedJob
from .launcher import Launcher
from .preparation import Preparation
from .run import CellRun
from .state_fit import refusal
from .statement_errors import code_error, java_trace, user_code_line

__all__ = ["PythonParagraphs", "run_code"]


class PythonParagraphs:
    """Runs ``%%flink`` cells on one session."""

    def __init__(self, session: FlinkSession, preparation: Preparation, launcher: Launcher):
        self.session = session
        self.preparation = preparation
        self.launcher = launcher

    def run(self, run: CellRun, namespace: dict[str, Any],
            filename: str = "<flink cell>") -> Any:
        """Run the cell's code in ``namespace`` (the user's); returns its last value."""
        __tracebackhide__ = True
        props = run.props
        if props.restart_policy == "fromSavepointOnFailure":
            raise PropertyError("restartPolicy=fromSavepointOnFailure is for %%flink.ssql "
                                "cells: Python code is not run again behind your back.",
                                name="restartPolicy",
                                fix="Use Flink's restart strategy (restart-strategy.type) "
                                    "for %%flink jobs.")
        prepared = self.preparation.prepare(run)
        envs = self.session.envs
        namespace.update(senv=envs.senv, stenv=envs.stenv, btenv=envs.btenv)
        exposed_before = wide_listeners()

        def track(job_id: str) -> TrackedJob:
            return self.launcher.track(run, job_id, batch=False, primary=not run.jobs)

        def wait(client: Any) -> Any:
            self.launcher.wait_for_end(track(str(client.get_job_id())))
            return client.get_job_execution_result().result()

        with self.session.job_scope(prepared.overrides, batch=None) as submitted, \
                self.launcher.cancelled_on_interrupt(run, submitted):
            envs.senv.wait_for_job = wait if props.wait else None
            try:
                value = run_code(run.text, namespace, filename)
            except Exception as exc:
                trace = java_trace(exc)
                if trace is None:
                    exc.__jupyter_flink_user_code__ = True  # type: ignore[attr-defined]
                    raise
                line = user_code_line(exc.__traceback__, filename)
                raise (refusal(self.session, run, exc) or code_error(
                    exc, None if line is None else line + run.first_line - 1, trace)) from None
            finally:
                envs.senv.wait_for_job = None
                note = exposure_note(wide_listeners() - exposed_before)
                if note:
                    run.note(note)
            known = {job.job_id for job in run.jobs}
            for job_id in submitted.job_ids():
                if job_id not in known:
                    track(job_id)
            if len(run.jobs) > 1:
                run.note(f"This cell started {len(run.jobs)} jobs; it owns {run.jobs[0].name}, "
                         "the others are recorded under their job names.")
            if props.wait:
                for job in run.jobs:
                    self.launcher.wait_for_end(job)
        return value


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
