"""``jupyter-flink run``/``sync`` on real .ipynb files, with the real flink kernel and Flink.

One notebook is run twice in place (module fixtures): two streaming cells record their
checkpoints while the run goes on, the cell with ``savepointDir`` gets its savepoint when the
run ends, and the second run resumes that cell from it (the ids it copies continue exactly).
A second notebook fails midway and is still written with what was recorded.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

from jupyter_flink.headless import cli
from jupyter_flink.recording.journal import Journal
from jupyter_flink.recording.record import cell_metadata
from tests.support import flink
from tests.support.kernel import alive, child_pids, kill_quietly
from tests.support.waiting import wait_until

pytestmark = pytest.mark.flink

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 150.0

CONF = """%%flink.conf
execution.checkpointing.interval 500
execution.checkpointing.externalized-checkpoint-retention RETAIN_ON_CANCELLATION
execution.checkpointing.num-retained 20
state.checkpoints.dir file://{root}/chk
"""

EVENTS = """CREATE TABLE IF NOT EXISTS events (k INT) WITH (
  'connector' = 'datagen', 'rows-per-second' = '50', 'fields.k.min' = '0', 'fields.k.max' = '9');
CREATE TABLE IF NOT EXISTS counts (k INT, c BIGINT) WITH ('connector' = 'blackhole');
"""

IDS = """CREATE TABLE IF NOT EXISTS ids (id BIGINT) WITH (
  'connector' = 'datagen', 'rows-per-second' = '200', 'fields.id.kind' = 'sequence',
  'fields.id.start' = '1', 'fields.id.end' = '100000');
CREATE TABLE IF NOT EXISTS id_files (id BIGINT) WITH (
  'connector' = 'filesystem', 'path' = 'file://{root}/ids', 'format' = 'csv',
  'sink.rolling-policy.rollover-interval' = '1s', 'sink.rolling-policy.check-interval' = '1s');
"""


def cell(kind: Any, cell_id: str, source: str, **metadata: Any) -> nbformat.NotebookNode:
    made = kind(source, metadata=metadata)
    made["id"] = cell_id
    return made


def write(nb: nbformat.NotebookNode, path: Path) -> Path:
    nb.metadata["kernelspec"] = {"name": "flink", "display_name": "Flink (PyFlink)",
                                 "language": "python"}
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return path


def read(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    return nb


def by_id(nb: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    return {c.id: c for c in nb.cells}


def other_metadata(nb: nbformat.NotebookNode) -> dict[str, dict[str, Any]]:
    return {c.id: {k: v for k, v in c.metadata.items() if k != "flink"} for c in nb.cells}


def text_of(cell_node: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "")
                   for o in cell_node.get("outputs", []))


def on_disk(flink_path: str | None) -> bool:
    return bool(flink_path) and (flink.local_path(str(flink_path)) / "_metadata").is_file()


def committed_ids(directory: Path) -> list[int]:
    """The ids in the sink's committed files (in-progress files start with a dot)."""
    ids: list[int] = []
    for part in directory.rglob("*"):
        if part.is_file() and not part.name.startswith("."):
            ids.extend(int(line) for line in part.read_text().split())
    return ids


# ----------------------------------------------------------------------------- running


@dataclass
class Run:
    returncode: int
    stderr: str
    seen_during_run: dict[str, dict[str, Any]]


