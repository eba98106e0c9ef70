"""Failures and recovery on a real standalone Flink cluster (remote mode).

- a TaskManager killed under a running job: Flink restarts the job from its checkpoint on a
  new TaskManager, the exactly-once sink shows nothing lost or doubled, recording goes on;
- seed 003's WordCount check: words arrive over a socket, ``ERROR`` makes the job throw,
  Flink restarts it from its checkpoint (seed 004's fixed-delay strategy) and the counts
  continue from before the failure;
- jobs outlive the kernel: a new kernel on the same notebook reattaches them instead of
  running a second copy, and kernel shutdown stops them unless told not to;
- ``autoSavepointInterval`` and ``restartPolicy=fromSavepointOnFailure`` on a remote cluster.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import nbformat
import pytest

from tests.integration.test_checkpoints import (
    CONF,
    assert_exactly_once,
    committed_rows,
    exists,
    start_counting,
)
from tests.integration.test_remote import RemoteNotebook
from tests.integration.test_runner import REPO, run_cli
from tests.support import flink
from tests.support.kernel import KernelDriver, alive, child_pids
from tests.support.standalone import StandaloneCluster, cluster_fixture
from tests.support.waiting import wait_until

pytestmark = pytest.mark.flink

# Seed 004's fixed-delay block, in its Flink 1.x spelling (key: value).
RESTARTS = """restart-strategy: fixed-delay
restart-strategy.fixed-delay.attempts: 3
restart-strategy.fixed-delay.delay: 1 s
"""
CLUSTER_SETTINGS = {"execution.checkpointing.num-retained": "3"}
ENDED = frozenset({"FINISHED", "CANCELED", "FAILED", "SUSPENDED"})


cluster = cluster_fixture(slots=6, settings=CLUSTER_SETTINGS)


@pytest.fixture
def taskmanager(cluster: StandaloneCluster) -> StandaloneCluster:
    """A cluster with one TaskManager (a test before may have killed it)."""
    if not cluster.taskmanagers:
        cluster.start_taskmanager()
    return cluster


@pytest.fixture(scope="module")
def notebook(tmp_path_factory: pytest.TempPathFactory,
             cluster: StandaloneCluster) -> RemoteNotebook:
    return RemoteNotebook(tmp_path_factory.mktemp("recovery"), cluster)


@pytest.fixture(scope="module")
def kernel(notebook: RemoteNotebook) -> Iterator[KernelDriver]:
    with notebook.kernel() as driver:
        driver.execute(CONF.format(root=notebook.root) + RESTARTS, cell_id="conf")
        yield driver


def latest_shown(kernel: KernelDriver, reply) -> str:
    updates = kernel.display_updates(reply.display_ids()[0])
    return updates[-1]["text/plain"] if updates else reply.shown()[0]


def wait_for_status(kernel: KernelDriver, reply, wanted: str, timeout: float) -> str:
    """The cell's status output once it contains ``wanted`` (or fail showing what it says)."""
    try:
        return str(kernel.wait_for(lambda: wanted in (t := latest_shown(kernel, reply)) and t,
                                   timeout=timeout, what=f"{wanted!r} in the status output"))
    except AssertionError:
        raise AssertionError(f"the status output never showed {wanted!r}; it shows:\n"
                             f"{latest_shown(kernel, reply)}") from None


def job_id_of(cluster: StandaloneCluster, name: str) -> str:
    job = flink.job_by_name(cluster.rest_url, name)
    assert job is not None, f"no job {name} on the cluster"
    return str(job["jid"])


def job_state(cluster: StandaloneCluster, job_id: str) -> str:
    """The state now (GET /jobs/{id} answers from a cache up to 3 s old, /status does not)."""
    return str(flink.get(cluster.rest_url, f"/jobs/{job_id}/status")["status"])


def running_copies(cluster: StandaloneCluster, name: str) -> list[str]:
    return [j["jid"] for j in flink.jobs(cluster.rest_url)
            if j["name"] == name and job_state(cluster, j["jid"]) not in ENDED]


def num_restarts(cluster: StandaloneCluster, job_id: str) -> int:
    """Flink's own record: the failures in the job's exception history (each one restarted
    it; the numRestarts metric stays 0 for region failovers in Flink 2.3)."""
    history = flink.get(cluster.rest_url, f"/jobs/{job_id}/exceptions")["exceptionHistory"]
    return len(history["entries"])


