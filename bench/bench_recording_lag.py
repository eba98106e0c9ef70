"""Lag from a checkpoint's completion to its path being recorded in the journal.

For each recorded checkpoint: the journal write time (the entry's ``updated``, which the
kernel stamps when it writes the journal; it reaches us in the metadata comm message) minus
Flink's ``latest_ack_timestamp`` of that checkpoint. p50/p95 over 30+ checkpoints at the
defaults (poll interval 1000 ms, checkpoints every second).

Baseline, measured in the same run: Zeppelin's design, i.e. a fixed poll every interval and
Flink's default 3 s cache of checkpoint statistics on the REST endpoint. Target: p95 <= 1.0 s.

    .venv/bin/python bench/bench_recording_lag.py [--checkpoints 30]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from datetime import datetime

import httpx
from _common import ROOT, percentile, table, verify

from tests.support.kernel import running_kernel

CONF = """%%flink.conf
execution.checkpointing.interval 1000
state.checkpoints.dir file://{root}/chk
"""
ZEPPELIN_LIKE = """rest.cache.checkpoint-statistics.timeout 3 s
"""
JOB = """%%flink.ssql(jobName=lag_job)
CREATE TABLE src (k INT, v BIGINT) WITH ('connector'='datagen','rows-per-second'='200',
  'fields.k.min'='0','fields.k.max'='99');
CREATE TABLE snk (k INT, c BIGINT) WITH ('connector'='blackhole');
INSERT INTO snk SELECT k, COUNT(*) FROM src GROUP BY k
"""
# Zeppelin polls every check_interval, whatever the job is doing.
FIXED_POLLING = """
poller = next(m for m in get_ipython().magics_manager.registry.values()
              if type(m).__name__ == "FlinkMagics").tracker.poller
poller.fast_interval_s = poller.interval_s
"""


def measure(count: int, *, zeppelin_like: bool) -> list[float]:
    root = tempfile.mkdtemp(prefix="lag-")
    with running_kernel(cwd=str(ROOT)) as kernel:
        conf = CONF.format(root=root) + (ZEPPELIN_LIKE if zeppelin_like else "")
        kernel.execute(conf, cell_id="conf")
        reply = kernel.execute(JOB, cell_id="job")
        if zeppelin_like:
            kernel.execute(FIXED_POLLING)
        url = re.search(r"https?://127\.0\.0\.1:\d+", reply.stdout).group(0)
        tls = verify(url)
        job_id = next(j["jid"] for j in httpx.get(f"{url}/jobs/overview", verify=tls)
                      .json()["jobs"] if j["name"] == "lag_job")  # not the warm-up job
        acked: dict[int, float] = {}  # checkpoint id -> Flink's latest_ack_timestamp (s)
        written: dict[int, float] = {}  # checkpoint id -> when the kernel wrote the journal
        deadline = time.monotonic() + count * 3 + 60
        while len(set(acked) & set(written)) < count and time.monotonic() < deadline:
            kernel.pump(0.2)
            history = httpx.get(f"{url}/jobs/{job_id}/checkpoints",
                                verify=tls).json().get("history", [])
            for entry in history:
                if entry.get("status") == "COMPLETED" and entry.get("latest_ack_timestamp"):
                    acked[entry["id"]] = entry["latest_ack_timestamp"] / 1000
            for update in kernel.metadata_updates("job"):
                path = update["flink"].get("latest_checkpoint_path") or ""
                if "chk-" in path:
                    checkpoint = int(path.rsplit("chk-", 1)[1])
                    stamp = datetime.fromisoformat(update["flink"]["updated"]).timestamp()
                    written.setdefault(checkpoint, stamp)
        lags = {c: written[c] - acked[c] for c in set(acked) & set(written)}
        kernel.execute("%flink.cancel lag_job")
    return list(lags.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=int, default=30)
    args = parser.parse_args()
    ours = measure(args.checkpoints, zeppelin_like=False)
    baseline = measure(args.checkpoints, zeppelin_like=True)
    rows = []
    for name, lags in (("Zeppelin-style polling (baseline)", baseline), ("jupyter-flink", ours)):
        rows.append([name, len(lags), f"{percentile(lags, 50):.3f}", f"{percentile(lags, 95):.3f}",
                     f"{max(lags):.3f}", f"{percentile(lags, 95) / percentile(baseline, 95):.2f}"])
    print(table(rows, ["checkpoint -> journal", "n", "p50 s", "p95 s", "max s",
                       "p95 ratio"]))
    p95 = percentile(ours, 95)
    print(f"\ntarget: p95 <= 1.0 s -> {'met' if p95 <= 1.0 else 'MISSED'} ({p95:.3f} s)")


if __name__ == "__main__":
    main()
