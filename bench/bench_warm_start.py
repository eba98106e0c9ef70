"""Warm start: the first Flink cell 20 s after the kernel started vs right after it started.

The kernel starts Flink in the background as soon as it starts (``FlinkMagics.warm_start``):
the JVM, the embedded cluster, the environments and a tiny warm-up job. A first cell run
after the kernel sat idle for ``--idle`` seconds (20 by default) should find all of that
ready. Each run starts a fresh ``flink`` kernel, waits until it answers, and times one
streaming SQL cell (the job of bench_startup.py) from the execute request to every task
RUNNING, as Flink's REST API (polled from here every 20 ms) shows:

* (a) right after start-up: the baseline (the cell joins the start in flight);
* (b) the same cell ``--idle`` seconds after start-up; target (b) <= 0.3x (a), and about the
  time of a second job, which (b)'s kernel then runs and which is reported too;
* (c) right after start-up with ``warm_start`` off: what every first cell paid before.

Runs alternate so that machine noise hits all three alike; medians are reported.

    .venv/bin/python bench/bench_warm_start.py [--runs 3] [--idle 20]
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from pathlib import Path

from _common import ROOT, median, table, wait_running
from bench_startup import DDL, INSERT

from tests.support.kernel import KernelDriver, running_kernel, without_warm_start

TARGET_RATIO = 0.3


def first_job(*, idle: float, warm: bool) -> tuple[float, float]:
    """Seconds from the first Flink cell's execute request to its job RUNNING, and the same
    for a second job in that kernel."""
    with tempfile.TemporaryDirectory(prefix="warm-") as tmp:
        env = {} if warm else without_warm_start(Path(tmp))
        with running_kernel(cwd=str(ROOT), env=env) as kernel:
            kernel.pump(idle)
            seen = len(kernel.iopub)
            started = time.time()
            kernel.client.execute(f"%%flink.ssql(jobName=bench_job)\n{DDL}\n{INSERT}")
            url = kernel.wait_for(lambda: _url_in_since(kernel, seen), timeout=180,
                                  what="the cluster URL")
            first = wait_running(url, "bench_job") - started
            kernel.pump(2)
            started = time.time()
            kernel.client.execute(f"%%flink.ssql(jobName=bench_job_2)\n{INSERT}")
            second = wait_running(url, "bench_job_2") - started
            kernel.pump(2)
            return first, second


def _url_in_since(kernel: KernelDriver, seen: int) -> str | None:
    """The embedded cluster's URL in what the kernel sent since message ``seen``."""
    for message in kernel.iopub[seen:]:
        text = str(message["content"].get("data", message["content"].get("text", "")))
        match = re.search(r"http://127\.0\.0\.1:\d+", text)
        if match:
            return match.group(0)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle", type=float, default=20.0)
    args = parser.parse_args()
    began = time.monotonic()
    right_after, later, second, cold = [], [], [], []
    for run in range(args.runs):
        right_after.append(first_job(idle=0, warm=True)[0])
        first, again = first_job(idle=args.idle, warm=True)
        later.append(first)
        second.append(again)
        cold.append(first_job(idle=0, warm=False)[0])
        print(f"run {run + 1}: (a) {right_after[-1]:.2f} s, (b) {later[-1]:.2f} s "
              f"(second job {second[-1]:.2f} s), (c) {cold[-1]:.2f} s", flush=True)
    base = median(right_after)
    rows = [
        ["(a) first cell right after start-up (baseline)", f"{base:.2f}", "1.00"],
        [f"(b) first cell {args.idle:g} s after start-up", f"{median(later):.2f}",
         f"{median(later) / base:.2f}"],
        ["    second job of (b)'s kernel", f"{median(second):.2f}",
         f"{median(second) / base:.2f}"],
        ["(c) first cell right after start-up, warm_start off", f"{median(cold):.2f}",
         f"{median(cold) / base:.2f}"],
    ]
    print()
    print(table(rows, ["execute request -> job RUNNING (median)", "seconds", "vs (a)"]))
    ratio = median(later) / base
    print(f"\ntarget: (b) <= {TARGET_RATIO}x (a) -> {'met' if ratio <= TARGET_RATIO else 'MISSED'}"
          f" ({ratio:.2f}x); (b) vs a second job: {median(later) / median(second):.2f}x")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}; "
          f"(run took {time.monotonic() - began:.0f} s)")


if __name__ == "__main__":
    main()
