"""How the jobs that someone is looking at are doing: records in and out per second, the
busiest task's busy and backpressured shares, the watermark lag, checkpoint durations and
sizes, over the last few minutes.

Metrics cost requests (one per vertex of a job per sample) and work in Flink's JobManager,
so they are fetched only for the jobs whose output a frontend shows (:meth:`HealthMonitor.show`),
on a thread of their own every ``interval_s``. Checkpoint durations and sizes come free with
what the poller reads anyway (Flink's checkpoint history), so they are kept for every job.

Definitions, from Flink's task and operator metrics (one aggregated request per vertex):

* records in: what the sources emit (the first operator of each source vertex,
  ``<operator>.numRecordsOut``), per second over the last few samples;
* records out: what reaches the sinks (the last operator of each vertex no other reads from,
  ``<operator>.numRecordsIn``), per second;
* busy and backpressured: the largest ``busyTimeMsPerSecond`` / ``backPressuredTimeMsPerSecond``
  of any subtask, as Flink's web UI colours its job graph;
* watermark lag: the sample's time minus the smallest ``currentInputWatermark`` of the vertices
  that read from others (absent when no watermark was ever set: no event time). Flink answers
  a request for metrics with those it fetched last and fetches anew behind it, so the figure
  includes up to one sample interval of their age.

Flink refreshes the metrics it serves at most every ``metrics.fetcher.update-interval`` (10 s
by default; 1 s on the embedded cluster) and only when asked, so a sample whose counters did
not move keeps the previous rate until they do (or until they stood still for ``STALE_S``);
rates are timed by the job's running time that came with the same fetch, not by when we
asked (:class:`_Counter`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..errors import RestError
from ..rest import CheckpointStat, FlinkRestClient, JobGraph, Vertex, job_graph, operator_metric
from .registry import TrackedJob

__all__ = ["CheckpointPoint", "HealthMonitor", "HealthSample", "JobHealth"]

log = logging.getLogger(__name__)

# Flink updates its busy, idle and backpressured times and its per-second rates every 5 s
# (the metric views' update interval): sampling more often shows the same figures again.
HEALTH_INTERVAL_S = 5.0
SPAN_S = 300.0  # the charts show the last five minutes
STALE_S = 15.0  # counters standing still this long mean a rate of zero
MIN_RATE_SPAN_S = 2.5  # a rate over a shorter span is mostly the counters' varying age
RATE_MOVES = 4  # a rate spans the counter's last moves (20 s at one sample each 5 s) ...
RATE_WINDOW_S = 60.0  # ... within the last minute, as Flink's own meters do
MAX_METRIC_LOOKUPS = 20  # listings of a job's metric names, while some are missing
MAX_CHECKPOINT_POINTS = 60

_SHARES = ("busyTimeMsPerSecond", "backPressuredTimeMsPerSecond")
_WATERMARK = "currentInputWatermark"
_JOB_CLOCKS = ("runningTime", "uptime")  # ms the job has run (uptime: before Flink 1.16)


@dataclass(frozen=True)
class HealthSample:
    """One look at a running job's metrics (None: not known, e.g. no event time)."""

    at_ms: int
    records_in: float | None = None  # per second
    records_out: float | None = None
    busy: float | None = None  # 0..1, the busiest subtask
    backpressured: float | None = None  # 0..1, the most backpressured subtask
    watermark_lag_ms: int | None = None


@dataclass(frozen=True)
class CheckpointPoint:
    """One completed checkpoint: when, how long it took, how much state it covers."""

    id: int
    at_ms: int
    duration_ms: int
    size: int


@dataclass(frozen=True)
class JobHealth:
    """What the charts of one job show."""

    samples: tuple[HealthSample, ...] = ()
    checkpoints: tuple[CheckpointPoint, ...] = ()
    busiest: str | None = None  # the vertex with the busiest subtask, at the last sample

    @property
    def latest(self) -> HealthSample | None:
        return self.samples[-1] if self.samples else None


