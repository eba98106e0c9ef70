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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..secrets import mask, strip_url_credentials
from ..times import parse_iso

__all__ = ["FLINK_KEY", "METADATA_KEYS", "PATH_KEYS", "cell_metadata", "merge_records",
           "newest_record", "strip_credentials"]

FLINK_KEY = "flink"
METADATA_KEYS = ("latest_checkpoint_path", "savepoint_path", "job_id", "job_name", "cell_id",
                 "updated")
PATH_KEYS = ("latest_checkpoint_path", "savepoint_path")


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
    return cell_metadata(merged)
