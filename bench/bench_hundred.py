"""A hundred streaming cells on one kernel and one standalone Flink cluster.

One ``flink`` kernel, in remote mode, runs ``--jobs`` streaming INSERT cells (each a tiny
job: ``datagen`` at one row a second into ``blackhole``, one slot) on one standalone session
cluster started from ``pyflink/bin`` (tests/support/standalone.py; 110 slots, memory sized for
this machine). Then, for ``--seconds`` with the kernel otherwise left alone (as a frontend,
this script reads everything it sends), per phase:

* recording lag: for each checkpoint completed in the window, the journal write (the record's
  ``updated``, carried by the metadata comm message) minus Flink's ``latest_ack_timestamp``;
  p50/p95 (target p95 <= 1 s at 10 s checkpoints); checkpoints not recorded are counted;
* responsiveness: round trips of a ``print`` cell, five spread over the window (target < 0.5 s);
* the kernel's CPU (psutil cpu_times of its process) as % of a core (target < 5%);
* the kernel's REST requests per second by endpoint (a cell wraps the REST transport's
  ``__call__`` with a counter: bench-only instrumentation, nothing of it is in the product);
* iopub messages per second by type (comm messages carry recorded paths, update_display_data
  the status outputs) and the kernel's Python threads.

Phases: (A) ``--baseline-jobs`` cells (10) with checkpoints every 10 s, the baseline the
growth is measured against in the same run; (B) ``--jobs`` cells (100) at 10 s; (C) the same
cells re-run with checkpoints every second (``--skip-fast`` skips it).

    python bench/bench_hundred.py [--jobs 100] [--baseline-jobs 10] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import httpx
import psutil
from _common import percentile, table
from bench_idle_cpu import isolated_jupyter

from tests.support.kernel import KernelDriver, running_kernel
from tests.support.standalone import StandaloneCluster

SLOTS = 110
CLUSTER = {
    # 110 one-task jobs (datagen chained to blackhole) with little state; sized to fit next
    # to other work in this machine's 24 GiB.
    "jobmanager.memory.process.size": "2g",
    "taskmanager.memory.process.size": "3g",
    "taskmanager.memory.managed.size": "64m",
    "web.checkpoints.history": "100",  # the lag is read from Flink's history afterwards
}
TABLES = """%%flink.ssql
CREATE TABLE IF NOT EXISTS h_src (k INT) WITH ('connector' = 'datagen',
  'rows-per-second' = '1', 'fields.k.min' = '0', 'fields.k.max' = '9');
CREATE TABLE IF NOT EXISTS h_sink (k INT) WITH ('connector' = 'blackhole');
"""
JOB = """%%flink.ssql(jobName=h_{index})
INSERT INTO h_sink SELECT k FROM h_src
"""
COUNT_REQUESTS = r"""
import collections as _c, re as _re
import jupyter_flink.rest.transport as _t
_bench_requests = _c.Counter()
_bench_call = _t.Urllib3Transport.__call__
def _bench_counting(self, request, timeout):
    path = _re.sub(r"/[0-9a-f]{32}", "/:jobid", request.path)
    _bench_requests[request.method + " " + _re.sub(r"/\d+(?=/|$)", "/:n", path)] += 1
    return _bench_call(self, request, timeout)
_t.Urllib3Transport.__call__ = _bench_counting
"""
READ_REQUESTS = """
import json as _json, threading as _th, collections as _c2
print("REQUESTS " + _json.dumps(dict(_bench_requests)))
print("THREADS " + _json.dumps(_c2.Counter(t.name.split("-")[0] if t.name.startswith("Thread-")
      else t.name for t in _th.enumerate())))
