"""Where jobs run: the embedded MiniCluster, or a remote Flink session cluster.

Both are used the same way afterwards: jobs are submitted through a *remote* execution
environment pointing at the cluster's REST endpoint, so local and remote mode share every
code path after start-up (PyFlink's own local mode would start a new MiniCluster per job).
"""

from __future__ import annotations

import contextlib
import threading
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import ClusterError, ConfigurationError, RestError
from ..rest.http import is_loopback
from .gateway import java_configuration, java_error_summary

LOOPBACK = "127.0.0.1"
REACHABILITY_TIMEOUT_S = 5.0

# Defaults for the embedded cluster; the user's %%flink.conf wins for all but the bind
# addresses. The short checkpoint-statistics cache lets the poller see a completed
# checkpoint within ~100 ms instead of up to 3 s (Flink's default cache timeout).
LOCAL_CLUSTER_DEFAULTS: Mapping[str, str] = {
    "taskmanager.numberOfTaskSlots": "8",
    "rest.bind-port": "0",
    "rest.cache.checkpoint-statistics.timeout": "100 ms",
    # Job details and exception histories are cached as long (default 3 s): restarts would
    # be reported late, and what they restored misread.
    "rest.cache.execution-graph.timeout": "100 ms",
    # MiniCluster.close() waits until every savepoint result was fetched or this expired
    # (default 5 min): an unread result must not hold up a kernel shutdown for long.
    "rest.async.store-duration": "30 s",
    # Metrics are fetched from the task managers only when the REST API is asked for them,
    # at most this often (default 10 s): the health charts of the outputs on screen sample
    # every 3 s (jobs/health.py).
    "metrics.fetcher.update-interval": "1 s",
}
# The REST endpoint accepts jar uploads, i.e. runs arbitrary code: loopback only.
_LOOPBACK_ONLY = ("rest.bind-address", "rest.address", "jobmanager.bind-host",
                  "taskmanager.bind-host", "taskmanager.host", "jobmanager.rpc.address")


class Cluster(Protocol):
    """A Flink cluster jobs can be submitted to."""

    host: str
    port: int

    @property
    def rest_url(self) -> str: ...

    @property
    def is_local(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class LocalCluster:
    """A MiniCluster inside PyFlink's JVM, REST bound to 127.0.0.1 on a free port."""

    gateway: Any
    settings: Mapping[str, str] = field(default_factory=dict)
    host: str = LOOPBACK
    port: int = 0
    _mini_cluster: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def is_local(self) -> bool:
        return True

    @property
    def running(self) -> bool:
        return self._mini_cluster is not None

    def effective_settings(self) -> dict[str, str]:
        """Defaults, then the user's cluster settings, then the loopback pins."""
        for key in _LOOPBACK_ONLY:
            value = self.settings.get(key)
            if value is not None and not is_loopback(value):
                raise ConfigurationError(
                    f"{key}={value}: the embedded cluster's REST endpoint can run arbitrary "
                    "code, so it only listens on 127.0.0.1.",
                    key=key,
                    fix="Remove the setting; to share a cluster, start a standalone Flink "
                    "cluster and use flink.execution.mode remote.",
                )
        settings = {**LOCAL_CLUSTER_DEFAULTS, **self.settings}
        if "rest.port" in self.settings and "rest.bind-port" not in self.settings:
            settings["rest.bind-port"] = self.settings["rest.port"]
        settings.update({key: LOOPBACK for key in _LOOPBACK_ONLY})
        return settings

    def start(self) -> None:
        with self._lock:
            if self._mini_cluster is not None:
                return
            settings = self.effective_settings()
            jvm = self.gateway.jvm
            minicluster = jvm.org.apache.flink.runtime.minicluster
            builder = minicluster.MiniClusterConfiguration.Builder()
            builder.setConfiguration(java_configuration(self.gateway, settings))
            builder.setNumTaskManagers(1)
            builder.setNumSlotsPerTaskManager(int(settings["taskmanager.numberOfTaskSlots"]))
            cluster = minicluster.MiniCluster(builder.build())
            try:
                cluster.start()
                url = cluster.getRestAddress().get()
            except Exception as exc:
                _close_quietly(cluster)
                raise ClusterError(
                    f"The embedded Flink cluster did not start: {java_error_summary(exc)}",
                    fix="Check the cluster settings in %%flink.conf (ports, memory, slots).",
                    details=traceback.format_exc(),
                ) from exc
            self.port = url.getPort()
            self._mini_cluster = cluster

    def stop(self) -> None:
        with self._lock:
            cluster, self._mini_cluster = self._mini_cluster, None
            if cluster is not None:
                _close_quietly(cluster)
                self.port = 0


@dataclass
class RemoteCluster:
    """A running Flink session cluster reached through its REST endpoint."""

    host: str
    port: int
    https: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)
    flink_version: str = ""

    @property
    def rest_url(self) -> str:
        return f"{'https' if self.https else 'http'}://{self.host}:{self.port}"

    @property
    def is_local(self) -> bool:
        return False

    def start(self) -> None:
        """Nothing to start, but fail fast and clearly if the cluster cannot be reached."""
        from ..rest import FlinkRestClient

        try:
            with FlinkRestClient(self.rest_url, headers=dict(self.headers),
                                 timeout=REACHABILITY_TIMEOUT_S) as rest:
                version = str(rest.config().get("flink-version", ""))
        except RestError as exc:
            raise ClusterError(
                f"The Flink cluster at {self.rest_url} cannot be reached: {exc.message}",
                fix="Check that it runs, that flink.execution.remote.host and .port name its "
                    "REST endpoint, and https/headers if a proxy is in front of it.",
                details=exc.details) from exc
        self.flink_version = version

    def stop(self) -> None:
        """Remote clusters outlive the kernel."""


def remote_environment(gateway: Any, cluster: Cluster, settings: Mapping[str, str]) -> Any:
    """A Java StreamExecutionEnvironment submitting to ``cluster``, configured with ``settings``."""
    jvm = gateway.jvm
    conf = java_configuration(gateway, settings)
    if getattr(cluster, "https", False):
        conf.setString("security.ssl.rest.enabled", "true")
    no_jars = gateway.new_array(jvm.String, 0)
    return jvm.org.apache.flink.streaming.api.environment.StreamExecutionEnvironment \
        .createRemoteEnvironment(cluster.host, cluster.port, conf, no_jars)


def _close_quietly(mini_cluster: Any) -> None:
    # Closing a half-started cluster may fail; the JVM cleans up when it exits.
    with contextlib.suppress(Exception):
        mini_cluster.close()