def checkpoint_number(path: str) -> int:
    return int(path.rsplit("chk-", 1)[1])


# ------------------------------------------------------------ a TaskManager is killed


def test_killed_taskmanager_job_recovers_exactly_once(
        kernel: KernelDriver, notebook: RemoteNotebook, taskmanager: StandaloneCluster) -> None:
    cluster, cell = taskmanager, "tm-cell"
    # Until the new TaskManager is up, every restart fails at once for want of slots and
    # counts as an attempt: allow plenty.
    reply, sink = start_counting(kernel, notebook, cell,
                                 "jobName=outlives_tm, execution.checkpointing.interval=1 s, "
                                 "restart-strategy.fixed-delay.attempts=100")
    job_id = job_id_of(cluster, "outlives_tm")
    wait_until(lambda: len(committed_rows(sink)) > 200, timeout=60, what="committed output")
    before = wait_until(lambda: notebook.journal(cell).get("latest_checkpoint_path"),
                        timeout=30, what="a recorded checkpoint")

    cluster.kill_taskmanager()
    cluster.wait_for_taskmanagers(0, timeout=60)
    rows_at_kill = len(committed_rows(sink))
    cluster.start_taskmanager()

    def restored() -> dict | None:
        data = flink.get(cluster.rest_url, f"/jobs/{job_id}/checkpoints")
        state = job_state(cluster, job_id)
        return data if state == "RUNNING" and data["counts"]["restored"] >= 1 else None
    checkpoints = wait_until(restored, timeout=120, what="the job to run again, restored")
    restored_path = checkpoints["latest"]["restored"]["external_path"]
    assert f"/{job_id}/chk-" in restored_path  # its own checkpoint, not a fresh start
    assert checkpoint_number(restored_path) >= checkpoint_number(before)
    # recording goes on after the recovery
    newer = wait_until(
        lambda: (p := notebook.journal(cell).get("latest_checkpoint_path"))
        and checkpoint_number(p) > checkpoint_number(restored_path) and p,
        timeout=60, what="a checkpoint recorded after the recovery")
    assert exists(newer) and notebook.journal(cell)["job_id"] == job_id
    wait_until(lambda: len(committed_rows(sink)) > rows_at_kill + 200, timeout=60,
               what="output after the recovery")
    restarts = wait_until(lambda: num_restarts(cluster, job_id), timeout=30,
                          what="the failure in Flink's exception history")
    wait_for_status(kernel, reply, f"restarts: {restarts}", timeout=30)
    # all tasks running again (while they deploy it says "[RUNNING: 0/2 tasks running]")
    wait_for_status(kernel, reply, "[RUNNING]", timeout=30)
    assert running_copies(cluster, "outlives_tm") == [job_id]
    kernel.execute("%flink.cancel outlives_tm")
    assert_exactly_once(committed_rows(sink))


# ------------------------------------------------------------- seed 003: WordCount


class LineServer:
    """A loopback TCP server that sends lines to the newest connection (the job's source)."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            self.connections.append(connection)

    def send(self, *lines: str) -> None:
        self.connections[-1].sendall("".join(f"{line}\n" for line in lines).encode())

    def close(self) -> None:
        with suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)  # wakes the accept() in the thread
        self._server.close()
        self._thread.join(5)
        for connection in self.connections:
            with suppress(OSError):
                connection.close()


@pytest.fixture
def words() -> Iterator[LineServer]:
    server = LineServer()
    yield server
    server.close()


WORDCOUNT = """%%flink(jobName=wordcount)
from pyflink.datastream.data_stream import DataStream

lines = senv._j_stream_execution_environment.socketTextStream("127.0.0.1", {port})
stenv.create_temporary_view("words", stenv.from_data_stream(DataStream(lines)))
stenv.execute_sql('''CREATE TABLE word_counts (word STRING, cnt BIGINT) WITH (
  'connector' = 'filesystem', 'path' = 'file://{path}', 'format' = 'csv',
  'sink.rolling-policy.rollover-interval' = '1 s',
  'sink.rolling-policy.check-interval' = '1 s')''')
stenv.execute_sql('''INSERT INTO word_counts
SELECT word, COUNT(*) OVER (PARTITION BY word ORDER BY pt
                            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
FROM (SELECT f0 AS word, PROCTIME() AS pt FROM words
      WHERE 1 / CASE WHEN f0 = 'ERROR' THEN 0 ELSE 1 END = 1)''')
