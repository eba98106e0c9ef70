"""One run of a paragraph, passed explicitly from step to step.

A cell's run and a background resubmission of it (``restartPolicy``) go through the same
steps; what differs (where notes go, which output the new job takes over, what to do when the
job fails) travels with the run, never in thread-local or global state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..jobs.registry import Owner

if TYPE_CHECKING:
    from ..jobs.registry import TrackedJob
    from ..kernel.cell import CellContext
    from ..parsing.properties import ParagraphProperties

__all__ = ["CellRun", "Prepared"]


@dataclass(frozen=True)
class Prepared:
    """A paragraph ready to run: its owner, the job settings, where it restores from."""

    owner: Owner
    overrides: dict[str, str]
    restore_path: str | None
    restore_reason: str
    notes: tuple[str, ...]
    job_id: str | None = None  # the id its job will have, if chosen here (Launcher.announce)


@dataclass
class CellRun:
    """What one run of a paragraph needs besides the session: the cell, its properties, its
    text, and how to report.

    ``say`` prints a note in the cell; a background resubmission has no cell to print in, so
    its notes are kept in ``background_notes`` and shown with the new job's status instead,
    in the output of ``takes_over`` (the job that failed).
    """

    props: ParagraphProperties
    cell: CellContext
    text: str
    say: Callable[[str], None]
    on_failure: Callable[[TrackedJob], None] | None = None
    takes_over: str | None = None
    background_notes: list[str] | None = None
    attempt: int = 0  # resubmissions so far (restartPolicy)
    first_line: int = 1  # the text's first line in the cell: 2 below a cell magic
    prepared: Prepared | None = None
    jobs: list[TrackedJob] = field(default_factory=list)  # tracked by this run, in order

    def note(self, text: str) -> None:
        """A note for the user: in the cell, or with a background resubmission's status."""
        if self.background_notes is not None:
            self.background_notes.append(text)
        else:
            self.say(text)

    @property
    def notice(self) -> str | None:
        """The notes of a background run, for the new job's status output."""
        return " ".join(self.background_notes) if self.background_notes else None

    def must_be_prepared(self) -> Prepared:
        if self.prepared is None:
            raise RuntimeError("the run was not prepared")  # a bug: prepare() comes first
        return self.prepared
