"""Remote mode on a real standalone Flink cluster (started from ``pyflink/bin`` per module).

The checkpoint tests of test_checkpoints.py run here unchanged (imported, with this module's
``notebook`` and ``kernel`` fixtures, whose kernel sends every job to the standalone
cluster), all but the kill -9 one: a remote job outlives its killed kernel, so its remote
counterpart (test_remote_recovery.py) checks that the job is replaced, not doubled. Then
what only a remote cluster shows: Python functions on a TaskManager, a cluster nobody
listens on, a JobManager whose REST API stops answering for a while, and ten streaming
cells on one cluster. Failures, recovery and reattaching are in test_remote_recovery.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration import test_checkpoints as checkpoint_tests
from tests.integration.test_checkpoints import CONF, Notebook, start_counting
from tests.support import flink
from tests.support.kernel import KernelDriver
from tests.support.standalone import StandaloneCluster, cluster_fixture, free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.flink


class RemoteNotebook(Notebook):
    """A notebook whose kernels send their jobs to ``cluster`` (a conf cell of its own)."""

    def __init__(self, root: Path, cluster: StandaloneCluster):
        super().__init__(root)
        self.cluster = cluster

    @contextmanager
    def kernel(self, env: dict[str, str] | None = None  # type: ignore[override]
               ) -> Iterator[KernelDriver]:
        with super().kernel({**self.cluster.kernel_env(), **(env or {})}) as driver:
            driver.execute("%%flink.conf\n" + self.cluster.conf_lines(), cell_id="remote-conf")
            yield driver


# What a remote cluster's operator configures in its own config.yaml (seed 004): in remote
# mode %%flink.conf cannot change it (the JobManager sizes each job's checkpoint store from
# its own configuration), and test_lost_checkpoint relies on older checkpoints being kept.
CLUSTER_SETTINGS = {"execution.checkpointing.num-retained": "3"}


cluster = cluster_fixture(slots=12, settings=CLUSTER_SETTINGS)


@pytest.fixture(scope="module")
def notebook(tmp_path_factory: pytest.TempPathFactory,
             cluster: StandaloneCluster) -> RemoteNotebook:
    return RemoteNotebook(tmp_path_factory.mktemp("nb"), cluster)


@pytest.fixture(scope="module")
def kernel(notebook: RemoteNotebook) -> Iterator[KernelDriver]:
    with notebook.kernel() as driver:
        driver.execute(CONF.format(root=notebook.root), cell_id="conf")
        yield driver


def running(cluster: StandaloneCluster, name: str) -> list[dict]:
    return [j for j in flink.jobs(cluster.rest_url)
            if j["name"] == name and j["state"] in ("RUNNING", "RESTARTING", "CREATED")]


# --------------------------------------------- the checkpoint issue's tests, in remote mode

test_remote_record = checkpoint_tests.test_latest_checkpoint_is_recorded_and_follows_newer_ones
test_remote_rerun_stops_previous = \
    checkpoint_tests.test_rerunning_a_cell_stops_its_running_job_first
test_remote_cancel_with_savepoint_then_resume = \
    checkpoint_tests.test_cancel_with_savepoint_then_resume_continues_exactly_once
test_remote_stop_and_savepoint_magics = checkpoint_tests.test_stop_and_savepoint_magics
test_remote_failed_savepoint_falls_back = \
    checkpoint_tests.test_failed_savepoint_falls_back_to_cancel
test_remote_copied_metadata_not_used = \
    checkpoint_tests.test_metadata_copied_from_another_cell_is_not_used
test_remote_lost_checkpoint = \
    checkpoint_tests.test_lost_checkpoint_lists_alternatives_and_keeps_the_record


PYTHON_UDF = """%%flink(jobName=python_udf)
from pyflink.table import DataTypes
from pyflink.table.udf import udf


@udf(result_type=DataTypes.BIGINT())
def times_two(x):
    return x * 2


stenv.create_temporary_function("times_two", times_two)
stenv.execute_sql('''CREATE TABLE udf_src (id BIGINT) WITH ('connector' = 'datagen',
  'rows-per-second' = '200', 'fields.id.kind' = 'sequence', 'fields.id.start' = '1',
  'fields.id.end' = '100000')''')
stenv.execute_sql('''CREATE TABLE udf_sink (id BIGINT, doubled BIGINT) WITH (
  'connector' = 'filesystem', 'path' = 'file://{path}', 'format' = 'csv',
  'sink.rolling-policy.rollover-interval' = '1 s',
  'sink.rolling-policy.check-interval' = '1 s')''')
