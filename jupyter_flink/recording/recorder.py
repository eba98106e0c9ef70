"""Recording: what a job reached goes to its notebook's journal, then to every frontend.

The journal is written first (it is what a restarted kernel resumes from), then one comm
message per notebook carries the cells' whole records to the frontends, which put them in
``cell.metadata["flink"]``. Recording never stops because a file cannot be written:

* a journal that is not a journal (truncated, hand-edited) is moved aside, with a note, and
  a new one is started from what this kernel knows;
* a journal that cannot be written (read-only file or folder, full disk) is replaced by one
  under Jupyter's data dir, with a note saying why and where;
* whatever happens to files, the comm message still goes out, built from the records this
  kernel keeps in memory.

Each problem is reported once per notebook to the ``on_problem`` listeners, never raised: the poll
round or the cell that recorded goes on.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..secrets import mask
from ..times import now_iso
from . import comm
from .journal import SUFFIX, CorruptJournal, Journal, fallback_journal_path
from .record import (
    DEFAULT_HISTORY_LIMIT,
    HISTORY_KEY,
    add_history,
    cell_metadata,
    merge_records,
    newest_record,
    strip_credentials,
)

__all__ = ["CellRecord", "Recorder"]

log = logging.getLogger(__name__)

SendUpdates = Callable[[str | None, Mapping[str, Mapping[str, Any]]], None]


@dataclass(frozen=True)
class CellRecord:
    """Fields to record for one cell (``key``: its id, or ``job:<name>`` outside a notebook),
    and maybe a restore point to add to its history (record.history_entry)."""

    notebook_path: str | None
    key: str
    fields: Mapping[str, Any]
    history: Mapping[str, Any] | None = None
    forget: tuple[str, ...] = ()  # paths to drop from the history (deleted restore points)


@dataclass
class _Change:
    """What one record() call changes in one cell's record."""

    fields: dict[str, Any] = field(default_factory=dict)
    history: list[Mapping[str, Any]] = field(default_factory=list)
    forget: set[str] = field(default_factory=set)

    def apply(self, entry: dict[str, Any], limit: int) -> dict[str, Any]:
        entry = {**entry, **self.fields}
        for point in self.history:
            entry[HISTORY_KEY] = add_history(entry.get(HISTORY_KEY), point, limit)
        if self.forget and isinstance(entry.get(HISTORY_KEY), list):
            entry[HISTORY_KEY] = [e for e in entry[HISTORY_KEY]
                                  if not (isinstance(e, Mapping) and e.get("path") in self.forget)]
        return entry


