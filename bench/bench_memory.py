"""Resident memory: the flink kernel with one running job vs a plain PyFlink script; then
a live table refreshing for ``--minutes``, RSS printed every minute.

(1) The job of bench_startup.py (datagen, GROUP BY over 100 keys, blackhole) runs in a fresh
``flink`` kernel and in a plain PyFlink script (``_plain_pyflink_job.py``, PyFlink's own local
mode); each side's resident memory is the RSS of its process tree (the Python process and
its JVM, which holds the embedded cluster), read with psutil ``--settle`` seconds after the
job runs, as the median of five readings a second apart. Runs alternate. Target: kernel /
script <= 1.1. The embedded cluster's memory as Flink reports it (REST /taskmanagers) is
printed too.

(2) With ``--minutes N`` (N > 0): a kernel with a live table (a streaming SELECT with
GROUP BY over a steady source, refreshed every 3 s, Zeppelin's default) and this script
reading everything the kernel sends, as a frontend does, for N minutes; the kernel's, its
JVM's and their total RSS are printed every minute. Target: no growth (the last minutes vs
the second).

    .venv/bin/python bench/bench_memory.py [--runs 2] [--settle 30] [--minutes 30]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import httpx
import psutil
from _common import ROOT, free_port, median, table, wait_running
from bench_startup import DDL, INSERT

from tests.support import flink
from tests.support.kernel import KernelDriver, running_kernel

TARGET_RATIO = 1.1
MB = 1024 * 1024
LIVE_TABLES = """%%flink.ssql
CREATE TABLE events (k INT, v BIGINT) WITH ('connector' = 'datagen',
  'rows-per-second' = '200', 'fields.k.min' = '0', 'fields.k.max' = '999');
