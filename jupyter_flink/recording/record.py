"""What a cell's record is: the ``flink`` key of its metadata, and how two records merge.

``cell.metadata["flink"]`` holds at least (DESIGN.md, "Contract"): ``latest_checkpoint_path``,
``savepoint_path``, ``job_id``, ``job_name``, ``cell_id`` and ``updated`` (ISO 8601). The journal
keeps the same entries, keyed by cell id. This module is the one place that knows the shape,
and it imports nothing of the kernel's job service: the headless runner uses it too.

Rules every writer follows:

* a recorded path is only replaced by a newer one of a later success: a ``None`` never
  erases a value (a new job without a checkpoint yet keeps the previous run's paths);
* of two records of the same cell, the one ``updated`` last wins, compared as times;
* a record naming another cell (copied along with the cell) is replaced whole, never mixed;
* credentials in URLs (``s3://key:secret@bucket``) never get into a record.

Besides the contract's keys, a record keeps a bounded ``history`` of the cell's restore
points, newest first (as the Flink Kubernetes Operator's savepoint history)::

    {"path": "file:/sp/savepoint-1a2b-3c4d", "kind": "savepoint", "origin": "stop",
     "job_id": "8f0c...", "time": "2026-11-29T10:02:03.123+00:00"}

``kind`` is ``savepoint`` or ``checkpoint``. Savepoints come from a ``stop``
(``%flink.stop``), a ``cancel`` with a savepoint (re-running the cell, ``%flink.cancel``,
an interrupt, kernel shutdown), a ``manual`` ``%flink.savepoint`` or an ``automatic`` one
(``autoSavepointInterval``). Checkpoints are added when they become the cell's last word:
the job was cancelled without a savepoint (``cancel``) or failed (``failure``), Flink
restored the job from it after a failure (``restart``), or a later run found it on storage,
newer than anything recorded, because the kernel died first (``crash``). A fresh run
never drops history; a new entry with the path of an old one replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..secrets import mask, strip_url_credentials
from ..times import now_iso, parse_iso

__all__ = ["DEFAULT_HISTORY_LIMIT", "FLINK_KEY", "HISTORY_KEY", "METADATA_KEYS", "ORIGINS",
           "PATH_KEYS", "SUBMITTED_KEY", "RecordProblem", "add_history", "cell_metadata",
           "history_entry", "merge_records", "newest_record", "strip_credentials",
           "submitted_job_ids", "valid_record", "with_submitted"]

FLINK_KEY = "flink"
METADATA_KEYS = ("latest_checkpoint_path", "savepoint_path", "job_id", "job_name", "cell_id",
                 "updated")
PATH_KEYS = ("latest_checkpoint_path", "savepoint_path")
HISTORY_KEY = "history"
# The ids of the cell's last jobs, written before each is submitted: a kernel killed before
# it recorded the job it submitted leaves it running on a remote cluster, and the next kernel
# must find it (to stop it, and to resume from its checkpoints).
SUBMITTED_KEY = "submitted_job_ids"
SUBMITTED_KEPT = 3
DEFAULT_HISTORY_LIMIT = 10
KINDS = ("savepoint", "checkpoint")
ORIGINS = ("stop", "cancel", "manual", "automatic", "failure", "restart", "crash")
_TEXT_KEYS = (*PATH_KEYS, "job_id", "job_name", "cell_id", "updated")


def strip_credentials(path: Any) -> Any:
    """Drop ``user:password@`` from a URL (and any secret resolved from a reference); anything
    else is returned as it is."""
    if not isinstance(path, str):
        return path
    if "@" in path and "://" in path:
        path = strip_url_credentials(path)
    return mask(path)


def cell_metadata(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A record as ``cell.metadata["flink"]`` holds it: the contract's keys first (None where
    unknown), then whatever else the record carries."""
    return {key: entry.get(key) for key in METADATA_KEYS} | {
        key: value for key, value in entry.items() if key not in METADATA_KEYS}


def newest_record(*records: tuple[str, Mapping[str, Any]]
                  ) -> tuple[str, Mapping[str, Any]] | None:
    """Of (source, record) pairs, the one ``updated`` last (the first of equals)."""
    best: tuple[str, Mapping[str, Any]] | None = None
    for source, record in records:
        if best is None or parse_iso(record.get("updated")) > parse_iso(best[1].get("updated")):
            best = (source, record)
    return best


