"""How a live result looks in the cell: the table (or the template), counters, notes, and
why the query stopped. Plain HTML and text writers: pandas' are several times slower (it is
redrawn every refresh; figures in bench/README.md)."""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..jobs.registry import TERMINAL_STATES, TrackedJob
from ..secrets import mask
from .formatting import short_name
from .snapshots import Snapshot

if TYPE_CHECKING:
    import pandas as pd

DISPLAY_ROWS = 100  # rows rendered in the cell; the whole result is in resultName


def render_template(template: str, values: list[Any]) -> str:
    """Zeppelin's single-value template: ``{0}``, ``{1}``... become the row's values.

    Only numbered placeholders are replaced, so CSS or other braces in the HTML stay as
    they are; values are HTML-escaped, a placeholder beyond the row is left visible.
    """
    def value(match: re.Match[str]) -> str:
        index = int(match.group(1))
        if index >= len(values):
            return match.group(0)
        return html.escape(_format_value(values[index]))

    return re.sub(r"\{(\d+)\}", value, template)


def _format_value(value: Any) -> str:
    if value is None:
        return "null"
    try:
        if value != value:  # NaN: pandas' null for numbers
            return "null"
    except (TypeError, ValueError):
        pass
    return str(value)


def _cell(value: Any) -> str:
    if isinstance(value, float) and value == value:
        return f"{value:.6g}"
    return _format_value(value)


def html_table(frame: pd.DataFrame) -> str:
    """A plain HTML table of ``frame`` (much faster than ``DataFrame.to_html``: it is
    redrawn at every refresh)."""
    escape = html.escape
    head = "".join(f"<th>{escape(str(name))}</th>" for name in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(_cell(v))}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False, name=None))
    return (f"<table class='dataframe'><thead><tr style='text-align: right;'>{head}</tr>"
            f"</thead><tbody>{body}</tbody></table>")


def text_table(frame: pd.DataFrame) -> str:
    """``frame`` as right-aligned plain text columns (for frontends without HTML)."""
    names = [str(name) for name in frame.columns]
    rows = [[_cell(v) for v in row] for row in frame.itertuples(index=False, name=None)]
    widths = [max([len(name)] + [len(row[i]) for row in rows]) for i, name in enumerate(names)]
    return "\n".join(" ".join(cell.rjust(width) for cell, width in zip(line, widths))
                     for line in [names, *rows])


