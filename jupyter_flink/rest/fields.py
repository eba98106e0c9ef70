"""Reading fields of Flink's JSON answers leniently: a missing or odd value gives a neutral one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["as_int", "as_mapping"]


def as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
