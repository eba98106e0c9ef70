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

import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cluster import Cluster, LocalCluster, RemoteCluster, remote_environment
from .errors import ClusterError, ConfigurationError
from .gateway import get_gateway
from .interpreter_keys import interpreter_defaults, is_interpreter_key

if TYPE_CHECKING:
    from .conf import ConfEntry
    from .options import OptionRegistry

CATALOG = "default_catalog"
DATABASE = "default_database"
# Each table environment's own built-in catalog is renamed so the shared one can carry the
# familiar name (and SQL job names read "insert-into_default_catalog...").
_PRIVATE_CATALOG = "jupyter_flink_builtin"

def default_job_settings() -> dict[str, str]:
    """Flink settings every job gets unless %%flink.conf says otherwise.

    Checkpoints and savepoints go to Jupyter's data dir and survive a cancel, because
    resuming a cell from its latest checkpoint is the point of recording it.
    """
    from jupyter_core.paths import jupyter_data_dir

    base = Path(jupyter_data_dir()) / "flink"
    return {
        "execution.checkpointing.dir": (base / "checkpoints").as_uri(),
        "execution.checkpointing.savepoint-dir": (base / "savepoints").as_uri(),
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
    }


@dataclass
class ConfLayer:
    """The settings one ``%%flink.conf`` cell contributed (re-running the cell replaces them)."""

    flink: dict[str, str] = field(default_factory=dict)
    interpreter: dict[str, str] = field(default_factory=dict)


