"""The environments of a session: ``senv``/``stenv`` for streaming, ``benv``/``btenv`` for
batch, one shared catalog, and Flink's JobListener that sees every job they submit.

Every job gets its own configuration through :meth:`FlinkSession.job_scope
<jupyter_flink.flink.session.FlinkSession.job_scope>`, which sets keys on the live Java
``Configuration`` objects listed by :meth:`Environments.configurations` and puts back what
was there before (:func:`restore_keeping_changes`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .cluster import Cluster, remote_environment
from .java_helpers import invoke_static, load_class, new_instance

__all__ = ["CATALOG", "DATABASE", "Environments", "Submissions", "restore_keeping_changes",
           "snapshot"]

CATALOG = "default_catalog"
DATABASE = "default_database"
# Each table environment's own built-in catalog is renamed so the shared one can carry the
# familiar name (and SQL job names read "insert-into_default_catalog...").
_PRIVATE_CATALOG = "jupyter_flink_builtin"


@dataclass
class Environments:
    """senv/stenv for streaming, benv/btenv for batch, one shared catalog."""

    senv: Any
    stenv: Any
    benv: Any
    btenv: Any
    catalog: Any
    mapper: Any
    submitted: Any  # java/SubmittedJobs.java, registered on both environments

    @classmethod
    def build(cls, gateway: Any, cluster: Cluster,
              client_settings: Mapping[str, str]) -> Environments:
        from pyflink.datastream import StreamExecutionEnvironment
        from pyflink.table import EnvironmentSettings, StreamTableEnvironment

        from .notebook_env import NotebookStreamExecutionEnvironment

        jvm = gateway.jvm
        listener = new_instance(gateway, load_class(gateway, "SubmittedJobs.java",
                                                    "jupyterflink.SubmittedJobs"))
        senv = NotebookStreamExecutionEnvironment(
            remote_environment(gateway, cluster, client_settings))
        benv = StreamExecutionEnvironment(remote_environment(
            gateway, cluster, {**client_settings, "execution.runtime-mode": "BATCH"}))
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
        """Make ``catalog`` the shared one (after a cluster restart: the previous cluster's,
        so the tables users created survive)."""
        self.catalog = catalog
        for tenv in (self.stenv, self.btenv):
            j_tenv = tenv._j_tenv
            if j_tenv.getCatalog(CATALOG).isPresent():
                # Flink refuses to drop the catalog in use: step onto the built-in one first.
                tenv.use_catalog(_PRIVATE_CATALOG)
                tenv.execute_sql(f"DROP CATALOG {CATALOG}")
            j_tenv.registerCatalog(CATALOG, catalog)
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


class Submissions:
    """The jobs submitted within one job scope, as Flink's JobListener saw them (in the JVM)."""

    def __init__(self, listener: Any):
        self._listener = listener
        self._ids: list[str] = []

    def job_ids(self) -> list[str]:
        drained = self._listener.drain()
        if drained:
            self._ids.extend(drained.split(","))
        return list(self._ids)


def _let_any_thread_plan(gateway: Any, tenv: Any) -> None:
    """Work around FLINK-23020: planning fails on py4j threads other than the first one.

    See java/PlannerThreads.java. Both table environments share the planner's classes.
    """
    fix = load_class(gateway, "PlannerThreads.java", "jupyterflink.PlannerThreads")
    invoke_static(gateway, fix, "install", ["java.lang.Class"],
                  tenv._j_tenv.getPlanner().getClass())


def snapshot(mapper: Any, conf: Any) -> dict[str, str]:
    # One py4j round trip instead of two per key.
    return dict(json.loads(mapper.writeValueAsString(conf.toMap())))


def restore_keeping_changes(mapper: Any, conf: Any, before: Mapping[str, str],
                             applied: Mapping[str, str]) -> None:
    """Put ``conf`` back to ``before``, but keep what changed after ``applied``."""
    after = snapshot(mapper, conf)
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
