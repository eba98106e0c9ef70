"""Timestamps as recorded in ``metadata.flink`` (``updated``, history entries): ISO 8601.

Records are compared by time, never as strings: "2026-11-29T10:00:00+01:00" is older than
"2026-11-29T09:30:00Z" although it sorts after it, and hand-edited metadata may carry any
offset, no offset at all, or no valid time.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

__all__ = ["EPOCH", "now_iso", "parse_iso"]

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def now_iso() -> str:
    """The current time in UTC, ISO 8601 with milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def parse_iso(value: Any) -> datetime:
    """An aware datetime for an ISO 8601 value; :data:`EPOCH` for anything else.

    A time without an offset is taken as UTC (what this package writes). Python 3.9's
    ``fromisoformat`` does not read a trailing "Z", so it is spelled out first.
    """
    if not isinstance(value, str) or not value:
        return EPOCH
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return EPOCH
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)