class FlinkSession:
    """Configuration, JVM, cluster and environments of one kernel."""

    def __init__(self, *, options: OptionRegistry | None = None,
                 busy: Callable[[], bool] = lambda: False,
                 announce: Callable[[str], None] = lambda message: None):
        self._layers: dict[str, ConfLayer] = {}
        self._options = options
        self.busy = busy  # whether jobs still run: the job registry knows
        self._announce = announce
        self._lock = threading.RLock()
        self.gateway: Any = None
        self.cluster: Cluster | None = None
        self._envs: _Environments | None = None
        self._submissions: list[str] | None = None

    # ----------------------------------------------------------------- configuration

    @property
    def options(self) -> OptionRegistry:
        if self._options is None:
            from .options import OptionRegistry

            self._options = OptionRegistry.load(self._gateway())
        return self._options

    def interpreter_setting(self, key: str) -> str:
        merged = interpreter_defaults()
        for layer in self._layers.values():
            merged.update(layer.interpreter)
        return merged[key]

    def flink_settings(self) -> dict[str, str]:
        """The Flink settings %%flink.conf cells made, in the order the cells last ran."""
        merged: dict[str, str] = {}
        for layer in self._layers.values():
            merged.update(layer.flink)
        return merged

    def job_settings(self) -> dict[str, str]:
        """Defaults plus configured job-scope settings: the base of every job's configuration."""
        settings = default_job_settings()
        settings.update({k: v for k, v in self.flink_settings().items()
                         if self.options.scope(k) == "job"})
        return settings

    def cluster_settings(self) -> dict[str, str]:
        return {k: v for k, v in self.flink_settings().items()
                if self.options.scope(k) == "cluster"}

    def configure(self, source: str, entries: Sequence[ConfEntry]) -> list[str]:
        """Apply one %%flink.conf cell (``source`` identifies it); returns notices.

        Validates everything before changing anything, so a bad line leaves the previous
        configuration in force.
        """
        layer = ConfLayer()
        notices: list[str] = []
        for entry in entries:
            try:
                resolved = self.options.resolve(entry.key, entry.value)
            except ConfigurationError as exc:
                raise ConfigurationError(exc.message, line=entry.line, key=entry.key,
                                         fix=exc.fix, details=exc.details) from exc
            target = layer.interpreter if is_interpreter_key(entry.key) else layer.flink
            target.update(dict(resolved.settings))
            if resolved.notice:
                notices.append(f"Line {entry.line}: {resolved.notice}")
        with self._lock:
            previous = self._layers.pop(source, None)
            self._layers[source] = layer
            try:
                notices.extend(self._apply_to_running_cluster())
            except ConfigurationError:
                if previous is not None:
                    self._layers[source] = previous
                else:
                    self._layers.pop(source, None)
                raise
        return notices

    def reset_configuration(self) -> None:
        with self._lock:
            self._layers.clear()

    def _apply_to_running_cluster(self) -> list[str]:
        """Cluster-scope or mode changes after start: restart the embedded cluster if idle."""
        if self._envs is None or self.cluster is None:
            return []
        mode_changed = self._wanted_mode() != ("local" if self.cluster.is_local else "remote")
        if isinstance(self.cluster, LocalCluster) and not mode_changed:
            if dict(self.cluster.settings) == self.cluster_settings():
                return []
        elif not mode_changed and self.cluster_settings():
            keys = ", ".join(sorted(self.cluster_settings()))
            return [f"{keys}: cluster settings only apply to the embedded cluster; the remote "
                    "cluster keeps its own configuration."]
        elif not mode_changed:
            return []
        if self.busy():
            raise ConfigurationError(
                "These settings only take effect when the cluster (re)starts, and jobs are "
                "still running on it.",
                fix="Stop them first (%flink.cancel --all or %flink.stop --all), then re-run "
                "this cell; or restart the kernel.",
            )
        self._restart()
        return ["The cluster was restarted to apply the new cluster settings."]

    def _wanted_mode(self) -> str:
        return self.interpreter_setting("flink.execution.mode")

    # ----------------------------------------------------------------- lifecycle

    def _gateway(self) -> Any:
        if self.gateway is None:
            self.gateway = get_gateway()
        return self.gateway

    @property
    def started(self) -> bool:
        return self._envs is not None

    def start(self) -> None:
        """Start the JVM, the cluster (local mode) and the environments, once."""
        with self._lock:
            if self._envs is not None:
                return
            gateway = self._gateway()
            cluster = self._make_cluster(gateway)
            cluster.start()
            try:
                self._envs = _Environments.build(gateway, cluster, self._on_submitted)
            except Exception:
                cluster.stop()
                raise
            self.cluster = cluster
            self._announce(self.describe_cluster())

    def describe_cluster(self) -> str:
        if self.cluster is None:
            return "No Flink cluster yet: the embedded one starts with the first job."
        if self.cluster.is_local:
            return (f"Embedded Flink cluster running; REST API at {self.cluster.rest_url} "
                    "(loopback only).")
        return f"Using the remote Flink cluster at {self.cluster.rest_url}."

    def _make_cluster(self, gateway: Any) -> Cluster:
        mode = self._wanted_mode()
        if mode == "local":
            return LocalCluster(gateway, self.cluster_settings())
        host = self.interpreter_setting("flink.execution.remote.host")
        if not host:
            raise ConfigurationError(
                "flink.execution.mode is remote, but flink.execution.remote.host is not set.",
                key="flink.execution.remote.host",
                fix="Add `flink.execution.remote.host <host>` and "
                "`flink.execution.remote.port <port>` to %%flink.conf.",
            )
        headers = self.interpreter_setting("flink.execution.remote.headers")
        return RemoteCluster(
            host=host,
            port=int(self.interpreter_setting("flink.execution.remote.port")),
            https=self.interpreter_setting("flink.execution.remote.https") == "true",
            headers=json.loads(headers) if headers else {},
        )

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
            if cluster is not None:
                cluster.stop()

    # ----------------------------------------------------------------- environments

    @property
    def envs(self) -> _Environments:
        self.start()
        assert self._envs is not None
        return self._envs

    def cluster_is_local(self) -> bool:
        return self.cluster is None or self.cluster.is_local

    def rest_headers(self) -> dict[str, str]:
        """Extra HTTP headers for the REST API (an auth proxy in front of a remote cluster)."""
        return dict(getattr(self.cluster, "headers", None) or {})

    @property
    def rest_url(self) -> str:
        if self.cluster is None:
            raise ClusterError("The Flink cluster is not started yet.")
        return self.cluster.rest_url

    def _on_submitted(self, job_id: str) -> None:
        # Called on py4j's callback thread while the cell's thread waits in the JVM.
        submissions = self._submissions
        if submissions is not None:
            submissions.append(job_id)

    @contextmanager
    def job_scope(self, overrides: Mapping[str, str], *, batch: bool | None = None
                  ) -> Iterator[list[str]]:
        """Configure the environments for the jobs of one cell; yields the submitted job ids.

        ``batch`` picks the environments to configure (None: all of them, for %%flink code).
        What the cell's own code changes in the configuration is kept; what the scope set
        is put back.
        """
        settings = {**self.job_settings(), **overrides}
        envs = self.envs
        configs = envs.configurations(batch)
        with self._lock:
            before = [_snapshot(envs.mapper, c) for c in configs]
            for conf in configs:
                for key, value in settings.items():
                    conf.setString(key, value)
            applied = [_snapshot(envs.mapper, c) for c in configs]
            submitted: list[str] = []
            self._submissions = submitted
        try:
            yield submitted
        finally:
            with self._lock:
                self._submissions = None
                for conf, old, mid in zip(configs, before, applied):
                    _restore_keeping_changes(envs.mapper, conf, old, mid)


