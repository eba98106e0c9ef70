"""``jupyter-flink run``: execute a notebook with the flink kernel and keep what its jobs record.

:class:`FlinkNotebookClient` is an nbclient ``NotebookClient`` (as papermill's ``clientwrap``)
that behaves like JupyterLab where jupyter-flink depends on it:

* Every execute request carries the cell's id and metadata, as JupyterLab sends them
  (:class:`CellAwareKernelClient`), so ``resumeFromSavepoint=true`` finds the recorded paths.
* The kernel knows its notebook: ``JPY_SESSION_NAME`` is the notebook's absolute path and the
  kernel runs in its folder, as under jupyter_server, so the kernel's journal is the notebook's.
* ``jupyter_flink.metadata`` comm messages and ``update_display_data`` are applied whichever
  request they belong to. nbclient only reads the executing cell's iopub messages; here its
  reading loop hands the others to :meth:`FlinkNotebookClient.handle_background_message`,
  and iopub is also read after the last cell (``run_for``) and while the kernel shuts down,
  which is when jobs stop with their savepoints.
* The notebook file is written as updates arrive (at most once per ``autosave_interval``),
  and at the end after the journal's entries were merged in, also when a cell failed (as
  papermill saves before it raises). Every write is validated and atomic (sync.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import (
    CellExecutionComplete,
    CellExecutionError,
    CellTimeoutError,
    DeadKernelError,
)
from nbclient.util import ensure_async, run_sync
from nbformat import NotebookNode
from traitlets import Bool, Float, Unicode, default

from ..recording import comm
from ..recording.journal import Journal
from .kernel_client import (
    SHUTDOWN_WAIT_S,
    CellAwareKernelClient,
    CellFailure,
    FlinkKernelManager,
    request_metadata,
)
from .notebooks import ensure_cell_ids, read_notebook, write_notebook
from .parameters import inject_parameters
from .sync import apply_entries, apply_update

__all__ = ["CellAwareKernelClient", "CellFailure", "FlinkKernelManager", "FlinkNotebookClient",
           "RunResult", "request_metadata", "run_notebook"]

KERNEL_NAME = "flink"
EXIT_WAIT_S = 6.0  # after the shutdown reply: SIGTERM after half of it, SIGKILL at the end
KERNELSPEC = {"name": KERNEL_NAME, "display_name": "Flink (PyFlink)", "language": "python"}


class FlinkNotebookClient(NotebookClient):
    """nbclient's NotebookClient that keeps ``metadata.flink`` of the cells up to date."""

    kernel_name = Unicode(KERNEL_NAME, help="The kernel to run the notebook with.").tag(
        config=True)
    record_timing = Bool(
        False, help="Add nbclient's timing to the cells' metadata (JupyterLab's default: no)."
    ).tag(config=True)
    notebook_path = Unicode(
        "", help="The notebook file: written as updates arrive, the kernel's notebook "
                 "(JPY_SESSION_NAME) whose journal is beside it. Empty: write nothing.",
    ).tag(config=True)
    journal_dir = Unicode(
        "", help="Where the kernel keeps its journals if not beside the notebook "
                 "(FlinkMagics.journal_dir).").tag(config=True)
    run_for = Float(
        0.0, help="Seconds to keep the kernel, and its streaming jobs, running after the last "
                  "cell, still recording what they checkpoint.").tag(config=True)
    autosave_interval = Float(
        1.0, help="At most one write of the notebook per this many seconds while running.",
    ).tag(config=True)
    shutdown_timeout = Float(
        SHUTDOWN_WAIT_S, help="Seconds the kernel gets to stop its jobs (with savepoints) "
                              "when it shuts down.").tag(config=True)

    def __init__(self, nb: NotebookNode, km: Any = None, *,
                 say: Callable[[str], None] | None = None, **kw: Any) -> None:
        super().__init__(nb, km=km, **kw)
        self.say = say or (lambda text: None)
        self.comm_open_handlers[comm.TARGET_NAME] = self.on_comm_open_flink_metadata
        self.failure: CellFailure | None = None
        self.interrupted = False
        self.metadata_updates = 0
        self._dirty = False
        self._last_save = 0.0
        self._cell_running = False
        self._signal_tasks: set[asyncio.Future[Any]] = set()

    @default("kernel_manager_class")
    def _default_kernel_manager_class(self) -> type[AsyncKernelManager]:
        return FlinkKernelManager

    def create_kernel_manager(self) -> Any:
        km = super().create_kernel_manager()
        if hasattr(km, "shutdown_wait_time"):
            km.shutdown_wait_time = self.shutdown_timeout
        return km

    # ----------------------------------------------------------------- metadata

    def on_comm_open_flink_metadata(self, msg: dict[str, Any]) -> None:
        """nbclient comm_open handler for ``jupyter_flink.metadata``: apply, keep no comm."""
        self.apply_metadata_update(msg["content"].get("data") or {})
        return None

    def apply_metadata_update(self, data: Mapping[str, Any]) -> bool:
        """Merge an update (comm.py's payload) into its cells; True if a cell changed."""
        path = data.get("notebook_path")
        if path and self.notebook_path and \
                Path(path).resolve() != Path(self.notebook_path).resolve():
            self.log.debug("metadata update for another notebook (%s) ignored", path)
            return False
        changed = False
        for cell_id, flink in comm.updates_in(data).items():
            cell = next((c for c in self.nb.cells if c.get("id") == cell_id), None)
            if cell is None:
                continue
            self.metadata_updates += 1
            if apply_update(cell, flink):
                self._dirty = changed = True
        return changed

    def handle_background_message(self, msg: dict[str, Any]) -> None:
        """An iopub message of another request than the executing cell's, or of none."""
        content = msg.get("content") or {}
        msg_type = msg.get("msg_type")
        if msg_type == "comm_open" and content.get("target_name") == comm.TARGET_NAME:
            self.on_comm_open_flink_metadata(msg)
        elif msg_type == "update_display_data":
            display_id = (content.get("transient") or {}).get("display_id")
            if display_id:
                self._update_display_id(display_id, msg)  # as nbclient does for its own
                self._dirty = True

    def _handle_background(self, msg: dict[str, Any]) -> None:
        try:
            self.handle_background_message(msg)
        except Exception:  # a malformed message must not end the run
            self.log.exception("could not apply %s", msg.get("msg_type"))

    def merge_journal(self) -> int:
        """Merge the kernel's journal (its own record) into the cells; returns cells changed."""
        if not self.notebook_path:
            return 0
        journal = Journal.for_notebook(self.notebook_path, self.journal_dir or None)
        try:
            entries = journal.entries()
        except OSError as exc:
            self.say(f"warning: {exc}")
            return 0
        changes = apply_entries(self.nb, entries)
        if changes:
            self._dirty = True
        return len(changes)

    # ----------------------------------------------------------------- nbclient hooks

    async def async_execute_cell(self, cell: NotebookNode, cell_index: int,
                                 execution_count: int | None = None,
                                 store_history: bool = True) -> NotebookNode:
        runs = cell.cell_type == "code" and cell.source.strip() and \
            self.skip_cells_with_tag not in cell.metadata.get("tags", [])
        if runs:
            if isinstance(self.kc, CellAwareKernelClient):
                self.kc.next_request_metadata = request_metadata(cell)
            first = cell.source.strip().splitlines()[0]
            first = first if len(first) <= 72 else first[:69] + "..."
            self.say(f"[{cell_index + 1}/{len(self.nb.cells)}] {first}")
        self._cell_running = bool(runs)
        try:
            return await super().async_execute_cell(cell, cell_index, execution_count,
                                                    store_history)
        finally:
            self._cell_running = False
            if isinstance(self.kc, CellAwareKernelClient):
                self.kc.next_request_metadata = None
            self._dirty = True

    async def _async_poll_output_msg(self, parent_msg_id: str, cell: NotebookNode,
                                     cell_index: int) -> None:
        """nbclient's loop, but messages of other requests are applied instead of dropped."""
        assert self.kc is not None
        while True:
            msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=None))
            if msg["parent_header"].get("msg_id") == parent_msg_id:
                try:
                    self.process_message(msg, cell, cell_index)
                except CellExecutionComplete:
                    return
                finally:
                    self._dirty = True
            else:
                self._handle_background(msg)

    async def _async_read_background(self, timeout: float) -> bool:
        """Apply one iopub message arriving within ``timeout``; False if none came."""
        assert self.kc is not None
        try:
            msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=timeout))
        except Empty:
            return False
        self._handle_background(msg)
        return True

    async def _async_cleanup_kernel(self) -> None:
        """Shut the kernel down while still reading iopub: jobs report their savepoints then.

        The kernel stops its jobs in ``do_shutdown``, before it sends the shutdown reply;
        what follows is process teardown, which gets :data:`EXIT_WAIT_S` before the manager
        terminates the process (see :meth:`_async_request_shutdown`).
        """
        km, kc = self.km, self.kc
        alive = False
        if km is not None and kc is not None and self.shutdown_kernel == "graceful":
            try:
                alive = bool(await ensure_async(km.is_alive()))
            except RuntimeError:
                alive = False
        if alive:
            assert km is not None and kc is not None
            self.say("Shutting the kernel down: its jobs stop now, with a savepoint where "
                     "the cell set savepointDir ...")
            started = time.monotonic()
            listener = asyncio.ensure_future(self._async_listen())
            try:
                if await self._async_request_shutdown(km, kc):
                    self.say(f"Jobs stopped ({time.monotonic() - started:.1f}s).")
                else:
                    self.say("The kernel did not answer the shutdown request in time; its "
                             "jobs may have stopped without their savepoints.")
                km.shutdown_wait_time = EXIT_WAIT_S  # what is left is process teardown
                await ensure_async(km.shutdown_kernel(now=False))
            finally:
                listener.cancel()
            while await self._async_read_background(0.5):  # whatever was still in flight
                pass
        await super()._async_cleanup_kernel()

    async def _async_request_shutdown(self, km: Any, kc: Any) -> bool:
        """Send shutdown_request and wait for the reply; False if the kernel never answered.

        The manager's own shutdown only watches the process, with one deadline for stopping
        the jobs and for exiting; the reply tells when the jobs are done.
        """
        msg_id = kc.shutdown(restart=False)
        deadline = time.monotonic() + self.shutdown_timeout
        while time.monotonic() < deadline:
            try:
                msg = await ensure_async(kc.control_channel.get_msg(timeout=1.0))
            except Empty:
                if not await ensure_async(km.is_alive()):
                    return False
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                return True
        return False

    async def _async_listen(self) -> None:
        while True:
            await self._async_read_background(0.25)

    # ----------------------------------------------------------------- running

    async def async_run(self, **kwargs: Any) -> NotebookNode:
        """Run every cell (stopping at the first failure), then ``run_for``, then shut down.

        ``kwargs`` go to ``KernelManager.start_kernel`` (``env``, ``cwd``). A failing cell
        ends the run normally: :attr:`failure` says which; the notebook is written anyway.
        """
        self.reset_execution_trackers()
        self.failure = None
        autosave = asyncio.ensure_future(self._async_autosave())
        try:
            async with self.async_setup_kernel(**kwargs):
                assert self.kc is not None
                self._handle_sigint()
                await self._async_kernel_info()
                for index, cell in enumerate(self.nb.cells):
                    if self.interrupted:
                        break
                    try:
                        await self.async_execute_cell(
                            cell, index, execution_count=self.code_cells_executed + 1)
                    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
                        self.failure = CellFailure.from_exception(exc, cell, index)
                        break
                self.set_widgets_metadata()
                if self.failure is None and not self.interrupted and self.run_for > 0:
                    await self._async_keep_running(self.run_for)
        finally:
            autosave.cancel()
            self.merge_journal()
            self.save()
        return self.nb

    run = run_sync(async_run)

    async def _async_kernel_info(self) -> None:
        assert self.kc is not None
        info = await self.async_wait_for_reply(await ensure_async(self.kc.kernel_info()))
        if info is not None and "language_info" in info["content"]:
            self.nb.metadata["language_info"] = info["content"]["language_info"]

    async def _async_keep_running(self, seconds: float) -> None:
        assert self.kc is not None
        self.say(f"All cells ran. Keeping the kernel and its jobs running for {seconds:g}s "
                 "(Ctrl-C ends this early) ...")
        deadline = time.monotonic() + seconds
        while not self.interrupted:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if not await self._async_read_background(min(remaining, 1.0)) and \
                    not await ensure_async(self.kc.is_alive()):  # type: ignore[attr-defined]
                self.say("The kernel died while the jobs were kept running.")
                return

    def _handle_sigint(self) -> None:
        """First Ctrl-C: interrupt the cell / stop waiting, then shut down cleanly.

        A second one kills the kernel (its jobs then get no savepoint). nbclient removes
        the handler when the kernel is cleaned up.
        """
        # Not the main thread, or Windows: nbclient's handling stays.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGINT, self._on_sigint)

    def _on_sigint(self) -> None:
        if self.km is None:
            return
        if not self.interrupted:
            self.interrupted = True
            self.say("Interrupted: ending the run cleanly (Ctrl-C again kills the kernel, "
                     "and its jobs get no savepoint).")
            if self._cell_running:
                self._signal_tasks.add(
                    asyncio.ensure_future(ensure_async(self.km.interrupt_kernel())))
        else:
            self._signal_tasks.add(
                asyncio.ensure_future(ensure_async(self.km.signal_kernel(signal.SIGKILL))))

    # ----------------------------------------------------------------- saving

    def save(self) -> None:
        """Write the notebook now (atomic, validated)."""
        if self.notebook_path:
            write_notebook(self.nb, self.notebook_path)
        self._dirty = False
        self._last_save = time.monotonic()

    async def _async_autosave(self) -> None:
        while True:
            await asyncio.sleep(min(0.25, self.autosave_interval))
            if self._dirty and time.monotonic() - self._last_save >= self.autosave_interval:
                try:
                    self.save()
                except Exception:  # keep running; the final save raises if it persists
                    self.log.exception("writing %s failed", self.notebook_path)
                    self._last_save = time.monotonic()


