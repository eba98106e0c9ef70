"""One REST client per thread that talks to Flink, each closed only when nobody uses it.

Several threads call Flink's REST API: the kernel's (cells and magics), the job poller, the
health monitor, the automatic savepoints and the jobs panel's actions. Each gets a client of
its own: the kernel thread's can be cut off by an interrupt mid-request (its pool is then
dropped, see :meth:`RestClients.drop`), the poller's and the health monitor's must fail fast
(no retries, a short timeout: they try again next round), and none may be
closed under another thread's request. A client is rebuilt when the cluster's address
changes (a restarted embedded cluster listens on a new port); :meth:`RestClients.close` runs
at shutdown, after the threads that used them stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..rest import FlinkRestClient, NoRetry

__all__ = ["Endpoint", "RestClients"]

POLL_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Endpoint:
    """Where Flink's REST API is and how to talk to it (TLS, proxy headers)."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    client_options: dict[str, Any] = field(default_factory=dict)  # verify, client cert


class RestClients:
    """The REST clients of one kernel, by role: ``kernel``, ``poller``, ``health``,
    ``autosave``, ``actions`` or ``probe`` (a quick look whether the cluster answers)."""

    def __init__(self, endpoint: Callable[[], Endpoint]):
        self._endpoint = endpoint
        self._clients: dict[str, tuple[Endpoint, FlinkRestClient]] = {}
        self._lock = threading.Lock()

    def get(self, role: str = "kernel") -> FlinkRestClient:
        """The client of ``role`` for the cluster the session points at now."""
        endpoint = self._endpoint()
        with self._lock:
            current = self._clients.get(role)
            if current is not None and current[0] == endpoint:
                return current[1]
            client = self._make(role, endpoint)
            self._clients[role] = (endpoint, client)
        if current is not None:
            current[1].close()  # only this role's thread used it, and it asks anew now
        return client

    def endpoint(self) -> Endpoint:
        return self._endpoint()

    def drop(self, role: str = "kernel") -> None:
        """Forget the client of ``role`` (a request cut off by an interrupt can leave its
        connection pool unusable, and the cancel that follows must get through)."""
        with self._lock:
            current = self._clients.pop(role, None)
        if current is not None:
            current[1].close()

    def close(self) -> None:
        """Close every client (at shutdown, once the threads using them have stopped)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for _, client in clients:
            client.close()

    @staticmethod
    def _make(role: str, endpoint: Endpoint) -> FlinkRestClient:
        options = dict(endpoint.client_options)
        if role in ("poller", "probe", "health"):
            # An unreachable cluster must show up quickly, not after retries per job.
            options.update(timeout=POLL_TIMEOUT_S, retry=NoRetry())
        return FlinkRestClient(endpoint.url, headers=dict(endpoint.headers), **options)
