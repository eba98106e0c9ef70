"""REST clients per thread: never shared, never closed under another thread's request."""

from __future__ import annotations

import threading
import time

from jupyter_flink.jobs.autosave import AutoSavepoints
from jupyter_flink.jobs.clients import Endpoint, RestClients
from tests.support.waiting import wait_until


def test_each_role_has_its_own_client_rebuilt_when_the_cluster_moves() -> None:
    where = {"url": "http://127.0.0.1:8081"}
    clients = RestClients(lambda: Endpoint(where["url"]))
    kernel, poller = clients.get("kernel"), clients.get("poller")
    assert kernel is not poller and clients.get("kernel") is kernel
    assert poller.http.timeout < kernel.http.timeout  # the poller fails fast
    where["url"] = "http://127.0.0.1:9091"  # a restarted embedded cluster: a new port
    moved = clients.get("kernel")
    assert moved is not kernel and moved.base_url == "http://127.0.0.1:9091"
    assert kernel.http._closed and not poller.http._closed  # the poller asks anew itself
    clients.drop("kernel")
    assert moved.http._closed
    clients.close()
    assert poller.http._closed


def test_closing_autosave_waits_for_the_savepoint_under_way() -> None:
    started, finished = threading.Event(), threading.Event()

    def take(job_id: str, target: str) -> None:
        started.set()
        time.sleep(0.3)
        finished.set()

    scheduler = AutoSavepoints(take, lambda job_id, exc: None)
    scheduler.add("job", 0.01, "file:///sp")
    wait_until(started.is_set, timeout=5, what="a savepoint to start")
    scheduler.close()
    assert finished.is_set(), "close() returned while a savepoint still used its client"
