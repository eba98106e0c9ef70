"""Which checkpoint or savepoint a cell's new job starts from.

Precedence (Zeppelin's, see DESIGN.md "Contract"):

1. the recorded ``savepoint_path`` if ``resumeFromSavepoint=true``;
2. else the cell's latest state if ``resumeFromLatestCheckpoint=true``: the newest restorable
   of the recorded checkpoint, a newer complete ``chk-N`` of the same job on storage (the
   kernel died before it could record it), the checkpoints of the cell's last jobs when their
   kernel died before it recorded them (a job's id is recorded before it is submitted), and
   the recorded savepoint (the one its last job was stopped with: Flink deletes a job's
   checkpoints when it stops with a savepoint);
3. else the cell's own ``execution.savepoint.path`` / ``execution.state-recovery.path``, or
   ``resumeFrom=N`` (entry N of the cell's history);
4. else ``execution.state-recovery.path`` from ``%%flink.conf``;
5. else a fresh start.

A flag whose path was never recorded falls through to the next rule and says so (the first
run of a notebook written with ``resumeFromSavepoint=true`` starts fresh, as in Zeppelin).
A path that *was* chosen but lost its ``_metadata`` is an error, never a silent fresh start
(:func:`jupyter_flink.recording.storage.check_restore_path`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import PropertyError
from ..recording import storage
from ..recording.record import HISTORY_KEY, newest_record, submitted_job_ids, valid_record

RESTORE_KEY = "execution.state-recovery.path"

__all__ = ["RESTORE_KEY", "Latest", "Recorded", "ResumeChoice", "choose_restore_path",
           "latest_restore_point", "recorded_for_cell"]


@dataclass(frozen=True)
class Recorded:
    """What was recorded for a cell, and where it was read from."""

    latest_checkpoint_path: str | None = None
    savepoint_path: str | None = None
    source: str = "nothing recorded"
    history: tuple[Mapping[str, Any], ...] = ()
    job_id: str | None = None
    jobs: tuple[str, ...] = ()  # the cell's last jobs, newest first (the recorded one too)


@dataclass(frozen=True)
class Latest:
    """The newest restorable state of a cell, and what it is."""

    path: str
    what: str
    unrecorded: bool = False  # a checkpoint found on storage that the kernel never recorded


@dataclass(frozen=True)
class ResumeChoice:
    """The path a job restores from (None: fresh start), why, and notes for the user."""

    path: str | None
    reason: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    latest: Latest | None = None


def recorded_for_cell(cell_id: str | None, metadata: Any,
                      journal_entry: Mapping[str, Any] | None) -> tuple[Recorded, list[str]]:
    """Pick the record of the cell from its metadata or the journal; returns notes too.

    Metadata recorded for another cell (copied along with the cell) is not used silently,
    nor are fields that are not what they should be (hand-edited metadata): each gets a
    one-line note. When both sources describe this cell, the one updated last wins.
    """
    notes: list[str] = []
    candidates: list[tuple[str, Mapping[str, Any]]] = []
    meta, problems = valid_record(metadata)
    notes.extend(problem.note("cell metadata") for problem in problems)
    if meta:
        owner = meta.get("cell_id")
        if cell_id and owner and owner != cell_id:
            path = meta.get("savepoint_path") or meta.get("latest_checkpoint_path")
            notes.append(
                f"This cell's metadata.flink was recorded for another cell ({owner}), probably "
                "copied with the cell, so it is not used. To resume from it anyway, add "
                f"execution.state-recovery.path={path} to the cell header."
                if path else
                f"This cell's metadata.flink belongs to another cell ({owner}); ignored.")
        else:
            candidates.append(("cell metadata", meta))
    journal, problems = valid_record(journal_entry)
    notes.extend(problem.note("journal") for problem in problems)
    if journal:
        candidates.append(("journal", journal))
    newest = newest_record(*candidates)
    if newest is None:
        return Recorded(), notes
    source, chosen = newest
    return Recorded(chosen.get("latest_checkpoint_path"), chosen.get("savepoint_path"), source,
                    tuple(chosen.get(HISTORY_KEY) or ()), chosen.get("job_id"),
                    submitted_job_ids(chosen)), notes


def latest_restore_point(recorded: Recorded, *,
                         written_at: Callable[[str], float | None] = storage.written_at,
                         newer: Callable[[str], Sequence[str]] = storage.newer_checkpoints,
                         of_job: Callable[[str, str], Sequence[str]] = storage.checkpoints_of_job,
                         usable: Callable[[Latest], bool] = lambda latest: True,
                         checkpoint_dir: str | None = None,
                         ) -> Latest | None:
    """The cell's newest restorable state (rule 2 above), by when its ``_metadata`` was
    written, of those ``usable`` accepts (a checkpoint nobody recorded may have been cut off
    by a crash); None when there is none. When nothing recorded can be read, the recorded
    checkpoint (so that the storage check names it and lists what is left).
    ``checkpoint_dir``: where the cell's jobs write checkpoints, when none was recorded."""
    candidates: list[Latest] = []
    recorded_job = None
    root = checkpoint_dir
    if recorded.latest_checkpoint_path:
        candidates.append(Latest(recorded.latest_checkpoint_path, "the recorded checkpoint"))
        candidates.extend(Latest(path, "a checkpoint found on storage, newer than the recorded "
                                       "one (the kernel stopped before recording it)", True)
                          for path in newer(recorded.latest_checkpoint_path))
        recorded_job = storage.job_id_of(recorded.latest_checkpoint_path)
        root = storage.checkpoint_root(recorded.latest_checkpoint_path) or root
    if root:
        # The cell's last jobs (later runs) whose kernel died before it recorded their
        # checkpoints: theirs, and the output they committed, may be newer
        for job in recorded.jobs or ((recorded.job_id,) if recorded.job_id else ()):
            if job != recorded_job:
                candidates.extend(Latest(path, "a checkpoint of the cell's last job found on "
                                               "storage (the kernel stopped before recording "
                                               "it)", True) for path in of_job(root, job))
    if recorded.savepoint_path:
        stopped = any(e.get("path") == recorded.savepoint_path
                      and e.get("origin") in ("stop", "cancel") for e in recorded.history)
        candidates.append(Latest(recorded.savepoint_path,
                                 "the savepoint its last job was stopped with" if stopped
                                 else "the recorded savepoint"))
    if not candidates:
        return None
    dated = [(when, c) for c in candidates if (when := written_at(c.path)) is not None]
    for _, candidate in sorted(dated, key=lambda pair: pair[0], reverse=True):
        if usable(candidate):
            return candidate
    return candidates[0]


