"""What a completion offers: the text that replaces the fragment, and a type to show."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Candidate", "Completions", "by_prefix", "unique"]


@dataclass(frozen=True)
class Candidate:
    """One completion: ``text`` replaces the fragment; ``type`` is shown beside it (JupyterLab
    prints it in the completer's list: an option's Java type, ``table``, ``column``...)."""

    text: str
    type: str


@dataclass(frozen=True)
class Completions:
    """The candidates for one cursor position, best first; they replace ``fragment``."""

    fragment: str
    candidates: tuple[Candidate, ...]


def by_prefix(fragment: str, names: Iterable[str]) -> list[str]:
    """``names`` starting with ``fragment`` (ignoring case), then those where a dotted
    segment does (``checkpointing.inter`` finds ``execution.checkpointing.interval``)."""
    wanted = fragment.lower()
    starting, inside = [], []
    for name in names:
        lowered = name.lower()
        if lowered.startswith(wanted):
            starting.append(name)
        elif wanted and f".{wanted}" in lowered:
            inside.append(name)
    return starting + inside


def unique(candidates: Iterable[Candidate]) -> tuple[Candidate, ...]:
    """The first candidate of each text (ignoring case), in order."""
    seen: set[str] = set()
    kept = []
    for candidate in candidates:
        if candidate.text.lower() not in seen:
            seen.add(candidate.text.lower())
            kept.append(candidate)
    return tuple(kept)