@dataclass
class _Counter:
    """When a records counter moved, for its rate per second.

    Each counter Flink serves is up to one fetch interval old (and a poll of the job's
    details starts a fetch at any moment), so a rate by the clock of our requests swings with
    that age (a steady 50/s read 25/s, then 75/s): times are the job's running time as the
    same fetch saw it (:func:`_measure`), the wall clock only when Flink reports none. A rate
    spans the counter's last RATE_MOVES moves, at most RATE_WINDOW_S back (a source emits in
    bursts; the wall clock's error shrinks with the span). Only moves: a look at a
    counter standing still (the first, or after it stood still or was reset) does not say
    when it started moving again, and as a base it would pull the rates down for a while.
    A counter standing still keeps its rate (a windowed sink writes in bursts) until STALE_S
    have passed: then it is zero. Over less than MIN_RATE_SPAN_S (a sample taken early, as a
    new frontend subscribes) the last rate is kept.
    """

    moves: deque[tuple[float, float]] = field(default_factory=deque)  # (value, time)
    look: tuple[float, float] | None = None  # standing still (or not known) since then
    clock: str = "wall"  # of the times: "job" (its running time) or "wall"

    def restart(self, value: float | None, now: float, clock: str) -> None:
        self.clock = clock
        self.moves.clear()
        self.look = None if value is None else (value, now)

    def moved(self, value: float, now: float) -> float:
        """Its rate, now that it moved to ``value``."""
        moves = self.moves
        moves.append((value, now))
        while len(moves) > 2 and (len(moves) > RATE_MOVES + 1 or
                                  now - moves[0][1] > RATE_WINDOW_S):
            moves.popleft()
        base = moves[0] if len(moves) > 1 else self.look
        assert base is not None  # it moved from somewhere
        return (value - base[0]) / (now - base[1])


@dataclass
class _JobState:
    samples: deque[HealthSample]
    checkpoints: deque[CheckpointPoint] = field(
        default_factory=lambda: deque(maxlen=MAX_CHECKPOINT_POINTS))
    graph: JobGraph | None = None
    queries: dict[str, tuple[str, ...]] = field(default_factory=dict)  # vertex -> metrics
    incomplete: set[str] = field(default_factory=set)  # vertices to list the metrics of again
    lookups: int = 0  # times their metrics were listed
    rates: tuple[float | None, float | None] = (None, None)  # records in, out per second
    counters: tuple[_Counter, _Counter] = field(  # records in, records out
        default_factory=lambda: (_Counter(), _Counter()))
    busiest: str | None = None