def choose_restore_path(*, resume_from_savepoint: bool, resume_from_latest_checkpoint: bool,
                        paragraph_path: str | None, conf_path: str | None,
                        recorded: Recorded, resume_from: int | None = None,
                        latest: Callable[[Recorded], Latest | None] = latest_restore_point,
                        ) -> ResumeChoice:
    """Apply the precedence table (``latest`` finds the cell's newest state)."""
    notes: list[str] = []
    if resume_from is not None:
        paragraph_path = _history_path(recorded, resume_from)
    if resume_from_savepoint:
        if recorded.savepoint_path:
            return ResumeChoice(recorded.savepoint_path,
                                f"savepoint recorded in the {recorded.source}")
        notes.append("resumeFromSavepoint=true, but no savepoint is recorded for this cell yet.")
    if resume_from_latest_checkpoint:
        found = latest(recorded) if recorded.latest_checkpoint_path or \
            recorded.savepoint_path or recorded.jobs else None
        if found is not None:
            notes.append(f"resumeFromLatestCheckpoint=true: starting from {found.path}, "
                         f"{found.what}, the newest restorable state of this cell.")
            return ResumeChoice(found.path, f"{found.what}, the newest state of the cell",
                                tuple(notes), found)
        notes.append("resumeFromLatestCheckpoint=true, but no checkpoint is recorded for this "
                     "cell yet.")
    if paragraph_path:
        reason = (f"entry {resume_from} of the cell's history" if resume_from is not None
                  else "the cell's execution.state-recovery.path")
        return ResumeChoice(paragraph_path, reason, tuple(notes))
    if conf_path:
        return ResumeChoice(conf_path, "execution.state-recovery.path in %%flink.conf",
                            tuple(notes))
    if notes:
        notes.append("Starting without state.")
    return ResumeChoice(None, "fresh start", tuple(notes))


def _history_path(recorded: Recorded, number: int) -> str:
    """The path of entry ``number`` (1 = newest) of the cell's history."""
    if not 1 <= number <= len(recorded.history):
        have = (f"it has {len(recorded.history)} (%flink.history lists them)"
                if recorded.history else "nothing is recorded for it yet")
        raise PropertyError(f"resumeFrom={number}: this cell's history has no entry {number}; "
                            f"{have}.", name="resumeFrom")
    return str(recorded.history[number - 1]["path"])
