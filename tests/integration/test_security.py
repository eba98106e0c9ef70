"""Issue 11: no code runs in the kernel's JVM from outside, and secrets stay out of notebooks.

One kernel runs a checkpointed streaming job and a live SELECT; then a separate process (a
stranger without the kernel's certificate or py4j token, tests/support/strangers.py) tries
every listening TCP port of the kernel's process tree. What must be closed is asserted;
what accepted the stranger is reported in the test output (only the collect sink's socket of
a running SELECT is expected to, see README "Security"). Meanwhile the job keeps running and
recording, stops with a savepoint and resumes from it, the live table works, and
``%flink.info`` still says how to reach the cluster.
"""

from __future__ import annotations

import json
import re
import secrets
import stat
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.integration.test_checkpoints import (
    CONF,
    Notebook,
    assert_exactly_once,
    committed_rows,
    start_counting,
)
from tests.integration.test_live import live_display_id, shown
from tests.support import flink
from tests.support.kernel import KernelDriver
from tests.support.tls import credentials_for, kernel_tls_dir
from tests.support.waiting import wait_until

pytestmark = pytest.mark.flink

ROOT = Path(__file__).resolve().parents[2]
SECRET_ENV = "JUPYTER_FLINK_TEST_SECRET"
URL_SECRET = "UrlS3cr3t/With+Slash"


@pytest.fixture(scope="module")
def env_secret() -> str:
    return "envSecret-" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def notebook(tmp_path_factory: pytest.TempPathFactory) -> Notebook:
    return Notebook(tmp_path_factory.mktemp("secure"))


@pytest.fixture(scope="module")
def kernel(notebook: Notebook, env_secret: str) -> Iterator[KernelDriver]:
    with notebook.kernel({SECRET_ENV: env_secret}) as driver:
        driver.execute(CONF.format(root=notebook.root), cell_id="conf")
        yield driver
        tls_dir = kernel_tls_dir(driver.pid)
        pid = driver.pid
    # the kernel's TLS material is gone with it
    assert tls_dir is None or not tls_dir.exists(), f"{tls_dir} outlived kernel {pid}"


@pytest.fixture(scope="module")
def counting(kernel: KernelDriver, notebook: Notebook) -> dict[str, Any]:
    """A checkpointed, exactly-once streaming job, recording its checkpoints."""
    reply, sink = start_counting(kernel, notebook, "secure-cell", "jobName=secure")
    url = flink.rest_url_from("\n".join(reply.data()))
    first = wait_until(lambda: notebook.journal("secure-cell").get("latest_checkpoint_path"),
                       timeout=90, what="a recorded checkpoint")
    return {"reply": reply, "url": url, "sink": sink, "first_checkpoint": first}


