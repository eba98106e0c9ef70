"""Flink started before the first Flink cell: the JVM, the cluster and a first job, on a thread.

A kernel sits idle for seconds before its first Flink cell runs. :class:`WarmStart` uses them:
right after the magics are loaded (``FlinkMagics.warm_start``) it starts, on a thread of its
own, what the first cell would otherwise wait for: PyFlink's JVM, the option registry (which
``%%flink.conf`` checks keys with), the cluster (the embedded one in local mode) and the
environments. In local mode it then submits a tiny bounded job to the embedded cluster
(:data:`WARM_UP_JOB`), so that the first real job finds the planner, the submission path and
the cluster's job master warm (about the time of a second job, bench/bench_warm_start.py). A
remote cluster belongs to others: there the planner is warmed by explaining a query instead.

How it meets the session (:class:`~jupyter_flink.flink.session.FlinkSession`):

* ``start()`` on any other thread joins a warm start in flight, asking it to skip what is
  left after the environments (the cell's own job warms the same paths);
* nothing is printed from the warm thread (ipykernel would put it in whatever cell runs
  then): the session announces the cluster to the first cell that uses it;
* when warming fails, the first Flink cell starts again itself and shows what fails then
  (the remote cluster may have come up meanwhile); the warm failure goes to the log;
* a ``%%flink.conf`` that changes the cluster of a warm session nobody used yet stops it and
  warms again with the new settings (remote mode: no embedded cluster at all);
* shutting down cancels what has not started yet and waits a bounded time for the rest;
  PyFlink's JVM exits with the kernel process in any case (it watches its stdin).

Threads: py4j serves each Python thread on a JVM thread of its own, and the planner only
plans on the thread that created it unless FLINK-23020's fix is installed, which
``Environments.build`` does before anything is planned. Signal handlers
(:mod:`~jupyter_flink.flink.interrupts`) are only touched on the main thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .environments import Environments
    from .session import FlinkSession

__all__ = ["WARM_UP_JOB", "WarmStart"]

log = logging.getLogger(__name__)

WARM_UP_JOB = "jupyter-flink warm-up"


class WarmStart:
    """Starts one session's JVM, cluster and environments in the background, once asked.

    ``lock`` is the session's own: the start and the warm-up job hold it, so that a conf
    cell that would restart the cluster waits until both are done instead of racing them.
    """

    def __init__(self, session: FlinkSession, lock: Any):
        self._session = session
        self._session_lock = lock
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._cancelled = threading.Event()
        self._hurry = threading.Event()  # a cell waits: skip the warm-up job
        self._running = False  # the thread has not decided to end yet
        self._again = False  # begin() while running: warm once more with the new settings
        self._configuring = 0  # %%flink.conf cells being applied
        self._configured = threading.Event()  # none is
        self._configured.set()
        self.failure: BaseException | None = None  # what the last warm start failed with
        self.warmed_up = False  # the last warm start got through its warm-up step

    @property
    def in_flight(self) -> bool:
        with self._lock:
            return self._running

    def is_current_thread(self) -> bool:
        return self._thread is not None and self._thread is threading.current_thread()

    def begin(self) -> None:
        """Start warming; if a warm start is running, it warms once more when done (the
        settings changed meanwhile)."""
        with self._lock:
            if self._running:
                self._again = True
                return
            self._cancelled.clear()
            self._reset()
            self._running = True
            self._thread = threading.Thread(target=self._run, name="flink-warm-start",
                                            daemon=True)
            self._thread.start()

    @contextlib.contextmanager
    def configuring(self) -> Iterator[None]:
        """While a ``%%flink.conf`` cell is applied, a warm start that has not reached its
        cluster yet waits, then starts the cluster the cell configured (remote mode: no
        embedded one at all); one already past that is dealt with by the session."""
        with self._lock:
            self._configuring += 1
            self._configured.clear()
        try:
            yield
        finally:
            with self._lock:
                self._configuring -= 1
                if not self._configuring:
                    self._configured.set()

    def _reset(self) -> None:
        self._hurry.clear()
        self._again = False
        self.failure = None
        self.warmed_up = False

    def join(self) -> None:
        """Wait until a warm start in flight is done, asking it to skip its warm-up job.
        Interruptible; a no-op on the warm thread itself."""
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return
        self._hurry.set()
        while thread.is_alive():
            thread.join(0.1)

    def cancel(self, timeout: float) -> bool:
        """Stop warming at the next step; True if nothing is running any more after
        ``timeout`` seconds (the JVM, once launched, stays until the session stops)."""
        self._cancelled.set()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        return not thread.is_alive()

    # ----------------------------------------------------------------- the warm thread

    def _run(self) -> None:
        again = True
        while again:
            try:
                self._warm()
            finally:
                with self._lock:
                    again = self._again and not self._cancelled.is_set()
                    if again:
                        self._reset()
                    else:
                        self._running = False

    def _warm(self) -> None:
        session = self._session
        try:
            # The JVM, then the option registry (the first %%flink.conf cell needs it).
            steps: list[Callable[[], Any]] = [session._gateway, lambda: session.options]
            for step in steps:
                if self._cancelled.is_set():
                    return
                step()
            while not self._configured.wait(0.1):  # a conf cell is being applied
                if self._cancelled.is_set():
                    return
            if self._cancelled.is_set():
                return
            with self._session_lock:
                session.start()
                if self._cancelled.is_set() or self._hurry.is_set():
                    return
                self._warm_up(session.envs, local=session.cluster_is_local())
        except BaseException as exc:  # the first Flink cell starts again and reports
            if not self._cancelled.is_set():
                self.failure = exc
                log.info("starting Flink in the background failed", exc_info=True)

    def _warm_up(self, envs: Environments, *, local: bool) -> None:
        """Plan (and, on the embedded cluster, run) a tiny job: the first cell's job then
        finds the planner, the submission path and the job master warm."""
        try:
            with _job_named(envs, WARM_UP_JOB):
                _run_warm_up(envs.stenv, submit=local)
            envs.submitted.drain()  # no cell's job
            self.warmed_up = True
        except Exception:  # only a missed head start
            log.info("the warm-up job failed", exc_info=True)


_SOURCE = "jupyter_flink_warm_up_source"
_SINK = "jupyter_flink_warm_up_sink"
_WARM_UP_SQL = (
    f"CREATE TEMPORARY TABLE {_SOURCE} (k INT, v BIGINT) WITH ('connector' = 'datagen', "
    "'number-of-rows' = '10', 'fields.k.min' = '0', 'fields.k.max' = '3')",
    f"CREATE TEMPORARY TABLE {_SINK} (k INT, c BIGINT) WITH ('connector' = 'blackhole')",
)
_WARM_UP_INSERT = f"INSERT INTO {_SINK} SELECT k, COUNT(*) FROM {_SOURCE} GROUP BY k"


def _run_warm_up(tenv: Any, *, submit: bool) -> None:
    """DDL and a streaming aggregation as cells have them (the SQL parser, the planner),
    on temporary tables that are dropped again; submitted, or only explained."""
    for statement in _WARM_UP_SQL:
        tenv.execute_sql(statement)
    try:
        if submit:
            tenv.execute_sql(_WARM_UP_INSERT)  # bounded: it ends on its own within a second
        else:
            tenv.explain_sql(_WARM_UP_INSERT)
    finally:
        for table in (_SOURCE, _SINK):
            tenv.execute_sql(f"DROP TEMPORARY TABLE IF EXISTS {table}")


@contextlib.contextmanager
def _job_named(envs: Environments, name: str) -> Iterator[None]:
    """Set ``pipeline.name`` for the streaming environments, and put back what was there."""
    from .environments import restore_keeping_changes, snapshot

    configs = envs.configurations(False)
    before = [snapshot(envs.mapper, conf) for conf in configs]
    for conf in configs:
        conf.setString("pipeline.name", name)
    applied = [snapshot(envs.mapper, conf) for conf in configs]
    try:
        yield
    finally:
        for conf, old, mid in zip(configs, before, applied):
            restore_keeping_changes(envs.mapper, conf, old, mid)
