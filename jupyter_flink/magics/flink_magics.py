"""``%%flink.conf``, ``%%flink``, ``%%flink.ssql``, ``%%flink.bsql`` and the job magics.

The magics parse their input and render results; the work happens in the Flink service
(:mod:`jupyter_flink.execution.service`). Expected errors (bad input, Flink rejecting a
statement) are shown as one short paragraph, with Flink's trace one step away in
``%flink.trace``; anything else is a bug and is reported as one.
"""

from __future__ import annotations

import functools
import logging
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar, cast

from IPython.core.error import UsageError
from IPython.core.magic import (
    Magics,
    line_cell_magic,
    line_magic,
    magics_class,
    no_var_expand,
)
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Float, Integer, Unicode

from ..completion import FlinkCompleter
from ..completion.replies import complete_reply
from ..display.catalog_tree import CatalogTree
from ..errors import FlinkNotebookError, JobError, RestError, UserError
from ..execution.service import FlinkService, ServiceSettings
from ..jobs.registry import TrackedJob
from ..kernel.cell import current_cell
from ..parsing.conf import parse_conf
from ..parsing.header import parse_header
from ..parsing.properties import PROPERTY_HELP, ParagraphProperties
from ..secrets import mask
from . import tables

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)


def named(marker: Any, name: str) -> Callable[[F], F]:
    """``marker(name)``, typed: IPython annotates it as a union that mypy cannot call."""
    return cast("Callable[[F], F]", marker(name))


