"""Saved state and the job that is to restore it, read in the JVM before anything is submitted.

* :func:`saved_operators`: the operators in a checkpoint's or savepoint's ``_metadata``
  (Flink 2.3 stores their names and uids), and whether each holds state;
* :func:`planned_operators`: the operators of the job a SELECT or an INSERT would start, with
  the ids Flink will give them, translated the way ``TableEnvironmentImpl`` does but not
  submitted (run it with the job's configuration in force: parallelism and chaining matter);
* :func:`collect_sink_unlike`: a streaming SELECT's collect sink gets the uid
  ``tableCollectSink_<transformation id>`` (planner ``CollectDynamicSink``), and transformation
  ids come from a JVM-wide counter. Its saved state must never be restored (the old result
  client's offsets break the new one: "userVisibleTail should not be larger than offset"), so
  the counter is raised above the saved sink's number while the SELECT is translated.

Flink internals this relies on, to re-check on a Flink upgrade: the collect sink uid format,
``Transformation.ID_COUNTER`` (java/TransformationIds.java, by reflection), the private
``TableEnvironmentImpl.execEnv`` field, and ``Checkpoints.loadCheckpointMetadata``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .java_helpers import load_class

__all__ = ["COLLECT_UID_PREFIX", "PlannedOperator", "SavedOperator", "collect_sink_unlike",
           "plain_name", "planned_operators", "saved_operators"]

COLLECT_UID_PREFIX = "tableCollectSink_"
_COUNTER_LOCK = threading.Lock()
_EXEC_NODE_NUMBER = re.compile(r"\[\d+\]")


def plain_name(name: str) -> str:
    """An operator name without the planner's node numbers ("GroupAggregate[4]" differs
    between runs of the same query)."""
    return _EXEC_NODE_NUMBER.sub("", name).strip()


@dataclass(frozen=True)
class SavedOperator:
    """One operator's state in a checkpoint or savepoint."""

    operator_id: str
    name: str | None
    uid: str | None
    parallelism: int
    max_parallelism: int
    has_state: bool  # what Flink checks: coordinator state, or any subtask with state

    @property
    def is_collect_sink(self) -> bool:
        return bool(self.uid and self.uid.startswith(COLLECT_UID_PREFIX))

    @property
    def label(self) -> str:
        return plain_name(self.name) if self.name else f"operator {self.operator_id}"


@dataclass(frozen=True)
class PlannedOperator:
    """One operator of a job about to be submitted."""

    operator_id: str  # the id Flink generates (a hash of the uid, or of the topology)
    user_defined_id: str | None
    name: str


def saved_operators(gateway: Any, path: str) -> list[SavedOperator]:
    """The operator states in ``<path>/_metadata`` (read with Flink's own file systems)."""
    jvm = gateway.jvm
    fs_path = jvm.org.apache.flink.core.fs.Path(path.rstrip("/") + "/_metadata")
    stream = fs_path.getFileSystem().open(fs_path)
    try:
        metadata = jvm.org.apache.flink.runtime.checkpoint.Checkpoints.loadCheckpointMetadata(
            jvm.java.io.DataInputStream(stream),
            jvm.Thread.currentThread().getContextClassLoader(), path)
    finally:
        stream.close()
    found = []
    for state in metadata.getOperatorStates().toArray():
        name, uid = state.getOperatorName(), state.getOperatorUid()
        has_state = state.getCoordinatorState() is not None or any(
            sub.hasState() for sub in state.getStates().toArray())
        found.append(SavedOperator(
            operator_id=str(state.getOperatorID().toHexString()),
            name=str(name.get()) if name.isPresent() else None,
            uid=str(uid.get()) if uid.isPresent() else None,
            parallelism=int(state.getParallelism()),
            max_parallelism=int(state.getMaxParallelism()), has_state=bool(has_state)))
    return found


def planned_operators(gateway: Any, tenv: Any, *, query: Any = None,
                      statements: Sequence[str] = ()) -> list[PlannedOperator]:
    """The operators of the job that ``query`` (a Java Table, as a live SELECT executes it)
    or the INSERT ``statements`` (one job, as a statement set) would start."""
    jvm = gateway.jvm
    j_tenv = tenv._j_tenv
    operations = jvm.java.util.ArrayList()
    if query is not None:
        operations.add(jvm.org.apache.flink.table.operations.CollectModifyOperation(
            query.getQueryOperation()))
    for sql in statements:
        operations.add(j_tenv.getParser().parse(sql).get(0))
    transformations = j_tenv.getPlanner().translate(operations)
    impl = jvm.Class.forName("org.apache.flink.table.api.internal.TableEnvironmentImpl")
    field = impl.getDeclaredField("execEnv")
    field.setAccessible(True)
    stream_graph = field.get(j_tenv).createPipeline(
        transformations, j_tenv.getConfig().getConfiguration(), "plan")
    job_graph = stream_graph.getJobGraph(jvm.Thread.currentThread().getContextClassLoader())
    planned = []
    for vertex in job_graph.getVerticesAsArray():
        for pair in vertex.getOperatorIDs().toArray():
            user = pair.getUserDefinedOperatorID()
            planned.append(PlannedOperator(
                operator_id=str(pair.getGeneratedOperatorID().toHexString()),
                user_defined_id=str(user.get().toHexString()) if user.isPresent() else None,
                name=str(pair.getUserDefinedOperatorName() or vertex.getName())))
    return planned


@contextmanager
def collect_sink_unlike(gateway: Any, saved: Sequence[SavedOperator]) -> Iterator[None]:
    """Translate (and submit) with the transformation id counter above the saved collect
    sink's number, so the new collect sink's uid (hence operator id) cannot be the saved one.
    The counter is only ever raised, so ids stay unique."""
    numbers = [int(s.uid[len(COLLECT_UID_PREFIX):]) for s in saved
               if s.is_collect_sink and s.uid and s.uid[len(COLLECT_UID_PREFIX):].isdigit()]
    with _COUNTER_LOCK:
        if numbers:
            _raise_counter(gateway, max(numbers))
        yield


def _raise_counter(gateway: Any, at_least: int) -> None:
    jvm = gateway.jvm
    counter = load_class(gateway, "TransformationIds.java", "jupyterflink.TransformationIds")
    types = gateway.new_array(jvm.Class, 1)
    types[0] = jvm.Integer.TYPE
    args = gateway.new_array(jvm.Object, 1)
    args[0] = at_least
    counter.getMethod("raiseTo", types).invoke(None, args)
