"""The journal: what was recorded for each cell's Flink job, in a file beside the notebook.

Cell metadata is the notebook's own copy, but only a frontend or the headless runner can
write it; the journal is written by the kernel itself, so it is the source for resuming when
the cell metadata is missing (kernel killed before a save, a frontend without our extension).

One JSON file per notebook, ``.<notebook name>.flink-journal.json`` beside it::

    {"version": 1, "notebook": "/abs/path/demo.ipynb",
     "cells": {"<cell id>": {"latest_checkpoint_path": ..., "savepoint_path": ..., ...}}}

Outside a notebook, entries are keyed by job name in a journal under Jupyter's data dir.
Writes are read-modify-write under a file lock, to a temporary file then ``os.replace``:
two kernels can share a journal and a crash never leaves it half-written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock

from ..files import atomic_write_text
from ..times import now_iso

JOURNAL_VERSION = 1
SUFFIX = ".flink-journal.json"


def journal_path_for(notebook_path: str | os.PathLike[str] | None,
                     journal_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the journal of ``notebook_path`` lives (``journal_dir`` overrides "beside it")."""
    if notebook_path is None:
        from jupyter_core.paths import jupyter_data_dir

        base = Path(journal_dir) if journal_dir else Path(jupyter_data_dir()) / "flink"
        return base / ("no-notebook" + SUFFIX)
    notebook = Path(notebook_path).resolve()
    base = Path(journal_dir) if journal_dir else notebook.parent
    return base / f".{notebook.name}{SUFFIX}"


class Journal:
    """Recorded Flink paths per cell of one notebook."""

    def __init__(self, path: str | os.PathLike[str], notebook_path: str | None = None):
        self.path = Path(path)
        self.notebook_path = notebook_path
        self._lock = FileLock(str(self.path) + ".lock", timeout=30)

    @classmethod
    def for_notebook(cls, notebook_path: str | None,
                     journal_dir: str | os.PathLike[str] | None = None) -> Journal:
        notebook = str(Path(notebook_path).resolve()) if notebook_path else None
        return cls(journal_path_for(notebook_path, journal_dir), notebook)

    def entries(self) -> dict[str, dict[str, Any]]:
        """All recorded entries, by key (cell id, or ``job:<name>`` outside a notebook)."""
        return dict(self._read().get("cells", {}))

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self._read().get("cells", {}).get(key)
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        updated = now_iso()
        with self._lock:
            data = self._read()
            cells = data.setdefault("cells", {})
            for key, fields in changes.items():
                cells[key] = {**cells.get(key, {}), **fields, "updated": updated}
            data["version"] = JOURNAL_VERSION
            if self.notebook_path:
                data["notebook"] = self.notebook_path
            self._write(data)
        return {key: dict(cells[key]) for key in changes}

    def _read(self) -> dict[str, Any]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return {"version": JOURNAL_VERSION, "cells": {}}
        except (OSError, ValueError) as exc:
            # Never silently start over: the entries are what resuming depends on.
            raise OSError(f"The Flink journal {self.path} cannot be read ({exc}). Move it "
                          "aside to start a new one; its entries will then be lost.") from exc
        return data if isinstance(data, dict) else {"version": JOURNAL_VERSION, "cells": {}}

    def _write(self, data: Mapping[str, Any]) -> None:
        # Private by default, as the temporary file of earlier versions made it.
        atomic_write_text(self.path, json.dumps(data, indent=1, sort_keys=True),
                          new_file_mode=0o600)
