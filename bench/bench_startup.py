"""Time from cell start to job RUNNING: the flink kernel vs a plain PyFlink script.

Both clocks start before PyFlink is imported (the kernel imports it with its first Flink
cell; the script at its top), both include starting the JVM and a MiniCluster, and both
end when Flink's REST API, polled from here every 20 ms, shows every task RUNNING. Runs
alternate so that machine noise hits both sides alike. The second job of a kernel (a warm
JVM and cluster) is reported too, for information. Target: kernel / script <= 1.10.

    .venv/bin/python bench/bench_startup.py [--runs 3] [--other-tree DIR]

``--other-tree DIR`` also times kernels running the ``jupyter_flink`` of another checkout
(``PYTHONPATH=DIR``; e.g. main before a change), alternating with this one's, so that a change's
cost is measured under the same load.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time

from _common import ROOT, free_port, median, table, wait_running

from tests.support.kernel import running_kernel

DDL = ("CREATE TABLE src (k INT, v BIGINT) WITH ('connector'='datagen','rows-per-second'='1000',"
       "'fields.k.min'='0','fields.k.max'='99');"
       "CREATE TABLE snk (k INT, c BIGINT) WITH ('connector'='blackhole');")
INSERT = "INSERT INTO snk SELECT k, COUNT(*) FROM src GROUP BY k"


def kernel_run(tree: str | None = None) -> tuple[float, float]:
    env = {"PYTHONPATH": tree} if tree else None
    with running_kernel(cwd=str(ROOT), env=env) as kernel:
        started = time.time()
        kernel.client.execute(f"%%flink.ssql(jobName=bench_job)\n{DDL}\n{INSERT}")
        url = kernel.wait_for(lambda: _url_in(kernel), timeout=180, what="the cluster URL")
        cold = wait_running(url, "bench_job") - started
        kernel.pump(2)  # let the first cell finish
        started = time.time()
        kernel.client.execute(f"%%flink.ssql(jobName=bench_job_2)\n{INSERT}")
        warm = wait_running(url, "bench_job_2") - started
        kernel.pump(2)
        return cold, warm


def _url_in(kernel) -> str | None:
    for message in kernel.iopub:
        text = str(message["content"].get("data", message["content"].get("text", "")))
        match = re.search(r"https?://127\.0\.0\.1:\d+", text)
        if match:
            return match.group(0)
    return None


def script_run() -> float:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "_plain_pyflink_job.py"),
                                str(port), DDL + INSERT], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        started = float(line.split()[1])
        return wait_running(f"http://127.0.0.1:{port}", "bench_job") - started
    finally:
        process.kill()  # its JVM exits with it (stdin closes)
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--other-tree", metavar="DIR",
                        help="also time kernels running DIR's jupyter_flink, alternating")
    args = parser.parse_args()
    kernel_cold, kernel_warm, script, other_cold = [], [], [], []
    for run in range(args.runs):
        if args.other_tree:
            other_cold.append(kernel_run(args.other_tree)[0])
        cold, warm = kernel_run()
        kernel_cold.append(cold)
        kernel_warm.append(warm)
        script.append(script_run())
        other = f", other tree {other_cold[-1]:.2f} s" if other_cold else ""
        print(f"run {run + 1}: kernel {cold:.2f} s (second job {warm:.2f} s), "
              f"script {script[-1]:.2f} s{other}", flush=True)
    ratio = median(kernel_cold) / median(script)
    rows = [
        ["plain PyFlink script (baseline)", f"{median(script):.2f}", "1.00"],
        ["flink kernel, first job", f"{median(kernel_cold):.2f}", f"{ratio:.2f}"],
        ["flink kernel, second job", f"{median(kernel_warm):.2f}",
         f"{median(kernel_warm) / median(script):.2f}"],
    ]
    if other_cold:
        rows.append(["other tree's kernel, first job", f"{median(other_cold):.2f}",
                     f"{median(other_cold) / median(script):.2f}"])
    print()
    print(table(rows, ["cell start -> job RUNNING (median)", "seconds", "ratio"]))
    print(f"\ntarget: kernel / script <= 1.10 -> {'met' if ratio <= 1.10 else 'MISSED'}")


if __name__ == "__main__":
    main()