def _strip_tags(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def stop_reason(snapshot: Snapshot | None, job: TrackedJob | None) -> tuple[str, bool]:
    """Why the live result stopped, for the final display; and whether it is a failure."""
    state = job.state if job is not None and job.state in TERMINAL_STATES else None
    state = state or (snapshot.job_status if snapshot is not None else None)
    notice = job.notice if job is not None else None
    received = snapshot.received if snapshot is not None else 0
    error = snapshot.error if snapshot is not None else None
    if state == "FAILED":
        cause = (job.failure if job is not None else None) or error or "see %flink.jobs"
        return (f"The query failed after {received:,} result changes: {cause}. The table "
                "shows the result up to the failure; fix the query and run the cell again.",
                True)
    if state == "CANCELED":
        return notice or "The query was cancelled.", False
    if state == "FINISHED":
        if notice:
            return notice, False
        if job is not None and job.savepoint_path:
            return f"The query was stopped with savepoint {job.savepoint_path}.", False
        return "The query finished: it read all of its input.", False
    if error:
        where = f" (the job is {job.state})" if job is not None else ""
        return (f"The result stream broke{where}: {error}. The table shows what was "
                "received until then.", True)
    return notice or f"The query ended{f' ({state})' if state else ''}.", False


_NOTE_HTML = {
    "warning": "<div style='color:#b26a00'>&#9888; {}</div>",
    "error": "<div style='color:#c62828'>&#9888; {}</div>",
    "end": "<div style='color:#555'>{}</div>",
}


class LiveView:
    """What one live table shows, as a display bundle (text/plain and text/html; the live
    table adds our MIME type, whose renderer shows the HTML)."""

    def __init__(self, *, mode: str, max_rows: int, template: str | None):
        self.mode = mode
        self.max_rows = max_rows
        self.template = template

    def warnings(self, snapshot: Snapshot | None) -> list[str]:
        if snapshot is None:
            return []
        notes = []
        if snapshot.dropped and self.mode == "append":
            notes.append(f"{snapshot.dropped:,} older rows were dropped: append mode keeps the "
                         f"newest maxRows={self.max_rows:,} rows.")
        elif snapshot.dropped:
            notes.append(f"{snapshot.dropped:,} result rows were not kept: the table holds at "
                         f"most maxRows={self.max_rows:,} rows, so it is incomplete. Raise "
                         "maxRows, or aggregate further.")
        if snapshot.retractions and self.mode == "append":
            notes.append(f"This query also retracts rows it emitted ({snapshot.retractions:,} "
                         "retractions), which append mode does not apply: type=update shows "
                         "the current result.")
        if snapshot.problem:
            notes.append(snapshot.problem)
        return notes

    def status(self, snapshot: Snapshot | None, job: TrackedJob | None,
               refreshed_at: float | None, final: bool) -> str:
        parts = []
        if job is not None:
            state = job.state
            if final and state not in TERMINAL_STATES and snapshot is not None and \
                    snapshot.job_status in TERMINAL_STATES:
                state = snapshot.job_status  # the JVM saw the end before the poller did
            parts.append(f"{short_name(job.name)} [{state}]")
        if snapshot is not None:
            if self.mode != "single":
                parts.append(f"{snapshot.rows:,} rows")
            parts.append(f"{snapshot.received:,} changes received")
        if refreshed_at:
            parts.append(f"refreshed {datetime.fromtimestamp(refreshed_at):%H:%M:%S}")
        if final:
            parts.append("final")
        return " · ".join(parts)

    def body(self, snapshot: Snapshot | None) -> tuple[str, str]:
        frame = snapshot.frame if snapshot is not None else None
        if self.mode == "single":
            if frame is None or frame.empty:
                return "<i>no value yet</i>", "no value yet"
            values = list(frame.iloc[0])
            if self.template:
                rendered = render_template(self.template, values)
                return rendered, _strip_tags(rendered)
            text = " ".join(_format_value(v) for v in values)
            return f"<h3>{html.escape(text)}</h3>", text
        if frame is None:
            return "<i>waiting for the first rows</i>", "waiting for the first rows"
        # append: the newest rows matter; update: the table in its stable order
        shown = frame.tail(DISPLAY_ROWS) if self.mode == "append" else frame.head(DISPLAY_ROWS)
        more = ""
        if len(frame) > len(shown):
            which = "newest" if self.mode == "append" else "first"
            more = f"showing the {which} {len(shown):,} of {len(frame):,} rows"
        body_html, body_text = html_table(shown), text_table(shown)
        if more:
            body_html += f"<div style='color:#666;font-size:0.85em'>{more}</div>"
            body_text += f"\n({more})"
        return body_html, body_text

    def bundle(self, snapshot: Snapshot | None, job: TrackedJob | None, *,
               refreshed_at: float | None, final: bool,
               body: tuple[str, str] | None = None) -> dict[str, str]:
        status = mask(self.status(snapshot, job, refreshed_at, final))
        notes = [(mask(text), "warning") for text in self.warnings(snapshot)]
        trace = ""
        if final:
            reason, failed = stop_reason(snapshot, job)
            notes.append((mask(reason), "error" if failed else "end"))
            if failed and snapshot is not None and snapshot.error_trace:
                # the Java trace, one click away
                trace = (f"<details><summary style='color:#666;font-size:0.85em'>Java trace"
                         f"</summary><pre style='font-size:0.8em'>"
                         f"{html.escape(snapshot.error_trace)}</pre></details>")
        body_html, body_text = body or self.body(snapshot)
        notes_html = "".join(_NOTE_HTML[kind].format(html.escape(text)) for text, kind in notes)
        return {
            "text/plain": "\n".join([status, *(text for text, _ in notes), body_text]),
            "text/html": (f"<div class='jupyter-flink-live'><div style='color:#666;"
                          f"font-size:0.85em'>{html.escape(status)}</div>{notes_html}"
                          f"{trace}{body_html}</div>"),
        }