@pytest.fixture(scope="module")
def live(kernel: KernelDriver, counting: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A live SELECT that keeps running (its collect sink has a socket)."""
    kernel.execute("%%flink.ssql\nCREATE TABLE IF NOT EXISTS slow_events (k INT) WITH ("
                   "'connector' = 'datagen', 'rows-per-second' = '5', "
                   "'fields.k.min' = '0', 'fields.k.max' = '9')")
    before = set(listening_sockets(kernel.pid))
    reply = kernel.execute("%%flink.ssql(jobName=live_secure, type=append, refreshInterval=300)"
                           "\nSELECT k FROM slow_events", cell_id="live-cell")
    display_id = live_display_id(reply)
    kernel.wait_for(lambda: re.search(r"[1-9][\d,]* changes received",
                                      shown(kernel, reply, display_id)),
                    timeout=90, what="rows in the live table")
    # the sockets the SELECT opened: its collect sink's (the counting job opens none)
    collect = set(listening_sockets(kernel.pid)) - before
    yield {"reply": reply, "display_id": display_id, "collect_ports": collect}
    kernel.execute("%flink.cancel live_secure", allow_error=True)


@pytest.fixture(scope="module")
def python_function(kernel: KernelDriver, notebook: Notebook) -> Iterator[Path]:
    """A DataStream job with a Python function, running (thread mode: no Beam ports)."""
    seen = notebook.root / "seen.txt"
    kernel.execute(
        "%%flink(jobName=python_map)\n"
        "from pyflink.common import Types\n"
        "from pyflink.datastream.connectors import Sink\n"
        "from pyflink.java_gateway import get_gateway\n"
        "stenv.execute_sql(\"CREATE TABLE IF NOT EXISTS py_src (x INT) WITH "
        "('connector'='datagen','rows-per-second'='5')\")\n"
        "def quarter(row):\n"
        f"    with open({str(seen)!r}, 'a') as out:\n"
        "        out.write(f'{row[0]}\\n')\n"
        "    return abs(row[0]) // 4\n"
        "numbers = stenv.to_data_stream(stenv.from_path('py_src'))\n"
        "numbers.map(quarter, output_type=Types.INT()).sink_to(Sink(get_gateway().jvm.org."
        "apache.flink.streaming.api.functions.sink.v2.DiscardingSink()))\n"
        "client = senv.execute()", cell_id="python-cell")
    wait_until(lambda: seen.exists() and len(seen.read_text().splitlines()) >= 3, timeout=90,
               what="the Python function to process rows")
    yield seen
    kernel.execute("%flink.cancel python_map", allow_error=True)


# --------------------------------------------------------------------------- the ports


LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}


def listening_sockets(pid: int, reads: int = 5) -> dict[int, tuple[int, str]]:
    """port -> (pid, address), for every listening TCP socket of ``pid`` and descendants.

    Several reads: /proc/net/tcp is not read atomically, and with connections opening and
    closing meanwhile (the poller's) a read can miss a socket.
    """
    processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    sockets = {}
    for _ in range(reads):
        for process in processes:
            for conn in process.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    sockets[conn.laddr.port] = (process.pid, conn.laddr.ip)
    return sockets


def connected_ports(pid: int, reads: int = 5) -> set[int]:
    """Remote ports of the established TCP connections of ``pid`` (several reads, as above)."""
    return {c.raddr.port for _ in range(reads)
            for c in psutil.Process(pid).net_connections(kind="tcp")
            if c.status == psutil.CONN_ESTABLISHED and c.raddr}


def as_stranger(ports: list[int]) -> list[dict[str, Any]]:
    """Run the probes from another process, which knows none of the kernel's secrets."""
    done = subprocess.run([sys.executable, "-m", "tests.support.strangers", *map(str, ports)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_a_stranger_gets_nothing_from_any_port(kernel: KernelDriver, counting: dict[str, Any],
                                               live: dict[str, Any], python_function: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    sockets = listening_sockets(kernel.pid)
    ports = {port: pid for port, (pid, _) in sockets.items()}
    jvm = [p for p in psutil.Process(kernel.pid).children() if p.name() == "java"]
    assert len(jvm) == 1, f"one JVM expected under the kernel: {jvm}"
    jvm_pid = jvm[0].pid
    connection = kernel.manager.get_connection_info()
    names = {connection[f"{channel}_port"]: f"Jupyter's {channel} channel (ZMQ, HMAC-signed)"
             for channel in ("shell", "iopub", "stdin", "control", "hb")}
    assert set(names) <= set(ports), (sorted(names), sorted(ports))
    rest_port = int(counting["url"].rsplit(":", 1)[1])
    names[rest_port] = "Flink REST API and web UI"
    gateway = {p for p in connected_ports(kernel.pid) if ports.get(p) == jvm_pid} - {rest_port}
    assert len(gateway) == 1, f"the kernel's py4j connection: {gateway}"
    gateway_port = gateway.pop()
    names[gateway_port] = "py4j gateway (JVM)"
    # the JVM's watchdog keeps a connection to the kernel's callback server
    callback = [p for p in connected_ports(jvm_pid) if ports.get(p) == kernel.pid]
    assert len(callback) == 1, f"the kernel's py4j callback server: {callback}"
    names[callback[0]] = "py4j callback server (kernel)"
    for port in [p for p, pid in ports.items() if pid == kernel.pid and p not in names]:
        names[port] = ("ipykernel's IOPub pipe for forked children (ZMQ PULL; a message "
                       "without the kernel's random 16-byte key is dropped)")

    results = as_stranger(sorted(ports))
    by_port: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    for result in results:
        by_port[result["port"]][result["probe"]] = result
    collect = live["collect_ports"]
    assert collect, "the running SELECT's collect socket was not found"
    for port in collect:
        names[port] = "collect sink of the running SELECT (known open, see README)"
    for port, pid in ports.items():
        names.setdefault(port, "blob server (JVM)" if pid == jvm_pid else f"pid {pid}")
    accepted = {p: sorted(n for n, r in probes.items() if r["accepted"])
                for p, probes in by_port.items()}
    report = ["Listening ports of the kernel's process tree, as a stranger found them:"]
    for port in sorted(ports):
        what = ", ".join(accepted[port]) or "nothing"
        if port in collect:
            what += f" ({by_port[port]['collect']['detail']})"
        report.append(f"  {sockets[port][1]}:{port}  {names[port]}: accepted {what}")
    with capsys.disabled():
        print("\n" + "\n".join(report))

    rest = by_port[rest_port]
    for probe in ("http", "https-no-cert", "https-own-cert", "jar-upload"):
        assert not rest[probe]["accepted"], (probe, rest[probe])
    assert not by_port[gateway_port]["py4j"]["accepted"], by_port[gateway_port]["py4j"]
    assert not by_port[callback[0]]["py4j-callback"]["accepted"], \
        by_port[callback[0]]["py4j-callback"]
    wide = {p: a for p, (_, a) in sockets.items() if a not in LOOPBACK}
    assert not wide, f"listening beyond loopback: {wide}\n" + "\n".join(report)
    opened = {p: a for p, a in accepted.items() if a and p not in collect}
    assert not opened, "\n".join(report)


def test_the_kernel_itself_gets_in_but_uploads_no_jars(counting: dict[str, Any]) -> None:
    url = counting["url"]
    assert url.startswith("https://127.0.0.1:")
    credentials = credentials_for(url)
    assert credentials is not None
    with httpx.Client(verify=credentials.context(), timeout=10) as mine:
        answer = mine.get(url + "/jobs/overview", headers={"Origin": "https://evil.example"})
        assert answer.status_code == 200 and "jobs" in answer.json()
        assert answer.headers.get("access-control-allow-origin") == \
            "https://jupyter-flink.invalid"
        upload = mine.post(url + "/jars/upload", files={"jarfile": ("a.jar", b"PK\x05\x06")})
        assert upload.status_code != 200, upload.text
    directory = Path(credentials.ca).parent
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()} == {0o600}
    with pytest.raises(httpx.HTTPError):  # no certificate, the kernel's CA trusted: still no
        httpx.get(url + "/jobs/overview", verify=credentials.context(client_cert=False),
                  timeout=10)


# --------------------------------------------------------------- the notebook still works


def test_jobs_record_stop_with_savepoint_and_resume(kernel: KernelDriver, notebook: Notebook,
                                                    counting: dict[str, Any],
                                                    live: dict[str, Any]) -> None:
    cell = "secure-cell"
    first = counting["first_checkpoint"]
    wait_until(lambda: notebook.journal(cell).get("latest_checkpoint_path") not in (None, first),
               timeout=60, what="a newer recorded checkpoint")
    assert flink.job_by_name(counting["url"], "secure")["state"] == "RUNNING"
    kernel.execute("%flink.stop secure")
    savepoint = wait_until(lambda: notebook.journal(cell).get("savepoint_path"), timeout=60,
                           what="the recorded savepoint")
    start_counting(kernel, notebook, cell, "jobName=secure, resumeFromSavepoint=true")
    job = flink.job_by_name(counting["url"], "secure")
    assert job is not None and job["state"] in ("RUNNING", "CREATED", "INITIALIZING")
    restored = wait_until(lambda: flink.get(counting["url"], f"/jobs/{job['jid']}/checkpoints")
                          ["latest"]["restored"], timeout=30, what="the restore in REST")
    assert flink.local_path(restored["external_path"]) == flink.local_path(savepoint)
    wait_until(lambda: notebook.journal(cell).get("job_id") == job["jid"] and
               notebook.journal(cell).get("latest_checkpoint_path"), timeout=60,
               what="a checkpoint of the resumed job recorded")
    kernel.execute("%flink.stop secure")
    assert_exactly_once(committed_rows(counting["sink"]))
    # the live table kept going all along
    text = shown(kernel, live["reply"], live["display_id"])
    assert "changes received" in text and "final" not in text.splitlines()[0], text


def test_info_says_how_to_reach_the_cluster(kernel: KernelDriver,
                                            counting: dict[str, Any]) -> None:
    info = kernel.execute("%flink.info").stdout
    assert counting["url"] in info, info
    assert "certificate" in info and "browser" in info, info
    status = "\n".join(counting["reply"].data("text/html"))
    assert f"href='{counting['url']}" not in status, "a link the browser cannot open"


# ------------------------------------------------------------- secrets stay out of notebooks


def test_secrets_never_reach_an_output_the_journal_or_comm(
        kernel: KernelDriver, notebook: Notebook, env_secret: str) -> None:
    kernel.execute("%flink.cancel --all", allow_error=True)  # the conf below restarts the cluster
    conf = kernel.execute("%%flink.conf\n"
                          f"s3.secret-key ${{env:{SECRET_ENV}}}\n"
                          f"s3.endpoint https://minio:{URL_SECRET}@127.0.0.1:9/\n",
                          cell_id="secret-conf")
    # a Flink setting from ${env:...}, resolved at submission: Flink gets the real value
    named = kernel.execute(
        "%%flink.ssql(pipeline.name=${env:" + SECRET_ENV + "})\n"
        "CREATE TABLE IF NOT EXISTS secret_src (k INT) WITH ('connector' = 'datagen', "
        "'rows-per-second' = '5');\n"
        "CREATE TABLE IF NOT EXISTS secret_sink (k INT) WITH ('connector' = 'blackhole');\n"
        "INSERT INTO secret_sink SELECT k FROM secret_src", cell_id="secret-job")
    url = flink.rest_url_from("\n".join(named.data()))
    assert env_secret in [j["name"] for j in flink.jobs(url)], "Flink lacks the resolved value"
    # a URL with credentials: "Could not check s3://KEY:SECRET@..." and Flink's own errors
    restore = kernel.execute(
        "%%flink.ssql(jobName=url_secret, execution.state-recovery.path="
        f"s3://AKIDEXAMPLE:{URL_SECRET}@bucket/sp/savepoint-1)\n"
        "INSERT INTO secret_sink SELECT k FROM secret_src", cell_id="url-job", allow_error=True)
    kernel.pump(3)  # status updates and comm messages of both jobs
    trace = kernel.execute("%flink.trace").stdout
    table = kernel.execute("conf = %flink.conf\nprint(conf.to_string())").stdout
    jobs = kernel.execute("jobs = %flink.jobs\nprint(jobs.to_string())").stdout
    kernel.execute("%flink.cancel --all", allow_error=True)
    # every output, status update and comm message (not the cells' code the user wrote)
    outputs = json.dumps([m["content"] for m in kernel.iopub
                          if m["msg_type"] != "execute_input"], default=str)
    assert "s3://***@bucket" in outputs, restore.stdout + restore.error_text
    assert f"${{env:{SECRET_ENV}}}" in table, table  # shown as written
    assert "https://***@127.0.0.1:9/" in table, table
    journal = notebook.journal_path.read_text()
    for where, text in [("outputs and comm messages", outputs), ("journal", journal),
                        ("%flink.trace", trace), ("%flink.conf", table), ("%flink.jobs", jobs),
                        ("conf cell", conf.stdout)]:
        assert env_secret not in text, f"the ${{env:...}} secret is in the {where}"
        assert URL_SECRET not in text, f"the URL's secret is in the {where}"
