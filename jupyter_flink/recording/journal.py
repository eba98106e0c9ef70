"""The journal: what was recorded for each cell's Flink job, in a file beside the notebook.

Cell metadata is the notebook's own copy, but only a frontend or the headless runner can
write it; the journal is written by the kernel itself, so it is the source for resuming when
the cell metadata is missing (kernel killed before a save, a frontend without our extension).

One JSON file per notebook, ``.<notebook name>.flink-journal.json`` beside it::

    {"version": 1, "notebook": "/abs/path/demo.ipynb",
     "cells": {"<cell id>": {"latest_checkpoint_path": ..., "savepoint_path": ..., ...}}}

Outside a notebook, entries are keyed by job name in a journal under Jupyter's data dir; so
is the journal of a notebook whose folder cannot be written (:func:`fallback_journal_path`).
Writes are read-modify-write under a file lock, to a temporary file then ``os.replace``:
two kernels can share a journal and a crash never leaves it half-written. A file that is not
a journal (truncated, hand-edited) is never overwritten: reading it raises
:class:`CorruptJournal`, and :meth:`Journal.move_aside` keeps it for the user.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock

from ..files import atomic_write_text
from ..times import now_iso

__all__ = ["JOURNAL_VERSION", "SUFFIX", "CorruptJournal", "Journal", "fallback_journal_path",
           "journal_path_for"]

JOURNAL_VERSION = 1
SUFFIX = ".flink-journal.json"
LOCK_TIMEOUT_S = 30.0


def _merging(fields: Mapping[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda entry: {**entry, **fields}


class CorruptJournal(OSError):
    """The journal file exists but does not hold a journal."""


def _data_dir() -> Path:
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "flink"


def journal_path_for(notebook_path: str | os.PathLike[str] | None,
                     journal_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the journal of ``notebook_path`` lives (``journal_dir`` overrides "beside it")."""
    if notebook_path is None:
        base = Path(journal_dir) if journal_dir else _data_dir()
        return base / ("no-notebook" + SUFFIX)
    notebook = Path(notebook_path).resolve()
    base = Path(journal_dir) if journal_dir else notebook.parent
    return base / f".{notebook.name}{SUFFIX}"


def fallback_journal_path(notebook_path: str | os.PathLike[str]) -> Path:
    """Where a notebook's journal goes when its own cannot be written: Jupyter's data dir,
    one file per notebook path."""
    notebook = Path(notebook_path).resolve()
    digest = hashlib.sha1(str(notebook).encode()).hexdigest()[:10]
    return _data_dir() / "journals" / f"{notebook.name}-{digest}{SUFFIX}"


class Journal:
    """Recorded Flink paths per cell of one notebook."""

    def __init__(self, path: str | os.PathLike[str], notebook_path: str | None = None):
        self.path = Path(path)
        self.notebook_path = notebook_path
        self._lock = FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT_S)
        # What this object last wrote, by the file's identity: a poll round's write then
        # needs no parse of the whole journal unless another kernel wrote it since.
        self._written: tuple[tuple[int, int, int], dict[str, Any]] | None = None

    @classmethod
    def for_notebook(cls, notebook_path: str | None,
                     journal_dir: str | os.PathLike[str] | None = None) -> Journal:
        notebook = str(Path(notebook_path).resolve()) if notebook_path else None
        return cls(journal_path_for(notebook_path, journal_dir), notebook)

    def entries(self) -> dict[str, dict[str, Any]]:
        """All recorded entries, by key (cell id, or ``job:<name>`` outside a notebook)."""
        return {key: dict(entry) for key, entry in self._read()["cells"].items()}

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self._read()["cells"].get(key)
        return dict(entry) if entry is not None else None

    def record(self, key: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``fields`` into the entry for ``key`` and stamp ``updated``; returns the entry.

        Only the given fields change: a new job that has no checkpoint yet leaves the
        previous run's paths in place until it records its own.
        """
        return self.record_many({key: fields})[key]

    def record_many(self, changes: Mapping[str, Mapping[str, Any]]
                    ) -> dict[str, dict[str, Any]]:
        """:meth:`record` for several keys in one write (a poll round's checkpoints)."""
        return self.update_many({key: _merging(fields) for key, fields in changes.items()})

    def update_many(self, updates: Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]]
                    ) -> dict[str, dict[str, Any]]:
        """Replace the entry of each key with ``update(entry)`` (``{}`` for a new key) and
        stamp ``updated``, all in one write under the lock; returns the new entries."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        updated = now_iso()
        with self._lock:
            data = self._read(reuse=True)
            cells = data["cells"]
            try:
                for key, update in updates.items():
                    cells[key] = {**update(dict(cells.get(key, {}))), "updated": updated}
                self._write(data)
            except BaseException:
                self._written = None  # what it holds may not be on disk
                raise
        return {key: dict(cells[key]) for key in updates}

    def replace_entries(self, entries: Mapping[str, Mapping[str, Any]]) -> None:
        """Write ``entries`` as the whole content (a journal started afresh or moved)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._write({"cells": {key: dict(entry) for key, entry in entries.items()}})

    def move_aside(self) -> Path:
        """Rename an unreadable journal out of the way (kept for the user); returns where."""
        target = self.path.with_name(f"{self.path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
        with self._lock:
            os.replace(self.path, target)
        return target

    def _read(self, *, reuse: bool = False) -> dict[str, Any]:
        """The journal's content; ``reuse``: what this object wrote last if the file is
        still that one (callers that change it write it back, or drop it)."""
        if reuse and self._written is not None and self._written[0] == self._identity():
            return self._written[1]
        self._written = None
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return {"version": JOURNAL_VERSION, "cells": {}}
        except ValueError as exc:
            raise self._corrupt(str(exc)) from exc
        if not isinstance(data, dict) or not isinstance(data.get("cells", {}), dict) or not all(
                isinstance(entry, dict) for entry in data.get("cells", {}).values()):
            raise self._corrupt("unexpected content")
        data.setdefault("cells", {})
        return data

    def _corrupt(self, reason: str) -> CorruptJournal:
        return CorruptJournal(f"The Flink journal {self.path} cannot be read ({reason}). Move "
                              "it aside to start a new one; its entries will then be lost.")

    def _write(self, data: dict[str, Any]) -> None:
        data["version"] = JOURNAL_VERSION
        if self.notebook_path:
            data["notebook"] = self.notebook_path
        # Private by default, as the temporary file of earlier versions made it.
        atomic_write_text(self.path, _dumps(data), new_file_mode=0o600)
        self._written = (self._identity(), data)

    def _identity(self) -> tuple[int, int, int]:
        try:
            st = os.stat(self.path)
        except OSError:
            return (-1, -1, -1)
        return (st.st_ino, st.st_size, st.st_mtime_ns)


def _dumps(data: Mapping[str, Any]) -> str:
    """The journal as JSON with one cell per line: readable, and made by json's C encoder
    (``indent=`` falls back to the pure-Python one: 5.1 ms instead of 1.7 ms for a hundred
    cells, written up to five times a second; bench/README.md)."""
    fields = [f" {json.dumps(key)}: {json.dumps(value, sort_keys=True)}"
              for key, value in sorted(data.items()) if key != "cells"]
    cells = ",\n".join(f"  {json.dumps(key)}: {json.dumps(entry, sort_keys=True)}"
                       for key, entry in sorted(data.get("cells", {}).items()))
    fields.append(' "cells": {' + (f"\n{cells}\n }}" if cells else "}"))
    return "{\n" + ",\n".join(fields) + "\n}\n"
