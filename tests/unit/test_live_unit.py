"""Live tables without Flink: snapshots, rendering, the refresher, and bounded memory.

A fake stands in for the JVM-side ``LiveResult``: it writes snapshot files in the same
format (4-byte length, JSON header, Arrow stream).
"""

from __future__ import annotations

import gc
import json
import os
import threading
import weakref
from dataclasses import replace
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from jupyter_flink.display import live_table as live
from jupyter_flink.display import live_view
from jupyter_flink.display.live_table import LiveTable
from jupyter_flink.display.live_view import LiveView, render_template
from jupyter_flink.display.snapshots import Snapshot, parse_snapshot
from jupyter_flink.jobs.registry import Owner, TrackedJob

# ---------------------------------------------------------------------------- fakes


def encode(frame: pd.DataFrame | None, **header: Any) -> bytes:
    """A snapshot file as LiveResult.snapshotTo writes it."""
    fields = {"version": 1, "received": 0, "dropped": 0, "retractions": 0,
              "rows": 0 if frame is None else len(frame), "done": False, "snapshot_ns": 1000,
              "job_status": None, "error": None, "error_trace": None, **header}
    head = json.dumps(fields).encode()
    sink = pa.BufferOutputStream()
    table = pa.Table.from_pandas(frame if frame is not None else pd.DataFrame({"x": []}),
                                 preserve_index=False)
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return len(head).to_bytes(4, "big") + head + sink.getvalue().to_pybytes()


class FakeResult:
    """The JVM LiveResult's interface, fed by the test."""

    def __init__(self) -> None:
        self.version = 0
        self.frame: pd.DataFrame | None = None
        self.header: dict[str, Any] = {}
        self.calls = 0
        self.released = False
        self.closed = False
        self.lock = threading.Lock()

    def push(self, frame: pd.DataFrame, **header: Any) -> None:
        with self.lock:
            self.frame = frame
            self.header.update(header)
            self.version += 1

    def end(self, **header: Any) -> None:
        with self.lock:
            self.header.update(header, done=True)
            self.version += 1

    def snapshotTo(self, seen: int, path: str) -> int:  # the Java method's name
        with self.lock:
            self.calls += 1
            if seen == self.version:
                return -1
            data = encode(self.frame, version=self.version, **self.header)
        with open(path, "wb") as file:
            file.write(data)
        return len(data)

    def release(self) -> None:
        self.released = True
        self.frame = None

    def close(self) -> None:
        self.closed = True


class Handle:
    """A display handle that remembers only how often and what it showed last."""

    def __init__(self) -> None:
        self.updates = 0
        self.last: dict[str, str] | None = None
        self.changed = threading.Condition()

    def update(self, bundle: dict[str, str], raw: bool = True) -> None:
        with self.changed:
            self.updates += 1
            self.last = bundle
            self.changed.notify_all()

    def wait_for(self, text: str, timeout: float = 10) -> str:
        with self.changed:
            ok = self.changed.wait_for(
                lambda: self.last is not None and text in self.last["text/plain"], timeout)
        assert ok, f"{text!r} never shown; last: {self.last}"
        assert self.last is not None
        return self.last["text/plain"]


def make_table(result: FakeResult, handle: Handle, *, mode: str = "update",
               max_rows: int = 100, **kwargs: Any) -> LiveTable:
    def publish(bundle: dict[str, str]) -> Handle:
        handle.update(bundle)
        return handle

    return LiveTable(result, mode=mode, max_rows=max_rows, refresh_interval_s=0.01,
                     publish=publish, **kwargs)


def job(**changes: Any) -> TrackedJob:
    return replace(TrackedJob("j1", "my_job", Owner(None, "cell", "my_job")), **changes)


def frame(n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"k": range(start, start + n), "c": [1] * n})


# ---------------------------------------------------------------------------- template


def test_template_fills_numbered_placeholders() -> None:
    assert render_template("<h1>Total {0} of {1}</h1>", [42, "x"]) == "<h1>Total 42 of x</h1>"


def test_template_leaves_other_braces_alone() -> None:
    template = "<style>.big {font-size: 2em}</style><b class='big'>{0}</b>"
    assert render_template(template, [7]) == \
        "<style>.big {font-size: 2em}</style><b class='big'>7</b>"


def test_template_escapes_values_and_keeps_missing_placeholders() -> None:
    assert render_template("{0} {3}", ["<script>"]) == "&lt;script&gt; {3}"


def test_template_shows_nulls() -> None:
    assert render_template("{0}/{1}", [None, float("nan")]) == "null/null"


# ---------------------------------------------------------------------------- tables


def test_tables_escape_and_format_values() -> None:
    df = pd.DataFrame({"name": ["<b>", None], "x": [1 / 3, float("nan")], "n": [1, 2]})
    markup = live_view.html_table(df)
    assert "<th>name</th><th>x</th><th>n</th>" in markup
    assert "<td>&lt;b&gt;</td><td>0.333333</td><td>1</td>" in markup
    assert "<td>null</td><td>null</td><td>2</td>" in markup
    assert live_view.text_table(df).splitlines() == [
        "name        x n",
        " <b> 0.333333 1",
        "null     null 2",
    ]


