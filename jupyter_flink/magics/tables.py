"""Tables the magics show: configuration, jobs, checkpoints, help (pandas / Markdown)."""

from __future__ import annotations

import html
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..display.formatting import format_duration, format_time_ms
from ..flink.session import FlinkSession
from ..jobs.registry import TrackedJob
from ..options.interpreter_keys import interpreter_defaults
from ..recording.storage import fsspec_url, list_alternatives, written_at
from ..secrets import mask, shown_setting
from ..times import EPOCH, parse_iso

if TYPE_CHECKING:
    import pandas as pd

    from ..jobs.tracker import JobTracker


def configuration(session: FlinkSession) -> pd.DataFrame:
    """The effective configuration: what every new job and the cluster get, and why.

    Values are shown as :func:`~jupyter_flink.secrets.shown_setting` says: references as
    written, sensitive keys' values hidden, URL credentials masked."""
    import pandas as pd

    configured = session.flink_settings()
    defaults = session.default_settings()
    rows: list[dict[str, Any]] = []
    for key in sorted(set(defaults) | set(configured)):
        rows.append({"key": key,
                     "value": shown_setting(key, configured.get(key, defaults.get(key))),
                     "source": "%%flink.conf" if key in configured else "jupyter-flink default",
                     "scope": session.options.scope(key)})
    for key in interpreter_defaults():
        value, default = session.interpreter_setting(key), session.interpreter_default(key)
        rows.append({"key": key, "value": shown_setting(key, value),
                     "source": "%%flink.conf" if value != default else "jupyter-flink default",
                     "scope": "interpreter"})
    frame = pd.DataFrame(rows, columns=["key", "value", "source", "scope"])
    described = {d["key"]: d for d in session.options.describe(list(frame["key"]))}
    frame["description"] = [str((described.get(k) or {}).get("description", ""))[:120]
                            for k in frame["key"]]
    return frame


def jobs(all_jobs: Sequence[TrackedJob]) -> pd.DataFrame:
    """One row per job of the kernel, newest first: a DataFrame (full values, for code and
    text/plain) that shows as a table fitting a notebook's width (ids and paths shortened
    in the middle, the full value in the tooltip)."""
    columns = ["job name", "state", "uptime", "checkpoints", "latest checkpoint path",
               "savepoint path", "job id", "cell"]
    rows = [[mask(job.name), _state(job), format_duration(job.uptime_seconds()),
             f"{job.checkpoints_completed} ok / {job.checkpoints_failed} failed",
             mask(job.latest_checkpoint_path or "-"), mask(job.savepoint_path or "-"), job.job_id,
             job.owner.cell_id or "-"]
            for job in sorted(all_jobs, key=lambda j: j.submitted_at, reverse=True)]
    return compact_frame(rows, columns, shorten={"latest checkpoint path": 36,
                                                  "savepoint path": 36, "job id": 8,
                                                  "cell": 8, "job name": 40})


def _state(job: TrackedJob) -> str:
    if job.unreachable_since is not None and not job.ended:
        since = time.strftime("%H:%M:%S", time.localtime(job.unreachable_since))
        return f"{job.state}? cluster unreachable since {since}"
    return job.state


def checkpoints(tracker: JobTracker, jobs: Sequence[TrackedJob]) -> pd.DataFrame:
    """The checkpoint history of ``jobs`` from REST, and which are still on storage."""
    import pandas as pd

    frames = [_checkpoints(tracker, job) for job in jobs]
    if len(frames) == 1:
        return frames[0]
    for job, frame in zip(jobs, frames):
        frame.insert(0, "job", job.name)
    return pd.concat(frames, ignore_index=True)


def _checkpoints(tracker: JobTracker, job: TrackedJob) -> pd.DataFrame:
    import pandas as pd

    history = tracker.rest.checkpoints(job.job_id).get("history") or []
    rows = [{"id": entry.get("id"), "status": entry.get("status"),
             "savepoint": entry.get("is_savepoint"),
             "completed at": _when(entry),
             "path": entry.get("external_path"), "on storage": None}
            for entry in history]
    # Every restorable chk-N beside the latest one (execution.checkpointing.num-retained).
    retained = list_alternatives(job.latest_checkpoint_path) if job.latest_checkpoint_path else []
    retained_paths = {_normal(path) for path in retained}
    for row in rows:
        if row["path"]:
            row["on storage"] = _normal(row["path"]) in retained_paths
    known = {_normal(row["path"]) for row in rows if row["path"]}
    for path in retained:  # retained on storage but older than the REST history
        if _normal(path) not in known:
            rows.append({"id": None, "status": "RETAINED", "savepoint": False,
                         "completed at": "-", "path": path, "on storage": True})
    for row in rows:
        row["path"] = mask(row["path"]) if row["path"] else row["path"]
    return pd.DataFrame(rows, columns=["id", "status", "savepoint", "completed at", "path",
                                       "on storage"])


