"""Failure handling on the embedded cluster: Flink's restart strategies as the status shows
them, restartPolicy=fromSavepointOnFailure, and automatic savepoints (real Flink)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import flink
from tests.support.kernel import KernelDriver, running_kernel
from tests.support.waiting import wait_until

pytestmark = pytest.mark.flink

# Seed 004's fixed-delay block, in its Flink 1.x spelling.
CONF = """%%flink.conf
execution.checkpointing.interval 300 ms
state.checkpoints.dir file://{root}/chk
state.savepoints.dir file://{root}/savepoints
restart-strategy: fixed-delay
restart-strategy.fixed-delay.attempts: 2
restart-strategy.fixed-delay.delay: 200 ms
"""

# Fails on the row with id {bad}, every time that row is (re)played; {bad} is far enough
# in that the job runs before it fails, even on a loaded machine.
FAILING_JOB = """%%flink.ssql({header})
CREATE TABLE IF NOT EXISTS failing_src (id BIGINT) WITH ('connector' = 'datagen',
  'rows-per-second' = '200', 'fields.id.kind' = 'sequence', 'fields.id.start' = '1',
  'fields.id.end' = '100000');
CREATE TABLE IF NOT EXISTS failing_sink (id BIGINT, x INT) WITH ('connector' = 'blackhole');
INSERT INTO failing_sink SELECT id, 1 / CASE WHEN id = {bad} THEN 0 ELSE 1 END FROM failing_src
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("recovery")


@pytest.fixture(scope="module")
def kernel(root: Path) -> Iterator[KernelDriver]:
    notebook = root / "recovery.ipynb"
    notebook.write_text("{}")
    with running_kernel(env={"JPY_SESSION_NAME": str(notebook)}, cwd=str(root)) as driver:
        driver.execute(CONF.format(root=root), cell_id="conf")
        yield driver


def journal(root: Path, cell: str) -> dict:
    path = root / ".recovery.ipynb.flink-journal.json"
    return json.loads(path.read_text())["cells"].get(cell, {}) if path.exists() else {}


def latest_shown(kernel: KernelDriver, reply) -> str:
    display_id = reply.display_ids()[0]
    updates = kernel.display_updates(display_id)
    return updates[-1]["text/plain"] if updates else reply.shown()[0]


def test_flink_restarts_are_shown(kernel: KernelDriver) -> None:
    reply = kernel.execute(FAILING_JOB.format(header="jobName=restarting", bad=3000),
                           cell_id="restart-cell")
    url = flink.rest_url_from("\n".join(reply.data()))
    job_id = flink.job_by_name(url, "restarting")["jid"]
    flink.wait_for_state(url, job_id, {"FAILED"}, timeout=90)  # attempts: 2, then for good
    # REST serves the exception history from a cache, so the first [FAILED] status may not
    # count every failure yet; the poller's last look at the ended job completes it.
    try:
        shown = kernel.wait_for(
            lambda: (text := latest_shown(kernel, reply)) and "[FAILED]" in text
            and "restarts: 2" in text and text,
            timeout=30, what="the final status with both restarts")
    except AssertionError as exc:  # say what was shown instead
        raise AssertionError(f"{exc}; shown:\n{latest_shown(kernel, reply)}") from None
    assert "ArithmeticException" in shown or "by zero" in shown


def test_restart_policy_resubmits_from_the_newest_state(kernel: KernelDriver,
                                                        root: Path) -> None:
    header = ("jobName=resubmitted, restartPolicy=fromSavepointOnFailure, maxResubmits=1, "
              "restart-strategy.type=none")
    reply = kernel.execute(FAILING_JOB.format(header=header, bad=4000), cell_id="policy-cell")
    url = flink.rest_url_from("\n".join(reply.data()))

    def runs() -> list[dict]:
        return sorted((j for j in flink.jobs(url) if j["name"] == "resubmitted"),
                      key=lambda j: j["start-time"])
    # The first job fails at id 4000 (20 s in); it is resubmitted once from its last checkpoint,
    # which replays id 400 and fails again; then the policy gives up.
    wait_until(lambda: len(runs()) == 2 and all(j["state"] == "FAILED" for j in runs()),
               timeout=120, what="the original and one resubmitted job, both failed")
    first, second = runs()
    restored = flink.get(url, f"/jobs/{second['jid']}/checkpoints")["latest"]["restored"]
    assert restored is not None and f"/{first['jid']}/chk-" in restored["external_path"]
    shown = kernel.wait_for(
        lambda: (t := latest_shown(kernel, reply)) and "stays stopped" in t and t,
        timeout=30, what="the give-up notice in the cell's status output")
    assert second["jid"] in shown  # the cell's output followed the resubmitted job
    assert journal(root, "policy-cell")["job_id"] == second["jid"]
    # the kernel is still fine
    assert kernel.execute("2 + 2").result == "4"


def test_automatic_savepoints_are_recorded(kernel: KernelDriver, root: Path) -> None:
    reply = kernel.execute(
        "%%flink.ssql(jobName=autosaved, autoSavepointInterval=2s)\n"
        "CREATE TABLE IF NOT EXISTS auto_src (k INT) WITH ('connector'='datagen',"
        "'rows-per-second'='50', 'fields.k.min'='0', 'fields.k.max'='9');\n"
        "CREATE TABLE IF NOT EXISTS auto_sink (k INT, c BIGINT) WITH ('connector'='blackhole');\n"
        "INSERT INTO auto_sink SELECT k, COUNT(*) FROM auto_src GROUP BY k",
        cell_id="auto-cell")
    assert "automatic savepoints: every 2s" in reply.shown()[0]
    first = wait_until(lambda: journal(root, "auto-cell").get("savepoint_path"), timeout=60,
                       what="a first automatic savepoint")
    second = wait_until(lambda: (p := journal(root, "auto-cell").get("savepoint_path"))
                        != first and p, timeout=60, what="a second automatic savepoint")
    for path in (first, second):
        assert (flink.local_path(path) / "_metadata").exists()
        assert path.startswith(f"file:{root}/savepoints/")
    kernel.execute("%flink.cancel autosaved")
