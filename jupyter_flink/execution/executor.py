"""Running paragraphs: one :class:`~jupyter_flink.execution.run.CellRun` per cell, handed to
the runner of its kind.

The steps of every run: preparation.py (stop the cell's previous job, the job's settings,
where it restores from), then sql_paragraph.py or python_paragraph.py (the statements or the
code), then launcher.py (the new job becomes the cell's, shows, runs); restart_policy.py runs
a cell again when its job fails for good, if the cell asked for that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..display.job_status import JobDisplays
from ..flink.session import FlinkSession
from ..jobs.control import JobControl
from ..kernel.cell import CellContext
from ..parsing.properties import ParagraphProperties
from .launcher import Launcher
from .preparation import Preparation
from .python_paragraph import PythonParagraphs
from .restart_policy import Resubmitter
from .run import CellRun
from .sql_paragraph import SqlParagraphs

__all__ = ["ParagraphExecutor"]


class ParagraphExecutor:
    """Runs the paragraphs of one session; their jobs go to the tracker behind ``control``."""

    def __init__(self, session: FlinkSession, control: JobControl, displays: JobDisplays, *,
                 say: Callable[[str], None], bind: Callable[[str, Any], None]):
        self.session = session
        self.control = control
        self._say = say  # print a short note in the cell
        self.preparation = Preparation(session, control)
        self.launcher = Launcher(control, displays)
        self.sql = SqlParagraphs(session, self.preparation, self.launcher, bind=bind)
        self.python = PythonParagraphs(session, self.preparation, self.launcher)
        self.resubmitter = Resubmitter(control.tracker,
                                       lambda run: self.sql.run(run, batch=False))

    def run_sql(self, props: ParagraphProperties, text: str, cell: CellContext, *,
                batch: bool, first_line: int = 1) -> Any:
        """Run a ``%%flink.ssql`` (streaming) or ``%%flink.bsql`` (batch) cell; its text
        starts on line ``first_line`` of the cell."""
        run = CellRun(props=props, cell=cell, text=text, say=self._say, first_line=first_line)
        if not batch:
            self.resubmitter.arm(run)
        return self.sql.run(run, batch=batch)

    def run_python(self, props: ParagraphProperties, code: str, cell: CellContext,
                   namespace: dict[str, Any], filename: str = "<flink cell>",
                   first_line: int = 2) -> Any:
        """Run ``%%flink`` code with senv/stenv/btenv; the jobs it submits become the cell's."""
        __tracebackhide__ = True
        run = CellRun(props=props, cell=cell, text=code, say=self._say, first_line=first_line)
        return self.python.run(run, namespace, filename)

    def default_savepoint_dir(self) -> str:
        return self.preparation.default_savepoint_dir()
