"""How fast live SELECT results reach the notebook: PyFlink's iterator, the JVM, jupyter-flink.

One run, one query, on the embedded cluster the kernel uses (a MiniCluster reached through its
REST endpoint)::

    SELECT k, COUNT(*) AS c FROM src GROUP BY k    -- datagen, unthrottled, 10,000 keys

Every source row after the first of its key makes two changelog rows (-U, +U). Measured:

  (0) the job alone into a blackhole sink: what the source and the aggregation can deliver;
  (a) PyFlink's ``TableResult.collect()`` iterated in Python (the baseline);
  (b) Flink's result iterator drained by a JVM thread that only counts the rows (no transfer
      to Python): the practical limit of any live table;
  (c) jupyter-flink's live table: LiveResult materializing the changelog in the JVM, the
      refresher thread fetching snapshots at the default refreshInterval (3 s);
  (d) the refresh of the 10,000-row table of (c) while its job runs at full speed:
      snapshot -> Arrow -> pandas -> display bundle, p50/p95 over many refreshes.

Besides rows/s, rows per CPU-second (the JVM's and Python's CPU time together) show how much
work each path costs per row, which other load on a shared machine barely changes; (a) is
bound by py4j round trips rather than CPU, so its wall-clock rate varies much less with load
than those of (b) and (c).

(a), (b) and (c) take turns over several rounds, since the machine may be shared and its
load changes: each round measures all three within about a minute, and the ratios are the
medians of the rounds' ratios.
Run from the repository root (a few minutes)::

    .venv/bin/python bench/bench_live.py [--window 15] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _common import median, percentile, table, verify

QUERY = "SELECT k, COUNT(*) AS c FROM src GROUP BY k"
SOURCE_DDL = """CREATE TABLE src (k INT, v BIGINT) WITH (
  'connector' = 'datagen', 'rows-per-second' = '1000000000',
  'fields.k.min' = '0', 'fields.k.max' = '9999')"""
KEYS = 10_000

# Bench-only: drains Flink's result iterator in a JVM thread and only counts the rows.
COUNTING_DRAIN = """
package jupyterflinkbench;

import org.apache.flink.table.api.internal.TableResultInternal;
import org.apache.flink.util.CloseableIterator;

public class CountingDrain implements Runnable {
    private final CloseableIterator iterator;
    private volatile long count;
    private volatile boolean closed;

    public CountingDrain(TableResultInternal result) {
        iterator = result.collectInternal();
        Thread thread = new Thread(this, "counting-drain");
        thread.setDaemon(true);
        thread.start();
    }

    public void run() {
        try {
            long n = 0;
            while (!closed && iterator.hasNext()) {
                iterator.next();
                count = ++n;
            }
        } catch (Throwable ignored) {
            // the job was cancelled
        }
    }

    public long count() {
        return count;
    }

