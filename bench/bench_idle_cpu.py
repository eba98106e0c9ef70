"""Kernel CPU while idle, with 10 streaming cells running on one standalone Flink cluster.

The kernel is idle (no cell runs) while its jobs run: what it spends then is the job poller,
the recording of checkpoints, the live status outputs; and, while a frontend shows the jobs'
outputs (subscribed through the jobs comm, as the labextension does), their health metrics
and the comm messages that keep the outputs live. Each interval is measured without and then
with such a frontend. Measured with psutil's cpu_times of
the kernel process (and, separately, of the kernel plus PyFlink's JVM, its child) over
``--seconds`` of wall time, as % of one core. Baselines, measured in the same run on the same
machine: an idle plain ipykernel (``python3``), and the flink kernel on the same cluster with
its session started but no job running. Target: < 5% of a core with 10 jobs. The poller
looks closer at a job around its checkpoints, so the cost depends on the checkpoint
interval: one measurement per ``--checkpoint-interval`` (default 1 s as in Zeppelin's guide,
10 s, 60 s).

The cluster is started from ``pyflink/bin`` (tests/support/standalone.py) in a temporary
directory and stopped at the end, as is everything else started here.

    python bench/bench_idle_cpu.py [--seconds 60] [--jobs 10] [--checkpoint-interval 1s 10s 60s]
                                   [--no-frontend]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
from _common import ROOT, table

from tests.support.kernel import KernelDriver, child_pids, running_kernel
from tests.support.standalone import StandaloneCluster
from tests.support.waiting import wait_until

TARGET_PERCENT = 5.0
JOBS_TARGET = "jupyter_flink.jobs"
JOB_MIME = "application/vnd.jupyter-flink.job+json"
TABLES = """%%flink.ssql
CREATE TABLE IF NOT EXISTS idle_src (k INT) WITH ('connector' = 'datagen',
  'rows-per-second' = '20', 'fields.k.min' = '0', 'fields.k.max' = '9');
