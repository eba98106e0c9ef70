"""The health of real jobs, as a frontend showing their outputs gets it through the jobs comm:
records in and out per second, backpressure behind a slow sink, watermark lag, why a
checkpoint failed, and a job waiting for task slots. One kernel and embedded cluster for all.

Each test checks the facts against what Flink itself says (its REST API, read directly) or
against what the job was built to do.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import flink
from tests.support.kernel import KernelDriver, running_kernel

pytestmark = pytest.mark.flink

JOBS_TARGET = "jupyter_flink.jobs"
MIME = "application/vnd.jupyter-flink.job+json"
CONF = """%%flink.conf
execution.checkpointing.interval 2 s
execution.checkpointing.tolerable-failed-checkpoints 1000
"""
EVENT_TIME = """%%flink.ssql(jobName=event_time)
CREATE TABLE events (k INT, ts AS LOCALTIMESTAMP,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH ('connector' = 'datagen',
  'rows-per-second' = '50', 'fields.k.min' = '0', 'fields.k.max' = '9');
CREATE TABLE window_counts (k INT, w TIMESTAMP(3), c BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO window_counts SELECT k, window_start, COUNT(*)
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '2' SECOND))
GROUP BY k, window_start, window_end
"""
# A sink 50 times slower than its source (a Python function that sleeps 20 ms a row) behind
# a network exchange (no chaining), with rows big enough to fill the buffers in between
# within seconds; its checkpoints cannot pass the full buffers within 3 s.
SLOW_SINK = """%%flink(jobName=slow_sink, execution.checkpointing.timeout=3s, \
pipeline.operator-chaining.enabled=false, python.fn-execution.bundle.size=10)
import time
from pyflink.table import DataTypes
from pyflink.table.udf import udf

@udf(result_type=DataTypes.BIGINT())
def slowly(x):
    time.sleep(0.02)
    return x

stenv.create_temporary_function("slowly", slowly)
stenv.execute_sql('''CREATE TABLE wide (k INT, v STRING) WITH ('connector' = 'datagen',
  'rows-per-second' = '500', 'fields.k.min' = '0', 'fields.k.max' = '9',
  'fields.v.length' = '2000')''')
