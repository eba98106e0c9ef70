"""Shared by the benchmarks: a free port, REST polling, percentiles, a results table."""

from __future__ import annotations

import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the benchmarks reuse the tests' kernel driver
    sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def verify(url: str) -> Any:
    """httpx's ``verify=`` for a cluster URL: the embedded cluster wants the kernel's client
    certificate (tests/support/tls.py finds it)."""
    from tests.support.tls import httpx_verify

    return httpx_verify(url)


def wait_running(url: str, job_name: str, timeout: float = 180, poll: float = 0.02) -> float:
    """time.time() when the named job and all its tasks are RUNNING."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=5, verify=verify(url)) as client:
        while time.monotonic() < deadline:
            try:
                jobs = client.get("/jobs/overview").json()["jobs"]
                job = next((j for j in jobs if j["name"] == job_name), None)
                if job and job["state"] == "RUNNING":
                    details = client.get(f"/jobs/{job['jid']}").json()
                    if all(v["status"] == "RUNNING" for v in details["vertices"]):
                        return time.time()
            except (httpx.HTTPError, ValueError, KeyError):
                pass  # the cluster is still starting
            time.sleep(poll)
    raise TimeoutError(f"{job_name} did not run within {timeout}s at {url}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths))  # noqa: E731
    return "\n".join([line(cells[0]), line(["-" * w for w in widths]),
                      *[line(r) for r in cells[1:]]])