@dataclass
class _Environments:
    """senv/stenv for streaming, benv/btenv for batch, one shared catalog."""

    senv: Any
    stenv: Any
    benv: Any
    btenv: Any
    catalog: Any
    mapper: Any
    listener: Any

    @classmethod
    def build(cls, gateway: Any, cluster: Cluster, on_submitted: Any) -> _Environments:
        from pyflink.datastream import StreamExecutionEnvironment
        from pyflink.table import EnvironmentSettings, StreamTableEnvironment

        from .notebook_env import NotebookStreamExecutionEnvironment

        jvm = gateway.jvm
        listener = _JobListener(on_submitted)
        senv = NotebookStreamExecutionEnvironment(remote_environment(gateway, cluster, {}))
        benv = StreamExecutionEnvironment(
            remote_environment(gateway, cluster, {"execution.runtime-mode": "BATCH"}))
        for env in (senv, benv):
            env._j_stream_execution_environment.registerJobListener(listener)
        stenv = StreamTableEnvironment.create(senv, EnvironmentSettings.new_instance()
                                              .in_streaming_mode()
                                              .with_built_in_catalog_name(_PRIVATE_CATALOG)
                                              .build())
        btenv = StreamTableEnvironment.create(benv, EnvironmentSettings.new_instance()
                                              .in_batch_mode()
                                              .with_built_in_catalog_name(_PRIVATE_CATALOG)
                                              .build())
        catalog = jvm.org.apache.flink.table.catalog.GenericInMemoryCatalog(CATALOG, DATABASE)
        mapper = jvm.org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind \
            .ObjectMapper()
        envs = cls(senv, stenv, benv, btenv, catalog, mapper, listener)
        envs.adopt_catalog(catalog)
        _let_any_thread_plan(gateway, stenv)
        return envs

    def adopt_catalog(self, catalog: Any) -> None:
        self.catalog = catalog
        for tenv in (self.stenv, self.btenv):
            tenv._j_tenv.registerCatalog(CATALOG, catalog)
            tenv.use_catalog(CATALOG)
            tenv.use_database(DATABASE)

    def configurations(self, batch: bool | None) -> list[Any]:
        """The live Java Configuration objects a job of this kind is built from."""
        streaming = [self.senv._j_stream_execution_environment.getConfiguration(),
                     self.stenv.get_config().get_configuration()._j_configuration]
        batches = [self.benv._j_stream_execution_environment.getConfiguration(),
                   self.btenv.get_config().get_configuration()._j_configuration]
        if batch is None:
            return streaming + batches
        return batches if batch else streaming


class _JobListener:
    """Flink's JobListener, implemented in Python: sees every job the environments submit."""

    def __init__(self, on_submitted: Any):
        self._on_submitted = on_submitted

    def onJobSubmitted(self, job_client: Any, throwable: Any) -> None:
        if job_client is not None:
            # The id as text now, so that cancelling after an interrupt needs no py4j call.
            self._on_submitted(job_client.getJobID().toHexString())

    def onJobExecuted(self, result: Any, throwable: Any) -> None:
        """Nothing to do: the poller follows jobs to their end."""

    class Java:
        implements = ["org.apache.flink.core.execution.JobListener"]


def _let_any_thread_plan(gateway: Any, tenv: Any) -> None:
    """Work around FLINK-23020: planning fails on py4j threads other than the first one.

    See java/PlannerThreads.java. Both table environments share the planner's classes.
    """
    from .java_helpers import invoke_static, load_class

    fix = load_class(gateway, "PlannerThreads.java", "jupyterflink.PlannerThreads")
    invoke_static(gateway, fix, "install", ["java.lang.Class"],
                  tenv._j_tenv.getPlanner().getClass())


def _snapshot(mapper: Any, conf: Any) -> dict[str, str]:
    # One py4j round trip instead of two per key.
    return dict(json.loads(mapper.writeValueAsString(conf.toMap())))


def _restore_keeping_changes(mapper: Any, conf: Any, before: Mapping[str, str],
                             applied: Mapping[str, str]) -> None:
    """Put ``conf`` back to ``before``, but keep what changed after ``applied``."""
    after = _snapshot(mapper, conf)
    target = dict(before)
    for key, value in after.items():
        if applied.get(key) != value:
            target[key] = value
    for key in applied:
        if key not in after and key in target:
            del target[key]
    for key in set(after) - set(target):
        conf.removeKey(key)
    for key, value in target.items():
        if after.get(key) != value:
            conf.setString(key, value)
