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
from ..secrets import resolve_settings
from .gateway import java_configuration, java_error_summary
from .memory import LOCAL_MEMORY_DEFAULTS
from .tls import ClientTls, KernelTls, kernel_tls

LOOPBACK = "127.0.0.1"
REACHABILITY_TIMEOUT_S = 5.0
# An origin no page can have (.invalid is reserved, RFC 2606): Flink echoes this value in
# Access-Control-Allow-Origin whatever the request's Origin, so no browser lets a page read
# an answer. Flink's default is "*".
NO_ORIGIN = "https://jupyter-flink.invalid"

# Defaults for the embedded cluster; the user's %%flink.conf wins for all but the pinned
# settings below. The short checkpoint-statistics cache lets the poller see a completed
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
    **LOCAL_MEMORY_DEFAULTS,  # managed and network memory sized for a laptop (memory.py)
    # Metrics are fetched from the task managers only when the REST API is asked for them,
    # at most this often (default 10 s): the health charts of the outputs on screen sample
    # every 3 s (jobs/health.py).
    "metrics.fetcher.update-interval": "1 s",
}
# The embedded cluster runs code as the notebook's user: only this kernel may reach it.
# Loopback binds keep other machines out; mutual TLS (the kernel's own key pair, tls.py)
# keeps other local users and web pages out of REST and the blob server; jar upload is off
# and no cross-origin page may read an answer. %%flink.conf cannot change any of it.
_LOOPBACK_ONLY = ("rest.bind-address", "rest.address", "jobmanager.bind-host",
                  "taskmanager.bind-host", "taskmanager.host", "jobmanager.rpc.address")
_TLS_PREFIXES = ("security.ssl.rest.", "security.ssl.internal.")
_FIXED: Mapping[str, str] = {"web.submit.enable": "false",
                             "web.access-control-allow-origin": NO_ORIGIN}
_WHY = ("the embedded cluster runs code as you, so only this kernel may reach it (issue 11: "
        "otherwise any local process or web page could)")
_REMOTE_FIX = ("Remove the setting; to share a cluster or choose its security settings, start "
               "a standalone Flink cluster and use flink.execution.mode remote.")


def check_embedded_settings(settings: Mapping[str, str]) -> None:
    """ConfigurationError for a setting that would open the embedded cluster to others."""
    for key, value in settings.items():
        if key in _LOOPBACK_ONLY and not is_loopback(value):
            raise ConfigurationError(
                f"{key}={value}: the embedded cluster listens on 127.0.0.1 only: {_WHY}.",
                key=key, fix=_REMOTE_FIX)
        if key.startswith(_TLS_PREFIXES):
            raise ConfigurationError(
                f"{key}: the embedded cluster's REST endpoint and blob server use TLS with a "
                "key pair made for this kernel, and its REST endpoint takes no client without "
                f"this kernel's certificate: {_WHY}. jupyter-flink sets security.ssl.rest.* "
                "and security.ssl.internal.* itself.", key=key, fix=_REMOTE_FIX)
        if key in _FIXED and value.strip().lower() != _FIXED[key]:
            what = ("would accept jar uploads, i.e. run any code sent to it"
                    if key == "web.submit.enable" else
                    "would let web pages of that origin read its answers")
            raise ConfigurationError(
                f"{key}={value}: the embedded cluster {what}: {_WHY}. jupyter-flink sets "
                f"{key} to {_FIXED[key]}.", key=key, fix=_REMOTE_FIX)