def run_cli(*args: str, watch: Path | None = None, watch_cells: tuple[str, ...] = ()) -> Run:
    """``python -m jupyter_flink.headless.cli run ...`` as a user runs it; maybe watch the file.

    While it runs, the notebook is read (and validated) until ``watch_cells`` all carry a
    ``latest_checkpoint_path`` whose ``_metadata`` exists: it is written as updates arrive.
    The CLI, its kernel and the kernel's JVM are gone afterwards, whatever happens.
    """
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen([sys.executable, "-m", "jupyter_flink.headless.cli", "run", *args],
                               cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    seen: dict[str, dict[str, Any]] = {}
    descendants: set[int] = set()
    try:
        def recorded_on_disk() -> bool:
            descendants.update(child_pids(process.pid))
            if process.poll() is not None:
                return True  # finished: the assertions below say what was missing
            if watch is not None and watch.exists():
                for cell_id, node in by_id(read(watch)).items():
                    path = node.metadata.get("flink", {}).get("latest_checkpoint_path")
                    if cell_id in watch_cells and cell_id not in seen and on_disk(path):
                        seen[cell_id] = dict(node.metadata["flink"])
            return set(watch_cells) <= set(seen)

        wait_until(recorded_on_disk, timeout=RUN_TIMEOUT, what="checkpoints in the notebook",
                   interval=0.2)
        _, stderr = process.communicate(timeout=RUN_TIMEOUT)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(30)
        for pid in descendants | set(child_pids(process.pid)):
            kill_quietly(pid)
    for pid in descendants:
        wait_until(lambda pid=pid: not alive(pid), timeout=30, what=f"process {pid} to exit")
    return Run(process.returncode, stderr, seen)


def streaming_notebook(root: Path) -> nbformat.NotebookNode:
    return new_notebook(cells=[
        cell(new_markdown_cell, "intro", "# two streaming cells", custom={"kept": True}),
        cell(new_code_cell, "conf", CONF.format(root=root), tags=["setup"], custom=1),
        cell(new_code_cell, "tables", "%%flink.ssql\n" + EVENTS + IDS.format(root=root)),
        cell(new_code_cell, "count", "%%flink.ssql(jobName=keyed_count)\n"
             "INSERT INTO counts SELECT k, COUNT(*) FROM events GROUP BY k",
             custom={"nested": [1, 2]}),
        cell(new_code_cell, "copy",
             f"%%flink.ssql(jobName=copy_ids, savepointDir=file://{root}/sp, "
             "resumeFromSavepoint=true)\nINSERT INTO id_files SELECT id FROM ids"),
        cell(new_code_cell, "hello", "print('hello from the notebook')", tags=["greeting"]),
        cell(new_raw_cell, "raw", "not executed", format="text/plain"),
    ])


@pytest.fixture(scope="module")
def streaming(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("runner")
    original = streaming_notebook(root)
    path = write(copy.deepcopy(original), root / "streaming.ipynb")
    return {"root": root, "path": path, "original": original}


@pytest.fixture(scope="module")
def first_run(streaming: dict[str, Any]) -> dict[str, Any]:
    run = run_cli(str(streaming["path"]), "--run-for", "8s", watch=streaming["path"],
                  watch_cells=("count", "copy"))
    assert run.returncode == 0, run.stderr
    nb = read(streaming["path"])
    return {"run": run, "nb": nb, "ids": committed_ids(streaming["root"] / "ids")}


@pytest.fixture(scope="module")
def second_run(streaming: dict[str, Any], first_run: dict[str, Any]) -> dict[str, Any]:
    run = run_cli(str(streaming["path"]), "--run-for", "3s")  # in place, as before
    assert run.returncode == 0, run.stderr
    return {"run": run, "nb": read(streaming["path"]),
            "ids": committed_ids(streaming["root"] / "ids")}


def test_checkpoints_are_written_while_the_run_goes_on(first_run: dict[str, Any]) -> None:
    seen = first_run["run"].seen_during_run
    assert set(seen) == {"count", "copy"}, first_run["run"].stderr
    assert seen["count"]["job_name"] == "keyed_count" and seen["copy"]["job_name"] == "copy_ids"
    assert seen["count"]["cell_id"] == "count" and seen["copy"]["cell_id"] == "copy"


def test_both_cells_keep_their_checkpoint_paths(first_run: dict[str, Any]) -> None:
    cells = by_id(first_run["nb"])
    for cell_id in ("count", "copy"):
        path = cells[cell_id].metadata["flink"]["latest_checkpoint_path"]
        assert path and "/chk-" in path, cells[cell_id].metadata
    # keyed_count was cancelled at the end: RETAIN_ON_CANCELLATION kept its checkpoint
    assert on_disk(cells["count"].metadata["flink"]["latest_checkpoint_path"])


def test_the_savepoint_cell_gets_its_savepoint(first_run: dict[str, Any]) -> None:
    copy_cell = by_id(first_run["nb"])["copy"]
    savepoint = copy_cell.metadata["flink"]["savepoint_path"]
    assert savepoint and on_disk(savepoint), copy_cell.metadata
    assert "FINISHED" in text_of(copy_cell) and savepoint in text_of(copy_cell)
    assert "CANCELED" in text_of(by_id(first_run["nb"])["count"])  # final states, in place


def test_other_metadata_and_outputs_stay_intact(streaming: dict[str, Any],
                                                first_run: dict[str, Any]) -> None:
    nb = first_run["nb"]
    assert other_metadata(nb) == other_metadata(streaming["original"])
    cells = by_id(nb)
    assert [c.id for c in nb.cells] == [c.id for c in streaming["original"].cells]
    assert text_of(cells["hello"]) == "hello from the notebook\n"
    assert {"intro", "conf", "tables", "hello", "raw"}.isdisjoint(
        c.id for c in nb.cells if "flink" in c.metadata)


def test_the_notebook_carries_the_journal(streaming: dict[str, Any],
                                          first_run: dict[str, Any]) -> None:
    entries = Journal.for_notebook(str(streaming["path"])).entries()
    cells = by_id(first_run["nb"])
    for cell_id in ("count", "copy"):
        assert cells[cell_id].metadata["flink"] == cell_metadata(entries[cell_id])


def test_a_second_run_resumes_from_the_savepoint(first_run: dict[str, Any],
                                                 second_run: dict[str, Any]) -> None:
    before = by_id(first_run["nb"])["copy"].metadata["flink"]
    after = by_id(second_run["nb"])["copy"]
    assert f"restored from: {before['savepoint_path']}" in text_of(after)
    assert after.metadata["flink"]["savepoint_path"] != before["savepoint_path"]
    assert on_disk(after.metadata["flink"]["savepoint_path"])
    first, both = first_run["ids"], second_run["ids"]
    assert first and len(both) > len(first)
    # exactly once across the stop and the resume: none lost, none twice
    assert sorted(both) == list(range(1, len(both) + 1)), (len(both), len(set(both)))


def test_sync_puts_the_journal_into_a_notebook_without_it(streaming: dict[str, Any],
                                                          second_run: dict[str, Any],
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    path = streaming["path"]
    expected = {c.id: c.metadata.get("flink") for c in second_run["nb"].cells}
    stripped = read(path)
    for node in stripped.cells:
        node.metadata.pop("flink", None)
    nbformat.write(stripped, path)  # as a frontend without the extension would save it
    assert cli.main(["sync", str(path)]) == 0
    assert "Updated metadata.flink of 2 cell(s)" in capsys.readouterr().out
    synced = read(path)
    assert {c.id: c.metadata.get("flink") for c in synced.cells} == expected
    assert other_metadata(synced) == other_metadata(streaming["original"])


# ----------------------------------------------------------------------------- failure


@pytest.fixture
def failing(tmp_path: Path) -> Iterator[dict[str, Any]]:
    after = cell(new_code_cell, "after", "print('not reached')", custom="mine")
    after.outputs = [new_output("stream", name="stdout", text="from an earlier run\n")]
    after.execution_count = 7
    nb = new_notebook(cells=[
        cell(new_code_cell, "conf", CONF.format(root=tmp_path)),
        cell(new_code_cell, "tables", "%%flink.ssql\n" + EVENTS),
        cell(new_code_cell, "job", f"%%flink.ssql(jobName=doomed, savepointDir=file://"
                                   f"{tmp_path}/sp)\n"
                                   "INSERT INTO counts SELECT k, COUNT(*) FROM events GROUP BY k",
             custom={"x": 1}),
        cell(new_code_cell, "boom", "raise ValueError('boom in a cell')"),
        after,
    ])
    yield {"path": write(nb, tmp_path / "failing.ipynb"), "after": copy.deepcopy(after),
           "output": tmp_path / "out" / "failing.ipynb"}


def test_a_failing_notebook_is_written_with_what_was_recorded(
        failing: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["run", str(failing["path"]), "-o", str(failing["output"]), "-q"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_FAILED
    lines = [line for line in err.splitlines() if line.startswith("jupyter-flink run:")]
    assert len(lines) == 1 and "cell 4 (id boom" in lines[0], err
    assert "ValueError: boom in a cell" in lines[0]
    nb = read(failing["output"])
    cells = by_id(nb)
    job = cells["job"].metadata
    assert job["custom"] == {"x": 1} and job["flink"]["job_name"] == "doomed"
    assert on_disk(job["flink"]["savepoint_path"])  # stopped with a savepoint after the failure
    assert any(o.output_type == "error" and o.ename == "ValueError"
               for o in cells["boom"].outputs)
    assert cells["after"] == failing["after"]  # never reached: as it was
    assert read(failing["path"]).cells[2].metadata == {"custom": {"x": 1}}  # input untouched
