"""The job argument of ``%flink.cancel``, ``%flink.stop``, ``%flink.savepoint`` and
``%flink.checkpoints``: the names and ids of the kernel's jobs, and the magics' options."""

from __future__ import annotations

from collections.abc import Sequence

from ..jobs.registry import TrackedJob
from .candidates import Candidate, by_prefix

__all__ = ["job_candidates"]

_OPTIONS = {"flink.cancel": ("--all",), "flink.stop": ("--all", "--dir"),
            "flink.savepoint": ("--all", "--dir"), "flink.checkpoints": ("--all",)}


def job_candidates(magic: str, jobs: Sequence[TrackedJob], fragment: str) -> list[Candidate]:
    """Job names, then job ids, newest first; running jobs only, except for checkpoints."""
    if fragment.startswith("-"):
        return [Candidate(o, "option") for o in by_prefix(fragment, _OPTIONS.get(magic, ()))]
    newest = sorted(jobs, key=lambda j: j.submitted_at, reverse=True)
    if magic != "flink.checkpoints":
        newest = [j for j in newest if not j.ended]
    names = {j.name: f"job, {j.state}" for j in reversed(newest)}  # the newest state wins
    ids = {j.job_id: f"id of {j.name}, {j.state}" for j in newest}
    found = [Candidate(n, names[n]) for n in by_prefix(fragment, list(dict.fromkeys(
        j.name for j in newest)))]
    found += [Candidate(i, ids[i]) for i in by_prefix(fragment, list(ids))]
    return found