def merge_records(existing: Any, incoming: Mapping[str, Any]) -> dict[str, Any]:
    """The record after ``incoming`` (a kernel update or a journal entry) meets ``existing``.

    The newer record wins field by field, except that ``None`` never erases a value; a
    record of another cell is replaced whole.
    """
    current = dict(existing) if isinstance(existing, Mapping) else {}
    update = dict(incoming)
    owner, incoming_owner = current.get("cell_id"), update.get("cell_id")
    if not current or (owner and incoming_owner and owner != incoming_owner):
        return cell_metadata(update)
    if parse_iso(current.get("updated")) > parse_iso(update.get("updated")):
        newer, older = current, update
    else:
        newer, older = update, current
    merged = dict(older)
    for key, value in newer.items():
        if value is not None or key not in merged:
            merged[key] = value
    if HISTORY_KEY in older or HISTORY_KEY in newer:  # the restore points of both
        history: list[dict[str, Any]] = [dict(e) for e in _entries(newer.get(HISTORY_KEY))]
        for entry in reversed(_entries(older.get(HISTORY_KEY))):
            if all(e["path"] != entry["path"] for e in history):
                history = add_history(history, entry, max(len(history) + 1,
                                                           DEFAULT_HISTORY_LIMIT))
        merged[HISTORY_KEY] = history
    return cell_metadata(merged)


# ----------------------------------------------------------------------- history


def history_entry(path: str, kind: str, origin: str, job_id: str | None,
                  time: str | None = None) -> dict[str, Any]:
    """One restore point for a cell's ``history`` (credentials stripped)."""
    if kind not in KINDS or origin not in ORIGINS:
        raise ValueError(f"unknown history entry kind/origin: {kind}/{origin}")
    return {"path": strip_credentials(path), "kind": kind, "origin": origin, "job_id": job_id,
            "time": time or now_iso()}


def add_history(history: Any, entry: Mapping[str, Any],
                limit: int = DEFAULT_HISTORY_LIMIT) -> list[dict[str, Any]]:
    """``history`` with ``entry`` first (an older entry of the same path gives way), at most
    ``limit`` entries, newest first."""
    kept = [dict(e) for e in _entries(history) if e.get("path") != entry.get("path")]
    merged = [dict(entry), *kept]
    merged.sort(key=lambda e: parse_iso(e.get("time")), reverse=True)
    return merged[:max(1, limit)]


def _entries(history: Any) -> list[Mapping[str, Any]]:
    """The well-formed entries of a ``history`` value (anything else is dropped)."""
    if not isinstance(history, list):
        return []
    return [e for e in history if isinstance(e, Mapping) and isinstance(e.get("path"), str)
            and e.get("kind") in KINDS]


# ----------------------------------------------------------------------- checking


@dataclass(frozen=True)
class RecordProblem:
    """A field of a record that cannot be used (hand-edited or tampered metadata)."""

    field: str
    problem: str

    def note(self, source: str) -> str:
        what = f"flink.{self.field}" if self.field else "flink value"
        return f"The {source}'s {what} {self.problem}; it is ignored."


def submitted_job_ids(record: Mapping[str, Any]) -> tuple[str, ...]:
    """The cell's last jobs, newest first: those about to be submitted, and its recorded one."""
    ids = record.get(SUBMITTED_KEY)
    found = [i for i in ids if isinstance(i, str)] if isinstance(ids, list) else []
    if isinstance(record.get("job_id"), str):
        found.append(record["job_id"])
    return tuple(dict.fromkeys(found))


def with_submitted(record: Mapping[str, Any] | None, job_id: str) -> list[str]:
    """``record``'s submitted job ids with ``job_id`` first (the last few kept)."""
    return [job_id, *(i for i in submitted_job_ids(record or {}) if i != job_id)][
        :SUBMITTED_KEPT]


def valid_record(value: Any) -> tuple[dict[str, Any], list[RecordProblem]]:
    """The usable part of a record, and what was wrong with the rest.

    A record that is not an object is ignored whole; a text field that is not text (a path
    that is a number or a list) and malformed history entries are dropped one by one.
    """
    if value is None:
        return {}, []
    if not isinstance(value, Mapping):
        return {}, [RecordProblem("", f"is a {type(value).__name__}, not an object")]
    record = dict(value)
    problems: list[RecordProblem] = []
    for key in _TEXT_KEYS:
        if key in record and record[key] is not None and not isinstance(record[key], str):
            problems.append(RecordProblem(
                key, f"is {type(record[key]).__name__} {record[key]!r}, not a path or text"))
            del record[key]
    if HISTORY_KEY in record:
        history = record[HISTORY_KEY]
        entries = _entries(history)
        if not isinstance(history, list) or len(entries) != len(history):
            problems.append(RecordProblem(HISTORY_KEY, "has entries that are not restore "
                                          "points (path, kind, origin, job_id, time)"))
        record[HISTORY_KEY] = [dict(e) for e in entries]
    return record, problems