job = stenv.execute_sql("INSERT INTO udf_sink SELECT id, times_two(id) FROM udf_src")
"""


def test_python_function_runs_on_the_taskmanager(kernel: KernelDriver, notebook: RemoteNotebook,
                                                 cluster: StandaloneCluster) -> None:
    """A %%flink cell's Python UDF runs in a Python worker of the remote TaskManager."""
    sink = notebook.root / "udf_sink"
    kernel.execute(PYTHON_UDF.format(path=sink), cell_id="udf-cell")
    assert running(cluster, "python_udf")

    def rows() -> list[list[int]]:
        return [[int(v) for v in line.split(",")] for part in sink.rglob("*")
                if part.is_file() and not part.name.startswith(".")
                for line in part.read_text().split()]
    wait_until(lambda: len(rows()) > 100, timeout=90, what="rows computed by the Python UDF")
    assert all(doubled == 2 * id_ for id_, doubled in rows())
    assert notebook.journal("udf-cell").get("job_name") == "python_udf"
    kernel.execute("%flink.cancel python_udf")


def test_jobs_ran_on_the_standalone_cluster(kernel: KernelDriver,
                                            cluster: StandaloneCluster) -> None:
    """The tests above really used the remote cluster (and no embedded one)."""
    names = {j["name"] for j in flink.jobs(cluster.rest_url)}
    assert {"recorded", "exactly_once", "managed", "lost"} <= names
    info = kernel.execute("%flink.info").stdout
    assert cluster.rest_url in info and "remote" in info.lower()


def test_cluster_only_settings_are_flagged_in_remote_mode(kernel: KernelDriver,
                                                          notebook: RemoteNotebook) -> None:
    """num-retained in %%flink.conf cannot reach a remote cluster: the conf cell says so."""
    notices = kernel.execute(CONF.format(root=notebook.root), cell_id="conf").stdout
    assert "execution.checkpointing.num-retained" in notices, notices
    assert "keeps its own configuration" in notices, notices


# ---------------------------------------------------------------- an unreachable cluster


def test_unreachable_cluster_fails_fast_with_a_clear_error(tmp_path: Path) -> None:
    nobody = Notebook(tmp_path)
    port = free_port()
    with nobody.kernel() as driver:
        driver.execute("%%flink.conf\nflink.execution.mode remote\n"
                       f"flink.execution.remote.host 127.0.0.1\n"
                       f"flink.execution.remote.port {port}\n", cell_id="conf")
        began = time.monotonic()
        reply = driver.execute(
            "%%flink.ssql(jobName=nowhere)\n"
            "CREATE TABLE IF NOT EXISTS s (x INT) WITH ('connector' = 'datagen');\n"
            "CREATE TABLE IF NOT EXISTS b (x INT) WITH ('connector' = 'blackhole');\n"
            "INSERT INTO b SELECT x FROM s", cell_id="job", allow_error=True, timeout=120)
        took = time.monotonic() - began
        assert reply.status == "error"
        message = reply.error_text
        assert f"127.0.0.1:{port}" in message, message
        assert "unreachable" in message.lower() or "cannot be reached" in message.lower(), \
            message
        assert "Traceback" not in reply.error["evalue"] and "at org.apache" not in message
        assert took < 20, f"the error took {took:.1f}s"
        assert driver.execute("1 + 1").result == "2"  # the kernel is fine
        assert not nobody.journal("job"), "nothing may be recorded for a job that never ran"


# ---------------------------------------------------------- REST unreachable for a while


def test_rest_unreachable_for_a_while(kernel: KernelDriver, notebook: RemoteNotebook,
                                      cluster: StandaloneCluster) -> None:
    """The JobManager freezes for ~25 s with jobs running (two of this test, and what the
    tests above left running): every cell's status says so, the kernel stays usable, and
    recording resumes afterwards."""
    cells = {"pause-a": "paused_a", "pause-b": "paused_b"}
    displays, firsts = {}, {}
    for cell, name in cells.items():
        reply, _ = start_counting(kernel, notebook, cell,
                                  f"jobName={name}, execution.checkpointing.interval=1 s")
        displays[cell] = reply.display_ids()[0]
    for cell in cells:
        firsts[cell] = wait_until(lambda c=cell: notebook.journal(c).get("latest_checkpoint_path"),
                                  timeout=60, what="a recorded checkpoint")

    def says_unreachable(cell: str) -> bool:
        updates = kernel.display_updates(displays[cell])
        return bool(updates) and "unreachable" in updates[-1]["text/plain"]

    with cluster.rest_unreachable():
        frozen = time.monotonic()
        began = time.monotonic()
        assert kernel.execute("1 + 1", timeout=10).result == "2"
        assert time.monotonic() - began < 5, "a plain cell waited on the frozen cluster"
        began = time.monotonic()
        kernel.execute("jobs = %flink.jobs\nprint(len(jobs))", timeout=15)
        assert time.monotonic() - began < 5, "%flink.jobs waited on the frozen cluster"
        noticed: dict[str, float] = {}

        def all_noticed() -> bool:
            for cell in cells:
                if cell not in noticed and says_unreachable(cell):
                    noticed[cell] = round(time.monotonic() - frozen, 1)
            return len(noticed) == len(cells)
        try:
            kernel.wait_for(all_noticed, timeout=20, what="every status to say unreachable")
        except AssertionError:
            raise AssertionError(
                f"20 s after the JobManager froze, only these cells said so: {noticed}") \
                from None
        shown = kernel.display_updates(displays["pause-a"])[-1]["text/plain"]
        assert cluster.rest_url in shown
        states = kernel.execute("jobs = %flink.jobs\nprint(list(jobs['state']))",
                                timeout=15).stdout
        assert states.count("cluster unreachable since") >= len(cells), states
        began = time.monotonic()
        refused = kernel.execute("%%flink.ssql(jobName=while_frozen)\nSELECT 1",
                                 allow_error=True, timeout=60)
        assert refused.status == "error" and "does not answer" in refused.error["evalue"]
        assert time.monotonic() - began < 10, "a new job waited a minute on the frozen cluster"
        during = {cell: notebook.journal(cell).get("latest_checkpoint_path") for cell in cells}
    # back: the note goes away and recording resumes
    for cell in cells:
        kernel.wait_for(lambda c=cell: not says_unreachable(c), timeout=30,
                        what=f"the status of {cell} to drop the unreachable note")
        newer = wait_until(
            lambda c=cell: (p := notebook.journal(c).get("latest_checkpoint_path"))
            != during[c] and p, timeout=60, what="a checkpoint recorded after the freeze")
        assert int(newer.rsplit("chk-", 1)[1]) > int(firsts[cell].rsplit("chk-", 1)[1])
    for name in cells.values():
        assert len(running(cluster, name)) == 1
        kernel.execute(f"%flink.cancel {name}")


