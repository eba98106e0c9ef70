"""Small typed views of how a job runs, from Flink's REST answers, for the poller and the
health monitor: task and slot counts (``GET /jobs/overview``, ``GET /overview``), a job's
vertices and plan (``GET /jobs/{id}``) and aggregated subtask metrics
(``GET /jobs/{id}/vertices/{vid}/subtasks/metrics``), shapes checked against Flink 2.3.0.
Missing or null fields give None rather than errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .fields import as_int, as_mapping


@dataclass(frozen=True)
class TaskCounts:
    """How many of a job's tasks are in which state (``tasks`` of ``GET /jobs/overview``)."""

    total: int
    running: int
    scheduled: int  # waiting for a slot
    waiting: int  # created, scheduled, deploying or initializing: not running yet
    finished_or_ending: int = 0  # finished, canceling, canceled, failed

    @property
    def all_running(self) -> bool:
        return self.total > 0 and self.running + self.finished_or_ending >= self.total


def task_counts(job_overview: Mapping[str, Any]) -> TaskCounts | None:
    """The task counts of one entry of ``GET /jobs/overview`` (None if it has none), or of
    a job's details (``GET /jobs/{id}``: ``status-counts``)."""
    body = as_mapping(job_overview)
    tasks = as_mapping(body.get("tasks")) or as_mapping(body.get("status-counts"))
    if not tasks:
        return None
    count = {str(key).lower(): as_int(value) for key, value in tasks.items()}
    count.setdefault("total", sum(count.values()))
    waiting = sum(count.get(key, 0) for key in ("created", "scheduled", "deploying",
                                                 "initializing", "reconciling"))
    ending = sum(count.get(key, 0) for key in ("finished", "canceling", "canceled", "failed"))
    return TaskCounts(total=count.get("total", 0), running=count.get("running", 0),
                      scheduled=count.get("scheduled", 0), waiting=waiting,
                      finished_or_ending=ending)


@dataclass(frozen=True)
class SlotCounts:
    """The task slots of a cluster (``GET /overview``)."""

    total: int
    available: int


def slot_counts(overview: Mapping[str, Any]) -> SlotCounts:
    body = as_mapping(overview)
    return SlotCounts(total=as_int(body.get("slots-total")),
                      available=as_int(body.get("slots-available")))


@dataclass(frozen=True)
class Vertex:
    """One task of a job graph: a chain of operators, run by ``parallelism`` subtasks."""

    id: str
    name: str
    parallelism: int
    inputs: tuple[str, ...]  # ids of the vertices it reads from

    @property
    def operators(self) -> tuple[str, ...]:
        """The chained operators' names, in order (Flink names a vertex "a -> b -> c")."""
        return tuple(part.strip() for part in self.name.split(" -> ") if part.strip())


@dataclass(frozen=True)
class JobGraph:
    """A job's vertices and how they connect (``GET /jobs/{id}``: ``vertices`` and ``plan``)."""

    vertices: tuple[Vertex, ...]

    @property
    def sources(self) -> tuple[Vertex, ...]:
        """The vertices that read from no other vertex: where records enter the job."""
        return tuple(vertex for vertex in self.vertices if not vertex.inputs)

    @property
    def sinks(self) -> tuple[Vertex, ...]:
        """The vertices no other vertex reads from: where records leave the job."""
        read = {source for vertex in self.vertices for source in vertex.inputs}
        return tuple(vertex for vertex in self.vertices if vertex.id not in read)


def job_graph(details: Mapping[str, Any]) -> JobGraph:
    """The graph of ``GET /jobs/{id}``: vertices in Flink's order, inputs from the plan."""
    body = as_mapping(details)
    inputs: dict[str, tuple[str, ...]] = {}
    nodes = as_mapping(body.get("plan")).get("nodes")
    for node in nodes if isinstance(nodes, list) else []:
        node = as_mapping(node)
        edges = node.get("inputs")
        inputs[str(node.get("id"))] = tuple(
            str(as_mapping(edge).get("id")) for edge in edges if as_mapping(edge).get("id")
        ) if isinstance(edges, list) else ()
    vertices = body.get("vertices")
    return JobGraph(tuple(
        Vertex(id=str(vertex.get("id")), name=str(vertex.get("name") or ""),
               parallelism=as_int(vertex.get("parallelism")),
               inputs=inputs.get(str(vertex.get("id")), ()))
        for vertex in (as_mapping(v) for v in (vertices if isinstance(vertices, list) else []))
        if vertex.get("id")))


# Flink reports a watermark that has not been set yet as Long.MIN_VALUE.
_NO_WATERMARK = -(2**63) + 1


def aggregated_metrics(body: Any) -> dict[str, dict[str, float]]:
    """``GET .../subtasks/metrics?get=...&agg=...`` as ``{metric: {"min": .., "max": ..}}``.

    Values Flink cannot compute ("NaN", e.g. a source task's busy time) are left out, and
    so is a watermark that was never set.
    """
    result: dict[str, dict[str, float]] = {}
    for entry in body if isinstance(body, list) else []:
        entry = as_mapping(entry)
        name = entry.get("id")
        if not isinstance(name, str):
            continue
        values = {}
        for agg in ("min", "max", "avg", "sum", "skew"):
            value = _float(entry.get(agg))
            if value is not None and not (name.endswith("Watermark")
                                          and value <= _NO_WATERMARK):
                values[agg] = value
        if values:
            result[name] = values
    return result


def metric_values(body: Any) -> dict[str, float]:
    """``GET /jobs/{id}/metrics?get=...`` as ``{metric: value}`` (numbers only)."""
    result = {}
    for entry in body if isinstance(body, list) else []:
        entry = as_mapping(entry)
        value = _float(entry.get("value"))
        if isinstance(entry.get("id"), str) and value is not None:
            result[entry["id"]] = value
    return result


def metric_names(body: Any) -> tuple[str, ...]:
    """The names ``GET .../subtasks/metrics`` (without ``get``) lists."""
    return tuple(str(as_mapping(entry).get("id")) for entry in (body if isinstance(body, list)
                                                              else [])
                 if as_mapping(entry).get("id"))


def operator_metric(names: tuple[str, ...], operator: str, metric: str) -> str | None:
    """The name under which Flink reports ``metric`` of the chained ``operator``.

    Flink prefixes an operator's metrics with its name, cut to 80 characters and with what
    is not a letter, digit or bracket replaced ("Source: src[1]" becomes "Source__src[1]").
    """
    wanted = _metric_key(operator)
    suffix = "." + metric
    for name in names:
        if not name.endswith(suffix) or not wanted:
            continue
        prefix = name[:-len(suffix)]
        key = _metric_key(prefix)
        if key == wanted or (len(prefix) >= _OPERATOR_NAME_LIMIT and key and
                             wanted.startswith(key)):
            return name
    return None


_OPERATOR_NAME_LIMIT = 80  # Flink's metrics cut operator names to this length


def _metric_key(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z\[\]]", "", name)


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and number not in (float("inf"), float("-inf")) else None
