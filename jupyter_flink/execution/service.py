"""Everything one kernel runs Flink with, wired together once.

The magics only parse and render; this service holds the parts they call: the session (JVM,
cluster, environments), the job tracker and its REST clients, the recorder (journal and
comm), job control, the status outputs and the jobs comm that keeps frontends up to date,
the health monitor, automatic savepoints and the paragraph executor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..display.job_comm import JobSubscriptions
from ..display.job_facts import KernelFacts
from ..display.job_status import ClusterAddress, JobDisplays
from ..flink.session import FlinkSession
from ..jobs.autosave import AutoSavepointJobs
from ..jobs.clients import Endpoint, RestClients
from ..jobs.control import JobControl, StopOutcome
from ..jobs.health import HealthMonitor
from ..jobs.tracker import JobTracker
from ..kernel.cell import kernel_id, notebook_moved
from ..recording.recorder import Recorder
from ..server.endpoints import UiEndpoint, remove_endpoint, write_endpoint
from .executor import ParagraphExecutor
from .job_actions import JobActions

__all__ = ["FlinkService", "ServiceSettings"]

log = logging.getLogger(__name__)

# How long a kernel shutdown waits for a warm start in flight to reach a step where it can
# stop; past that the session is not stopped (that would wait for the start) and the JVM
# goes with the kernel process (the kernel ends it; PyFlink's JVM also exits with its parent).
WARM_SHUTDOWN_WAIT_S = 3.0


@dataclass(frozen=True)
class ServiceSettings:
    """The kernel-level knobs (FlinkMagics traits, settable in Jupyter's config)."""

    journal_dir: str | None = None
    startup_timeout_s: float = 120.0
    poll_interval_ms: int = 1000
    status_refresh_interval_s: float = 3.0
    uptime_refresh_interval_s: float = 15.0
    warm_start: bool = True


class FlinkService:
    """Session, jobs, recording and paragraphs of one kernel."""

    def __init__(self, settings: ServiceSettings, *, say: Callable[[str], None],
                 bind: Callable[[str, Any], None]):
        self.settings = settings
        self.tracker: JobTracker
        self.session = FlinkSession(
            busy=lambda: self.tracker.is_busy(), announce=say, on_started=self._publish,
            kernel_defaults={"flink.job.check_interval": str(settings.poll_interval_ms)})
        self.recorder = Recorder(journal_dir=settings.journal_dir)
        self.tracker = JobTracker(
            RestClients(self.endpoint), self.recorder,
            poll_interval_s=lambda: int(
                self.session.interpreter_setting("flink.job.check_interval")) / 1000,
            startup_timeout_s=settings.startup_timeout_s,
            notify_every_s=settings.status_refresh_interval_s,
            idle_notify_every_s=settings.uptime_refresh_interval_s)
        self.control = JobControl(self.tracker)
        clients = self.tracker.clients
        # Metrics only for the jobs whose outputs a frontend shows (the jobs comm says which)
        self.health = HealthMonitor(lambda: clients.get("health"),
                                    get_job=self.tracker.registry.get)
        self.tracker.subscribe(self.health)
        self.displays = JobDisplays(self.tracker.registry.get, self.cluster_address,
                                    min_update_interval_s=settings.status_refresh_interval_s,
                                    uptime_only_every_s=settings.uptime_refresh_interval_s,
                                    kernel=KernelFacts(cluster=self._cluster_kind),
                                    health=self.health.health)
        self.health.on_sample = self.displays.sampled
        self.executor = ParagraphExecutor(self.session, self.control, self.displays,
                                          say=say, bind=bind)
        self.subscriptions = JobSubscriptions(
            self.displays, jobs=self.tracker.registry.all, health=self.health,
            act=JobActions(self.control, self.executor.default_savepoint_dir,
                           lambda: clients.get("actions")))
        self.displays.share = self.subscriptions
        self.subscriptions.listen()
        self.tracker.subscribe(self.displays)
        self.autosave = AutoSavepointJobs(self.control, self.executor.default_savepoint_dir)
        self.tracker.subscribe(self.autosave)

    def warm_up(self) -> None:
        """Start Flink in the background now, so that the first Flink cell finds it running
        (unless ``warm_start`` is off: then nothing starts before the first Flink cell)."""
        if self.settings.warm_start:
            self.session.warm.begin()

    def notebook_moved(self, api_path: str) -> None:
        """The frontend says the notebook is at ``api_path`` now: its journal and the
        records of its running jobs follow it."""
        moved = notebook_moved(api_path)
        if moved is None:
            return
        old, new = moved
        self.recorder.move(old, new)
        for job in self.tracker.registry.all():
            if job.owner.notebook_path == old:
                self.tracker.registry.update(job.job_id, owner=replace(job.owner,
                                                                       notebook_path=new))

    def _publish(self) -> None:
        """Tell the Jupyter server where this kernel's cluster is, for its web UI."""
        kernel = kernel_id()
        if kernel is None:
            return
        endpoint = self.endpoint()
        options = endpoint.client_options
        verify, certificate = options.get("verify"), options.get("client_cert")
        try:
            write_endpoint(kernel, UiEndpoint(
                endpoint.url, endpoint.headers,
                ca_file=verify if isinstance(verify, str) else None,
                cert_file=certificate.cert if certificate else None,
                key_file=certificate.key if certificate else None,
                key_password=certificate.password if certificate else None,
                check_hostname=bool(options.get("check_hostname", True))))
        except OSError as exc:  # the web UI link will say so; nothing else depends on it
            log.warning("could not publish the Flink UI endpoint: %s", exc)

    def cluster_address(self) -> ClusterAddress:
        """The cluster's address as the status outputs show it (a link if a browser can
        open it)."""
        return ClusterAddress(self.session.rest_url,
                              browsable=not self.session.needs_client_certificate())

    def _cluster_kind(self) -> str:
        return "remote" if self.session.remote else "embedded"

    def endpoint(self) -> Endpoint:
        """Where the kernel reaches Flink's REST API now."""
        headers: Mapping[str, str] = self.session.rest_headers()
        return Endpoint(self.session.rest_url, dict(headers), self.session.rest_client_options())

    def shutdown(self) -> list[StopOutcome]:
        """Stop the jobs (the embedded cluster's always; a remote cluster's unless
        ``flink.shutdown.stop_jobs`` is false), the threads, then the cluster."""
        outcomes: list[StopOutcome] = []
        settled = self.session.warm.cancel(timeout=WARM_SHUTDOWN_WAIT_S)
        if settled and self.session.started:
            stop_jobs = self.session.interpreter_setting("flink.shutdown.stop_jobs") == "true"
            if stop_jobs or self.session.cluster_is_local():
                outcomes = self.control.stop_all()
        self.autosave.close()
        self.subscriptions.close()
        self.health.close()
        self.tracker.close()
        if settled:
            self.session.close()
        kernel = kernel_id()
        if kernel is not None:
            remove_endpoint(kernel)
        return outcomes