"""


def counts(directory: Path) -> list[tuple[str, int]]:
    rows = []
    for part in directory.rglob("*"):
        if part.is_file() and not part.name.startswith("."):
            for line in part.read_text().split():
                word, count = line.split(",")
                rows.append((word, int(count)))
    return sorted(rows)


def test_wordcount_error_restarts_from_checkpoint_and_counts_continue(
        kernel: KernelDriver, notebook: RemoteNotebook, taskmanager: StandaloneCluster,
        words: LineServer) -> None:
    cluster, sink = taskmanager, notebook.root / "word_counts"
    reply = kernel.execute(WORDCOUNT.format(port=words.port, path=sink), cell_id="wordcount")
    job_id = job_id_of(cluster, "wordcount")
    wait_until(lambda: words.connections, timeout=30, what="the job to connect")
    words.send("a", "b", "a")
    # committed files mean a checkpoint completed after these words: the state has them
    wait_until(lambda: counts(sink) == [("a", 1), ("a", 2), ("b", 1)], timeout=30,
               what="the first counts")

    words.send("ERROR")  # 1 / 0: the job throws
    wait_until(lambda: len(words.connections) == 2, timeout=60,
               what="the restarted job to connect again")
    data = flink.get(cluster.rest_url, f"/jobs/{job_id}/checkpoints")
    assert data["counts"]["restored"] == 1
    assert f"/{job_id}/chk-" in data["latest"]["restored"]["external_path"]
    words.send("a", "b")
    wait_until(lambda: counts(sink) == [("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2)],
               timeout=30, what="the counts to continue (a 3, b 2)")

    shown = wait_for_status(kernel, reply, "restarts: 1", timeout=30)
    assert "by zero" in shown or "ArithmeticException" in shown
    shown = wait_for_status(kernel, reply, "[RUNNING]", timeout=30)
    # what the restart restored (issue 6: "the status output shows restarts and what each
    # restart restored")
    wait_for_status(kernel, reply, data["latest"]["restored"]["external_path"], timeout=15)
    assert job_state(cluster, job_id) == "RUNNING"
    kernel.execute("%flink.cancel wordcount")


def test_wordcount_notebook_runs_headlessly(tmp_path: Path) -> None:
    """notebooks/wordcount_failure_recovery.ipynb (the same check for a human, on the embedded
    cluster) runs with ``jupyter-flink run``; its outputs show the counts going on."""
    output = tmp_path / "wordcount.ipynb"
    run = run_cli(str(REPO / "notebooks" / "wordcount_failure_recovery.ipynb"),
                  "-o", str(output), "-q")
    assert run.returncode == 0, run.stderr
    cells = {c["id"]: c for c in nbformat.read(output, as_version=4).cells}
    text = {cell_id: "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "")
                             for o in cell.get("outputs", []))
            for cell_id, cell in cells.items() if cell["cell_type"] == "code"}
    assert "restarts: 1" in text["wordcount"], text["wordcount"]
    assert "a    3" in text["after"] and "b    2" in text["after"], text["after"]
    assert cells["wordcount"].metadata["flink"]["latest_checkpoint_path"]


# ----------------------------------------------------------- automatic savepoints


def test_automatic_savepoints_on_a_remote_cluster(
        kernel: KernelDriver, notebook: RemoteNotebook, taskmanager: StandaloneCluster) -> None:
    cell = "auto-cell"
    reply, _ = start_counting(kernel, notebook, cell, "jobName=autosaved, "
                              "autoSavepointInterval=2s")
    assert "every 2s" in reply.shown()[0]
    first = wait_until(lambda: notebook.journal(cell).get("savepoint_path"), timeout=60,
                       what="a first automatic savepoint")
    second = wait_until(lambda: (p := notebook.journal(cell).get("savepoint_path"))
                        != first and p, timeout=60, what="a second automatic savepoint")
    for path in (first, second):
        assert exists(path) and path.startswith(f"file:{notebook.root}/savepoints/")
    assert running_copies(taskmanager, "autosaved")  # savepoints do not stop it
    kernel.execute("%flink.cancel autosaved")


# ---------------------------------------- restartPolicy=fromSavepointOnFailure


def test_restart_policy_resubmits_after_a_lost_taskmanager(
        kernel: KernelDriver, notebook: RemoteNotebook, taskmanager: StandaloneCluster) -> None:
    """No Flink restarts (restart-strategy none): losing its TaskManager fails the job for
    good; the integration resubmits the cell from its newest state (on the TaskManager that
    is left), and the sink shows it continued exactly once."""
    cluster, cell = taskmanager, "policy-cell"
    header = ("jobName=resubmitted, restartPolicy=fromSavepointOnFailure, maxResubmits=1, "
              "restart-strategy.type=none, execution.checkpointing.interval=1 s")
    reply, sink = start_counting(kernel, notebook, cell, header)
    first_id = job_id_of(cluster, "resubmitted")
    wait_until(lambda: len(committed_rows(sink)) > 200, timeout=60, what="committed output")
    wait_until(lambda: notebook.journal(cell).get("latest_checkpoint_path"), timeout=30,
               what="a recorded checkpoint")

    doomed = cluster.taskmanagers[-1]  # the only one when the job was scheduled
    cluster.start_taskmanager()  # where the resubmitted job will run
    cluster.kill_taskmanager(doomed)
    flink.wait_for_state(cluster.rest_url, first_id, {"FAILED"}, timeout=90)

    def resubmitted() -> dict | None:
        jobs = [j for j in flink.jobs(cluster.rest_url)
                if j["name"] == "resubmitted" and j["jid"] != first_id]
        return jobs[0] if jobs and jobs[0]["state"] == "RUNNING" else None
    try:
        second = wait_until(resubmitted, timeout=120, what="the resubmitted job to run")
    except AssertionError:
        runs = [(j["jid"], j["state"]) for j in flink.jobs(cluster.rest_url)
                if j["name"] == "resubmitted"]
        raise AssertionError(f"no resubmitted job runs; jobs named resubmitted: {runs}; the "
                             f"cell shows:\n{latest_shown(kernel, reply)}") from None
    restored = flink.get(cluster.rest_url,
                         f"/jobs/{second['jid']}/checkpoints")["latest"]["restored"]
    assert restored is not None and f"/{first_id}/chk-" in restored["external_path"]
    wait_until(lambda: notebook.journal(cell).get("job_id") == second["jid"], timeout=30,
               what="the journal to follow the resubmitted job")
    shown = wait_for_status(kernel, reply, "Resubmitted", timeout=30)
    assert "1 of 1" in shown and second["jid"] in shown
    rows = len(committed_rows(sink))
    wait_until(lambda: len(committed_rows(sink)) > rows + 200, timeout=60,
               what="output of the resubmitted job")
    assert running_copies(cluster, "resubmitted") == [second["jid"]]
    kernel.execute("%flink.cancel resubmitted")
    assert_exactly_once(committed_rows(sink))  # continued from the failed job's state


# ------------------------------------------------------- jobs outlive the kernel


@pytest.fixture
def fresh_notebook(tmp_path: Path, cluster: StandaloneCluster) -> RemoteNotebook:
    return RemoteNotebook(tmp_path, cluster)


def test_kernel_restart_reattaches_running_jobs(
        fresh_notebook: RemoteNotebook, taskmanager: StandaloneCluster) -> None:
    nb, cluster, cell = fresh_notebook, taskmanager, "reattach-cell"
    savepoints = nb.root / "cell-savepoints"
    header = f"jobName=reattached, savepointDir=file://{savepoints}"
    with nb.kernel() as first:
        first.execute(CONF.format(root=nb.root) + "flink.shutdown.stop_jobs false\n",
                      cell_id="conf")
        _, sink = start_counting(first, nb, cell, header)
        job_id = job_id_of(cluster, "reattached")
        wait_until(lambda: len(committed_rows(sink)) > 100, timeout=60,
                   what="committed output")
        wait_until(lambda: nb.journal(cell).get("latest_checkpoint_path"), timeout=30,
                   what="a recorded checkpoint")
    # the kernel is gone; as configured, its job is not
    assert running_copies(cluster, "reattached") == [job_id]
    at_restart = nb.journal(cell)["latest_checkpoint_path"]

    with nb.kernel() as second:
        second.execute(CONF.format(root=nb.root), cell_id="conf")

        def listed() -> str | None:
            out = second.execute("jobs = %flink.jobs\n"
                                 "print(jobs[jobs['job name'] == 'reattached']"
                                 "[['job id', 'state']].to_dict('records'))").stdout
            return out if job_id in out and "RUNNING" in out else None
        wait_until(listed, timeout=30, interval=1, what="%flink.jobs to list the running job")
        assert running_copies(cluster, "reattached") == [job_id]  # not resubmitted
        newer = wait_until(
            lambda: (p := nb.journal(cell).get("latest_checkpoint_path")) != at_restart and p,
            timeout=30, what="the new kernel to record the reattached job's checkpoints")
        assert checkpoint_number(newer) > checkpoint_number(at_restart)

        cancelled = second.execute("%flink.cancel reattached").stdout
        assert "stopped with savepoint" in cancelled, cancelled
        savepoint = nb.journal(cell)["savepoint_path"]
        assert savepoint.startswith(f"file:{savepoints}/savepoint-") and exists(savepoint)
        assert job_state(cluster, job_id) == "FINISHED"
    assert_exactly_once(committed_rows(sink))


def test_killed_kernel_then_resume_runs_one_copy(
        fresh_notebook: RemoteNotebook, taskmanager: StandaloneCluster) -> None:
    """kill -9 the kernel: its remote job keeps running. Re-running the cell in a new kernel
    (resumeFromLatestCheckpoint) replaces that job; it never runs twice."""
    nb, cluster, cell = fresh_notebook, taskmanager, "orphan-cell"
    header = "jobName=orphan"
    with nb.kernel() as first:
        first.execute(CONF.format(root=nb.root), cell_id="conf")
        _, sink = start_counting(first, nb, cell, header)
        old_id = job_id_of(cluster, "orphan")
        wait_until(lambda: len(committed_rows(sink)) > 100, timeout=60,
                   what="committed output")
        wait_until(lambda: nb.journal(cell).get("latest_checkpoint_path"), timeout=30,
                   what="a recorded checkpoint")
        jvms = child_pids(first.pid)
        os.kill(first.pid, signal.SIGKILL)
        wait_until(lambda: not any(alive(p) for p in jvms), timeout=30,
                   what="the killed kernel's JVM to exit")
    assert running_copies(cluster, "orphan") == [old_id]  # jobs outlive a killed kernel

    with nb.kernel() as second:
        second.execute(CONF.format(root=nb.root), cell_id="conf")
        reply, _ = start_counting(second, nb, cell,
                                  header + ", resumeFromLatestCheckpoint=true")
        assert "previous job is stopped first" in reply.stdout, reply.stdout
        copies = running_copies(cluster, "orphan")
        assert len(copies) == 1 and copies[0] != old_id, copies
        new = flink.get(cluster.rest_url, f"/jobs/{copies[0]}/checkpoints")
        assert new["counts"]["restored"] == 1
        assert f"/{old_id}/chk-" in new["latest"]["restored"]["external_path"]
        rows = len(committed_rows(sink))
        wait_until(lambda: len(committed_rows(sink)) > rows + 100, timeout=60,
                   what="output after the resume")
        second.execute("%flink.cancel orphan")
    assert_exactly_once(committed_rows(sink))


def test_kernel_shutdown_stops_remote_jobs_by_default(
        fresh_notebook: RemoteNotebook, taskmanager: StandaloneCluster) -> None:
    nb, cluster, cell = fresh_notebook, taskmanager, "shutdown-cell"
    savepoints = nb.root / "cell-savepoints"
    with nb.kernel() as driver:
        driver.execute(CONF.format(root=nb.root), cell_id="conf")
        start_counting(driver, nb, cell, f"jobName=stopped_at_shutdown, "
                                         f"savepointDir=file://{savepoints}")
        job_id = job_id_of(cluster, "stopped_at_shutdown")
        wait_until(lambda: nb.journal(cell).get("latest_checkpoint_path"), timeout=60,
                   what="a recorded checkpoint")
        # jupyter_client (and so JupyterLab) kills a kernel that is not gone 5 s after the
        # shutdown request: the stop-with-savepoint has to fit in that.
        assert driver.manager.shutdown_wait_time == 5.0
        began = time.monotonic()
    took = time.monotonic() - began
    state = job_state(cluster, job_id)
    assert state == "FINISHED", f"{state} after a shutdown of {took:.1f}s"
    savepoint = nb.journal(cell).get("savepoint_path")
    assert savepoint and savepoint.startswith(f"file:{savepoints}/") and exists(savepoint)
