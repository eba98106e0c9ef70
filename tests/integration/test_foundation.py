"""The foundation, through a real flink kernel driven by jupyter_client, on real Flink."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import flink
from tests.support.kernel import KernelDriver, alive, child_pids, running_kernel
from tests.support.waiting import wait_until

pytestmark = pytest.mark.flink

SEED_000_CONF = """%%flink.conf
pipeline.time-characteristic EventTime
execution.checkpointing.interval 1000
execution.checkpointing.externalized-checkpoint-retention RETAIN_ON_CANCELLATION
state.backend filesystem
state.checkpoints.dir file://{chk}
"""

SOURCE_DDL = """CREATE TABLE IF NOT EXISTS {name} (k INT, v BIGINT) WITH (
  'connector' = 'datagen', 'rows-per-second' = '50',
  'fields.k.min' = '0', 'fields.k.max' = '9');
CREATE TABLE IF NOT EXISTS {name}_sink (k INT, c BIGINT) WITH ('connector' = 'blackhole');
"""


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelDriver]:
    workdir = tmp_path_factory.mktemp("foundation")
    with running_kernel(cwd=str(workdir)) as driver:
        yield driver


@pytest.fixture(scope="module")
def configured(kernel: KernelDriver, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The seed 000 %flink.conf block, as written in Zeppelin's guide."""
    chk = tmp_path_factory.mktemp("checkpoints")
    reply = kernel.execute(SEED_000_CONF.format(chk=chk), cell_id="conf-cell")
    return {"reply": reply, "checkpoints": chk}


@pytest.fixture(scope="module")
def streaming_job(kernel: KernelDriver, configured: dict) -> dict:
    """A streaming INSERT started from a %%flink.ssql cell."""
    reply = kernel.execute(
        "%%flink.ssql(jobName=keyed_count, parallelism=2, maxParallelism=64)\n"
        + SOURCE_DDL.format(name="events")
        + "INSERT INTO events_sink SELECT k, COUNT(*) FROM events GROUP BY k;",
        cell_id="insert-cell")
    text = "\n".join(reply.data())
    url = flink.rest_url_from(text)
    job = flink.job_by_name(url, "keyed_count")
    assert job is not None, f"no job named keyed_count at {url}"
    return {"reply": reply, "url": url, "job_id": job["jid"]}


def test_kernelspec_installed_by_the_installer(isolated_jupyter: Path) -> None:
    spec = json.loads((isolated_jupyter / "prefix/share/jupyter/kernels/flink/kernel.json")
                      .read_text())
    assert spec["display_name"] == "Flink (PyFlink)"
    assert spec["argv"][1:3] == ["-m", "jupyter_flink.kernel"]


def test_seed_000_conf_translates_flink_1_keys(configured: dict, kernel: KernelDriver) -> None:
    notices = configured["reply"].stdout
    assert "execution.checkpointing.dir" in notices  # state.checkpoints.dir, renamed
    assert "hashmap" in notices  # state.backend filesystem -> hashmap + filesystem storage
    assert "time-characteristic" in notices  # gone in Flink 2: explained, not an error
    reply = kernel.execute(
        "conf = %flink.conf\n"
        "rows = conf.set_index('key')\n"
        "print(rows.loc['execution.checkpointing.dir', 'value'])\n"
        "print(rows.loc['execution.checkpointing.dir', 'source'])\n"
        "print(rows.loc['execution.checkpointing.interval', 'value'])\n"
        "print(rows.loc['state.backend.type', 'value'])")
    directory, source, interval, backend = reply.stdout.split()
    assert directory.endswith(str(configured["checkpoints"]))
    assert source == "%%flink.conf"
    assert interval == "1000" and backend == "hashmap"


def test_streaming_insert_returns_while_job_runs(kernel: KernelDriver,
                                                 streaming_job: dict) -> None:
    url, job_id = streaming_job["url"], streaming_job["job_id"]
    assert flink.get(url, f"/jobs/{job_id}")["state"] == "RUNNING"
    assert "[RUNNING]" in streaming_job["reply"].shown()[0]
    # The kernel is free: later cells run while the job keeps running and checkpointing.
    assert kernel.execute("6 * 7").result == "42"
    before = flink.completed_checkpoints(url, job_id)
    wait_until(lambda: flink.completed_checkpoints(url, job_id) > before, timeout=30,
               what="a new checkpoint while other cells run")
    assert flink.get(url, f"/jobs/{job_id}")["state"] == "RUNNING"


