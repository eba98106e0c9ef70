"""Kill -9 the kernel at random moments; every resume from latest must succeed, exactly once.

With one retained checkpoint Flink deletes ``chk-N`` as soon as ``chk-N+1`` completes, and the
kernel records ``chk-N+1`` a little later (up to 3 s later on a remote cluster with Flink's
default REST cache): a kill in between leaves a recorded path that no longer exists, with its
successor on storage. ``resumeFromLatestCheckpoint=true`` must find the successor. A sequence
source into a filesystem sink proves at the end that no id was lost or doubled.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_flink.recording.storage import job_id_of
from tests.support import flink
from tests.support.counting import COUNTING_TABLES, assert_exactly_once, committed_rows
from tests.support.kernel import KernelDriver, alive, child_pids, running_kernel
from tests.support.standalone import StandaloneCluster, cluster_fixture
from tests.support.waiting import wait_until

pytestmark = pytest.mark.flink

KILLS = 10
CHECKPOINTS = """execution.checkpointing.interval 1 s
state.checkpoints.dir file://{root}/chk
state.savepoints.dir file://{root}/savepoints
"""
CELL = "crash-cell"
ENDED = {"CANCELED", "FAILED", "FINISHED"}
HEADER = "jobName=crashing, resumeFromLatestCheckpoint=true"

# Flink's defaults where the race lives: one retained checkpoint, REST statistics cached 3 s.
cluster = cluster_fixture(slots=2, settings={
    "execution.checkpointing.num-retained": "1",
    "rest.cache.checkpoint-statistics.timeout": "3 s"})


class Crashing:
    """One notebook whose kernel is killed again and again."""

    def __init__(self, root: Path, conf: str):
        self.root = root
        self.path = root / "crash.ipynb"
        self.path.write_text("{}")
        self.conf = conf
        self.sink = root / "sink"
        self.journal = root / ".crash.ipynb.flink-journal.json"

    def kernel(self) -> Any:
        return running_kernel(env={"JPY_SESSION_NAME": str(self.path)}, cwd=str(self.root))

    def run_cell(self, kernel: KernelDriver) -> Any:
        kernel.execute("%%flink.conf\n" + self.conf, cell_id="conf")
        return kernel.execute(f"%%flink.ssql({HEADER})\n"
                              + COUNTING_TABLES.format(sink="sink", path=self.sink),
                              cell_id=CELL)

    def recorded(self) -> str | None:
        if not self.journal.exists():
            return None
        return json.loads(self.journal.read_text())["cells"].get(CELL, {}) \
            .get("latest_checkpoint_path")


def crash_and_resume(book: Crashing, url_of: Any, seed: int) -> list[str]:
    """KILLS times: run (resuming from latest), wait a random moment, kill -9. Returns what
    each run said about where it started."""
    rng = random.Random(seed)
    started: list[str] = []
    for round_ in range(KILLS + 1):
        with book.kernel() as kernel:
            reply = book.run_cell(kernel)
            assert reply.status == "ok"
            started.append(reply.stdout)
            url = url_of(reply)
            job = flink.job_by_name(url, "crashing")
            assert job is not None and job["state"] == "RUNNING"
            # One job per cell: every earlier run's job was found and stopped (an unknown
            # one keeps writing and doubles ids)
            live = [j["jid"] for j in flink.jobs(url) if j["name"] == "crashing"
                    and j["state"] not in ENDED]
            assert live == [job["jid"]], (round_, live, reply.stdout)
            if round_ > 0 and book.recorded():
                checkpoints = flink.get(url, f"/jobs/{job['jid']}/checkpoints")
                assert checkpoints["counts"]["restored"] == 1, reply.stdout
            if round_ == KILLS:
                wait_until(lambda: len(committed_rows(book.sink)) > 0 and book.recorded(),
                           timeout=60, what="output of the last run")
                kernel.execute("%flink.cancel crashing")
                break
            # At a random moment: often within a checkpoint interval of a completion.
            wait_until(lambda j=job, u=url: flink.completed_checkpoints(u, j["jid"]) >= 1,
                       timeout=60, what="a first checkpoint of this run")
            kernel.pump(rng.uniform(0.0, 2.5))
            jvms = child_pids(kernel.pid)
            os.kill(kernel.pid, signal.SIGKILL)
            wait_until(lambda jvms=jvms: not any(alive(p) for p in jvms), timeout=30,
                       what="the killed kernel's children to exit")
    return started


def test_local_kill_9_at_random_moments(tmp_path: Path) -> None:
    book = Crashing(tmp_path, CHECKPOINTS.format(root=tmp_path)
                    + "execution.checkpointing.num-retained 1\n")
    said = crash_and_resume(book, lambda reply: flink.rest_url_from("\n".join(reply.data())),
                            seed=1)
    assert all("Starting without state" not in text for text in said[1:]), said
    assert_exactly_once(committed_rows(book.sink))


@pytest.fixture
def remote_book(tmp_path: Path, cluster: StandaloneCluster) -> Iterator[Crashing]:
    book = Crashing(tmp_path, cluster.conf_lines(CHECKPOINTS.format(root=tmp_path)))
    yield book
    for job in flink.jobs(cluster.rest_url):  # nothing of ours keeps running on the cluster
        if job["state"] == "RUNNING":
            flink.cancel(cluster.rest_url, job["jid"])


def test_remote_kill_9_at_random_moments(remote_book: Crashing,
                                         cluster: StandaloneCluster) -> None:
    said = crash_and_resume(remote_book, lambda reply: cluster.rest_url, seed=2)
    # Each new kernel found the job the killed one left running, and stopped it first.
    assert sum("previous job is stopped first" in text for text in said) >= KILLS - 1, said
    assert all("Starting without state" not in text for text in said[1:]), said
    assert_exactly_once(committed_rows(remote_book.sink))


def kill_9(kernel: KernelDriver) -> None:
    jvms = child_pids(kernel.pid)
    os.kill(kernel.pid, signal.SIGKILL)
    wait_until(lambda: not any(alive(p) for p in jvms), timeout=30,
               what="the killed kernel's children to exit")


def test_a_run_killed_before_recording_its_first_checkpoint(tmp_path: Path) -> None:
    """Run 1 records chk-N; run 2 restores from it, completes (and commits output with) a
    checkpoint of its own, and its kernel dies before recording it: the journal still names
    run 1's chk-N and run 2's job id. Run 3 must start from run 2's checkpoint, or it replays
    what run 2 already wrote. The moment is a tenth of a second wide, so the journal is put
    back as that kill would have left it."""
    book = Crashing(tmp_path, CHECKPOINTS.format(root=tmp_path)
                    + "execution.checkpointing.num-retained 1\n")
    with book.kernel() as kernel:
        book.run_cell(kernel)
        first = wait_until(book.recorded, timeout=60, what="run 1's first recorded checkpoint")
        kill_9(kernel)
    with book.kernel() as kernel:
        reply = book.run_cell(kernel)
        assert "chk-" in reply.stdout and first.rsplit("/", 1)[-1] in reply.stdout
        second = wait_until(lambda: (p := book.recorded()) and p != first and p, timeout=60,
                            what="run 2's own recorded checkpoint")
        wait_until(lambda: len(committed_rows(book.sink)) > 0, timeout=60,
                   what="output committed by run 2")
        kill_9(kernel)
    journal = json.loads(book.journal.read_text())
    entry = journal["cells"][CELL]
    assert entry["job_id"] in second  # run 2's job, recorded when it started
    entry["latest_checkpoint_path"] = first
    book.journal.write_text(json.dumps(journal))
    with book.kernel() as kernel:
        reply = book.run_cell(kernel)
        assert "a checkpoint of the cell's last job found on storage" in reply.stdout, \
            reply.stdout
        rows = len(committed_rows(book.sink))
        wait_until(lambda: len(committed_rows(book.sink)) > rows + 400, timeout=60,
                   what="run 3's output")
        kernel.execute("%flink.cancel crashing")
    assert_exactly_once(committed_rows(book.sink))


def test_a_job_whose_kernel_died_while_submitting_it(remote_book: Crashing,
                                                     cluster: StandaloneCluster) -> None:
    """A kernel killed after it submitted its job to a remote cluster, before it recorded
    the job, leaves the job running there. The next kernel must find it (its id was recorded
    before it was submitted), stop it, and resume from its checkpoints: else two jobs write
    the same ids. The moment is a fraction of a second wide, so the journal is put back as
    that kill would have left it."""
    book, url = remote_book, cluster.rest_url
    with book.kernel() as kernel:
        book.run_cell(kernel)
        first = wait_until(book.recorded, timeout=60, what="run 1's first recorded checkpoint")
        kill_9(kernel)  # run 1's job keeps running on the cluster
    with book.kernel() as kernel:
        reply = book.run_cell(kernel)
        assert "previous job is stopped first" in reply.stdout, reply.stdout
        job = flink.job_by_name(url, "crashing")
        assert job is not None and job["state"] == "RUNNING"
        entry = json.loads(book.journal.read_text())["cells"][CELL]
        assert entry["submitted_job_ids"][:2] == [job["jid"], job_id_of(first)]
        rows = len(committed_rows(book.sink))
        wait_until(lambda: flink.completed_checkpoints(url, job["jid"]) >= 2
                   and len(committed_rows(book.sink)) > rows, timeout=60,
                   what="run 2's checkpoints and output")
        kill_9(kernel)
    entry = json.loads(book.journal.read_text())["cells"][CELL]
    entry.update(job_id=job_id_of(first), latest_checkpoint_path=first)
    book.journal.write_text(json.dumps({"cells": {CELL: entry}}))
    with book.kernel() as kernel:
        reply = book.run_cell(kernel)
        assert "previous job is stopped first" in reply.stdout, reply.stdout
        # from run 2's newest checkpoint: found as the last job's, or as newer than the one
        # the poller recorded of it before it was stopped
        started = re.search(r"starting from (\S+),", reply.stdout)
        assert started and f"/{job['jid']}/chk-" in started.group(1), reply.stdout
        live = [j["jid"] for j in flink.jobs(url) if j["name"] == "crashing"
                and j["state"] not in ENDED]
        assert len(live) == 1 and live[0] != job["jid"], live
        rows = len(committed_rows(book.sink))
        wait_until(lambda: len(committed_rows(book.sink)) > rows + 400, timeout=60,
                   what="run 3's output")
        kernel.execute("%flink.cancel crashing")
    assert_exactly_once(committed_rows(book.sink))
