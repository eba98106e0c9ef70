"""Which checkpoint or savepoint a cell's new job starts from, and whether it still exists.

Precedence (Zeppelin's, see DESIGN.md "Contract"):

1. the recorded ``savepoint_path`` if ``resumeFromSavepoint=true``;
2. else the recorded ``latest_checkpoint_path`` if ``resumeFromLatestCheckpoint=true``;
3. else the cell's own ``execution.savepoint.path`` / ``execution.state-recovery.path``;
4. else ``execution.state-recovery.path`` from ``%%flink.conf``;
5. else a fresh start.

A flag whose path was never recorded falls through to the next rule and says so (the first
run of a notebook written with ``resumeFromSavepoint=true`` starts fresh, as in Zeppelin).
A path that *was* chosen but lost its ``_metadata`` is an error, never a silent fresh start
(:func:`jupyter_flink.recording.storage.check_restore_path`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..recording.record import newest_record

RESTORE_KEY = "execution.state-recovery.path"


@dataclass(frozen=True)
class Recorded:
    """The paths recorded for a cell, and where they were read from."""

    latest_checkpoint_path: str | None = None
    savepoint_path: str | None = None
    source: str = "nothing recorded"


@dataclass(frozen=True)
class ResumeChoice:
    """The path a job restores from (None: fresh start), why, and notes for the user."""

    path: str | None
    reason: str
    notes: tuple[str, ...] = field(default_factory=tuple)


def recorded_for_cell(cell_id: str | None, metadata: Mapping[str, Any],
                      journal_entry: Mapping[str, Any] | None) -> tuple[Recorded, list[str]]:
    """Pick the recorded paths from the cell's metadata or the journal; returns notes too.

    Metadata recorded for another cell (copied along with the cell) is not used silently.
    When both sources describe this cell, the one updated last wins: the journal is written
    first, the metadata only after the frontend applied and saved it.
    """
    notes: list[str] = []
    candidates: list[tuple[str, Mapping[str, Any]]] = []
    if metadata:
        owner = metadata.get("cell_id")
        if cell_id and owner and owner != cell_id:
            path = metadata.get("savepoint_path") or metadata.get("latest_checkpoint_path")
            notes.append(
                f"This cell's metadata.flink was recorded for another cell ({owner}), probably "
                "copied with the cell, so it is not used. To resume from it anyway, add "
                f"execution.state-recovery.path={path} to the cell header."
                if path else
                f"This cell's metadata.flink belongs to another cell ({owner}); ignored.")
        else:
            candidates.append(("cell metadata", metadata))
    if journal_entry:
        candidates.append(("journal", journal_entry))
    if not candidates:
        return Recorded(), notes
    newest = newest_record(*candidates)
    assert newest is not None
    source, chosen = newest
    return Recorded(chosen.get("latest_checkpoint_path"), chosen.get("savepoint_path"),
                    source), notes


def choose_restore_path(*, resume_from_savepoint: bool, resume_from_latest_checkpoint: bool,
                        paragraph_path: str | None, conf_path: str | None,
                        recorded: Recorded) -> ResumeChoice:
    """Apply the precedence table."""
    notes: list[str] = []
    if resume_from_savepoint:
        if recorded.savepoint_path:
            return ResumeChoice(recorded.savepoint_path,
                                f"savepoint recorded in the {recorded.source}")
        notes.append("resumeFromSavepoint=true, but no savepoint is recorded for this cell yet.")
    if resume_from_latest_checkpoint:
        if recorded.latest_checkpoint_path:
            return ResumeChoice(recorded.latest_checkpoint_path,
                                f"latest checkpoint recorded in the {recorded.source}",
                                tuple(notes))
        notes.append("resumeFromLatestCheckpoint=true, but no checkpoint is recorded for this "
                     "cell yet.")
    if paragraph_path:
        return ResumeChoice(paragraph_path, "the cell's execution.state-recovery.path",
                            tuple(notes))
    if conf_path:
        return ResumeChoice(conf_path, "execution.state-recovery.path in %%flink.conf",
                            tuple(notes))
    if notes:
        notes.append("Starting without state.")
    return ResumeChoice(None, "fresh start", tuple(notes))