class HealthMonitor:
    """Samples the metrics of the jobs someone looks at; a listener of the job tracker.

    ``rest`` gives this monitor's own REST client (threads never share one); ``on_sample``
    is called with a job id after each new sample of it (on the monitor's thread).
    """

    def __init__(self, rest: Callable[[], FlinkRestClient], *,
                 get_job: Callable[[str], TrackedJob | None],
                 on_sample: Callable[[str], None] = lambda job_id: None,
                 interval_s: float = HEALTH_INTERVAL_S):
        self._rest = rest
        self._get_job = get_job
        self.on_sample = on_sample
        self.interval_s = interval_s
        self._jobs: dict[str, _JobState] = {}
        self._merged: dict[str, tuple[CheckpointStat, ...]] = {}  # history merged last, by job
        self._shown: frozenset[str] = frozenset()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- interface

    def show(self, job_ids: Iterable[str]) -> None:
        """Sample these jobs from now on (and no others): their outputs are on screen."""
        shown = frozenset(job_ids)
        with self._lock:
            if shown == self._shown:
                return
            added = shown - self._shown
            self._shown = shown
        if shown and not self._stop.is_set():
            self._ensure_thread()
            if added:
                self._wake.set()  # a first sample now, not in an interval

    @property
    def shown(self) -> frozenset[str]:
        return self._shown

    def health(self, job_id: str) -> JobHealth | None:
        with self._lock:
            state = self._jobs.get(job_id)
            if state is None:
                return None
            return JobHealth(tuple(state.samples), tuple(state.checkpoints), state.busiest)

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # ----------------------------------------------------------------- JobListener

    def job_tracked(self, job: TrackedJob) -> None:
        self._merge_checkpoints(job)

    def job_changed(self, job: TrackedJob, *, urgent: bool) -> None:
        self._merge_checkpoints(job)

    def job_ended(self, job: TrackedJob) -> None:
        # An ended job shows no charts: its samples would only pile up, job after job
        with self._lock:
            self._jobs.pop(job.job_id, None)
            self._merged.pop(job.job_id, None)

    def _merge_checkpoints(self, job: TrackedJob) -> None:
        """Keep the completed checkpoints Flink lists, beyond its short history."""
        if job.ended:
            return  # see job_ended
        recent = job.recent_checkpoints
        if not recent or self._merged.get(job.job_id) is recent:
            return  # the same history (a job's copies share it) is merged already
        self._merged[job.job_id] = recent
        completed = [stat for stat in recent if stat.status == "COMPLETED"]
        with self._lock:
            state = self._state(job.job_id)
            newest = state.checkpoints[-1].id if state.checkpoints else -1
            for stat in sorted(completed, key=lambda stat: stat.id):
                if stat.id > newest:
                    state.checkpoints.append(CheckpointPoint(
                        stat.id, stat.ended_at_ms, stat.duration_ms, stat.state_size))

    def _state(self, job_id: str) -> _JobState:
        state = self._jobs.get(job_id)
        if state is None:
            state = self._jobs[job_id] = _JobState(
                deque(maxlen=int(SPAN_S / self.interval_s) + 1))
        return state

    # ----------------------------------------------------------------- sampling

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="flink-job-health",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            for job_id in sorted(self._shown):
                if self._stop.is_set():
                    return
                job = self._get_job(job_id)
                if job is None or job.state != "RUNNING":
                    continue
                try:
                    sampled = self.sample(job_id)
                except RestError as exc:
                    log.debug("sampling the health of %s failed: %s", job_id, exc.message)
                    with self._lock:
                        self._state(job_id).graph = None  # read it afresh next time
                    continue
                except Exception:  # a bug must not stop the charts of every job
                    log.exception("sampling the health of %s failed", job_id)
                    continue
                if sampled:
                    self.on_sample(job_id)
            if not self._shown:
                self._wake.wait()  # nobody looks: sleep until somebody does
            else:
                self._wake.wait(max(0.0, self.interval_s - (time.monotonic() - started)))
            self._wake.clear()

    def sample(self, job_id: str) -> bool:
        """Take one sample of ``job_id`` (on the monitor's thread); whether one was taken."""
        rest = self._rest()
        with self._lock:
            state = self._state(job_id)
            graph, queries, incomplete = state.graph, dict(state.queries), set(state.incomplete)
        if graph is None:
            graph = job_graph(rest.job(job_id))
            queries, incomplete = {}, set()
        for vertex in graph.vertices:
            if vertex.id in queries and (vertex.id not in incomplete or
                                         state.lookups >= MAX_METRIC_LOOKUPS):
                continue
            # A starting task registers its metrics over a few seconds: list them again
            # until its operators' own counters are there (or for a while).
            state.lookups += 1
            names = rest.vertex_metric_names(job_id, vertex.id)
            if names:  # none until the JobManager fetched the task's metrics once
                queries[vertex.id], complete = _wanted(graph, vertex, names)
                (incomplete.discard if complete else incomplete.add)(vertex.id)
        with self._lock:
            state.graph, state.queries, state.incomplete = graph, queries, incomplete
        if len(queries) < len(graph.vertices):
            return False
        metrics, measured = _measure(rest, job_id, graph, queries)
        now = time.time()
        with self._lock:
            sample, busiest = _sample(graph, queries, metrics, state, now, measured)
            state.samples.append(sample)
            state.busiest = busiest
        return True


def _job_clock(rest: FlinkRestClient, job_id: str) -> float | None:
    """The job's ``runningTime`` (else ``uptime``) in seconds, as Flink's last metrics fetch
    saw it; None if it reports neither."""
    values = rest.job_metrics(job_id, _JOB_CLOCKS)
    value = next((values[name] for name in _JOB_CLOCKS if name in values), None)
    return None if value is None or value <= 0 else value / 1000


def _measure(rest: FlinkRestClient, job_id: str, graph: JobGraph,
             queries: dict[str, tuple[str, ...]]
             ) -> tuple[dict[str, dict[str, dict[str, float]]], float | None]:
    """The vertices' metrics, and when Flink measured them on the job's clock (None: not
    known). Flink serves what it fetched last, and a request starts the next fetch behind it:
    the job's clock read before and after the counters tells whether a fetch landed between
    the requests (then they are read once more: the next fetch is an update interval away)."""
    for _ in range(2):
        before = _job_clock(rest, job_id)
        metrics = {vertex.id: rest.vertex_metrics(job_id, vertex.id, queries[vertex.id])
                   for vertex in graph.vertices}
        after = _job_clock(rest, job_id)
        if before == after:
            break
    return metrics, after


