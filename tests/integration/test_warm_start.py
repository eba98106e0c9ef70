"""Warm start: the kernel starts Flink in the background before the first Flink cell.

Real kernels through jupyter_client. Nothing here is timed: what is checked is which cluster
and which JVM the first cell uses, what a conf cell does to a warm cluster nobody used yet,
that remote mode never has an embedded cluster, that no JVM outlives a kernel stopped while
warming, that ``warm_start`` off starts nothing, and where a failure while warming shows.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import psutil
import pytest
from jupyter_client.manager import KernelManager

from tests.support import flink
from tests.support.kernel import KernelDriver, running_kernel, without_warm_start
from tests.support.standalone import StandaloneCluster, cluster_fixture
from tests.support.waiting import wait_until

pytestmark = pytest.mark.flink

SESSION = """
import json as _json
_m = next(m for m in get_ipython().magics_manager.registry.values()
          if type(m).__name__ == "FlinkMagics")
_s = _m.session
print("SESSION " + _json.dumps({
    "in_flight": _s.warm.in_flight, "started": _s.started, "warmed_up": _s.warm.warmed_up,
    "failure": repr(_s.warm.failure) if _s.warm.failure else None,
    "local": _s.cluster.is_local if _s.cluster else None,
    "url": _s.cluster.rest_url if _s.cluster else None}))
"""
JOB = """%%flink.ssql(jobName={name})
CREATE TABLE IF NOT EXISTS w_src (k INT) WITH ('connector' = 'datagen', 'rows-per-second' = '5');
CREATE TABLE IF NOT EXISTS w_sink (k INT) WITH ('connector' = 'blackhole');
INSERT INTO w_sink SELECT k FROM w_src
"""
TAG = "JUPYTER_FLINK_TEST_TAG"

cluster = cluster_fixture(slots=4)


def session(kernel: KernelDriver) -> dict:
    """The session's state, read through a plain Python cell (which never waits for it)."""
    out = kernel.execute(SESSION).stdout
    return dict(json.loads(out.split("SESSION ", 1)[1].splitlines()[0]))


def warmed(kernel: KernelDriver) -> dict:
    return wait_until(lambda: (lambda s: s if s["started"] and not s["in_flight"] else None)(
        session(kernel)), timeout=180, what="the warm start to finish")


def java_children(pid: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in children if _is_java(p)]


def _is_java(process: psutil.Process) -> bool:
    with suppress(psutil.Error):
        return "java" in process.name()
    return False


def listening_ports(process: psutil.Process) -> set[int]:
    with suppress(psutil.Error):
        return {c.laddr.port for c in process.net_connections(kind="tcp")
                if c.status == psutil.CONN_LISTEN}
    return set()


def tagged_jvms(tag: str) -> list[int]:
    """Live JVMs (not zombies) started with ``TAG=tag`` in their environment."""
    found = []
    for process in psutil.process_iter(["name"]):
        with suppress(psutil.Error):
            if "java" in (process.info["name"] or "") and \
                    process.environ().get(TAG) == tag and \
                    process.status() != psutil.STATUS_ZOMBIE:
                found.append(process.pid)
    return found


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[KernelDriver]:
    with running_kernel(cwd=str(tmp_path)) as driver:
        yield driver


# ------------------------------------------------------------------------- local mode


def test_the_first_cell_runs_on_the_warm_cluster_and_jvm(kernel: KernelDriver) -> None:
    """Right after start-up a Python cell does not wait for Flink (still warming); once
    warm, the first job runs on the very cluster and JVM the warm start made, and the
    cluster is announced in that cell, not in any earlier one."""
    early = session(kernel)
    assert early["in_flight"] and not early["started"], early  # this cell did not wait
    first = kernel.execute("print(1 + 1)")
    assert first.stdout == "2\n", first.stdout  # nothing of the warm start shows here
    state = warmed(kernel)
    assert state["local"] and state["warmed_up"] and state["failure"] is None, state
    jvms = java_children(kernel.pid)
    assert len(jvms) == 1, jvms
    assert flink.job_by_name(state["url"], "jupyter-flink warm-up") is not None

    reply = kernel.execute(JOB.format(name="first_job"), cell_id="first")
    assert flink.rest_url_from(reply.stdout) == state["url"]
    job = flink.job_by_name(state["url"], "first_job")
    assert job is not None and job["state"] == "RUNNING"
    assert [p.pid for p in java_children(kernel.pid)] == [jvms[0].pid]
    assert session(kernel)["url"] == state["url"]
    kernel.execute("%flink.cancel first_job")


