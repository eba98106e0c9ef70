"""The jobs comm: frontends subscribe to the jobs whose outputs they show, and the kernel keeps
them up to date (the outputs stay live after a page reload, in a second tab, or when the
notebook is opened again).

One comm per frontend (per kernel connection), opened by the frontend with target
:data:`TARGET_NAME`. Frontend to kernel, as the comm_open data or any later message::

    {"version": 1, "jobs": ["<job id>", ...], "tables": ["<job id>", ...], "list": true}

``jobs``: the job ids of the status outputs it shows (their health is sampled while it
does); ``tables``: those of the live tables it shows; ``list``: it wants every job of the
kernel (the jobs panel). Each such message replaces the previous one and is answered at once
with the current state::

    {"version": 1, "kernel": {"instance": "...", "cluster": "embedded"},
     "jobs": {"<job id>": <job payload> or null, ...}, "tables": {"<job id>": {...} or null}}

null: this kernel does not know the job (it was restarted since). A payload is keyed by the id
the frontend asked for, and may be the payload of another job: the resubmission that took
the output over. The answer's payloads carry the charts' points (``health.series``); after
it, changes are pushed as ``{"jobs": {...}}`` and ``{"tables": {...}}``, as often as the
status outputs refresh and each health sample (job_status.py) and the tables refresh, and
their payloads carry the latest sample only: the frontend appends it to the charts.

A frontend can vanish without closing its comm (a reloaded or closed page does not always
get to say so): each one renews its subscription with ``{"alive": true}`` every
:data:`RENEW_EVERY_S` (not answered), and one not heard from for :data:`LEASE_S` is dropped,
so that the kernel stops sampling and messaging for pages nobody has open.

Requests from the jobs panel, ``{"request": "savepoint" | "stop" | "cancel", "job_id": ...,
"request_id": ...}``, run one at a time on a thread of their own and are answered with
``{"reply": "<request_id>", "ok": true, "message": "..."}``.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..jobs.health import HealthMonitor
from ..jobs.registry import TrackedJob
from .job_facts import PAYLOAD_VERSION, KernelFacts
from .job_status import JobDisplays

__all__ = ["ACTIONS", "TARGET_NAME", "JobSubscriptions"]

log = logging.getLogger(__name__)

TARGET_NAME = "jupyter_flink.jobs"
ACTIONS = ("savepoint", "stop", "cancel")
MAX_TABLES = 50  # the latest state of this many live tables is kept for frontends to come
RENEW_EVERY_S = 30.0  # the labextension's renewals (jobs.ts); browsers slow a hidden tab's
LEASE_S = 150.0  # timers down to one a minute, hence a lease of several renewals


@dataclass
class _Frontend:
    send: Callable[[dict[str, Any]], None]
    jobs: frozenset[str] = frozenset()
    tables: frozenset[str] = frozenset()
    listing: bool = False
    heard_at: float = field(default_factory=time.monotonic)  # its last message


@dataclass
class _Actions:
    """Panel requests, run one at a time on one thread (which has its own REST client)."""

    run: Callable[[str, str], str]
    requests: queue.SimpleQueue[tuple[str, str, str, _Frontend] | None] = field(
        default_factory=queue.SimpleQueue)
    thread: threading.Thread | None = None


class JobSubscriptions:
    """The kernel's side of the jobs comm: who wants what, and sending it to them.

    ``act(action, job_id)`` carries out a panel request and returns what to tell the user
    (raising a FlinkNotebookError with the reason if it failed). The bookkeeping works
    without a kernel (``opened``/``received``/``closed`` take a ``send`` function), so that
    it can be tested without one; :meth:`listen` connects it to ipykernel's comms.
    """

    def __init__(self, displays: JobDisplays, *, jobs: Callable[[], list[TrackedJob]],
                 health: HealthMonitor | None = None,
                 act: Callable[[str, str], str] | None = None):
        self.displays = displays
        self._jobs = jobs
        self._health = health
        self._actions = _Actions(act) if act is not None else None
        self._frontends: dict[str, _Frontend] = {}
        self._tables: dict[str, dict[str, Any]] = {}  # latest state of each live table
        self._lock = threading.Lock()

    @property
    def kernel(self) -> KernelFacts:
        return self.displays.kernel

    # ----------------------------------------------------------------- comm plumbing

    def listen(self) -> bool:
        """Register the comm target (a no-op, False, outside an ipykernel process)."""
        if "ipykernel.ipkernel" not in sys.modules:
            return False
        import comm

        def opened(channel: Any, msg: Mapping[str, Any]) -> None:
            comm_id = str(channel.comm_id)

            def on_msg(message: Mapping[str, Any]) -> None:
                self.received(comm_id, (message.get("content") or {}).get("data") or {})

            channel.on_msg(on_msg)
            channel.on_close(lambda message: self.closed(comm_id))
            self.opened(comm_id, channel.send, (msg.get("content") or {}).get("data") or {})

        comm.get_comm_manager().register_target(TARGET_NAME, opened)
        return True

    # ----------------------------------------------------------------- bookkeeping

    def opened(self, comm_id: str, send: Callable[[dict[str, Any]], None],
               data: Mapping[str, Any]) -> None:
        with self._lock:
            self._frontends[comm_id] = _Frontend(send)
        self.received(comm_id, data)

    def received(self, comm_id: str, data: Mapping[str, Any]) -> None:
        with self._lock:
            frontend = self._frontends.get(comm_id)
        if frontend is None or not isinstance(data, Mapping):
            return
        frontend.heard_at = time.monotonic()
        if data.get("alive"):
            return  # a renewal: nothing changed
        if "request" in data:
            self._request(frontend, data)
            return
        with self._lock:
            frontend.jobs = _ids(data.get("jobs"))
            frontend.tables = _ids(data.get("tables"))
            frontend.listing = bool(data.get("list"))
        self._sample_shown()
        self._send(frontend, self.answer(frontend))

    def closed(self, comm_id: str) -> None:
        with self._lock:
            self._frontends.pop(comm_id, None)
        self._sample_shown()

    def answer(self, frontend: _Frontend) -> dict[str, Any]:
        """The current state of what ``frontend`` asked for."""
        jobs: dict[str, Any] = {}
        for job_id in frontend.jobs:
            job = self.displays.current(job_id)
            jobs[job_id] = self.displays.payload(job, series=True) if job else None
        if frontend.listing:
            for job in self._jobs():
                jobs.setdefault(job.job_id, self.displays.payload(job, series=False))
        with self._lock:
            tables = {job_id: self._tables.get(job_id) for job_id in frontend.tables}
        return {"version": PAYLOAD_VERSION,
                "kernel": {"instance": self.kernel.instance, "cluster": self.kernel.cluster()},
                "jobs": jobs, "tables": tables}

    def _expire(self) -> None:
        """Drop the frontends whose lease ran out (their pages are gone)."""
        now = time.monotonic()
        with self._lock:
            gone = [comm_id for comm_id, frontend in self._frontends.items()
                    if now - frontend.heard_at > LEASE_S]
            for comm_id in gone:
                del self._frontends[comm_id]
        if gone:
            log.info("dropped %d jobs subscription(s) not renewed for %.0f s", len(gone),
                     LEASE_S)
            self._sample_shown()

    def _sample_shown(self) -> None:
        """Sample the health of the jobs whose outputs some frontend shows, and no others."""
        if self._health is None:
            return
        with self._lock:
            wanted = {job_id for frontend in self._frontends.values()
                      for job_id in frontend.jobs}
        shown = set()
        for job_id in wanted:
            job = self.displays.current(job_id)
            if job is not None and not job.ended:
                shown.add(job.job_id)
        self._health.show(shown)

    # ----------------------------------------------------------------- pushing (Share)

    def interested(self, job_ids: Collection[str]) -> bool:
        with self._lock:
            return any(frontend.listing or not frontend.jobs.isdisjoint(job_ids)
                       for frontend in self._frontends.values())

    def publish(self, job_ids: Collection[str], job: TrackedJob) -> None:
        """Send ``job``'s state to the frontends that show an output of one of ``job_ids``
        (the output's own id and those it took over) or list every job."""
        self._expire()
        with self._lock:
            targets = []
            for frontend in self._frontends.values():
                keys = [key for key in job_ids if key in frontend.jobs]
                shown = bool(keys)
                if frontend.listing and job.job_id not in keys:
                    keys.append(job.job_id)
                if keys:
                    targets.append((frontend, keys, shown))
        if not targets:
            return
        health = self._health
        if health is not None and (job.ended or any(shown for _, _, shown in targets)) and \
                (job.job_id in health.shown) == job.ended:
            self._sample_shown()  # it ended, or took over an output: charts follow
        payload = self.displays.payload(job, series=False)  # the charts append its sample
        for frontend, keys, _ in targets:
            self._send(frontend, {"jobs": {key: payload for key in keys}})

    def publish_table(self, job_id: str, html: str, *, final: bool) -> None:
        """A live table's new state: kept for frontends to come, sent to those showing it."""
        state = {"job_id": job_id, "html": html, "final": final,
                 "observed_ms": int(time.time() * 1000)}
        with self._lock:
            self._tables.pop(job_id, None)
            self._tables[job_id] = state
            while len(self._tables) > MAX_TABLES:
                self._tables.pop(next(iter(self._tables)))
            targets = [frontend for frontend in self._frontends.values()
                       if job_id in frontend.tables]
        for frontend in targets:
            self._send(frontend, {"tables": {job_id: state}})

    # ----------------------------------------------------------------- requests

    def _request(self, frontend: _Frontend, data: Mapping[str, Any]) -> None:
        request_id = str(data.get("request_id") or "")
        action, job_id = str(data.get("request")), str(data.get("job_id") or "")
        if self._actions is None or action not in ACTIONS or not job_id:
            self._send(frontend, {"reply": request_id, "ok": False,
                                  "message": f"Unknown request {action!r}."})
            return
        actions = self._actions
        actions.requests.put((action, job_id, request_id, frontend))
        with self._lock:
            if actions.thread is None or not actions.thread.is_alive():
                actions.thread = threading.Thread(target=self._run_requests,
                                                  name="flink-job-actions", daemon=True)
                actions.thread.start()

    def _run_requests(self) -> None:
        assert self._actions is not None
        while True:
            item = self._actions.requests.get()
            if item is None:
                return
            action, job_id, request_id, frontend = item
            try:
                message, ok = self._actions.run(action, job_id), True
            except Exception as exc:  # the user sees why, in the panel
                message, ok = str(exc) or type(exc).__name__, False
                log.debug("%s of %s failed", action, job_id, exc_info=True)
            self._send(frontend, {"reply": request_id, "ok": ok, "message": message})

    def close(self) -> None:
        """Stop the requests' thread (after the one under way, if any)."""
        if self._actions is not None:
            self._actions.requests.put(None)

    # ----------------------------------------------------------------- sending

    def _send(self, frontend: _Frontend, data: dict[str, Any]) -> None:
        try:
            frontend.send(data)
        except Exception:  # e.g. the kernel is shutting down
            log.debug("sending to a frontend failed", exc_info=True)


def _ids(value: Any) -> frozenset[str]:
    if not isinstance(value, (list, tuple)):
        return frozenset()
    return frozenset(item for item in value if isinstance(item, str) and item)