class Cluster(Protocol):
    """A Flink cluster jobs can be submitted to."""

    host: str
    port: int

    @property
    def rest_url(self) -> str: ...

    @property
    def is_local(self) -> bool: ...

    def client_tls(self) -> ClientTls | None:
        """How clients reach it over TLS (None: plain HTTP)."""
        ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class LocalCluster:
    """A MiniCluster inside PyFlink's JVM, REST bound to 127.0.0.1 on a free port, reachable
    only with this kernel's client certificate."""

    gateway: Any
    settings: Mapping[str, str] = field(default_factory=dict)
    host: str = LOOPBACK
    port: int = 0
    tls: KernelTls | None = None
    _mini_cluster: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def rest_url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def is_local(self) -> bool:
        return True

    @property
    def running(self) -> bool:
        return self._mini_cluster is not None

    def client_tls(self) -> ClientTls | None:
        return self.tls.client() if self.tls is not None else None

    def effective_settings(self, tls: KernelTls) -> dict[str, str]:
        """Defaults, then the user's cluster settings (references resolved), then the pins:
        loopback, TLS with ``tls``, no jar submission, no cross-origin answers."""
        check_embedded_settings(self.settings)
        settings = {**LOCAL_CLUSTER_DEFAULTS, **resolve_settings(self.settings)}
        if "rest.port" in self.settings and "rest.bind-port" not in self.settings:
            settings["rest.bind-port"] = settings["rest.port"]
        settings.update({key: LOOPBACK for key in _LOOPBACK_ONLY})
        settings.update(_FIXED)
        settings.update(tls.server_settings())
        return settings

    def start(self) -> None:
        with self._lock:
            if self._mini_cluster is not None:
                return
            check_embedded_settings(self.settings)
            tls = kernel_tls()
            try:
                self._start(tls)
            except BaseException:
                tls.remove()
                raise
            self.tls = tls

    def _start(self, tls: KernelTls) -> None:
        settings = self.effective_settings(tls)
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
            tls, self.tls = self.tls, None
            if cluster is not None:
                _close_quietly(cluster)
                self.port = 0
            if tls is not None:
                tls.remove()


@dataclass
class RemoteCluster:
    """A running Flink session cluster reached through its REST endpoint."""

    host: str
    port: int
    https: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)
    tls: ClientTls | None = None  # CA, client certificate (flink.execution.remote.ssl.*)
    flink_version: str = ""

    @property
    def rest_url(self) -> str:
        return f"{'https' if self.https or self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def is_local(self) -> bool:
        return False

    def client_tls(self) -> ClientTls | None:
        if self.tls is None and self.https:
            return ClientTls(None, flink_settings={"security.ssl.rest.enabled": "true"})
        return self.tls

    def start(self) -> None:
        """Nothing to start, but fail fast and clearly if the cluster cannot be reached."""
        from ..rest import FlinkRestClient

        tls = self.client_tls()
        options = tls.rest_options() if tls is not None else {}
        try:
            with FlinkRestClient(self.rest_url, headers=dict(self.headers),
                                 timeout=REACHABILITY_TIMEOUT_S, **options) as rest:
                version = str(rest.config().get("flink-version", ""))
        except RestError as exc:
            refusal = cluster_refusal(self.rest_url, exc)
            if refusal is not None:
                raise refusal from exc
            raise ClusterError(
                f"The Flink cluster at {self.rest_url} cannot be reached: {exc.message}",
                fix="Check that it runs, that flink.execution.remote.host and .port name its "
                    "REST endpoint, and https, flink.execution.remote.ssl.* (TLS) or headers "
                    "if it wants them.",
                details=exc.details) from exc
        self.flink_version = version

    def stop(self) -> None:
        """Remote clusters outlive the kernel."""


def cluster_refusal(url: str, exc: RestError) -> ClusterError | None:
    """The error for a cluster that answered but refused this kernel (401, 403, 407: an
    authenticating proxy in front of it, or its TLS); None for any other failure."""
    if exc.status not in (401, 403, 407):
        return None
    return ClusterError(
        f"The Flink cluster at {url} answers but refuses this kernel (HTTP {exc.status}: "
        f"{exc.message})",
        fix="Give it what it asks of its clients: flink.execution.remote.headers (for example "
            "an Authorization header, written as ${env:NAME} to keep it out of the notebook) "
            "or flink.execution.remote.ssl.* for a client certificate.",
        details=exc.details)


def remote_environment(gateway: Any, cluster: Cluster, settings: Mapping[str, str]) -> Any:
    """A Java StreamExecutionEnvironment submitting to ``cluster``, configured with ``settings``
    and the client side of the cluster's TLS settings (Flink's client: job submission, the
    results of collect() and live tables)."""
    jvm = gateway.jvm
    tls = cluster.client_tls()
    conf = java_configuration(gateway, {**resolve_settings(settings),
                                        **(tls.flink_settings if tls is not None else {})})
    no_jars = gateway.new_array(jvm.String, 0)
    return jvm.org.apache.flink.streaming.api.environment.StreamExecutionEnvironment \
        .createRemoteEnvironment(cluster.host, cluster.port, conf, no_jars)


def _close_quietly(mini_cluster: Any) -> None:
    # Closing a half-started cluster may fail; the JVM cleans up when it exits.
    with contextlib.suppress(Exception):
        mini_cluster.close()