# ---------------------------------------------------------------------------- snapshots


def test_snapshot_round_trip() -> None:
    data = encode(frame(3), version=7, received=10, dropped=2, retractions=4, done=True,
                  job_status="FINISHED")
    snapshot = parse_snapshot(data)
    assert snapshot.version == 7 and snapshot.received == 10 and snapshot.dropped == 2
    assert snapshot.retractions == 4 and snapshot.rows == 3 and snapshot.done
    assert snapshot.job_status == "FINISHED" and snapshot.problem is None
    assert snapshot.frame is not None and list(snapshot.frame.k) == [0, 1, 2]


def test_snapshot_with_unreadable_rows_keeps_the_header() -> None:
    data = encode(frame(1), received=5)
    broken = data[: len(data) - 20]
    snapshot = parse_snapshot(broken)
    assert snapshot.received == 5 and snapshot.frame is None
    assert snapshot.problem and "cannot be turned into a pandas DataFrame" in snapshot.problem


# ---------------------------------------------------------------------------- rendering


def snap(df: pd.DataFrame | None, **fields: Any) -> Snapshot:
    base = dict(frame=df, version=1, received=0, dropped=0, retractions=0,
                rows=0 if df is None else len(df), done=False)
    return Snapshot(**{**base, **fields})


def test_update_view_shows_the_first_rows_of_a_large_table() -> None:
    view = LiveView(mode="update", max_rows=1000, template=None)
    bundle = view.bundle(snap(frame(250)), job(state="RUNNING"), refreshed_at=None,
                         final=False)
    text = bundle["text/plain"]
    assert text.splitlines()[0] == "my_job [RUNNING] · 250 rows · 0 changes received"
    assert "showing the first 100 of 250 rows" in text
    assert "<table" in bundle["text/html"] and ">99<" in bundle["text/html"]
    assert ">100<" not in bundle["text/html"]


def test_append_view_shows_the_newest_rows_and_the_drops() -> None:
    view = LiveView(mode="append", max_rows=250, template=None)
    bundle = view.bundle(snap(frame(250), dropped=30, retractions=3), None,
                         refreshed_at=None, final=False)
    text = bundle["text/plain"]
    assert "30 older rows were dropped: append mode keeps the newest maxRows=250 rows" in text
    assert "3 retractions" in text and "type=update" in text
    assert ">249<" in bundle["text/html"] and ">0<" not in bundle["text/html"]


def test_update_view_says_when_rows_were_not_kept() -> None:
    view = LiveView(mode="update", max_rows=10, template=None)
    text = view.bundle(snap(frame(10), dropped=5), None, refreshed_at=None,
                       final=False)["text/plain"]
    assert "5 result rows were not kept" in text and "maxRows=10" in text


def test_single_view_without_template_shows_the_values() -> None:
    view = LiveView(mode="single", max_rows=1, template=None)
    bundle = view.bundle(snap(pd.DataFrame({"n": [42], "s": ["a<b"]})), None,
                         refreshed_at=None, final=False)
    assert "<h3>42 a&lt;b</h3>" in bundle["text/html"]
    assert bundle["text/plain"].endswith("42 a<b")


def test_single_view_with_template() -> None:
    view = LiveView(mode="single", max_rows=1, template="<h1>Total {0}</h1>")
    bundle = view.bundle(snap(pd.DataFrame({"n": [42]})), None, refreshed_at=None,
                         final=False)
    assert "<h1>Total 42</h1>" in bundle["text/html"]
    assert bundle["text/plain"].endswith("Total 42")


def test_view_before_the_first_rows() -> None:
    view = LiveView(mode="update", max_rows=10, template=None)
    assert "waiting for the first rows" in view.bundle(None, None, refreshed_at=None,
                                                       final=False)["text/plain"]


@pytest.mark.parametrize(("state", "fields", "expected", "bad"), [
    ("FAILED", {"failure": "java.lang.ArithmeticException: / by zero"},
     "The query failed after 12 result changes: java.lang.ArithmeticException: / by zero",
     True),
    ("CANCELED", {"notice": "Job my_job was cancelled."}, "Job my_job was cancelled.", False),
    ("FINISHED", {"notice": "Job my_job was stopped with savepoint file:/sp/x."},
     "stopped with savepoint file:/sp/x", False),
    ("FINISHED", {}, "The query finished: it read all of its input.", False),
])
def test_stop_reasons(state: str, fields: dict[str, Any], expected: str, bad: bool) -> None:
    reason, failed = live_view.stop_reason(snap(None, received=12, done=True), job(state=state,
                                                                              **fields))
    assert expected in reason and failed is bad


def test_stop_reason_from_the_jvm_when_the_poller_has_not_seen_the_end() -> None:
    reason, failed = live_view.stop_reason(
        snap(None, received=3, done=True, job_status="FAILED",
             error="ArithmeticException: / by zero"), job(state="RUNNING"))
    assert failed and "ArithmeticException: / by zero" in reason