"""
LIVE_SELECT = ("%%flink.ssql(type=update)\n"
               "SELECT k, COUNT(*) AS c, SUM(v) AS s FROM events GROUP BY k")


def tree_rss(pid: int) -> tuple[int, int]:
    """(RSS of ``pid``, RSS of its descendants), in bytes."""
    try:
        process = psutil.Process(pid)
        own = process.memory_info().rss
        children = sum(_rss(c) for c in process.children(recursive=True))
    except psutil.NoSuchProcess:
        return 0, 0
    return own, children


def _rss(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss
    except psutil.NoSuchProcess:
        return 0


def settled_rss(pid: int, settle: float, pump=None) -> tuple[float, float]:
    """Median (own, children) RSS in MB over five readings after ``settle`` seconds."""
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        pump(1.0) if pump else time.sleep(1.0)
    readings = []
    for _ in range(5):
        readings.append(tree_rss(pid))
        pump(1.0) if pump else time.sleep(1.0)
    return (statistics.median(r[0] for r in readings) / MB,
            statistics.median(r[1] for r in readings) / MB)


def kernel_side(settle: float) -> tuple[float, float, dict]:
    with running_kernel(cwd=str(ROOT)) as kernel:
        reply = kernel.execute(f"%%flink.ssql(jobName=bench_job)\n{DDL}\n{INSERT}")
        url = flink.rest_url_from(reply.stdout + "\n".join(reply.data()))
        wait_running(url, "bench_job")
        own, jvm = settled_rss(kernel.pid, settle, kernel.pump)
        memory = embedded_memory(url)
        kernel.execute("%flink.cancel --all")
        return own, jvm, memory


def embedded_memory(url: str) -> dict:
    """What Flink says of the embedded TaskManager's memory, and the JVM's heap limit."""
    managers = httpx.get(f"{url}/taskmanagers", timeout=10).json()["taskmanagers"]
    config = managers[0].get("memoryConfiguration", {}) if managers else {}
    heap = httpx.get(f"{url}/jobmanager/metrics", params={"get": "Status.JVM.Memory.Heap.Max"},
                     timeout=10).json()
    return {**config, "jvmHeapMax": int(heap[0]["value"]) if heap else None,
            "slots": managers[0].get("slotsNumber") if managers else None}


def script_side(settle: float) -> tuple[float, float]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "_plain_pyflink_job.py"),
                                str(port), DDL + INSERT], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        process.stdout.readline()  # type: ignore[union-attr]
        wait_running(f"http://127.0.0.1:{port}", "bench_job")
        return settled_rss(process.pid, settle)
    finally:
        process.kill()  # its JVM exits with it (stdin closes)
        process.wait()


def one_job(runs: int, settle: float) -> None:
    kernels, scripts, memory = [], [], {}
    for run in range(runs):
        own, jvm, memory = kernel_side(settle)
        kernels.append((own, jvm))
        scripts.append(script_side(settle))
        print(f"run {run + 1}: kernel {own:.0f} + JVM {jvm:.0f} MB; script {scripts[-1][0]:.0f}"
              f" + JVM {scripts[-1][1]:.0f} MB", flush=True)
    kernel_total = median([a + b for a, b in kernels])
    script_total = median([a + b for a, b in scripts])
    print()
    print(table([
        ["plain PyFlink script + its JVM (baseline)", f"{median([a for a, _ in scripts]):.0f}",
         f"{median([b for _, b in scripts]):.0f}", f"{script_total:.0f}", "1.00"],
        ["flink kernel + its JVM (embedded cluster)", f"{median([a for a, _ in kernels]):.0f}",
         f"{median([b for _, b in kernels]):.0f}", f"{kernel_total:.0f}",
         f"{kernel_total / script_total:.2f}"],
    ], ["one running job, RSS (median)", "Python MB", "JVM MB", "total MB", "ratio"]))
    ratio = kernel_total / script_total
    print(f"\ntarget: kernel / script <= {TARGET_RATIO} -> "
          f"{'met' if ratio <= TARGET_RATIO else 'MISSED'} ({ratio:.2f})")
    print("embedded cluster memory as Flink reports it (MB): " + ", ".join(
        f"{k} {v / MB:.0f}" if isinstance(v, int) and k != "slots" else f"{k} {v}"
        for k, v in memory.items()))


def live_table(minutes: int) -> None:
    print(f"\nlive table refreshing every 3 s for {minutes} min (RSS in MB):", flush=True)
    rows = []
    with running_kernel(cwd=str(ROOT)) as kernel:
        kernel.execute(LIVE_TABLES)
        kernel.execute(LIVE_SELECT, cell_id="live")
        began = time.monotonic()
        for minute in range(1, minutes + 1):
            pump_until(kernel, began + 60 * minute)
            own, jvm = tree_rss(kernel.pid)
            updates = sum(1 for m in kernel.iopub if m["msg_type"] == "update_display_data")
            rows.append([minute, f"{own / MB:.0f}", f"{jvm / MB:.0f}",
                         f"{(own + jvm) / MB:.0f}", updates])
            print(f"  minute {minute}: kernel {own / MB:.0f}, JVM {jvm / MB:.0f}, total "
                  f"{(own + jvm) / MB:.0f} ({updates} table updates so far)", flush=True)
            kernel.iopub.clear()  # what a frontend has shown need not be kept here
        kernel.execute("%flink.cancel --all", allow_error=True)
    print()
    print(table(rows, ["minute", "kernel MB", "JVM MB", "total MB", "updates"]))
    if len(rows) >= 4:
        second = float(rows[1][3])
        tail = median([float(r[3]) for r in rows[-3:]])
        print(f"\ngrowth: last three minutes (median {tail:.0f} MB) vs minute 2 ({second:.0f} MB):"
              f" {tail - second:+.0f} MB ({(tail / second - 1) * 100:+.1f}%); "
              f"max {max(float(r[3]) for r in rows):.0f} MB")


def pump_until(kernel: KernelDriver, deadline: float) -> None:
    while time.monotonic() < deadline:
        kernel.pump(min(5.0, max(0.0, deadline - time.monotonic())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--settle", type=float, default=30.0)
    parser.add_argument("--minutes", type=int, default=0,
                        help="then a live table for this long (0: skip)")
    parser.add_argument("--only-live", action="store_true", help="skip (1)")
    args = parser.parse_args()
    began = time.monotonic()
    if not args.only_live:
        one_job(args.runs, args.settle)
    if args.minutes:
        live_table(args.minutes)
    print(f"\n(run took {time.monotonic() - began:.0f} s)")


if __name__ == "__main__":
    main()