def history(records: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """The restore points of each cell, newest first, numbered as ``resumeFrom=N`` takes
    them, and whether each is still on storage."""
    import pandas as pd

    rows = []
    for key, record in records.items():
        cell = record.get("job_name") or key
        for number, entry in enumerate(record.get("history") or [], start=1):
            path = str(entry.get("path"))
            rows.append({"cell": cell, "#": number, "kind": entry.get("kind"),
                         "origin": entry.get("origin"), "time": _local(entry.get("time")),
                         "job": str(entry.get("job_id") or "-")[:8], "path": path,
                         "on storage": written_at(path) is not None})
    return pd.DataFrame(rows, columns=["cell", "#", "kind", "origin", "time", "job", "path",
                                       "on storage"])


def _local(iso: Any) -> str:
    when = parse_iso(iso)
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S") if when != EPOCH else "-"


def _when(entry: dict[str, Any]) -> str:
    """When a checkpoint completed; for one still under way, when it was triggered."""
    if entry.get("status") == "IN_PROGRESS":
        return f"in progress since {format_time_ms(entry.get('trigger_timestamp'))}"
    return format_time_ms(entry.get("latest_ack_timestamp"))


def _normal(path: str) -> str:
    return fsspec_url(path).rstrip("/")


def help_text(properties: Sequence[tuple[str, str, str]]) -> Any:
    from IPython.display import Markdown

    rows = "\n".join(f"| `{name}` | {accepted} | {meaning} |"
                     for name, accepted, meaning in properties)
    return Markdown(f"""\
**jupyter-flink** runs Apache Flink from notebook cells.

| magic | what it does |
|---|---|
| `%%flink.conf` | Flink settings (`key value` per line) for every job started afterwards |
| `%flink.conf` | show the effective configuration; `--reset` forgets it |
| `%%flink` | PyFlink code with `senv`, `stenv`, `btenv`; `senv.execute()` does not block |
| `%%flink.ssql` | streaming SQL: INSERT jobs keep running, SELECT shows a live table |
| `%%flink.bsql` | batch SQL: SELECT returns a pandas DataFrame |
| `%flink.jobs` | the jobs of this kernel |
| `%flink.cancel JOB` | cancel (with a savepoint if the cell has `savepointDir`); `--all` |
| `%flink.stop JOB [--dir D]` | stop with a savepoint; `--all` |
| `%flink.savepoint JOB [--dir D]` | take a savepoint, keep running; `--all` |
| `%flink.checkpoints [JOB]` | checkpoint history and retained checkpoints |
| `%flink.history [JOB]` | a cell's restore points, numbered for `resumeFrom=N` |
| `%flink.catalog [--batch]` | catalogs, databases, tables, views and columns as a tree |
| `%flink.trace` | the full Flink trace of the last error |

Tab completes conf keys and values, header properties, SQL (keywords, tables, columns,
functions) and job names; Shift+Tab explains an option, a property, a table or a function.

Secrets: write `${{env:NAME}}` or `${{file:PATH}}` as the value of a Flink setting (in
`%%flink.conf` or a header); it is read when the job is submitted and never shown.

Paragraph properties go in the header, Zeppelin style:
`%%flink.ssql(jobName=wc, savepointDir=file:///tmp/sp, resumeFromSavepoint=true)`

| property | accepted values | meaning |
|---|---|---|
{rows}
""")


def middle(text: str, width: int) -> str:
    """``text`` shortened in the middle to ``width`` characters, keeping its end (a path's
    ``chk-12`` or ``savepoint-...``) and its start."""
    if len(text) <= width:
        return text
    tail = max(width * 2 // 3, 1)
    head = max(width - tail - 1, 0)
    return text[:head] + "\u2026" + text[-tail:]


def compact_frame(rows: list[list[Any]], columns: list[str], *,
                  shorten: Mapping[str, int]) -> pd.DataFrame:
    """A DataFrame whose HTML shortens the ``shorten`` columns (full value on hover)."""
    import pandas as pd

    class CompactFrame(pd.DataFrame):
        @property
        def _constructor(self) -> type[pd.DataFrame]:
            return pd.DataFrame  # what code makes of it is a plain DataFrame

        def _repr_html_(self) -> str:
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in self.columns)
            body = []
            for row in self.itertuples(index=False):
                cells = []
                for column, value in zip(self.columns, row):
                    full = str(value)
                    shown = middle(full, shorten[column]) if column in shorten else full
                    title = f" title='{html.escape(full)}'" if shown != full else ""
                    cells.append(f"<td style='text-align:left'{title}>"
                                 f"{html.escape(shown)}</td>")
                body.append("<tr>" + "".join(cells) + "</tr>")
            return (f"<table class='dataframe'><thead><tr>{head}</tr></thead>"
                    f"<tbody>{''.join(body)}</tbody></table>")

    return CompactFrame(rows, columns=columns)