_bench_requests.clear()
"""


def conf(cluster: StandaloneCluster, root: Path, interval: str) -> str:
    return ("%%flink.conf\n" + cluster.conf_lines() +
            f"execution.checkpointing.interval {interval}\n"
            f"execution.checkpointing.dir file://{root}/chk\n")


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def run_cells(kernel: KernelDriver, indexes: range) -> float:
    began = time.monotonic()
    for index in indexes:
        kernel.execute(JOB.format(index=index), cell_id=f"h-{index}", timeout=600)
    return time.monotonic() - began


def measure(kernel: KernelDriver, cluster: StandaloneCluster, seconds: float,
            label: str) -> dict:
    kernel.pump(3.0)
    kernel.execute(READ_REQUESTS)  # from now on
    seen = len(kernel.iopub)
    cpu_before = cpu_seconds(kernel.pid)
    began_wall, began = time.time(), time.monotonic()
    round_trips: list[float] = []
    for probe in range(5):
        kernel.pump(max(0.0, began + (probe + 0.5) * seconds / 5 - time.monotonic()))
        sent = time.monotonic()
        kernel.execute("print('ok')")
        round_trips.append(time.monotonic() - sent)
    kernel.pump(max(0.0, began + seconds - time.monotonic()))
    wall = time.monotonic() - began
    cpu = 100 * (cpu_seconds(kernel.pid) - cpu_before) / wall
    ended_wall = time.time()
    window = kernel.iopub[seen:]
    reply = kernel.execute(READ_REQUESTS)
    requests = json.loads(reply.stdout.split("REQUESTS ", 1)[1].splitlines()[0])
    threads = json.loads(reply.stdout.split("THREADS ", 1)[1].splitlines()[0])
    types = Counter(m["msg_type"] for m in window)
    lags, unrecorded = recording_lags(kernel, cluster, began_wall, ended_wall - 5)
    return {"label": label, "cpu": cpu, "wall": wall, "round_trips": round_trips,
            "requests": {k: v / wall for k, v in requests.items()},
            "iopub": {k: v / wall for k, v in types.items()}, "threads": threads,
            "lags": lags, "unrecorded": unrecorded}


def recording_lags(kernel: KernelDriver, cluster: StandaloneCluster, since: float,
                   until: float) -> tuple[list[float], int]:
    """Lags (s) of the checkpoints Flink acknowledged between ``since`` and ``until``, and
    how many of those were not recorded."""
    written: dict[str, float] = {}  # checkpoint path -> journal write time
    for update in kernel.metadata_updates():
        path = update["flink"].get("latest_checkpoint_path")
        if path and update["flink"].get("updated"):
            stamp = datetime.fromisoformat(update["flink"]["updated"]).timestamp()
            written.setdefault(path, stamp)
    lags, unrecorded = [], 0
    with httpx.Client(base_url=cluster.rest_url, timeout=30) as rest:
        for job in rest.get("/jobs/overview").json()["jobs"]:
            if job["state"] != "RUNNING" or not job["name"].startswith("h_"):
                continue
            history = rest.get(f"/jobs/{job['jid']}/checkpoints").json().get("history", [])
            for entry in history:
                acked = (entry.get("latest_ack_timestamp") or 0) / 1000
                if entry.get("status") != "COMPLETED" or not since <= acked <= until:
                    continue
                path = entry.get("external_path")
                if path in written:
                    lags.append(written[path] - acked)
                else:
                    unrecorded += 1
    return lags, unrecorded


def report(results: list[dict], base_jobs: int, jobs: int) -> None:
    print()
    rows = []
    for r in results:
        lags = r["lags"]
        rows.append([
            r["label"], f"{r['cpu']:.2f}",
            f"{percentile(lags, 50):.3f}" if lags else "-",
            f"{percentile(lags, 95):.3f}" if lags else "-",
            f"{len(lags)}/{r['unrecorded']}",
            f"{max(r['round_trips']):.3f} ({statistics.median(r['round_trips']):.3f})",
            f"{sum(r['requests'].values()):.1f}",
            f"{sum(v for k, v in r['iopub'].items() if k.startswith('comm')):.1f}",
            f"{r['iopub'].get('update_display_data', 0):.1f}",
            str(sum(r["threads"].values())),
        ])
    print(table(rows, ["phase", "kernel % core", "lag p50 s", "lag p95 s",
                       "recorded/missed", "print max (p50) s", "REST req/s", "comm msg/s",
                       "display upd/s", "threads"]))
    for r in results:
        print(f"\n{r['label']}: REST requests/s by endpoint: " + ", ".join(
            f"{k} {v:.2f}" for k, v in sorted(r["requests"].items(), key=lambda kv: -kv[1])))
        print("  iopub/s: " + ", ".join(f"{k} {v:.2f}" for k, v in
                                        sorted(r["iopub"].items(), key=lambda kv: -kv[1])))
        print(f"  threads: {r['threads']}")
    if len(results) >= 2:
        a, b = results[0], results[1]
        growth = jobs / base_jobs
        print(f"\ngrowth from {base_jobs} to {jobs} jobs ({growth:.0f}x the jobs), 10 s "
              f"checkpoints: CPU {b['cpu'] / max(a['cpu'], 1e-9):.1f}x, REST requests "
              f"{sum(b['requests'].values()) / max(sum(a['requests'].values()), 1e-9):.1f}x, "
              f"display updates {b['iopub'].get('update_display_data', 0) / max(a['iopub'].get('update_display_data', 0), 1e-9):.1f}x, "  # noqa: E501
              f"threads {sum(b['threads'].values())} vs {sum(a['threads'].values())}")
        lags = b["lags"]
        p95 = percentile(lags, 95) if lags else float("inf")
        print(f"targets at {jobs} jobs, 10 s checkpoints: lag p95 <= 1 s: "
              f"{'met' if p95 <= 1 else 'MISSED'} ({p95:.3f}); print < 0.5 s: "
              f"{'met' if max(b['round_trips']) < 0.5 else 'MISSED'} "
              f"({max(b['round_trips']):.3f}); CPU < 5%: "
              f"{'met' if b['cpu'] < 5 else 'MISSED'} ({b['cpu']:.2f}%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--baseline-jobs", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--skip-fast", action="store_true", help="skip phase (C)")
    args = parser.parse_args()
    began = time.monotonic()
    results = []
    with tempfile.TemporaryDirectory(prefix="hundred-") as tmp:
        root = Path(tmp)
        with isolated_jupyter(root / "jupyter"), \
                StandaloneCluster(root / "cluster", slots=SLOTS, settings=CLUSTER) as cluster:
            print(f"cluster up in {cluster.startup_seconds:.0f}s at {cluster.rest_url}",
                  flush=True)
            notebook = root / "hundred.ipynb"
            notebook.write_text("{}")
            with running_kernel(env={"JPY_SESSION_NAME": str(notebook)},
                                cwd=str(root)) as kernel:
                kernel.execute(COUNT_REQUESTS)
                kernel.execute(conf(cluster, root, "10s"), cell_id="conf")
                kernel.execute(TABLES, cell_id="tables")
                took = run_cells(kernel, range(args.baseline_jobs))
                print(f"{args.baseline_jobs} cells started in {took:.0f}s", flush=True)
                results.append(measure(kernel, cluster, args.seconds,
                                       f"(A) {args.baseline_jobs} cells, 10 s checkpoints"))
                print(results[-1]["label"], f"cpu {results[-1]['cpu']:.2f}%", flush=True)
                took = run_cells(kernel, range(args.baseline_jobs, args.jobs))
                print(f"{args.jobs} cells running ({took:.0f}s for the last "
                      f"{args.jobs - args.baseline_jobs})", flush=True)
                results.append(measure(kernel, cluster, args.seconds,
                                       f"(B) {args.jobs} cells, 10 s checkpoints"))
                print(results[-1]["label"], f"cpu {results[-1]['cpu']:.2f}%", flush=True)
                if not args.skip_fast:
                    kernel.execute(conf(cluster, root, "1s"), cell_id="conf")
                    took = run_cells(kernel, range(args.jobs))
                    print(f"{args.jobs} cells re-run with 1 s checkpoints in {took:.0f}s",
                          flush=True)
                    results.append(measure(kernel, cluster, args.seconds,
                                           f"(C) {args.jobs} cells, 1 s checkpoints"))
                    print(results[-1]["label"], f"cpu {results[-1]['cpu']:.2f}%", flush=True)
                kernel.execute("%flink.cancel --all", timeout=600)
    report(results, args.baseline_jobs, args.jobs)
    print(f"\n(run took {time.monotonic() - began:.0f} s)")


if __name__ == "__main__":
    main()