@dataclass(frozen=True)
class RunResult:
    """What ``jupyter-flink run`` did."""

    output: Path
    failure: CellFailure | None
    interrupted: bool
    seconds: float
    flink_cells: int
    metadata_updates: int

    @property
    def ok(self) -> bool:
        return self.failure is None and not self.interrupted


def run_notebook(notebook: str | os.PathLike[str], output: str | os.PathLike[str] | None = None,
                 *, parameters: Mapping[str, Any] | None = None, run_for: float = 0.0,
                 kernel_name: str = KERNEL_NAME, timeout: float | None = None,
                 cwd: str | os.PathLike[str] | None = None, journal_dir: str | None = None,
                 shutdown_timeout: float = SHUTDOWN_WAIT_S,
                 say: Callable[[str], None] | None = None) -> RunResult:
    """Execute ``notebook`` with the flink kernel and write it (with metadata) to ``output``.

    ``output`` defaults to ``notebook`` itself (in place). The cells start with what the
    journal of ``notebook`` recorded (as ``jupyter-flink sync`` would put it in). The kernel
    runs as if ``output`` were open in JupyterLab: ``JPY_SESSION_NAME`` is its path and
    ``cwd`` its folder (unless given), so its journal lands beside it and a later run of it
    resumes from there.
    """
    say = say or (lambda text: None)
    target = Path(output if output is not None else notebook).resolve()
    nb = read_notebook(notebook)
    added = ensure_cell_ids(nb)
    if added:
        say(f"{added} cell(s) had no id; ids were given so that paths can be recorded per "
            f"cell (kept in {target.name}).")
    try:  # what the kernel recorded for the input so far (e.g. edited in VS Code)
        apply_entries(nb, Journal.for_notebook(str(notebook), journal_dir).entries())
    except OSError as exc:
        say(f"warning: {exc}")
    inject_parameters(nb, parameters or {})
    nb.metadata.setdefault("kernelspec", dict(KERNELSPEC))
    write_notebook(nb, target)  # the output exists from the start, as with papermill
    client = FlinkNotebookClient(
        nb, kernel_name=kernel_name, timeout=int(timeout) if timeout else None,
        run_for=run_for, notebook_path=str(target), journal_dir=journal_dir or "",
        shutdown_timeout=shutdown_timeout, say=say)
    env = {**os.environ, "JPY_SESSION_NAME": str(target)}
    started = time.monotonic()
    client.run(env=env, cwd=str(Path(cwd).resolve() if cwd else target.parent))
    flink_cells = sum(1 for cell in nb.cells if isinstance(cell.metadata.get("flink"), Mapping))
    return RunResult(target, client.failure, client.interrupted, time.monotonic() - started,
                     flink_cells, client.metadata_updates)