def reports_errors(method: F) -> F:
    """Show expected errors kindly, keep their details for %flink.trace, flag bugs."""

    @functools.wraps(method)
    def wrapper(self: FlinkMagics, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        try:
            return method(self, *args, **kwargs)
        except UserError as exc:
            self.last_error = exc
            more = " (Flink's full message: %flink.trace)" if exc.details else ""
            raise UsageError(mask(f"{exc}{more}")) from None
        except FlinkNotebookError as exc:
            self.last_error = exc
            raise UsageError(mask(f"{exc} (details: %flink.trace)")) from None
        except (KeyboardInterrupt, UsageError):
            raise
        except Exception as exc:
            if getattr(exc, "__jupyter_flink_user_code__", False):
                raise  # the user's own Python error, with the user's own traceback
            self.last_error = FlinkNotebookError(str(exc), details=traceback.format_exc())
            raise UsageError(mask(
                f"jupyter-flink hit an internal error: {type(exc).__name__}: {exc}. "
                "This is a bug; please report it with the output of %flink.trace.")) from None

    return wrapper  # type: ignore[return-value]


def job_arguments(*, directory: bool = False) -> Callable[[F], F]:
    """The arguments of the job magics: JOB (a name or an id), --all, maybe --dir."""
    def decorate(method: F) -> F:
        method = argument("job", nargs="*", help="the job's name or id (%%flink.jobs lists "
                          "them)")(method)
        method = argument("--all", action="store_true", help="every running job")(method)
        if directory:
            method = argument("--dir", metavar="DIR", help="where the savepoint goes "
                              "(default: the cell's savepointDir, else "
                              "execution.checkpointing.savepoint-dir)")(method)
        return cast(F, magic_arguments()(method))
    return decorate


@magics_class
class FlinkMagics(Magics):
    """Zeppelin's Flink interpreter, as IPython magics."""

    journal_dir = Unicode(
        None, allow_none=True,
        help="Directory for the journals of recorded paths (default: beside each notebook).",
    ).tag(config=True)
    startup_timeout = Float(
        120.0, help="Seconds a cell waits for its job to be running before it returns anyway "
                    "(showing the state the job is in).",
    ).tag(config=True)
    poll_interval = Integer(
        1000, help="Milliseconds between two looks at a running job's state and checkpoints "
                   "(the default of flink.job.check_interval, which %%flink.conf can set).",
    ).tag(config=True)
    status_refresh_interval = Float(
        3.0, help="Seconds between two refreshes of a job's status output when only its "
                  "counters changed (changes of state show at once), as Flink's web UI.",
    ).tag(config=True)
    uptime_refresh_interval = Float(
        15.0, help="Seconds between two refreshes of a job's status output when only its "
                   "uptime changed.",
    ).tag(config=True)

    warm_start = Bool(
        True, help="Start Flink (its JVM and, in local mode, the embedded cluster) in the "
                   "background as soon as the kernel starts, so that the first Flink cell does "
                   "not wait for it. Off: nothing starts before the first Flink cell (for "
                   "kernels opened only to read a notebook).",
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any):
        super().__init__(shell, **kwargs)
        self.last_error: FlinkNotebookError | None = None
        self._anonymous_conf_cells = 0
        self.service = FlinkService(ServiceSettings(
            journal_dir=self.journal_dir, startup_timeout_s=self.startup_timeout,
            poll_interval_ms=self.poll_interval,
            status_refresh_interval_s=self.status_refresh_interval,
            uptime_refresh_interval_s=self.uptime_refresh_interval,
            warm_start=self.warm_start,
        ), say=_say, bind=self.ip.user_ns.__setitem__)
        self.session = self.service.session
        self.tracker = self.service.tracker
        self.control = self.service.control
        self.executor = self.service.executor
        self._shut_down = False
        self._reattached_to: set[str] = set()
        # Tab and Shift+Tab; catalog answers are kept until the next cell runs.
        self.completer = FlinkCompleter(self.session, self.tracker.registry.all,
                                        generation=lambda: self.ip.execution_count)
        self.completion_matcher: Any = None  # set when registered with IPython's completer

    @property
    def ip(self) -> Any:
        """The shell these magics belong to (never None once registered)."""
        assert self.shell is not None
        return self.shell

    # ----------------------------------------------------------------- paragraphs

    def _properties(self, line: str, kind: str) -> ParagraphProperties:
        return ParagraphProperties.from_header(parse_header(line), kind=kind)

    @no_var_expand
    @named(line_cell_magic, "flink.conf")
    @reports_errors
    def flink_conf(self, line: str, cell: str | None = None) -> Any:
        """Configure Flink (Java properties syntax); without a body, show the configuration.

        Settings apply to every job started afterwards. Re-running a conf cell replaces
        what that cell set before. ``%flink.conf --reset`` forgets all of it.
        """
        if cell is None:
            if line.strip() == "--reset":
                self.session.reset_configuration()
                _say("The %%flink.conf settings were reset to the defaults.")
                return None
            if line.strip():
                raise UsageError("Usage: %flink.conf (show the configuration) or "
                                 "%flink.conf --reset; a %%flink.conf cell sets it.")
            return tables.configuration(self.session)
        context = current_cell(self.shell)
        source = context.cell_id
        if source is None:
            self._anonymous_conf_cells += 1
            source = f"conf-{self._anonymous_conf_cells}"
        for notice in self.session.configure(source, parse_conf(cell, first_line=2)):
            _say(notice)
        self._reattach()
        return None

    def _reattach(self) -> None:
        """In remote mode, track this notebook's jobs that still run on the cluster (they
        outlive kernels); once per cluster, and only once the cluster answers."""
        if not self.session.remote:
            return
        url = self.session.rest_url
        if url in self._reattached_to:
            return
        try:
            self.tracker.rest.config()
        except RestError:
            return  # unreachable now: the first job says so clearly; try again then
        self._reattached_to.add(url)
        jobs = self.tracker.reattach(current_cell(self.shell).notebook_path)
        if jobs:
            names = ", ".join(job.name for job in jobs)
            _say(f"Reattached to {len(jobs)} job(s) of this notebook still running on {url}: "
                 f"{names}. %flink.jobs lists them; re-running their cells stops them first.")

    @no_var_expand
    @named(line_cell_magic, "flink")
    @reports_errors
    def flink(self, line: str, cell: str | None = None) -> Any:
        """Run PyFlink code with ``senv``, ``stenv`` and ``btenv``; its job belongs to the cell."""
        if cell is None:
            return self.flink_help("")
        __tracebackhide__ = True
        props = self._properties(line, "flink")
        self._reattach()
        filename = self.ip.compile.cache(cell)  # so tracebacks show the cell's lines
        return self.executor.run_python(props, cell, current_cell(self.shell),
                                        self.ip.user_ns, filename)

    @no_var_expand  # Zeppelin's template=<h1>Total {0}</h1> must reach us as written
    @named(line_cell_magic, "flink.ssql")
    @reports_errors
    def flink_ssql(self, line: str, cell: str | None = None) -> Any:
        """Run streaming SQL; INSERT jobs keep running, SELECT shows a live table."""
        props = self._properties(line if cell is not None else "", "ssql")
        self._reattach()
        return self.executor.run_sql(props, cell if cell is not None else line,
                                     current_cell(self.shell), batch=False,
                                     first_line=2 if cell is not None else 1)

    @no_var_expand
    @named(line_cell_magic, "flink.bsql")
    @reports_errors
    def flink_bsql(self, line: str, cell: str | None = None) -> Any:
        """Run batch SQL; SELECT returns a pandas DataFrame."""
        props = self._properties(line if cell is not None else "", "bsql")
        self._reattach()
        return self.executor.run_sql(props, cell if cell is not None else line,
                                     current_cell(self.shell), batch=True,
                                     first_line=2 if cell is not None else 1)

    # ----------------------------------------------------------------- jobs

    @named(line_magic, "flink.jobs")
    @reports_errors
    def flink_jobs(self, line: str) -> Any:
        """List the jobs of this kernel."""
        self._reattach()
        return tables.jobs(self.tracker.registry.all())

    @named(line_magic, "flink.cancel")
    @job_arguments()
    @reports_errors
    def flink_cancel(self, line: str) -> None:
        """Cancel a job, with a savepoint if its cell set savepointDir."""
        for job in self._targets(self.flink_cancel, line, "flink.cancel"):
            _say(self.control.cancel(job.job_id).message)

    @named(line_magic, "flink.stop")
    @job_arguments(directory=True)
    @reports_errors
    def flink_stop(self, line: str) -> None:
        """Stop a job with a savepoint."""
        args = parse_argstring(self.flink_stop, line)
        for job in self._targets(self.flink_stop, line, "flink.stop"):
            directory = args.dir or job.savepoint_dir or self.executor.default_savepoint_dir()
            _say(self.control.stop(job.job_id, directory).message)

    @named(line_magic, "flink.savepoint")
    @job_arguments(directory=True)
    @reports_errors
    def flink_savepoint(self, line: str) -> None:
        """Take a savepoint without stopping the job."""
        args = parse_argstring(self.flink_savepoint, line)
        for job in self._targets(self.flink_savepoint, line, "flink.savepoint"):
            directory = args.dir or job.savepoint_dir or self.executor.default_savepoint_dir()
            _say(f"Savepoint of {job.name}: {self.control.savepoint(job.job_id, directory)}")

    @named(line_magic, "flink.checkpoints")
    @job_arguments()
    @reports_errors
    def flink_checkpoints(self, line: str) -> Any:
        """A job's checkpoint history and the retained checkpoints on storage (default: the
        newest job)."""
        jobs = self._targets(self.flink_checkpoints, line, "flink.checkpoints",
                             default_latest=True)
        return tables.checkpoints(self.tracker, jobs)

    @named(line_magic, "flink.history")
    @magic_arguments()
    @argument("target", nargs="*", help="a job's name or id, or a cell id (default: every "
              "cell of this notebook)")
    @reports_errors
    def flink_history(self, line: str) -> Any:
        """The restore points of a cell (or of every cell): savepoints and the checkpoints
        its jobs ended with, newest first, numbered for resumeFrom=N, marked when gone."""
        args = parse_argstring(self.flink_history, line)
        notebook = current_cell(self.shell).notebook_path
        records = self.tracker.recorder.entries(notebook)
        if args.target:
            wanted = " ".join(args.target)
            jobs = self.tracker.registry.find(wanted)
            key = jobs[0].owner.key if jobs else wanted
            if key not in records:
                raise JobError(f"Nothing is recorded for a job or cell {wanted!r} in this "
                               "notebook.", fix="%flink.jobs lists the jobs; %flink.history "
                                                "without an argument shows every cell.")
            records = {key: records[key]}
        return tables.history(records)

    @named(line_magic, "flink.info")
    @reports_errors
    def flink_info(self, line: str) -> None:
        """Where jobs run: the cluster's REST URL, the Flink version, the execution mode."""
        _say(self.session.describe_cluster())
        if self.session.started:
            _say(f"Flink {self.tracker.rest.config().get('flink-version', '?')}, mode "
                 f"{self.session.interpreter_setting('flink.execution.mode')}, REST API at "
                 f"{self.session.rest_url} (for tools on this machine that hold the "
                 "kernel's certificate when the cluster is the embedded one).")

    @named(line_magic, "flink.catalog")
    @magic_arguments()
    @argument("--batch", action="store_true",
              help="the batch table environment's view (btenv; default: stenv)")
    @reports_errors
    def flink_catalog(self, line: str) -> Any:
        """Catalogs, databases, tables, views and their columns, as a tree."""
        args = parse_argstring(self.flink_catalog, line)
        reader = self.session.catalog_reader(batch=args.batch)
        if reader is None:
            _say("No Flink session yet: the catalog is there once a Flink cell "
                 "(%%flink, %%flink.ssql or %%flink.bsql) has run.")
            return None
        title = "Catalog of " + ("btenv (%%flink.bsql)" if args.batch
                                 else "stenv (%%flink.ssql)")
        return CatalogTree(reader.names(columns=True, limit=500), title=title)

    def complete_cell(self, code: str, cursor_pos: int) -> dict[str, Any] | None:
        """A complete_reply for the Flink magic part under the cursor (the flink kernel asks
        this first); None where IPython's completers answer (Python)."""
        try:
            found = self.completer.complete(code, cursor_pos)
        except Exception:  # Tab must never fail a request: IPython answers instead
            log.warning("jupyter-flink completion failed", exc_info=True)
            return None
        return None if found is None else complete_reply(found, cursor_pos)

    def inspect_cell(self, code: str, cursor_pos: int) -> dict[str, str] | None:
        """Shift+Tab help on the Flink part under the cursor (the flink kernel's
        inspect_request asks this first); None when it is not ours."""
        try:
            return self.completer.inspect(code, cursor_pos)
        except Exception:  # help must never fail a request: IPython answers instead
            log.warning("jupyter-flink help failed", exc_info=True)
            return None

    @named(line_magic, "flink.trace")
    def flink_trace(self, line: str) -> None:
        """Show the full details (usually Flink's Java trace) of the last error."""
        if self.last_error is None:
            print("No jupyter-flink error so far.")
            return
        print(mask(self.last_error.details or str(self.last_error)))

    @named(line_magic, "flink.help")
    def flink_help(self, line: str) -> Any:
        """How to use the Flink magics, and the paragraph properties."""
        return tables.help_text(PROPERTY_HELP)

    def _targets(self, magic: Any, line: str, name: str, *, default_latest: bool = False
                 ) -> list[TrackedJob]:
        """The jobs a job magic's line names: JOB, or --all (the running ones)."""
        args = parse_argstring(magic, line)
        self._reattach()
        if args.all:
            if args.job:
                raise UsageError(f"%{name} takes a job or --all, not both.")
            active = self.tracker.registry.active()
            if not active:
                raise UsageError("No job of this kernel is running; %flink.jobs lists them "
                                 "all.")
            return active
        if not args.job:
            jobs = sorted(self.tracker.registry.all(), key=lambda j: j.submitted_at)
            if default_latest and jobs:
                return [jobs[-1]]
            raise UsageError(f"Usage: %{name} JOB_NAME_OR_ID (or --all); %flink.jobs lists "
                             "the jobs.")
        wanted = " ".join(args.job)
        found = self.tracker.registry.find(wanted)
        if not found:
            raise JobError(f"No job of this kernel is called or has the id {wanted!r}.",
                           fix="%flink.jobs lists the jobs.")
        return found[:1]

    # ----------------------------------------------------------------- lifecycle

    def shutdown(self) -> None:
        """Stop jobs (as configured), the poller and the embedded cluster. Idempotent."""
        if self._shut_down:
            return
        self._shut_down = True
        self.service.shutdown()


def _say(text: str) -> None:
    """Print a note in the cell (secrets masked: outputs are saved in the notebook)."""
    print(mask(text), file=sys.stdout, flush=True)
