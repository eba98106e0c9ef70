"""Look at Flink directly, to check what the product claims independently.

Over HTTPS with the cluster's client certificate where it needs one (the embedded cluster
always): :func:`tests.support.tls.credentials_for` finds it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from .tls import httpx_verify
from .waiting import wait_until

REST_URL = re.compile(r"https?://127\.0\.0\.1:\d+")
# The first cell's announcement names the address without a scheme (no link to click)
ANNOUNCED = re.compile(r"cluster running on (127\.0\.0\.1:\d+) \((HTTPS|HTTP)\b")


def rest_url_from(text: str) -> str:
    """The embedded cluster's REST URL, from a status output, %flink.info or the first
    Flink cell's announcement."""
    match = REST_URL.search(text)
    if match:
        return match.group(0)
    announced = ANNOUNCED.search(text)
    assert announced, f"no REST URL of the embedded cluster in: {text!r}"
    return f"{announced.group(2).lower()}://{announced.group(1)}"


def get(url: str, path: str) -> Any:
    response = httpx.get(url + path, timeout=10, verify=httpx_verify(url))
    response.raise_for_status()
    return response.json()


def jobs(url: str) -> list[dict[str, Any]]:
    return get(url, "/jobs/overview")["jobs"]


def job_by_name(url: str, name: str) -> dict[str, Any] | None:
    matching = [j for j in jobs(url) if j["name"] == name]
    return max(matching, key=lambda j: j["start-time"]) if matching else None


def cancel(url: str, job_id: str) -> None:
    httpx.patch(f"{url}/jobs/{job_id}", params={"mode": "cancel"}, timeout=10,
                verify=httpx_verify(url))


def wait_for_state(url: str, job_id: str, states: set[str], timeout: float = 60) -> str:
    seen: list[str] = []

    def reached() -> str | None:
        seen.append(get(url, f"/jobs/{job_id}")["state"])
        return seen[-1] if seen[-1] in states else None
    try:
        return wait_until(reached, timeout=timeout, what=f"job {job_id} in {states}")
    except AssertionError:
        raise AssertionError(f"job {job_id} never reached {states}; last state "
                             f"{seen[-1] if seen else None}") from None


def completed_checkpoints(url: str, job_id: str) -> int:
    return int(get(url, f"/jobs/{job_id}/checkpoints")["counts"]["completed"])


def local_path(flink_path: str) -> Path:
    """file:/tmp/x or file:///tmp/x -> /tmp/x"""
    assert flink_path.startswith("file:"), flink_path
    return Path("/" + flink_path[len("file:"):].lstrip("/"))
