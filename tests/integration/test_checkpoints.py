"""Checkpoints and savepoints per cell: record, stop with savepoint, resume (real Flink).

The exactly-once checks use a deterministic sequence source and a keyed running count
(COUNT(*) OVER (PARTITION BY k)) into a filesystem sink: after any stop and resume, the ids
in the committed files must be 1..N with none missing or doubled, and every key's counts
1..n, which only holds if the source position and the keyed state were restored.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import flink
from tests.support.counting import COUNTING_TABLES, assert_exactly_once, committed_rows
from tests.support.kernel import KernelDriver, alive, child_pids, running_kernel
from tests.support.waiting import wait_until

pytestmark = pytest.mark.flink

CONF = """%%flink.conf
execution.checkpointing.interval 500 ms
execution.checkpointing.num-retained 3
state.checkpoints.dir file://{root}/chk
state.savepoints.dir file://{root}/savepoints
"""

class Notebook:
    """A notebook path and the kernels working on it (the journal lives beside it)."""

    def __init__(self, root: Path):
        self.root = root
        self.path = root / "checkpoints.ipynb"
        self.path.write_text("{}")
        self.journal_path = root / ".checkpoints.ipynb.flink-journal.json"

    def kernel(self, env: dict[str, str] | None = None):
        return running_kernel(env={"JPY_SESSION_NAME": str(self.path), **(env or {})},
                              cwd=str(self.root))

    def journal(self, cell_id: str) -> dict:
        if not self.journal_path.exists():
            return {}
        return json.loads(self.journal_path.read_text())["cells"].get(cell_id, {})


@pytest.fixture(scope="module")
def notebook(tmp_path_factory: pytest.TempPathFactory) -> Notebook:
    return Notebook(tmp_path_factory.mktemp("nb"))


@pytest.fixture(scope="module")
def kernel(notebook: Notebook) -> Iterator[KernelDriver]:
    with notebook.kernel() as driver:
        driver.execute(CONF.format(root=notebook.root), cell_id="conf")
        yield driver


def start_counting(kernel: KernelDriver, notebook: Notebook, cell_id: str, header: str,
                   *, metadata: dict | None = None, sink: str | None = None):
    sink = sink or f"sink_{cell_id.replace('-', '_')}"
    path = notebook.root / sink
    reply = kernel.execute(f"%%flink.ssql({header})\n"
                           + COUNTING_TABLES.format(sink=sink, path=path),
                           cell_id=cell_id, metadata=metadata)
    return reply, path


def exists(flink_path: str) -> bool:
    return (flink.local_path(flink_path) / "_metadata").exists()


def rest_url(reply) -> str:
    return flink.rest_url_from("\n".join(reply.data()))


# ---------------------------------------------------------------------------- recording


def test_latest_checkpoint_is_recorded_and_follows_newer_ones(kernel: KernelDriver,
                                                              notebook: Notebook) -> None:
    cell = "record-cell"
    reply, _ = start_counting(kernel, notebook, cell, "jobName=recorded")
    first = wait_until(lambda: notebook.journal(cell).get("latest_checkpoint_path"),
                       timeout=60, what="a recorded checkpoint")
    assert exists(first)
    entry = notebook.journal(cell)
    assert entry["cell_id"] == cell and entry["job_name"] == "recorded" and entry["job_id"]
    newer = wait_until(lambda: (p := notebook.journal(cell).get("latest_checkpoint_path"))
                       != first and p, timeout=30, what="a newer recorded checkpoint")
    assert int(newer.rsplit("chk-", 1)[1]) > int(first.rsplit("chk-", 1)[1])
    assert exists(newer)
    # the same paths went to the frontends, in the cell-metadata shape
    updates = kernel.wait_for(
        lambda: [u for u in kernel.metadata_updates(cell)
                 if u["flink"].get("latest_checkpoint_path") == newer],
        timeout=10, what="a metadata message with the newer path")
    flink_meta = updates[-1]["flink"]
    assert {"latest_checkpoint_path", "savepoint_path", "job_id", "job_name", "cell_id",
            "updated"} <= set(flink_meta)
    assert updates[-1]["notebook_path"] == str(notebook.path)
    # the status output shows it too
    display_id = reply.display_ids()[0]
    kernel.wait_for(lambda: any("chk-" in u["text/plain"]
                                for u in kernel.display_updates(display_id)),
                    timeout=10, what="the status output to show the checkpoint")


def test_rerunning_a_cell_stops_its_running_job_first(kernel: KernelDriver,
                                                      notebook: Notebook) -> None:
    cell = "rerun-cell"
    reply, _ = start_counting(kernel, notebook, cell, "jobName=rerun")
    url = rest_url(reply)
    old = flink.job_by_name(url, "rerun")["jid"]
    reply, _ = start_counting(kernel, notebook, cell, "jobName=rerun")
    assert "previous job is stopped first" in reply.stdout
    assert flink.get(url, f"/jobs/{old}")["state"] in ("CANCELED", "FINISHED")
    new = flink.job_by_name(url, "rerun")
    assert new["jid"] != old and new["state"] == "RUNNING"
    running = [j for j in flink.jobs(url) if j["name"] == "rerun" and j["state"] == "RUNNING"]
    assert len(running) == 1


# ---------------------------------------------------------------------------- savepoints


def test_cancel_with_savepoint_then_resume_continues_exactly_once(
        kernel: KernelDriver, notebook: Notebook) -> None:
    cell = "savepoint-cell"
    savepoints = notebook.root / "cell-savepoints"
    header = f"jobName=exactly_once, savepointDir=file://{savepoints}"
    reply, sink = start_counting(kernel, notebook, cell, header)
    url = rest_url(reply)
    wait_until(lambda: len(committed_rows(sink)) > 100, timeout=60, what="committed output")

    cancelled = kernel.execute("%flink.cancel exactly_once")
    assert "stopped with savepoint" in cancelled.stdout
    savepoint = notebook.journal(cell)["savepoint_path"]
    assert savepoint.startswith(f"file:{savepoints}/savepoint-") and exists(savepoint)
    assert savepoint in cancelled.stdout
    message = kernel.wait_for(lambda: [u for u in kernel.metadata_updates(cell)
                                       if u["flink"].get("savepoint_path") == savepoint],
                              timeout=10, what="the savepoint in a metadata message")
    rows_before = committed_rows(sink)
    assert_exactly_once(rows_before)

    # Re-run with resumeFromSavepoint=true; the cell metadata is what the frontend saved.
    reply, _ = start_counting(kernel, notebook, cell, header + ", resumeFromSavepoint=true",
                              metadata={"flink": message[-1]["flink"]})
    job = flink.job_by_name(url, "exactly_once")
    checkpoints = flink.get(url, f"/jobs/{job['jid']}/checkpoints")
    assert checkpoints["counts"]["restored"] == 1
    assert flink.local_path(checkpoints["latest"]["restored"]["external_path"]) == \
        flink.local_path(savepoint)
    assert "restored from" in reply.shown()[0] and "savepoint" in reply.shown()[0]
    wait_until(lambda: len(committed_rows(sink)) > len(rows_before) + 100, timeout=60,
               what="output after the resume")
    kernel.execute("%flink.cancel exactly_once")
    rows = committed_rows(sink)
    assert max(r[0] for r in rows) > max(r[0] for r in rows_before)
    assert_exactly_once(rows)  # nothing lost or doubled across stop and resume


def test_stop_and_savepoint_magics(kernel: KernelDriver, notebook: Notebook) -> None:
    cell = "magics-cell"
    start_counting(kernel, notebook, cell, "jobName=managed")
    wait_until(lambda: notebook.journal(cell).get("latest_checkpoint_path"), timeout=60,
               what="a first checkpoint")
    taken = kernel.execute("%flink.savepoint managed").stdout
    first = notebook.journal(cell)["savepoint_path"]
    assert first in taken and exists(first)
    assert first.startswith(f"file:{notebook.root}/savepoints")  # the conf's savepoint dir
    jobs = kernel.execute("jobs = %flink.jobs\n"
                          "print(jobs[jobs['job name'] == 'managed'].iloc[0].to_dict())").stdout
    assert "'state': 'RUNNING'" in jobs and first in jobs
    history = kernel.execute("h = %flink.checkpoints managed\n"
                             "print(int(h['on storage'].fillna(False).sum()), len(h))").stdout
    on_storage, total = (int(x) for x in history.split())
    assert on_storage >= 1 and total >= on_storage
    other_dir = notebook.root / "elsewhere"
    stopped = kernel.execute(f"%flink.stop managed --dir file://{other_dir}").stdout
    second = notebook.journal(cell)["savepoint_path"]
    assert second != first and second.startswith(f"file:{other_dir}") and exists(second)
    assert "stopped with savepoint" in stopped


def test_failed_savepoint_falls_back_to_cancel(kernel: KernelDriver,
                                               notebook: Notebook) -> None:
    cell = "failing-savepoint-cell"
    reply, _ = start_counting(kernel, notebook, cell,
                              "jobName=no_savepoint, savepointDir=file:///proc/forbidden")
    url = rest_url(reply)
    checkpoint = wait_until(lambda: notebook.journal(cell).get("latest_checkpoint_path"),
                            timeout=60, what="a recorded checkpoint")
    before = notebook.journal(cell)
    out = kernel.execute("%flink.cancel no_savepoint").stdout
    assert "savepoint of job no_savepoint failed" in out and "cancelled without one" in out
    # it says which restore point remains, and how to resume from it
    remains = re.search(r"Its latest checkpoint remains, (\S+): resumeFromLatestCheckpoint=true "
                        r"resumes from it", out)
    assert remains and exists(remains.group(1))
    assert int(remains.group(1).rsplit("chk-", 1)[1]) >= int(checkpoint.rsplit("chk-", 1)[1])
    job = flink.job_by_name(url, "no_savepoint")
    assert job["state"] == "CANCELED"
    assert notebook.journal(cell).get("savepoint_path") == before.get("savepoint_path")


# ---------------------------------------------------------------------------- resume


def test_kill_9_then_resume_from_latest_checkpoint(notebook: Notebook) -> None:
    cell = "kill-cell"
    header = "jobName=survivor, execution.checkpointing.interval=2 s"
    with notebook.kernel() as first:
        first.execute(CONF.format(root=notebook.root), cell_id="conf")
        reply, sink = start_counting(first, notebook, cell, header)
        url = rest_url(reply)
        job_id = flink.job_by_name(url, "survivor")["jid"]
        wait_until(lambda: len(committed_rows(sink)) > 100, timeout=60,
                   what="committed output")

        def recorded_is_latest() -> bool:
            latest = flink.get(url, f"/jobs/{job_id}/checkpoints")["latest"]["completed"]
            recorded = notebook.journal(cell).get("latest_checkpoint_path")
            return bool(latest and recorded == latest["external_path"])
        wait_until(recorded_is_latest, timeout=30, what="the latest checkpoint to be recorded")
        recorded = notebook.journal(cell)["latest_checkpoint_path"]
        jvms = child_pids(first.pid)
        os.kill(first.pid, signal.SIGKILL)
        wait_until(lambda: not any(alive(p) for p in jvms), timeout=30,
                   what="the killed kernel's JVM to exit")
    rows_before = committed_rows(sink)
    assert_exactly_once(rows_before)

    with notebook.kernel() as second:  # same notebook; no cell metadata: the journal has it
        second.execute(CONF.format(root=notebook.root), cell_id="conf")
        reply, _ = start_counting(second, notebook, cell,
                                  header + ", resumeFromLatestCheckpoint=true")
        url = rest_url(reply)
        job = flink.job_by_name(url, "survivor")
        restored = flink.get(url, f"/jobs/{job['jid']}/checkpoints")
        assert restored["counts"]["restored"] == 1
        assert flink.local_path(restored["latest"]["restored"]["external_path"]) == \
            flink.local_path(recorded)
        wait_until(lambda: len(committed_rows(sink)) > len(rows_before) + 100, timeout=60,
                   what="output after the resume")
        second.execute("%flink.cancel survivor")
    assert_exactly_once(committed_rows(sink))


def test_metadata_copied_from_another_cell_is_not_used(kernel: KernelDriver,
                                                       notebook: Notebook) -> None:
    cell = "copy-target"
    copied = {"flink": {"cell_id": "some-other-cell", "savepoint_path": "file:/tmp/nowhere",
                        "updated": "2099-01-01T00:00:00+00:00"}}
    reply, _ = start_counting(kernel, notebook, cell,
                              "jobName=copied, resumeFromSavepoint=true", metadata=copied)
    assert "recorded for another cell (some-other-cell)" in reply.stdout
    assert "execution.state-recovery.path=file:/tmp/nowhere" in reply.stdout
    url = rest_url(reply)
    job = flink.job_by_name(url, "copied")
    assert flink.get(url, f"/jobs/{job['jid']}/checkpoints")["counts"]["restored"] == 0
    kernel.execute("%flink.cancel copied")


def test_lost_checkpoint_lists_alternatives_and_keeps_the_record(
        kernel: KernelDriver, notebook: Notebook) -> None:
    cell = "lost-cell"
    start_counting(kernel, notebook, cell, "jobName=lost")
    wait_until(lambda: (p := notebook.journal(cell).get("latest_checkpoint_path"))
               and int(p.rsplit("chk-", 1)[1]) >= 3, timeout=60, what="three checkpoints")
    kernel.execute("%flink.cancel lost")  # retained on cancellation (our default)
    before = notebook.journal(cell)
    latest = before["latest_checkpoint_path"]
    shutil.rmtree(flink.local_path(latest))

    reply = kernel.execute("%%flink.ssql(jobName=lost, resumeFromLatestCheckpoint=true)\n"
                           "INSERT INTO sink_lost_cell SELECT id, k, 0 FROM seq_src",
                           cell_id=cell, allow_error=True)
    assert reply.status == "error"
    message = reply.error["evalue"]
    assert latest in message and "no _metadata" in message
    survivors = [p.name for p in flink.local_path(latest).parent.iterdir()
                 if (p / "_metadata").exists()]
    assert survivors, "num-retained 3 should have left older checkpoints"
    newest = max(survivors, key=lambda n: int(n.split("-")[1]))
    assert newest in message
    assert "resumeFromLatestCheckpoint=false" in message
    after = notebook.journal(cell)
    assert after["latest_checkpoint_path"] == latest and after["updated"] == before["updated"]


def test_journal_is_valid_json_throughout(notebook: Notebook) -> None:
    data = json.loads(notebook.journal_path.read_text())
    assert data["notebook"] == str(notebook.path)
    assert all(entry["cell_id"] == key for key, entry in data["cells"].items())
    assert not [p for p in notebook.root.iterdir() if p.name.endswith(".tmp")]