def test_a_failure_keeps_the_java_trace_one_click_away() -> None:
    view = LiveView(mode="update", max_rows=10, template=None)
    failed = snap(frame(2), received=2, done=True, job_status="FAILED",
                  error="ArithmeticException: / by zero",
                  error_trace="java.io.IOException: x\n\tat org.apache.flink.Foo(Foo.java:1)")
    bundle = view.bundle(failed, job(state="FAILED"), refreshed_at=None, final=True)
    assert "\tat org.apache" not in bundle["text/plain"]
    assert "The query failed after 2 result changes" in bundle["text/plain"]
    assert "<details><summary" in bundle["text/html"]
    assert "at org.apache.flink.Foo" in bundle["text/html"]
    assert "[FAILED]" in bundle["text/plain"].splitlines()[0]


def test_status_line_shortens_statement_job_names() -> None:
    view = LiveView(mode="update", max_rows=10, template=None)
    name = "SELECT `k`, COUNT(*)\nFROM `default_catalog`.`default_database`.`events` GROUP BY k"
    line = view.status(snap(frame(1)), job(name=name), None, final=False)
    assert "\n" not in line and "…" in line and len(line.split(" [")[0]) == 60


def test_final_status_uses_the_jvms_view_until_the_poller_catches_up() -> None:
    view = LiveView(mode="update", max_rows=10, template=None)
    line = view.status(snap(None, done=True, job_status="FINISHED"), job(state="RUNNING"),
                       None, final=True)
    assert line.startswith("my_job [FINISHED]")


def test_stop_reason_of_a_broken_stream() -> None:
    reason, failed = live_view.stop_reason(snap(None, done=True, error="IOException: gone"),
                                      job(state="RUNNING"))
    assert failed and "The result stream broke (the job is RUNNING): IOException: gone" in reason


# ---------------------------------------------------------------------------- the live table


def test_refresh_only_when_something_changed() -> None:
    result, handle = FakeResult(), Handle()
    table = make_table(result, handle)
    result.push(frame(2), received=2)
    assert table.refresh() is True
    assert table.refresh() is False
    assert table.refresh(force=True) is True
    assert table.snapshot is not None and table.snapshot.received == 2
    table.close()


def test_refresher_runs_to_the_final_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "_SETTLED_S", 0.1)
    result, handle = FakeResult(), Handle()
    state = {"job": job(state="RUNNING")}
    bound: list[pd.DataFrame] = []
    table = make_table(result, handle, job=lambda: state["job"], bind=bound.append)
    directory = table._dir
    table.start()
    result.push(frame(3), received=3)
    handle.wait_for("3 changes received")
    result.push(frame(5), received=8, retractions=3)
    result.end(job_status="FINISHED")
    assert table.finished.wait(10)
    text = handle.wait_for("final")
    assert "5 rows" in text and "The query finished" in text
    assert list(bound[-1].k) == [0, 1, 2, 3, 4]
    assert result.released and not os.path.exists(directory)
    # the job's end notice arrives later: the table shows it
    state["job"] = job(state="FINISHED", notice="Job my_job was stopped with savepoint sp1.")
    handle.wait_for("stopped with savepoint sp1")
    table.close()
    table.close()  # idempotent


def test_the_final_frame_is_released_unless_bound() -> None:
    result, handle = FakeResult(), Handle()
    table = make_table(result, handle)
    result.push(frame(3), received=3)
    result.end(job_status="FINISHED")
    table.start()
    assert table.finished.wait(10)
    assert table.frame is None  # rendered once, then dropped
    assert "final" in handle.wait_for("final")
    table.close()


def test_refresher_does_not_keep_old_frames() -> None:
    result, handle = FakeResult(), Handle()
    table = make_table(result, handle)
    seen: list[weakref.ref[pd.DataFrame]] = []
    for i in range(30):
        result.push(frame(1000, start=i), received=i)
        assert table.refresh()
        assert table.frame is not None
        seen.append(weakref.ref(table.frame))
    gc.collect()
    alive = [ref for ref in seen if ref() is not None]
    assert len(alive) == 1 and alive[0]() is table.frame
    table.close()


def test_close_stops_the_refresher_and_closes_the_jvm_side() -> None:
    result, handle = FakeResult(), Handle()
    table = make_table(result, handle)
    table.start()
    result.push(frame(1), received=1)
    handle.wait_for("1 changes received")
    table.close()
    assert result.closed
    assert table._thread is not None
    table._thread.join(5)
    assert not table._thread.is_alive()
    assert not os.path.exists(table._dir)


def test_a_failing_refresh_is_shown_not_raised() -> None:
    result, handle = FakeResult(), Handle()

    def broken(seen: int, path: str) -> int:
        raise RuntimeError("the JVM went away")

    result.snapshotTo = broken  # type: ignore[method-assign]
    table = make_table(result, handle)
    table.start()
    assert table.finished.wait(10)
    assert "the JVM went away" in handle.wait_for("final")
    table.close()