stenv.execute_sql("CREATE TABLE wide_sink (k BIGINT, v STRING) WITH ('connector' = 'blackhole')")
stenv.execute_sql("INSERT INTO wide_sink SELECT slowly(k), v FROM wide")
"""
TOO_WIDE = """%%flink.ssql(jobName=too_wide, parallelism=12)
CREATE TABLE IF NOT EXISTS wide_counts (k INT, c BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO wide_counts SELECT k, COUNT(*) FROM events GROUP BY k
"""


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelDriver]:
    with running_kernel(cwd=str(tmp_path_factory.mktemp("health"))) as driver:
        driver.execute(CONF, cell_id="conf")
        yield driver


@pytest.fixture(scope="module")
def event_time(kernel: KernelDriver) -> dict[str, Any]:
    return start(kernel, EVENT_TIME, "event-time")


@pytest.fixture(scope="module")
def slow_sink(kernel: KernelDriver) -> dict[str, Any]:
    return start(kernel, SLOW_SINK, "slow-sink")


def start(kernel: KernelDriver, cell: str, cell_id: str) -> dict[str, Any]:
    """Run a job's cell and subscribe to its output as the labextension does."""
    reply = kernel.execute(cell, cell_id=cell_id, timeout=300)
    [payload] = reply.data(MIME)
    job_id = payload["job_id"]
    comm_id = kernel.open_comm(JOBS_TARGET, {"version": 1, "jobs": [job_id]})
    url = flink.rest_url_from(kernel.execute("%flink.info").stdout)
    return {"job_id": job_id, "comm_id": comm_id, "url": url, "reply": reply}


def pushed(kernel: KernelDriver, job: dict[str, Any]) -> list[dict[str, Any]]:
    """The job's payloads the kernel sent on the comm, oldest first."""
    return [message["jobs"][job["job_id"]] for message in kernel.comm_messages(job["comm_id"])
            if message.get("jobs", {}).get(job["job_id"])]


def samples(kernel: KernelDriver, job: dict[str, Any], field: str) -> list[float]:
    """The known values of one health series, as a chart has them: the points the
    subscription's answer carried, then each later message's latest sample."""
    points: dict[int, Any] = {}
    for payload in pushed(kernel, job):
        health = payload.get("health") or {}
        series = health.get("series") or {}
        points.update(zip(series.get("t", []), series.get(field, [])))
        latest = health.get("latest") or {}
        if latest.get("at_ms") is not None:
            points[latest["at_ms"]] = latest.get(field)
    return [value for _, value in sorted(points.items()) if value is not None]


def renew(kernel: KernelDriver, job: dict[str, Any]) -> None:
    """Renew the subscription now and then, as the labextension does (job_comm.LEASE_S)."""
    if time.monotonic() - job.setdefault("renewed", time.monotonic()) >= 20:
        kernel.comm_send(job["comm_id"], {"version": 1, "alive": True})
        job["renewed"] = time.monotonic()


def wait_for_payload(kernel: KernelDriver, job: dict[str, Any], check: Any, what: str,
                     timeout: float = 90) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        renew(kernel, job)
        payloads = pushed(kernel, job)
        return payloads[-1] if payloads and check(payloads[-1]) else None
    try:
        return kernel.wait_for(found, timeout=timeout, what=what)
    except AssertionError:
        payloads = pushed(kernel, job)
        raise AssertionError(f"{what}; last payload: {payloads[-1] if payloads else None}") \
            from None


def test_records_in_and_out_per_second(kernel: KernelDriver, event_time: dict) -> None:
    """50 rows/s from the source; 10 keys per 2 s window reach the sink (5/s)."""
    wait_for_payload(
        kernel, event_time, lambda p: len(samples(kernel, event_time, "in")) >= 4 and
        len(samples(kernel, event_time, "out")) >= 4, "four rates in the charts")
    records_in = samples(kernel, event_time, "in")[-3:]
    records_out = samples(kernel, event_time, "out")[-3:]
    assert all(35 <= rate <= 65 for rate in records_in), records_in
    assert all(1 <= rate <= 12 for rate in records_out), records_out
    # the status output says it too, for frontends without our renderer
    updates = kernel.display_updates(event_time["reply"].display_ids()[0])
    assert any("  health: in " in update["text/plain"] for update in updates)


def test_watermark_lag(kernel: KernelDriver, event_time: dict) -> None:
    """The source's watermark trails its rows by 5 s: the lag is 5 s and a bit."""
    wait_for_payload(kernel, event_time,
                     lambda p: len(samples(kernel, event_time, "watermark_lag_ms")) >= 3,
                     "watermark lags in the charts")
    lags = samples(kernel, event_time, "watermark_lag_ms")[-3:]
    # 5 s of bounded out-of-orderness, plus up to one sample interval (5 s) for the metrics
    # Flink serves from its last fetch, plus a loaded machine
    assert all(4_500 <= lag <= 15_000 for lag in lags), lags


def test_backpressure_behind_a_slow_sink(kernel: KernelDriver, slow_sink: dict) -> None:
    payload = wait_for_payload(
        kernel, slow_sink, lambda p: (p["health"] or {}).get("latest", {}).get(
            "backpressured") is not None and p["health"]["latest"]["backpressured"] >= 0.5
        and p["health"]["latest"]["busy"] >= 0.5, "a busy, backpressured job", timeout=120)
    assert "PythonCalc" in (payload["health"]["busiest"] or "")
    # Flink's own view agrees: the source is backpressured
    job = flink.get(slow_sink["url"], f"/jobs/{slow_sink['job_id']}")
    source = next(v for v in job["vertices"] if v["name"].startswith("Source"))
    backpressure = flink.get(slow_sink["url"],
                             f"/jobs/{slow_sink['job_id']}/vertices/{source['id']}/backpressure")
    assert backpressure["backpressureLevel"] in ("low", "high"), backpressure
    # and the rate in is held down to what the sink takes (~50/s, not 500/s)
    rates = samples(kernel, slow_sink, "in")[-2:]
    assert rates and all(rate < 200 for rate in rates), rates


def test_the_reason_of_a_failed_checkpoint(kernel: KernelDriver, slow_sink: dict) -> None:
    """Barriers stuck behind full buffers: the checkpoints expire after their 3 s."""
    payload = wait_for_payload(
        kernel, slow_sink, lambda p: p["checkpoints"]["failure"] == "expired after 3 s",
        "an expired checkpoint", timeout=120)
    assert payload["checkpoints"]["failed"] >= 1
    checkpoints = flink.get(slow_sink["url"], f"/jobs/{slow_sink['job_id']}/checkpoints")
    assert checkpoints["latest"]["failed"]["failure_message"].startswith("Checkpoint expired")
    updates = kernel.display_updates(slow_sink["reply"].display_ids()[0])
    assert "expired after 3 s" in updates[-1]["text/plain"]


def test_waiting_for_slots(kernel: KernelDriver, event_time: dict, slow_sink: dict) -> None:
    """12 subtasks need 12 slots; the embedded cluster has 8, some taken: the cell returns
    soon, and the output says why the job does not run."""
    reply = kernel.execute(TOO_WIDE, cell_id="too-wide", timeout=120)
    [payload] = reply.data(MIME)
    job = {"job_id": payload["job_id"], "url": event_time["url"],
           "comm_id": kernel.open_comm(JOBS_TARGET, {"version": 1,
                                                      "jobs": [payload["job_id"]]})}
    waiting = ("waiting for a free slot: the embedded cluster has 8; raise "
               "taskmanager.numberOfTaskSlots")
    payload = wait_for_payload(kernel, job, lambda p: p["state_detail"] == waiting,
                               "the job waiting for a slot", timeout=60)
    assert payload["state"] == "RUNNING"
    overview = flink.get(event_time["url"], "/overview")
    assert overview["slots-total"] == 8 and overview["slots-available"] == 0
    # the status output says it too (its refreshes are throttled: it may come a little later)
    kernel.wait_for(lambda: any(
        f"[RUNNING: {waiting}]" in update["text/plain"].splitlines()[0]
        for update in kernel.display_updates(reply.display_ids()[0])),
        timeout=30, what="the status output to say the job waits for a slot")
    kernel.execute("%flink.cancel too_wide")