CREATE TABLE IF NOT EXISTS idle_sink (k INT, c BIGINT) WITH ('connector' = 'blackhole');
"""
JOB = """%%flink.ssql(jobName=idle_{index})
INSERT INTO idle_sink SELECT k, COUNT(*) FROM idle_src GROUP BY k
"""


@contextmanager
def isolated_jupyter(root: Path) -> Iterator[None]:
    """Jupyter dirs of our own, with the flink kernelspec installed by its installer."""
    saved = dict(os.environ)
    prefix = root / "prefix"
    os.environ.update(JUPYTER_DATA_DIR=str(root / "data"), JUPYTER_CONFIG_DIR=str(root / "cfg"),
                      JUPYTER_PATH=str(prefix / "share" / "jupyter"),
                      IPYTHONDIR=str(root / "ipython"), XDG_CACHE_HOME=str(root / "cache"),
                      PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                               saved.get("PYTHONPATH")])))
    subprocess.run([sys.executable, "-m", "jupyter_flink.kernel", "install", "--prefix",
                    str(prefix)], check=True, capture_output=True)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def measure(kernel: KernelDriver, seconds: float) -> tuple[float, float, str]:
    """(% of a core for the kernel process, % for the kernel and its children, iopub
    messages per second by type)."""
    kernel.pump(2.0)  # let what the last cell set off settle
    own = [kernel.pid]
    everything = own + child_pids(kernel.pid)
    own_before, all_before = cpu_seconds(own), cpu_seconds(everything)
    seen = len(kernel.iopub)
    began = time.monotonic()
    kernel.pump(seconds)  # read iopub as a frontend would (status updates, metadata)
    wall = time.monotonic() - began
    types = Counter(m["msg_type"] for m in kernel.iopub[seen:])
    rates = ", ".join(f"{kind} {count / wall:.1f}" for kind, count in types.most_common())
    return (100 * (cpu_seconds(own) - own_before) / wall,
            100 * (cpu_seconds(everything) - all_before) / wall, rates or "none")


def journal_cells(journal: Path) -> list[dict]:
    try:
        return list(json.loads(journal.read_text())["cells"].values())
    except (OSError, ValueError, KeyError):
        return []


def job_ids(journal: Path) -> set[str]:
    return {cell.get("job_id") for cell in journal_cells(journal)}


def recorded(journal: Path, old_jobs: Collection[str] = ()) -> int:
    """How many cells have recorded a checkpoint of a job not in ``old_jobs``."""
    return sum(1 for cell in journal_cells(journal)
               if cell.get("latest_checkpoint_path") and cell.get("job_id") not in old_jobs)


def conf(cluster: StandaloneCluster, root: Path, interval: str) -> str:
    return ("%%flink.conf\n" + cluster.conf_lines() +
            f"execution.checkpointing.interval {interval}\n"
            f"state.checkpoints.dir file://{root}/chk\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--checkpoint-interval", nargs="+", default=["1s", "10s", "60s"],
                        help="one measurement per interval (the jobs are re-run for each)")
    parser.add_argument("--no-frontend", action="store_true",
                        help="skip the measurements with a frontend showing the outputs")
    args = parser.parse_args()
    rows: list[list[str]] = []
    busy: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="idle-cpu-") as tmp:
        root = Path(tmp)
        with isolated_jupyter(root / "jupyter"), \
                StandaloneCluster(root / "cluster", slots=args.jobs + 2) as cluster:
            print(f"cluster up in {cluster.startup_seconds:.0f}s at {cluster.rest_url}",
                  flush=True)
            with running_kernel("python3", cwd=str(root)) as plain:
                own, _, rates = measure(plain, args.seconds)
                rows.append(["plain ipykernel, idle (baseline)", f"{own:.2f}", "-", rates])
                print(rows[-1], flush=True)
            notebook = root / "idle.ipynb"
            notebook.write_text("{}")
            journal = root / ".idle.ipynb.flink-journal.json"
            with running_kernel(env={"JPY_SESSION_NAME": str(notebook)},
                                cwd=str(root)) as kernel:
                kernel.execute(conf(cluster, root, "10s"), cell_id="conf")
                kernel.execute(TABLES, cell_id="tables")
                kernel.execute("%%flink.bsql\nSELECT 1", cell_id="warm-up")  # session up
                own, total, rates = measure(kernel, args.seconds)
                rows.append(["flink kernel, session up, no job (baseline)", f"{own:.2f}",
                             f"{total:.2f}", rates])
                print(rows[-1], flush=True)
                for interval in args.checkpoint_interval:
                    kernel.execute(conf(cluster, root, interval), cell_id="conf")
                    before = job_ids(journal)
                    shown = []
                    for index in range(args.jobs):  # a re-run stops the cell's previous job
                        reply = kernel.execute(JOB.format(index=index), cell_id=f"job-{index}")
                        shown += [payload["job_id"] for payload in reply.data(JOB_MIME)]
                    wait_until(lambda b=before: recorded(journal, b) >= args.jobs,
                               timeout=120, what="a recorded checkpoint for every job")
                    own, total, rates = measure(kernel, args.seconds)
                    busy[interval] = own
                    rows.append([f"flink kernel, {args.jobs} streaming cells, checkpoints "
                                 f"every {interval}", f"{own:.2f}", f"{total:.2f}", rates])
                    print(rows[-1], flush=True)
                    if args.no_frontend:
                        continue
                    # A frontend shows every job's output: health samples, comm messages
                    comm_id = kernel.open_comm(JOBS_TARGET, {"version": 1, "jobs": shown})
                    own, total, rates = measure(kernel, args.seconds)
                    kernel.comm_close(comm_id)
                    busy[f"{interval}, outputs shown"] = own
                    rows.append([f"  ... and a frontend showing their {len(shown)} outputs",
                                 f"{own:.2f}", f"{total:.2f}", rates])
                    print(rows[-1], flush=True)
                kernel.execute("%flink.cancel --all")
    print()
    print(table(rows, [f"idle for {args.seconds:.0f} s", "kernel % of a core",
                       "kernel + JVM % of a core", "iopub messages/s"]))
    print(f"\ntarget: kernel < {TARGET_PERCENT:g}% of a core with {args.jobs} jobs")
    for interval, percent in busy.items():
        print(f"  checkpoints every {interval}: "
              f"{'met' if percent < TARGET_PERCENT else 'MISSED'} ({percent:.2f}%)")


if __name__ == "__main__":
    main()