def test_a_cluster_setting_before_the_first_job_restarts_the_warm_cluster(
        kernel: KernelDriver) -> None:
    warm = warmed(kernel)
    jvm = java_children(kernel.pid)[0].pid
    reply = kernel.execute("%%flink.conf\ntaskmanager.numberOfTaskSlots 3\n", cell_id="conf")
    assert "http://" not in reply.stdout, reply.stdout  # nothing used it: no news
    state = warmed(kernel)
    assert state["url"] != warm["url"], "the warm cluster was not restarted"
    reply = kernel.execute(JOB.format(name="after_conf"), cell_id="job")
    url = flink.rest_url_from(reply.stdout)
    assert url == state["url"]
    assert flink.get(url, "/overview")["slots-total"] == 3
    assert [p.pid for p in java_children(kernel.pid)] == [jvm]
    kernel.execute("%flink.cancel after_conf")


def test_warm_start_off_starts_nothing_until_the_first_flink_cell(tmp_path: Path) -> None:
    with running_kernel(cwd=str(tmp_path), env=without_warm_start(tmp_path)) as kernel:
        kernel.pump(3.0)  # a warm start would have launched the JVM by now
        state = session(kernel)
        assert not state["in_flight"] and not state["started"], state
        assert java_children(kernel.pid) == []
        reply = kernel.execute(JOB.format(name="cold_job"), cell_id="cold")
        url = flink.rest_url_from(reply.stdout)
        assert flink.job_by_name(url, "jupyter-flink warm-up") is None
        job = flink.job_by_name(url, "cold_job")
        assert job is not None and job["state"] == "RUNNING"
        kernel.execute("%flink.cancel cold_job")


def test_a_failure_while_warming_shows_in_the_first_flink_cell_only(tmp_path: Path) -> None:
    with running_kernel(cwd=str(tmp_path),
                        env={"JAVA_HOME": str(tmp_path / "no-java-here")}) as kernel:
        state = wait_until(lambda: (lambda s: s if not s["in_flight"] else None)(
            session(kernel)), timeout=60, what="the warm start to give up")
        assert state["failure"] and "Java" in state["failure"], state
        plain = kernel.execute("print('fine')")
        assert plain.stdout == "fine\n" and not plain.stderr, (plain.stdout, plain.stderr)
        reply = kernel.execute(JOB.format(name="no_java"), allow_error=True)
        assert reply.status == "error"
        assert "needs Java" in reply.error_text and "no-java-here" in reply.error_text


# ------------------------------------------------------------------------ remote mode


def test_remote_mode_never_starts_an_embedded_cluster(tmp_path: Path,
                                                      cluster: StandaloneCluster) -> None:
    """The remote conf as the first cell: a warm start that has not reached its cluster
    waits for it and builds only the client side; one that has is stopped by it. From then
    on the kernel's JVM never listens on more than py4j's port: no MiniCluster runs."""
    with running_kernel(cwd=str(tmp_path)) as kernel:
        most_ports = 0  # a MiniCluster listens on its REST port (and more) beside py4j's

        def sample() -> None:
            nonlocal most_ports
            for jvm in java_children(kernel.pid):
                most_ports = max(most_ports, len(listening_ports(jvm)))
        kernel.execute("%%flink.conf\n" + cluster.conf_lines(), cell_id="remote-conf")
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            sample()
            state = session(kernel)
            if state["started"] and not state["in_flight"]:
                break
        assert state["local"] is False and state["url"] == cluster.rest_url, state
        assert state["warmed_up"], state  # the planner was warmed, nothing submitted
        reply = kernel.execute(JOB.format(name="remote_job"), cell_id="job")
        sample()
        assert cluster.rest_url in reply.stdout, reply.stdout
        assert flink.job_by_name(cluster.rest_url, "remote_job")["state"] == "RUNNING"
        assert flink.job_by_name(cluster.rest_url, "jupyter-flink warm-up") is None
        assert most_ports <= 1, f"the JVM listened on {most_ports} ports at once"
        kernel.execute("%flink.cancel remote_job")


# ----------------------------------------------------------------------- shutting down


def _start_kernel(tmp_path: Path, tag: str) -> KernelManager:
    manager = KernelManager(kernel_name="flink")
    manager.start_kernel(env={**os.environ, TAG: tag}, cwd=str(tmp_path))
    return manager


def test_a_kernel_shut_down_while_warming_leaves_no_jvm(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    manager = _start_kernel(tmp_path, tag)
    client = manager.client()
    try:
        client.start_channels()
        client.wait_for_ready(timeout=120)  # the warm start is under way now
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=False)
    wait_until(lambda: not tagged_jvms(tag), timeout=60, what="no JVM of the kernel left")


def test_a_kernel_killed_while_warming_leaves_no_jvm(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    manager = _start_kernel(tmp_path, tag)
    try:
        # Kill it once its JVM runs (the cluster is starting then), as kill -9 would.
        wait_until(lambda: tagged_jvms(tag), timeout=120, what="the kernel's JVM")
        pid = manager.provisioner.pid  # type: ignore[union-attr]
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not tagged_jvms(tag), timeout=60, what="no JVM of the kernel left")
    finally:
        if manager.is_alive():
            manager.shutdown_kernel(now=True)
        for pid in tagged_jvms(tag):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