def _wanted(graph: JobGraph, vertex: Vertex, names: tuple[str, ...]
            ) -> tuple[tuple[str, ...], bool]:
    """The metrics one sample needs of ``vertex`` (names as Flink lists them), and whether
    all were there."""
    wanted = [name for name in _SHARES if name in names]
    complete = len(wanted) == len(_SHARES)
    if vertex.inputs:
        if _WATERMARK in names:
            wanted.append(_WATERMARK)
        complete = complete and _WATERMARK in names
    for operators, metric, role in ((vertex.operators[:1], "numRecordsOut", graph.sources),
                                    (vertex.operators[-1:], "numRecordsIn", graph.sinks)):
        if vertex in role:
            found = operator_metric(names, operators[0], metric) if operators else None
            # The operator's own counter, else the task's (what crosses the network)
            wanted.append(found or metric)
            complete = complete and found is not None
    return tuple(dict.fromkeys(wanted)), complete


def _sample(graph: JobGraph, queries: dict[str, tuple[str, ...]],
            metrics: dict[str, dict[str, dict[str, float]]], state: _JobState,
            now: float, measured: float | None = None) -> tuple[HealthSample, str | None]:
    """One sample from one round of metrics; updates the counters and rates in ``state``.
    ``measured``: when Flink read the counters, on the job's clock (else ``now`` counts)."""
    def counter_of(vertices: tuple[Vertex, ...], metric: str) -> float | None:
        known = []
        for vertex in vertices:
            names = [name for name in queries[vertex.id] if name.endswith(metric)]
            value = metrics[vertex.id].get(names[-1], {}).get("sum") if names else None
            if value is not None:
                known.append(value)
        return sum(known) if known else None

    records_in = counter_of(graph.sources, "numRecordsOut")
    records_out = counter_of(graph.sinks, "numRecordsIn")
    state.rates = _rates(state, records_in, records_out,
                         ("job", measured) if measured is not None else ("wall", now))
    busy = back = None
    busiest = None
    for vertex in graph.vertices:
        values = metrics[vertex.id]
        vertex_busy = values.get(_SHARES[0], {}).get("max")
        vertex_back = values.get(_SHARES[1], {}).get("max")
        if vertex_busy is not None and (busy is None or vertex_busy > busy):
            busy, busiest = vertex_busy, vertex.name
        if vertex_back is not None and (back is None or vertex_back > back):
            back = vertex_back
    watermarks = [metrics[v.id].get(_WATERMARK, {}).get("min") for v in graph.vertices
                  if v.inputs]
    known = [mark for mark in watermarks if mark is not None and mark > 0]
    now_ms = int(now * 1000)
    lag = max(0, now_ms - int(min(known))) if known else None
    return HealthSample(now_ms, state.rates[0], state.rates[1],
                        None if busy is None else min(1.0, busy / 1000),
                        None if back is None else min(1.0, back / 1000), lag), busiest


def _rates(state: _JobState, records_in: float | None, records_out: float | None,
           clock: tuple[str, float]) -> tuple[float | None, float | None]:
    """Records per second of each counter (see :class:`_Counter`). ``clock``: which clock
    (the job's, or the wall clock when Flink reports none) and its time of the counters."""
    rates = list(state.rates)
    kind, now = clock
    for index, value in enumerate((records_in, records_out)):
        counter = state.counters[index]
        last = counter.moves[-1] if counter.moves else counter.look
        if counter.clock != kind or (last is not None and now < last[1]):
            last = None  # another clock, or the job's restarted: times do not compare
        if value is None or last is None or value < last[0]:  # new, or reset by a restart
            rates[index] = None
            counter.restart(value, now, kind)
        elif value > last[0]:
            if now - last[1] < MIN_RATE_SPAN_S:
                continue  # too early to say: next time, over a longer span
            rates[index] = counter.moved(value, now)
        elif now - last[1] >= STALE_S:
            rates[index] = 0.0
            counter.restart(value, now, kind)
    return rates[0], rates[1]