# ------------------------------------------------------------- ten streaming cells at once


def test_ten_streaming_cells_on_one_cluster(kernel: KernelDriver, notebook: RemoteNotebook,
                                            cluster: StandaloneCluster) -> None:
    kernel.execute("%flink.cancel --all")  # what the tests above left running
    cells = [f"many-{i}" for i in range(10)]
    kernel.execute(
        "%%flink.ssql\n"
        "CREATE TABLE IF NOT EXISTS many_src (k INT) WITH ('connector' = 'datagen', "
        "'rows-per-second' = '20', 'fields.k.min' = '0', 'fields.k.max' = '9');\n"
        "CREATE TABLE IF NOT EXISTS many_sink (k INT, c BIGINT) WITH ("
        "'connector' = 'blackhole');", cell_id="many-tables")
    for index, cell in enumerate(cells):
        kernel.execute(f"%%flink.ssql(jobName=many_{index})\n"
                       "INSERT INTO many_sink SELECT k, COUNT(*) FROM many_src GROUP BY k",
                       cell_id=cell)
    overview = flink.jobs(cluster.rest_url)
    for index in range(10):
        assert [j for j in overview if j["name"] == f"many_{index}"
                and j["state"] == "RUNNING"], f"many_{index} is not running"

    def recorded_all() -> list[str]:
        return [c for c in cells if not notebook.journal(c).get("latest_checkpoint_path")]
    wait_until(lambda: not recorded_all(), timeout=60,
               what="a recorded checkpoint for every cell")
    firsts = {c: notebook.journal(c)["latest_checkpoint_path"] for c in cells}
    wait_until(lambda: all(notebook.journal(c)["latest_checkpoint_path"] != firsts[c]
                           for c in cells), timeout=60, what="every cell to record a newer one")
    listed = kernel.execute(
        "jobs = %flink.jobs\n"
        "print(sorted(jobs[jobs['job name'].str.startswith('many_')]['state']))").stdout
    assert listed.count("'RUNNING'") == 10
    for cell in cells:
        entry = notebook.journal(cell)
        assert entry["job_name"].startswith("many_") and entry["cell_id"] == cell
        recorded = flink.local_path(entry["latest_checkpoint_path"])
        assert recorded.parent.name == entry["job_id"]
        # it was a real checkpoint of that job (it may be subsumed by now: num-retained 3)
        kept = [int(p.name[4:]) for p in recorded.parent.glob("chk-*")
                if (p / "_metadata").exists()]
        assert kept and max(kept) >= int(recorded.name[4:]), (recorded, kept)
    kernel.execute("%flink.cancel --all")
    assert not [j for j in flink.jobs(cluster.rest_url)
                if j["name"].startswith("many_") and j["state"] == "RUNNING"]


def test_journal_is_valid_json_and_no_temp_files_stay(notebook: RemoteNotebook) -> None:
    """After all jobs are cancelled, the journal is whole and no temporary file is left."""
    data = json.loads(notebook.journal_path.read_text())
    assert data["notebook"] == str(notebook.path)
    assert all(entry["cell_id"] == key for key, entry in data["cells"].items())
    wait_until(lambda: not [p for p in notebook.root.iterdir() if p.name.endswith(".tmp")],
               timeout=10, what="no temporary journal files")