class Recorder:
    """The journals and comm messages of one kernel's notebooks."""

    def __init__(self, *, journal_dir: str | None = None,
                 send_updates: SendUpdates = comm.send_metadata_updates,
                 on_problem: Callable[[str | None, str], None] | None = None,
                 history_limit: int = DEFAULT_HISTORY_LIMIT):
        self._journal_dir = journal_dir
        self.history_limit = history_limit
        self._send_updates = send_updates
        self._problem_listeners = [on_problem] if on_problem else []
        self._journals: dict[str | None, Journal] = {}
        self._known: dict[str | None, dict[str, dict[str, Any]]] = {}
        self._reported: set[tuple[str | None, str]] = set()
        # What a new job of the notebook should show: lasting problems (the journal cannot be
        # written) and, once, what happened before it started (a journal moved aside).
        self._problems: dict[str | None, dict[str, str]] = {}
        self._lock = threading.RLock()

    def problem(self, notebook_path: str | None) -> str | None:
        """What a new job of the notebook should say about its journal, if anything."""
        with self._lock:
            problems = self._problems.get(notebook_path, {})
            text = problems.get("write") or problems.get("corrupt") or problems.get("read")
            problems.pop("corrupt", None)  # said once
            return text

    def on_problem(self, listener: Callable[[str | None, str], None]) -> None:
        """Call ``listener(notebook_path, text)`` for each problem with a journal."""
        self._problem_listeners.append(listener)

    # ----------------------------------------------------------------- reading

    def journal(self, notebook_path: str | None) -> Journal:
        """The journal this kernel writes for ``notebook_path`` (maybe the fallback one)."""
        with self._lock:
            if notebook_path not in self._journals:
                self._journals[notebook_path] = Journal.for_notebook(notebook_path,
                                                                     self._journal_dir)
            return self._journals[notebook_path]

    def recorded(self, notebook_path: str | None, key: str) -> dict[str, Any] | None:
        """The newest record of ``key``: this kernel's own, or the journal's (another kernel
        may have written it since); else one left in the journal of a notebook that was
        renamed while no kernel ran (it is taken over)."""
        with self._lock:
            known = self._known.get(notebook_path, {}).get(key)
        on_disk = self._read(notebook_path).get(key)
        candidates = [("kernel", r) for r in (known, on_disk) if r]
        newest = newest_record(*candidates)
        if newest is None and notebook_path is not None:
            orphan = self._orphaned(notebook_path, key)
            if orphan is not None:
                self.record([CellRecord(notebook_path, key, {
                    k: v for k, v in orphan.items() if k != "updated"})])
                return self.recorded(notebook_path, key)
        return dict(newest[1]) if newest else None

    def move(self, old: str, new: str) -> None:
        """The notebook was renamed or moved: its journal and records follow it."""
        with self._lock:
            old_journal = self.journal(old)
            new_journal = Journal.for_notebook(new, self._journal_dir)
            entries = self._safe_entries(old_journal)
            known = self._known.pop(old, {})
            self._journals.pop(old, None)
            self._journals[new] = new_journal
            self._known[new] = known
            if entries or known:
                merged = self._safe_entries(new_journal)
                for key, entry in {**entries, **known}.items():
                    newest = newest_record(("new", merged.get(key) or {}), ("old", entry))
                    merged[key] = dict(newest[1]) if newest else dict(entry)
                try:
                    new_journal.replace_entries(merged)
                except OSError as exc:
                    self._report(new, "write", f"The Flink journal cannot follow the notebook "
                                 f"to {new_journal.path} ({exc.strerror or exc}).")
                    return
            for path in (old_journal.path, Path(str(old_journal.path) + ".lock")):
                with contextlib.suppress(OSError):
                    path.unlink()

    def _orphaned(self, notebook_path: str, key: str) -> dict[str, Any] | None:
        """``key``'s record in a journal beside this one whose notebook no longer exists."""
        own = self.journal(notebook_path).path
        for path in sorted(own.parent.glob(f".*{SUFFIX}")):
            if path == own:
                continue
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            notebook = data.get("notebook") if isinstance(data, dict) else None
            record = (data.get("cells") or {}).get(key) if isinstance(data, dict) else None
            if isinstance(notebook, str) and not Path(notebook).exists() and \
                    isinstance(record, dict):
                return record
        return None

    def entries(self, notebook_path: str | None) -> dict[str, dict[str, Any]]:
        """Every record of the notebook, the newest of the journal's and this kernel's."""
        entries = self._read(notebook_path)
        with self._lock:
            for key, known in self._known.get(notebook_path, {}).items():
                newest = newest_record(("kernel", known), ("journal", entries.get(key) or {}))
                entries[key] = dict(newest[1]) if newest else known
        return entries

    def _read(self, notebook_path: str | None) -> dict[str, dict[str, Any]]:
        """The journal's records; with those of the fallback journal, where one was written
        (by this kernel or an earlier one), the newer of each."""
        journals = [self.journal(notebook_path)]
        if notebook_path is not None:
            fallback = fallback_journal_path(notebook_path)
            if fallback != journals[0].path and fallback.exists():
                journals.append(Journal(fallback, journals[0].notebook_path))
        merged: dict[str, dict[str, Any]] = {}
        for journal in journals:
            try:
                entries = journal.entries()
            except CorruptJournal:
                self._recover(notebook_path, journal)
                continue
            except OSError as exc:
                self._report(notebook_path, "read", f"The Flink journal {journal.path} cannot "
                             f"be read ({exc.strerror or exc}); resuming uses the cell metadata.")
                continue
            for key, entry in entries.items():
                newest = newest_record(("a", merged.get(key) or {}), ("b", entry))
                merged[key] = dict(newest[1]) if newest else entry
        return merged

    # ----------------------------------------------------------------- writing

    def record(self, records: Sequence[CellRecord]) -> None:
        """Record ``records``: one journal write and one comm message per notebook."""
        by_notebook: dict[str | None, dict[str, _Change]] = {}
        for record in records:
            change = by_notebook.setdefault(record.notebook_path, {}).setdefault(
                record.key, _Change())
            change.fields.update({k: strip_credentials(v) for k, v in record.fields.items()})
            if record.history is not None:
                change.history.append(record.history)
            change.forget.update(record.forget)
        for notebook_path, changes in by_notebook.items():
            entries = self._remember(notebook_path, changes, self._write(notebook_path, changes))
            self._send(notebook_path, entries)

    def adopt(self, notebook_path: str | None, key: str, record: Mapping[str, Any]) -> None:
        """Take a record of the cell from elsewhere (its metadata, as the frontend sent it:
        the record of last resort, e.g. after the notebook was renamed) into the journal,
        where it is newer or holds what the journal lacks."""
        if not record:
            return
        current = self.recorded(notebook_path, key) or {}
        merged = merge_records(current, record)
        if {k: v for k, v in merged.items() if v is not None} == \
                {k: v for k, v in current.items() if v is not None}:
            return
        fields = {k: v for k, v in merged.items() if k != "updated"}
        self.record([CellRecord(notebook_path, key, fields)])

    def _send(self, notebook_path: str | None, entries: Mapping[str, dict[str, Any]]) -> None:
        cells = {entry["cell_id"]: cell_metadata(entry)
                 for entry in entries.values() if entry.get("cell_id")}
        try:
            self._send_updates(notebook_path, cells)
        except Exception:  # the journal has it; a frontend hiccup must not stop recording
            log.exception("sending the metadata updates of %s failed", notebook_path)

    def _remember(self, notebook_path: str | None, changes: Mapping[str, _Change],
                  written: Mapping[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
        """Keep the changed records in memory: as the journal wrote them, or, when it could
        not, merged here. Returns them."""
        with self._lock:
            known = self._known.setdefault(notebook_path, {})
            if written is None:
                updated = now_iso()
                missing = [key for key in changes if key not in known]
                if missing:
                    on_disk = self._read(notebook_path)
                    known.update({key: on_disk[key] for key in missing if key in on_disk})
                for key, change in changes.items():
                    known[key] = {**change.apply(known.get(key, {}), self.history_limit),
                                  "updated": updated}
            else:
                known.update({key: dict(entry) for key, entry in written.items()})
            return {key: dict(known[key]) for key in changes}

    def _write(self, notebook_path: str | None, changes: Mapping[str, _Change]
               ) -> dict[str, dict[str, Any]] | None:
        """Write ``changes`` to the journal; the entries written, or None if it failed."""
        updates = {key: functools.partial(change.apply, limit=self.history_limit)
                   for key, change in changes.items()}
        journal = self.journal(notebook_path)
        try:
            return journal.update_many(updates)
        except CorruptJournal:
            self._recover(notebook_path, journal)
            journal = self.journal(notebook_path)
        except OSError as exc:
            fallback = self._fall_back(notebook_path, journal, exc)
            if fallback is None:
                return None
            journal = fallback
        try:  # the journal started afresh, or the fallback one
            return journal.update_many(updates)
        except OSError as exc:
            self._report(notebook_path, "write", f"The Flink journal {journal.path} cannot be "
                         f"written either ({exc.strerror or exc}); recording goes on in the "
                         "cell metadata only.")
            return None

    def _recover(self, notebook_path: str | None, journal: Journal) -> None:
        """Move an unreadable journal aside and start a new one from what is known."""
        with self._lock:
            try:
                moved = journal.move_aside()
            except OSError as exc:
                self._report(notebook_path, "corrupt", f"The Flink journal {journal.path} is "
                             f"not a journal and cannot be moved aside ({exc.strerror or exc}); "
                             "recording goes on in the cell metadata only.")
                return
            known = self._known.get(notebook_path, {})
            with contextlib.suppress(OSError):  # the next write reports it
                journal.replace_entries(known)
            self._report(notebook_path, "corrupt", f"The Flink journal {journal.path} was not "
                         f"a journal (truncated or edited by hand); it was moved to {moved} and "
                         "a new one started.", every_time=True)

    def _fall_back(self, notebook_path: str | None, journal: Journal, exc: OSError
                   ) -> Journal | None:
        """Switch to the journal under Jupyter's data dir; None if there is none to use."""
        if notebook_path is None or journal.path == fallback_journal_path(notebook_path):
            self._report(notebook_path, "write", f"The Flink journal {journal.path} cannot be "
                         f"written ({exc.strerror or exc}); recording goes on in the cell "
                         "metadata only.")
            return None
        fallback = Journal(fallback_journal_path(notebook_path), journal.notebook_path)
        with self._lock:
            self._journals[notebook_path] = fallback
            with contextlib.suppress(OSError):  # the write that follows reports it
                fallback.replace_entries({**self._safe_entries(journal),
                                          **self._safe_entries(fallback),
                                          **self._known.get(notebook_path, {})})
        self._report(notebook_path, "write", f"The Flink journal {journal.path} cannot be "
                     f"written ({exc.strerror or exc}); recording goes on in {fallback.path}.")
        return fallback

    @staticmethod
    def _safe_entries(journal: Journal) -> dict[str, dict[str, Any]]:
        try:
            return journal.entries()
        except OSError:
            return {}

    def _report(self, notebook_path: str | None, kind: str, text: str, *,
                every_time: bool = False) -> None:
        with self._lock:
            self._problems.setdefault(notebook_path, {})[kind] = text
            if not every_time and (notebook_path, kind) in self._reported:
                return
            self._reported.add((notebook_path, kind))
        text = mask(text)
        log.warning("%s", text)
        for listener in self._problem_listeners:
            try:
                listener(notebook_path, text)
            except Exception:  # telling the user must not break recording
                log.exception("reporting a journal problem failed")