    public void close() throws Exception {
        closed = true;
        iterator.close();
    }
}
"""


@dataclass(frozen=True)
class Rate:
    per_s: float  # rows per second of wall time
    per_cpu_s: float  # rows per CPU second of the JVM and Python together


class Bench:
    def __init__(self, window_s: float, warmup_s: float):
        from pyflink.datastream import StreamExecutionEnvironment
        from pyflink.table import EnvironmentSettings, StreamTableEnvironment

        from jupyter_flink.flink.cluster import LocalCluster, remote_environment
        from jupyter_flink.flink.gateway import get_gateway

        self.window_s = window_s
        self.warmup_s = warmup_s
        self._drain_class: Any = None
        self.gateway = get_gateway()
        self._jvm_pid = int(self.gateway.jvm.java.lang.ProcessHandle.current().pid())
        self.cluster = LocalCluster(self.gateway, {})
        self.cluster.start()
        senv = StreamExecutionEnvironment(remote_environment(self.gateway, self.cluster, {}))
        self.tenv = StreamTableEnvironment.create(
            senv, EnvironmentSettings.new_instance().in_streaming_mode().build())
        self.tenv.execute_sql(SOURCE_DDL)
        self.tenv.execute_sql("CREATE TABLE bh (k INT, c BIGINT) WITH ('connector'='blackhole')")

    def close(self) -> None:
        self.cluster.stop()

    # ----------------------------------------------------------------- helpers

    def cpu_seconds(self) -> float:
        """CPU time used so far by this process and its JVM (all threads; Linux)."""
        fields = Path(f"/proc/{self._jvm_pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") + \
            time.process_time()

    def _window(self, count: Callable[[], int], seconds: float | None = None) -> Rate:
        """The rate of ``count()`` over the window, after the warm-up."""
        time.sleep(self.warmup_s)
        first, started, cpu = count(), time.monotonic(), self.cpu_seconds()
        time.sleep(seconds or self.window_s)
        rows = count() - first
        return Rate(rows / (time.monotonic() - started), rows / (self.cpu_seconds() - cpu))

    @staticmethod
    def _cancel(table_result: Any) -> None:
        with contextlib.suppress(Exception):  # it may have ended already
            table_result.get_job_client().cancel().result()

    # ----------------------------------------------------------------- measurements

    def source_capacity(self) -> tuple[float, int]:
        """Input rows/s of the aggregation when the result goes to a blackhole sink."""
        result = self.tenv.execute_sql(f"INSERT INTO bh {QUERY}")
        job_id = str(result.get_job_client().get_job_id())
        url = self.cluster.rest_url
        tls = verify(url)

        def read_records() -> int:
            job = httpx.get(f"{url}/jobs/{job_id}", timeout=10, verify=tls).json()
            return int(job["vertices"][-1]["metrics"]["read-records"])

        try:
            rate = self._window(read_records).per_s
            parallelism = httpx.get(f"{url}/jobs/{job_id}", timeout=10, verify=tls).json()[
                "vertices"][0]["parallelism"]
        finally:
            self._cancel(result)
        return rate, parallelism

    def pyflink_collect(self) -> Rate:
        """(a) PyFlink's own iterator, one row at a time through py4j (a 10 s window: its
        rate is low and steady)."""
        result = self.tenv.sql_query(QUERY).execute()
        count = [0]
        stop = threading.Event()

        def iterate() -> None:
            with result.collect() as rows:
                for _ in rows:
                    count[0] += 1
                    if stop.is_set():
                        break

        thread = threading.Thread(target=iterate, daemon=True)
        thread.start()
        try:
            return self._window(lambda: count[0], min(self.window_s, 10.0))
        finally:
            stop.set()
            thread.join(30)
            self._cancel(result)

    def jvm_drain(self) -> Rate:
        """(b) The JVM thread only counting: no materialization, no transfer to Python."""
        from jupyter_flink.flink.java_helpers import compile_class, new_instance

        if self._drain_class is None:  # once: py4j caches methods by class name
            self._drain_class = compile_class(self.gateway, COUNTING_DRAIN,
                                              "jupyterflinkbench.CountingDrain")
        result = self.tenv.sql_query(QUERY).execute()
        drain = new_instance(self.gateway, self._drain_class, result._j_table_result)
        try:
            return self._window(lambda: int(drain.count()))
        finally:
            self._cancel(result)
            drain.close()

    def live_table(self, refreshes: int = 0) -> tuple[Rate, dict[str, list[float]]]:
        """(c) The live table pipeline; then (d) ``refreshes`` timed refreshes of it."""
        from jupyter_flink.display.live_table import LiveTable
        from jupyter_flink.flink.live_result import open_live_result
        from jupyter_flink.parsing.properties import ParagraphProperties

        props = ParagraphProperties(kind="ssql")
        seen: list[tuple[float, int, float]] = []
        cpu_seconds = self.cpu_seconds

        class Handle:
            def update(self, bundle: dict[str, str], raw: bool = True) -> None:
                if live.snapshot is not None:
                    seen.append((time.monotonic(), live.snapshot.received, cpu_seconds()))

        result = self.tenv.sql_query(QUERY).execute()
        live = LiveTable(open_live_result(self.gateway, result, mode="update",
                                          max_rows=100_000),
                         mode="update", max_rows=100_000,
                         refresh_interval_s=props.refresh_interval_ms / 1000,
                         publish=lambda bundle: Handle())
        live.start()
        timings: dict[str, list[float]] = {"total": [], "fetch": [], "pandas": [],
                                           "render": [], "jvm": []}
        try:
            time.sleep(self.warmup_s)
            start_index = len(seen)
            time.sleep(self.window_s)
            window = seen[start_index:]
            if len(window) < 2:
                raise RuntimeError("the live table did not refresh during the window")
            (t0, rows0, cpu0), (t1, rows1, cpu1) = window[0], window[-1]
            rate = Rate((rows1 - rows0) / (t1 - t0), (rows1 - rows0) / (cpu1 - cpu0))
            if refreshes:
                timings = self._time_refreshes(live, refreshes)
        finally:
            self._cancel(result)
            live.finished.wait(30)
            live.close()
        return rate, timings

    @staticmethod
    def _time_refreshes(live: Any, count: int) -> dict[str, list[float]]:
        """Force ``count`` refreshes (after 20 untimed ones) and time them and their parts."""
        import os

        from jupyter_flink.display.snapshots import parse_snapshot

        timings: dict[str, list[float]] = {"total": [], "fetch": [], "pandas": [],
                                           "render": [], "jvm": []}
        result = live._result
        for index in range(count + 20):
            started = time.perf_counter()
            live.refresh(force=True)
            total = time.perf_counter() - started
            # the same steps again, one by one, for the breakdown
            started = time.perf_counter()
            path = os.path.join(live._dir, "bench-snapshot")
            result.snapshotTo(-1, path)
            with open(path, "rb") as file:
                data = file.read()
            os.unlink(path)
            fetched = time.perf_counter()
            snapshot = parse_snapshot(data)
            parsed = time.perf_counter()
            live.view.bundle(snapshot, None, refreshed_at=time.time(), final=False)
            rendered = time.perf_counter()
            if index >= 20:
                timings["total"].append(total)
                timings["fetch"].append(fetched - started)
                timings["pandas"].append(parsed - fetched)
                timings["render"].append(rendered - parsed)
                timings["jvm"].append(snapshot.jvm_seconds)
            time.sleep(0.02)
        rows = live.snapshot.rows if live.snapshot is not None else 0
        if rows != KEYS:
            print(f"note: the table had {rows:,} rows, not {KEYS:,}", file=sys.stderr)
        return timings


def _ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--window", type=float, default=15.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--rounds", type=int, default=3, help="alternating (b)/(c) rounds")
    parser.add_argument("--refreshes", type=int, default=200, help="timed refreshes in (d)")
    args = parser.parse_args(argv)

    began = time.monotonic()
    bench = Bench(args.window, args.warmup)
    try:
        print(f"query: {QUERY}  (datagen, {KEYS:,} keys, unthrottled)", flush=True)
        bench.jvm_drain()  # warm the JIT and the cluster; not reported
        capacity, parallelism = bench.source_capacity()
        print(f"(0) job alone, blackhole sink: {capacity:,.0f} input rows/s "
              f"(~{2 * capacity:,.0f} changelog rows/s), parallelism {parallelism}", flush=True)
        collects: list[Rate] = []
        drains: list[Rate] = []
        lives: list[Rate] = []
        timings: dict[str, list[float]] = {}
        for round_no in range(args.rounds):
            collects.append(bench.pyflink_collect())
            drains.append(bench.jvm_drain())
            last = round_no == args.rounds - 1
            rate, measured = bench.live_table(args.refreshes if last else 0)
            lives.append(rate)
            if last:
                timings = measured
            a, b, c = collects[-1].per_s, drains[-1].per_s, lives[-1].per_s
            print(f"    round {round_no + 1}: (a) {a:,.0f}, (b) {b:,.0f}, (c) {c:,.0f} rows/s; "
                  f"(c)/(a) {c / a:,.0f}x, (c)/(b) {c / b:.2f}", flush=True)
    finally:
        bench.close()

    def med(rates: list[Rate], per_cpu: bool = False) -> float:
        return median([r.per_cpu_s if per_cpu else r.per_s for r in rates])

    def ratio(top: list[Rate], bottom: list[Rate], per_cpu: bool = False) -> float:
        return median([(t.per_cpu_s / b.per_cpu_s) if per_cpu else (t.per_s / b.per_s)
                       for t, b in zip(top, bottom)])

    collect, drain, live = med(collects), med(drains), med(lives)
    over_a, over_b = ratio(lives, collects), ratio(lives, drains)
    print()
    print(table([
        ["(a) PyFlink TableResult.collect()", f"{collect:,.0f}", "1x", "",
         f"{med(collects, True):,.0f}", ""],
        ["(b) JVM drain, counted in the JVM", f"{drain:,.0f}",
         f"{ratio(drains, collects):,.0f}x", "1.00", f"{med(drains, True):,.0f}", "1.00"],
        ["(c) jupyter-flink live table (update)", f"{live:,.0f}", f"{over_a:,.0f}x",
         f"{over_b:.2f}", f"{med(lives, True):,.0f}", f"{ratio(lives, drains, True):.2f}"],
    ], ["changelog rows to the notebook", "rows/s", "vs (a)", "vs (b)", "rows/CPU-s",
        "vs (b)"]))
    print(f"medians of {args.rounds} rounds (ratios: of the per-round ratios); rows/CPU-s "
          "counts the CPU time of the JVM and Python, which other load on the machine "
          "barely changes")
    print(f"targets: (c) >= 75x (a): {'met' if over_a >= 75 else 'MISSED'}; "
          f"(c) >= 0.8x (b): {'met' if over_b >= 0.8 else 'MISSED'}")
    if 2 * capacity > 1.5 * drain:
        print(f"the job alone delivers {2 * capacity / drain:,.1f}x (b): the result path, not "
              "the source, is the limit")
    else:
        print("WARNING: the job alone is not much faster than (b): the source may be the limit")
    if timings.get("total"):
        print()
        print(f"(d) refresh of the {KEYS:,}-row update table while its job runs at full speed, "
              f"{len(timings['total'])} refreshes:")
        print(table([[label, _ms(timings[key], 50), _ms(timings[key], 95)] for key, label in [
            ("total", "whole refresh"), ("fetch", "  snapshot: JVM -> file -> bytes"),
            ("jvm", "    of which in the JVM"), ("pandas", "  Arrow -> pandas"),
            ("render", "  display bundle (text + HTML)")]], ["step", "p50 ms", "p95 ms"]))
        p95 = percentile(timings["total"], 95)
        print(f"target: p95 <= 50 ms: {'met' if p95 <= 0.05 else 'MISSED'}")
    print(f"\n(run took {time.monotonic() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
