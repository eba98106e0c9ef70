"""One Flink session per kernel: configuration, the cluster, and the environments.

The session owns what ``%%flink.conf`` configured, starts the JVM and the cluster lazily on
the first job, and builds ``senv`` (StreamExecutionEnvironment), ``stenv`` (streaming
StreamTableEnvironment) and ``btenv`` (batch table environment). ``stenv`` and ``btenv``
share one catalog, so a table created in ``%%flink.ssql`` is visible in ``%%flink.bsql``.

Every job gets its own configuration (the conf, plus the cell's properties such as jobName
or the path to restore from) through :meth:`FlinkSession.job_scope`, which sets the keys on
the environments for the duration of one cell and then puts back what was there before:
Flink copies table settings into the execution environment for good, so without the scope
one cell's restore path would leak into the next cell's job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import ClusterError, ConfigurationError
from ..options.interpreter_keys import (
    REMOTE_SSL_KEYS,
    parse_headers,
)
from ..secrets import resolve_references, resolve_settings
from .catalog import CatalogReader
from .cluster import Cluster, LocalCluster, RemoteCluster
from .configuration import HEADERS_KEY, Configuration
from .environments import Environments, Submissions, restore_keeping_changes, snapshot
from .gateway import get_gateway, java_gateway_started
from .tls import ClientTls, PrivateDirectory, remote_client_tls
from .warm import WarmStart

if TYPE_CHECKING:
    from ..options.registry import OptionRegistry, Resolved
    from ..parsing.conf import ConfEntry

# Flink's internal option for the id of the job a pipeline becomes (PipelineOptionsInternal)
FIXED_JOB_ID_KEY = "$internal.pipeline.job-id"


class FlinkSession:
    """Configuration, JVM, cluster and environments of one kernel."""

    def __init__(self, *, options: OptionRegistry | None = None,
                 busy: Callable[[], bool] = lambda: False,
                 announce: Callable[[str], None] = lambda message: None,
                 on_started: Callable[[], None] = lambda: None,
                 kernel_defaults: Mapping[str, str] | None = None):
        self._options = options
        self.config = Configuration(lambda: self.options, kernel_defaults)
        self.busy = busy  # whether jobs still run: the job registry knows
        self._announce = announce
        self._on_started = on_started  # the cluster is ready (e.g. publish its UI endpoint)
        self._lock = threading.RLock()
        self._scope_lock = threading.RLock()
        self.gateway: Any = None
        self.cluster: Cluster | None = None
        self._envs: Environments | None = None
        self._readers: dict[int, CatalogReader] = {}
        self._readers_lock = threading.Lock()  # not _lock: a starting cluster holds that
        # The remote cluster's client TLS, for the raw settings it was made from, and every
        # directory of PKCS12 stores made for it (a running environment may still read one).
        self._remote_tls: tuple[tuple[str, ...], ClientTls] | None = None
        self._remote_tls_dirs: list[PrivateDirectory] = []
        self._connected_to: tuple[str, ...] = ()  # _remote_target() of the running cluster
        self._options_lock = threading.Lock()
        self.warm = WarmStart(self, self._lock)  # the start in the background (warm.py)
        self._unannounced = False  # started in the background, not announced to a cell yet

    # ----------------------------------------------------------------- configuration

    @property
    def options(self) -> OptionRegistry:
        with self._options_lock:  # the warm start may be loading it
            if self._options is None:
                from ..options.registry import OptionRegistry

                self._options = OptionRegistry.load(self._gateway())
            return self._options

    @property
    def loaded_options(self) -> OptionRegistry | None:
        """The option registry if it is loaded already (None: reading it needs the JVM)."""
        return self._options

    def interpreter_default(self, key: str) -> str:
        return self.config.interpreter_default(key)

    def interpreter_setting(self, key: str) -> str:
        return self.config.interpreter_setting(key)

    def flink_settings(self) -> dict[str, str]:
        return self.config.flink_settings()

    def default_settings(self) -> dict[str, str]:
        return self.config.default_settings()

    def job_settings(self) -> dict[str, str]:
        return self.config.job_settings()

    def cluster_settings(self) -> dict[str, str]:
        return self.config.cluster_settings()

    def resolve_flink_setting(self, key: str, value: str) -> Resolved:
        return self.config.resolve_flink_setting(key, value)

    def configure(self, source: str, entries: Sequence[ConfEntry]) -> list[str]:
        """Apply one %%flink.conf cell (``source`` identifies it); returns notices.

        The cell's settings are checked whole first (configuration.py), so a bad line leaves
        the previous configuration in force; cluster settings then restart the embedded
        cluster if no job runs. A warm start not at its cluster yet waits for the result.
        """
        with self.warm.configuring():
            layer, notices = self.config.build(
                entries, jvm_started=lambda: self.gateway is not None or java_gateway_started())
            with self._lock:
                previous = self.config.put(source, layer)
                try:
                    notices.extend(self._apply_to_running_cluster())
                except ConfigurationError:
                    self.config.take_back(source, previous)
                    raise
            return notices

    def reset_configuration(self) -> None:
        with self._lock:
            self.config.reset()

    def _apply_to_running_cluster(self) -> list[str]:
        """Cluster-scope, mode or connection changes after start: restart the embedded
        cluster, or reconnect to the remote one, if no job runs."""
        if self._envs is None or self.cluster is None:
            return []
        mode_changed = self._wanted_mode() != ("local" if self.cluster.is_local else "remote")
        if self._unannounced and not mode_changed and not self.cluster.is_local:
            # warmed for another remote cluster than the one configured now
            mode_changed = self._remote_cluster().rest_url != self.cluster.rest_url
        if isinstance(self.cluster, LocalCluster) and not mode_changed:
            if dict(self.cluster.settings) == self.cluster_settings():
                return []
        elif not mode_changed and self._remote_target() == self._connected_to:
            if not self.cluster_settings():
                return []
            keys = ", ".join(sorted(self.cluster_settings()))
            return [f"{keys}: on a remote cluster these reach only the client side (e.g. TLS "
                    "settings); the cluster keeps its own configuration."]
        if self._unannounced:  # warm, and no cell used it yet: warm again with these settings
            self.stop()
            self.warm.begin()
            return []
        if self.busy():
            raise ConfigurationError(
                "These settings only take effect when the cluster (re)starts, and jobs are "
                "still running on it.",
                fix="Stop them first (%flink.cancel --all or %flink.stop --all), then re-run "
                "this cell; or restart the kernel.",
            )
        self._restart()
        if isinstance(self.cluster, RemoteCluster) and not mode_changed:
            return ["Reconnected to the remote cluster with the new settings."]
        return ["The cluster was restarted to apply the new cluster settings."]

    def _remote_target(self) -> tuple[str, ...]:
        """What a remote cluster is reached with: host, port, HTTPS, client TLS."""
        return tuple(self.interpreter_setting(k) for k in (
            "flink.execution.remote.host", "flink.execution.remote.port",
            "flink.execution.remote.https", *REMOTE_SSL_KEYS))

    def _wanted_mode(self) -> str:
        return self.config.interpreter_setting("flink.execution.mode")

    # ----------------------------------------------------------------- lifecycle

    def _gateway(self) -> Any:
        if self.gateway is None:
            self.gateway = get_gateway()
        return self.gateway

    @property
    def started(self) -> bool:
        return self._envs is not None

    def start(self) -> None:
        """Start the JVM, the cluster (local mode) and the environments, once.

        A start in the background (warm.py) is joined first (if it failed, this starts
        again and raises what fails now). What it started is announced to the first cell
        that uses it, never from the warm thread: its output would land in any cell.
        """
        self.warm.join()
        with self._lock:
            if self._envs is not None:
                self._announce_once()
                return
            gateway = self._gateway()
            cluster = self._make_cluster(gateway)
            cluster.start()
            # A remote cluster's own settings are its business; the client-side ones (TLS,
            # rest.client.*) are among the cluster-scope keys, so the client gets them all.
            client = {} if cluster.is_local else self.cluster_settings()
            try:
                self._envs = Environments.build(gateway, cluster, client)
            except Exception:
                cluster.stop()
                raise
            self.cluster = cluster
            self._connected_to = () if cluster.is_local else self._remote_target()
            self._unannounced = True
            self._announce_once()
            self._on_started()

    def _announce_once(self) -> None:
        if self._unannounced and not self.warm.is_current_thread():
            self._unannounced = False
            self._announce(self.describe_cluster())

    def describe_cluster(self) -> str:
        if self.cluster is None and self.warm.in_flight:
            return "Flink is starting in the background; the first Flink cell waits for it."
        if self.cluster is None:
            return "No Flink cluster yet: the embedded one starts with the first job."
        if self.cluster.is_local:
            # No URL to click: a browser lacks the certificate (Jupyter would link it)
            address = self.cluster.rest_url.split("://", 1)[-1]
            return (f"Embedded Flink cluster running on {address} (HTTPS, loopback only; only "
                    "clients holding this kernel's certificate get in). Your browser opens its "
                    "web UI through Jupyter: the 'Flink UI' link of a job's output.")
        tls = self.cluster.client_tls()
        how = " with a client certificate" if tls is not None and tls.certificate else ""
        return f"Using the remote Flink cluster at {self.cluster.rest_url}{how}."

    def _make_cluster(self, gateway: Any) -> Cluster:
        if self._wanted_mode() == "local":
            return LocalCluster(gateway, self.cluster_settings())
        return self._remote_cluster()

    def _remote_cluster(self) -> RemoteCluster:
        host = self.interpreter_setting("flink.execution.remote.host")
        if not host:
            raise ConfigurationError(
                "flink.execution.mode is remote, but flink.execution.remote.host is not set.",
                key="flink.execution.remote.host",
                fix="Add `flink.execution.remote.host <host>` and "
                "`flink.execution.remote.port <port>` to %%flink.conf.",
            )
        return RemoteCluster(
            host=host,
            port=int(self.interpreter_setting("flink.execution.remote.port")),
            https=self.interpreter_setting("flink.execution.remote.https") == "true",
            headers=self.rest_headers(),
            tls=self._remote_client_tls(),
        )

    def _remote_client_tls(self) -> ClientTls | None:
        """The client TLS of flink.execution.remote.ssl.* (None without them), made once per
        configuration: the PKCS12 stores Flink's client reads go in a private directory."""
        raw = tuple(self.interpreter_setting(k) for k in REMOTE_SSL_KEYS)
        values = dict(zip(REMOTE_SSL_KEYS, raw))
        prefix = "flink.execution.remote.ssl."
        if not any(values[prefix + name] for name in ("ca", "cert", "key")):
            return None
        with self._lock:
            if self._remote_tls is not None and self._remote_tls[0] == raw:
                return self._remote_tls[1]

            def path(name: str) -> str | None:
                key = prefix + name
                return resolve_references(values[key], key=key) or None
            tls, directory = remote_client_tls(
                ca=path("ca"), cert=path("cert"), key=path("key"),
                key_password=path("key-password"),
                verify_hostname=values[prefix + "verify-hostname"] == "true")
            if directory is not None:
                self._remote_tls_dirs.append(directory)
            self._remote_tls = (raw, tls)
            return tls

    def _restart(self) -> None:
        catalog = self._envs.catalog if self._envs else None
        self.stop()
        self.start()
        if catalog is not None and self._envs is not None:
            self._envs.adopt_catalog(catalog)

    def stop(self) -> None:
        """Stop the embedded cluster (remote clusters are left alone)."""
        with self._lock:
            cluster, self.cluster = self.cluster, None
            self._envs = None
            self._unannounced = False
            with self._readers_lock:
                self._readers.clear()
            if cluster is not None:
                cluster.stop()

    def close(self) -> None:
        """Stop, and delete the TLS files made for a remote cluster's client (shutdown)."""
        with self._lock:
            self.stop()
            self._remote_tls = None
            for directory in self._remote_tls_dirs:
                directory.remove()
            self._remote_tls_dirs.clear()

    # ----------------------------------------------------------------- environments

    @property
    def envs(self) -> Environments:
        self.start()
        assert self._envs is not None
        return self._envs

    def catalog_reader(self, *, batch: bool = False) -> CatalogReader | None:
        """The catalog of ``stenv`` (``btenv`` if ``batch``) as completion reads it; None
        while the session has not started (this never starts it)."""
        envs = self._envs
        if envs is None:
            return None
        tenv = envs.btenv if batch else envs.stenv
        with self._readers_lock:
            if id(tenv) not in self._readers:
                self._readers[id(tenv)] = CatalogReader(self._gateway(), tenv)
            return self._readers[id(tenv)]

    def cluster_is_local(self) -> bool:
        return self.cluster is None or self.cluster.is_local

    def rest_headers(self) -> dict[str, str]:
        """Extra HTTP headers for the REST API (an auth proxy in front of a remote cluster)."""
        if self._wanted_mode() == "local":
            return {}
        text = self.interpreter_setting(HEADERS_KEY)
        return parse_headers(resolve_references(text, key=HEADERS_KEY))

    def needs_client_certificate(self) -> bool:
        """Whether the cluster's REST API (and web UI) takes only clients with a certificate
        (the embedded cluster always; a remote one with flink.execution.remote.ssl.cert)."""
        if self.cluster is not None:
            tls = self.cluster.client_tls()
        elif self._wanted_mode() == "local":
            return True
        else:
            tls = self._remote_client_tls()
        return tls is not None and tls.certificate is not None

    def rest_client_options(self) -> dict[str, Any]:
        """TLS options for the kernel's REST client: the embedded cluster's client certificate,
        or a remote cluster's CA and client certificate."""
        if self.cluster is not None:
            tls = self.cluster.client_tls()
        elif self._wanted_mode() == "remote":
            tls = self._remote_client_tls()
        else:
            tls = None
        return tls.rest_options() if tls is not None else {}

    @property
    def rest_url(self) -> str:
        """The cluster's REST URL; a remote cluster's is known before anything started."""
        if self.cluster is not None:
            return self.cluster.rest_url
        if self._wanted_mode() == "remote":
            return self._remote_cluster().rest_url
        raise ClusterError("The embedded Flink cluster is not started yet.")

    @property
    def remote(self) -> bool:
        return self._wanted_mode() == "remote"

    @contextmanager
    def submitting_as(self, job_id: str | None) -> Iterator[None]:
        """A streaming job submitted in the block gets the id ``job_id`` (Flink's
        ``$internal.pipeline.job-id``); only in the block: another job of the cell (a CREATE
        TABLE ... AS SELECT before its INSERT) must not get the same id."""
        if job_id is None:
            yield
            return
        configs = self.envs.configurations(False)
        for conf in configs:
            conf.setString(FIXED_JOB_ID_KEY, job_id)
        try:
            yield
        finally:
            for conf in configs:
                conf.removeKey(FIXED_JOB_ID_KEY)

    @contextmanager
    def job_scope(self, overrides: Mapping[str, str], *, batch: bool | None = None
                  ) -> Iterator[Submissions]:
        """Configure the environments for the jobs of one cell; yields what it submits.

        ``batch`` picks the environments to configure (None: all of them, for %%flink code).
        What the cell's own code changes in the configuration is kept; what the scope set
        is put back.
        """
        settings = resolve_settings({**self.job_settings(), **overrides})
        envs = self.envs
        configs = envs.configurations(batch)
        # One scope at a time: the environments are shared, and a cell resubmitted in the
        # background (restartPolicy) must not mix its settings with a cell running now.
        with self._scope_lock:
            before = [snapshot(envs.mapper, c) for c in configs]
            for conf in configs:
                for key, value in settings.items():
                    conf.setString(key, value)
            applied = [snapshot(envs.mapper, c) for c in configs]
            envs.submitted.drain()  # nothing from before this scope
            try:
                yield Submissions(envs.submitted)
            finally:
                for conf, old, mid in zip(configs, before, applied):
                    restore_keeping_changes(envs.mapper, conf, old, mid)