def test_status_output_updates_in_place(kernel: KernelDriver, streaming_job: dict) -> None:
    display_id = streaming_job["reply"].display_ids()[0]
    kernel.wait_for(lambda: any("chk-" in u["text/plain"]
                                for u in kernel.display_updates(display_id)),
                    timeout=30, what="the status output to show a checkpoint path")


def test_job_properties_reach_flink(streaming_job: dict) -> None:
    details = flink.get(streaming_job["url"], f"/jobs/{streaming_job['job_id']}")
    assert details["name"] == "keyed_count"
    assert {v["parallelism"] for v in details["vertices"]} == {2}
    assert {v["maxParallelism"] for v in details["vertices"]} == {64}


def test_rest_endpoint_listens_on_loopback_only(streaming_job: dict) -> None:
    port = int(streaming_job["url"].rsplit(":", 1)[1])
    listening = Path("/proc/net/tcp6").read_text() + Path("/proc/net/tcp").read_text()
    addresses = [line.split()[1] for line in listening.splitlines()[1:]
                 if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A"]
    assert addresses, f"nothing listens on port {port}"
    loopback = {"0100007F", "0000000000000000FFFF00000100007F",
                "00000000000000000000000001000000"}
    assert all(a.rsplit(":", 1)[0] in loopback for a in addresses), addresses
    # and it is reachable on loopback
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


def test_batch_select_returns_a_dataframe(kernel: KernelDriver, configured: dict) -> None:
    reply = kernel.execute(
        "%%flink.bsql\n"
        "CREATE TABLE IF NOT EXISTS numbers (x INT) WITH ("
        " 'connector' = 'datagen', 'number-of-rows' = '25', 'fields.x.kind' = 'sequence',"
        " 'fields.x.start' = '1', 'fields.x.end' = '25');\n"
        "SELECT COUNT(*) AS n, SUM(x) AS total FROM numbers")
    html = reply.data("text/html")[-1]
    assert "<table" in html
    assert re.search(r"\b25\b", reply.result or "") and re.search(r"\b325\b", reply.result or "")


def test_sql_paragraphs_share_one_catalog(kernel: KernelDriver, configured: dict) -> None:
    kernel.execute("%%flink.ssql\nCREATE TABLE shared_t (x INT) WITH ("
                   "'connector'='datagen','number-of-rows'='3')")
    reply = kernel.execute("%%flink.bsql\nSELECT COUNT(*) AS n FROM shared_t")
    assert re.search(r"\b3\b", reply.result or "")
    reply = kernel.execute("%%flink\nsorted(stenv.list_tables()) == sorted(btenv.list_tables())")
    assert reply.result == "True"


def test_flink_python_paragraph_does_not_block(kernel: KernelDriver, configured: dict,
                                               tmp_path: Path) -> None:
    """A DataStream job with a Python function: senv.execute() returns, the job runs on."""
    seen = tmp_path / "seen.txt"
    reply = kernel.execute(
        "%%flink(jobName=python_job)\n"
        "from pyflink.common import Types\n"
        "from pyflink.datastream.connectors import Sink\n"
        "from pyflink.java_gateway import get_gateway\n"
        "stenv.execute_sql(\"CREATE TABLE IF NOT EXISTS py_src (x INT) WITH "
        "('connector'='datagen','rows-per-second'='5')\")\n"
        "def double(row):\n"
        f"    with open({str(seen)!r}, 'a') as out:  # proof that the Python worker runs\n"
        "        out.write(f'{row[0]}\\n')\n"
        "    return row[0] * 2\n"
        "numbers = stenv.to_data_stream(stenv.from_path('py_src'))\n"
        "doubled = numbers.map(double, output_type=Types.INT())\n"
        "doubled.sink_to(Sink(get_gateway().jvm.org.apache.flink.streaming.api.functions"
        ".sink.v2.DiscardingSink()))\n"
        "client = senv.execute()\n"
        "type(client).__name__",
        cell_id="python-cell")
    assert reply.result == "'JobClient'"  # it returned at once, with the job's client
    url = flink.rest_url_from("\n".join(reply.data()))
    job = flink.job_by_name(url, "python_job")
    assert job is not None and job["state"] == "RUNNING"
    assert "[RUNNING]" in reply.shown()[0]
    wait_until(lambda: seen.exists() and len(seen.read_text().splitlines()) >= 3, timeout=60,
               what="the Python map to process rows")
    kernel.execute("%flink.cancel python_job")


def test_run_as_one_runs_inserts_as_one_job(kernel: KernelDriver, configured: dict) -> None:
    reply = kernel.execute(
        "%%flink.ssql(jobName=two_sinks, runAsOne=true)\n"
        + SOURCE_DDL.format(name="ones")
        + "CREATE TABLE IF NOT EXISTS ones_sink2 (k INT, v BIGINT) WITH "
          "('connector'='blackhole');\n"
        "INSERT INTO ones_sink SELECT k, COUNT(*) FROM ones GROUP BY k;\n"
        "INSERT INTO ones_sink2 SELECT k, v FROM ones;", cell_id="runasone-cell")
    url = flink.rest_url_from("\n".join(reply.data()))
    details = flink.get(url, f"/jobs/{flink.job_by_name(url, 'two_sinks')['jid']}")
    sinks = [v["name"] for v in details["vertices"] if "sink" in v["name"].lower()]
    assert any("ones_sink2" in s for s in sinks) and any("ones_sink[" in s or
                                                          s.endswith("ones_sink") or
                                                          "ones_sink:" in s for s in sinks), sinks


def test_planning_works_after_py4j_calls_from_other_threads(kernel: KernelDriver,
                                                            streaming_job: dict) -> None:
    """FLINK-23020: py4j serves calls on several JVM threads; planning must work on all."""
    kernel.execute(
        "%%flink\n"
        "import threading\n"
        "from pyflink.java_gateway import get_gateway\n"
        "def busy():\n"
        "    for _ in range(50): get_gateway().jvm.System.currentTimeMillis()\n"
        "threads = [threading.Thread(target=busy) for _ in range(4)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]")
    for attempt in range(3):
        reply = kernel.execute(
            f"%%flink.ssql(jobName=any_thread_{attempt})\n"
            "INSERT INTO events_sink SELECT k, COUNT(*) FROM events GROUP BY k")
        assert reply.status == "ok"
        kernel.execute(f"%flink.cancel any_thread_{attempt}")


# ---------------------------------------------------------------------------- bad input


def _short_error(reply) -> str:
    """The visible error: one short paragraph, no Java trace."""
    assert reply.status == "error", reply.stdout
    text = reply.error_text
    assert reply.error["ename"] == "UsageError", text
    assert "\tat org.apache" not in text and "at java." not in text, text
    return reply.error["evalue"]


def test_malformed_conf_line_names_the_line(kernel: KernelDriver) -> None:
    message = _short_error(kernel.execute(
        "%%flink.conf\nexecution.checkpointing.interval 1000\n= 5\n", allow_error=True))
    assert "Line 3" in message  # as the editor counts: the magic is line 1


def test_unknown_conf_key_suggests_the_right_one(kernel: KernelDriver) -> None:
    message = _short_error(kernel.execute(
        "%%flink.conf\nexecution.checkpointing.intervall 1000\n", allow_error=True))
    assert "Line 2" in message and "execution.checkpointing.interval" in message


def test_bad_conf_value_is_explained(kernel: KernelDriver) -> None:
    message = _short_error(kernel.execute(
        "%%flink.conf\nexecution.checkpointing.interval soon\n", allow_error=True))
    assert "Line 2" in message and "soon" in message


def test_bad_paragraph_property_value(kernel: KernelDriver) -> None:
    message = _short_error(kernel.execute("%%flink.ssql(parallelism=abc)\nSHOW TABLES",
                                          allow_error=True))
    assert "parallelism" in message and "abc" in message


def test_unknown_paragraph_property(kernel: KernelDriver) -> None:
    message = _short_error(kernel.execute("%%flink.ssql(jobname=x)\nSHOW TABLES",
                                          allow_error=True))
    assert "jobname" in message and "jobName" in message


def test_sql_syntax_error_is_short_and_traced(kernel: KernelDriver,
                                              streaming_job: dict) -> None:
    message = _short_error(kernel.execute("%%flink.ssql\nSELEC 1", allow_error=True))
    assert "Line 2" in message and message.count("%flink.trace") == 1
    assert len(message) < 400 and "Was expecting" not in message
    trace = kernel.execute("%flink.trace").stdout
    assert "SqlParseException" in trace or "SqlParserException" in trace
    # the running job is untouched
    state = flink.get(streaming_job["url"], f"/jobs/{streaming_job['job_id']}")["state"]
    assert state == "RUNNING"


def test_python_error_in_flink_paragraph(kernel: KernelDriver, streaming_job: dict) -> None:
    reply = kernel.execute("%%flink\nx = 1\nraise ValueError('boom in user code')",
                           allow_error=True)
    assert reply.status == "error"
    assert reply.error["ename"] == "ValueError" and "boom in user code" in reply.error["evalue"]
    assert kernel.execute("1 + 1").result == "2"
    state = flink.get(streaming_job["url"], f"/jobs/{streaming_job['job_id']}")["state"]
    assert state == "RUNNING"


def test_two_streaming_jobs_in_one_cell_need_run_as_one(kernel: KernelDriver) -> None:
    message = _short_error(kernel.execute(
        "%%flink.ssql\nINSERT INTO events_sink SELECT k, COUNT(*) FROM events GROUP BY k;\n"
        "INSERT INTO events_sink SELECT k, COUNT(*) FROM events GROUP BY k;",
        allow_error=True))
    assert "runAsOne=true" in message


def test_cluster_setting_while_jobs_run_is_refused(kernel: KernelDriver,
                                                   streaming_job: dict) -> None:
    message = _short_error(kernel.execute("%%flink.conf\ntaskmanager.numberOfTaskSlots 4",
                                          allow_error=True))
    assert "%flink.cancel --all" in message or "restart the kernel" in message


# ---------------------------------------------------------------------------- lifecycle


def test_missing_java_gives_a_clear_error(tmp_path: Path) -> None:
    env = {"JAVA_HOME": str(tmp_path / "no-java"), "PATH": "/usr/bin/nonexistent"}
    with running_kernel(env=env) as driver:
        reply = driver.execute("%%flink.bsql\nSELECT 1", allow_error=True)
        message = _short_error(reply)
        assert "Java" in message and "JAVA_HOME" in message


def test_no_jvm_outlives_a_killed_kernel() -> None:
    with running_kernel() as driver:
        reply = driver.execute("%%flink.bsql\nSELECT 1 AS x")
        assert "1" in (reply.result or "")
        kernel_pid = driver.pid
        jvms = [p for p in child_pids(kernel_pid) if _is_java(p)]
        assert jvms, "the kernel started no JVM"
        os.kill(kernel_pid, signal.SIGKILL)  # kill -9: no shutdown request, no cleanup
        wait_until(lambda: not any(alive(p) for p in jvms), timeout=30,
                   what="the kernel's JVM to exit after kill -9 of the kernel")


@pytest.mark.parametrize("moment", ["submitted", "running"])
def test_interrupt_cancels_a_waiting_cell(kernel: KernelDriver, streaming_job: dict,
                                          moment: str) -> None:
    """Interrupting a wait=true cell cancels its job: also while the JVM is still
    submitting it (the interrupt must not leave the job running unowned)."""
    import threading

    name = f"waiting_job_{moment}"
    url = streaming_job["url"]
    wanted = {"submitted": None, "running": "RUNNING"}[moment]

    def interrupt_when_seen() -> None:
        def seen() -> bool:
            job = flink.job_by_name(url, name)
            return bool(job and (wanted is None or job["state"] == wanted))
        wait_until(seen, timeout=120, interval=0.01, what=f"{name} to be {moment}")
        kernel.interrupt()

    thread = threading.Thread(target=interrupt_when_seen, daemon=True)
    thread.start()
    reply = kernel.execute(f"%%flink.ssql(jobName={name}, wait=true)\n"
                           "INSERT INTO events_sink SELECT k, COUNT(*) FROM events GROUP BY k",
                           cell_id=uuid.uuid4().hex, allow_error=True)
    thread.join(10)
    assert reply.status == "error" and reply.error["ename"] == "KeyboardInterrupt", \
        (reply.status, reply.error_text, reply.stdout)
    job = flink.job_by_name(url, name)
    try:
        flink.wait_for_state(url, job["jid"], {"CANCELED"})
    except AssertionError:
        raise AssertionError(f"not cancelled; cell printed {reply.stdout!r} "
                             f"{reply.stderr!r}") from None


def _is_java(pid: int) -> bool:
    try:
        return "java" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return False
