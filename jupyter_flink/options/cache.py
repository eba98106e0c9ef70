"""The cache of scanned Flink options: one JSON file per Flink version and jar set.

Scanning Flink's classes for options takes seconds (:mod:`jupyter_flink.options.discovery`);
reading this cache a few milliseconds. Any change of the jars (a new connector) gives a new
file.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ..files import atomic_write_text
from .discovery import OptionInfo

__all__ = ["SCHEMA_VERSION", "cache_file", "default_cache_dir", "installed_flink_version",
           "newest_cache", "read_cache", "write_cache"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # bump whenever the scan's output changes: old caches are then ignored


def default_cache_dir() -> Path:
    """Where scanned options are kept: the user cache dir (platformdirs), or ~/.cache."""
    try:
        from platformdirs import user_cache_dir
    except ImportError:
        return Path.home() / ".cache" / "jupyter-flink"
    return Path(user_cache_dir("jupyter-flink", appauthor=False))


def cache_file(cache_dir: Path, flink_version: str, jars: Iterable[str]) -> Path:
    """The cache file for this Flink version and these jars (any jar change: a new file)."""
    stamps = []
    for jar in jars:
        st = os.stat(jar)
        stamps.append([os.path.basename(jar), st.st_size, st.st_mtime_ns])
    digest = hashlib.sha256(
        json.dumps([SCHEMA_VERSION, flink_version, stamps]).encode()).hexdigest()[:16]
    return cache_dir / f"flink-options-{flink_version}-{digest}.json"


def newest_cache(cache_dir: Path, flink_version: str) -> Path | None:
    """The most recently written cache file of ``flink_version`` in ``cache_dir``, if any."""
    try:
        files = [(p.stat().st_mtime_ns, p) for p in
                 cache_dir.glob(f"flink-options-{glob.escape(flink_version)}-*.json")]
    except OSError:
        return None
    return max(files)[1] if files else None


def installed_flink_version() -> str | None:
    """The version of the installed PyFlink (``apache-flink``), read without starting Java."""
    try:
        return version("apache-flink")
    except PackageNotFoundError:
        return None


def read_cache(path: Path) -> list[OptionInfo] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema") != SCHEMA_VERSION:
            return None
        return [_option_from_json(o) for o in data["options"]]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("Ignoring unreadable Flink option cache %s: %s", path, exc)
        return None


def _option_from_json(data: dict[str, Any]) -> OptionInfo:
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return OptionInfo(**fields)


def write_cache(path: Path, flink_version: str, options: list[OptionInfo]) -> None:
    """Write atomically: concurrent kernels never see half a file."""
    payload = {"schema": SCHEMA_VERSION, "flink_version": flink_version,
               "options": [asdict(o) for o in options]}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(payload))
    except OSError as exc:  # a read-only home only costs the next kernel a scan
        log.warning("Could not cache Flink options in %s: %s", path, exc)
