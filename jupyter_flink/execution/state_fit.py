"""Whether a changed query can take the state it is to resume from, asked before submitting.

Flink refuses a job that has no place for an operator's saved state ("Cannot map
checkpoint/savepoint state for operator 9f2c... to the new program ... set the
--allowNonRestoredState option on the CLI"): an operator hash, and a fix for a CLI that
notebook users do not have. Before a SQL job that restores is submitted, its operators are
compared with the saved ones (flink/saved_state.py), by Flink's own rule (an unmapped operator
with state fails the restore), and a refusal names the operators by what they do and offers
the ways out. Flink's own refusal (``%%flink`` code, or when the check could not run) is
explained the same way.

A streaming SELECT's collect sink is the exception: its state must never be restored, so
its job is submitted with ``ignore-unclaimed-state`` once the check made sure that nothing
else would be dropped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import StateMismatchError
from ..flink.saved_state import (
    SavedOperator,
    collect_sink_unlike,
    planned_operators,
    saved_operators,
)
from ..flink.session import FlinkSession
from .run import CellRun

__all__ = ["ELSEWHERE", "IGNORE_UNCLAIMED", "WAYS_OUT", "check_fit", "explain_refusal",
           "mismatch_error", "refusal", "select_restores"]

log = logging.getLogger(__name__)

IGNORE_UNCLAIMED = "execution.state-recovery.ignore-unclaimed-state"
ELSEWHERE = ("another restore point of this cell (%flink.history lists them; resumeFrom=N "
             "picks one), or a fresh start (resumeFromSavepoint=false, "
             "resumeFromLatestCheckpoint=false).")
WAYS_OUT = ("Ways out: allowNonRestoredState=true in the cell header drops the state that no "
            "longer fits; or " + ELSEWHERE)
_CANNOT_MAP = re.compile(r"Cannot map checkpoint/savepoint state for operator ([0-9a-f]{32})")
_MAX_PARALLELISM = re.compile(
    r"Cannot map operator ([0-9a-f]{32}) with max parallelism (\d+) to new program with "
    r"max parallelism (\d+)")


def ignores_unclaimed(session: FlinkSession, run: CellRun) -> bool:
    """Whether the run may drop saved state (allowNonRestoredState, the cell's or the conf's)."""
    overrides = run.must_be_prepared().overrides
    value = overrides.get(IGNORE_UNCLAIMED, session.job_settings().get(IGNORE_UNCLAIMED))
    return str(value).lower() == "true"


def check_fit(session: FlinkSession, run: CellRun, tenv: Any, *, query: Any = None,
              statements: Sequence[str] = ()) -> list[SavedOperator] | None:
    """The saved operators of the run's restore path, after making sure that the job of
    ``query`` or ``statements`` has a place for every one with state (but a collect sink).

    None when the run starts fresh, or when the state cannot be read here (Flink then says
    what it thinks, and :func:`explain_refusal` explains it).
    """
    path = run.must_be_prepared().restore_path
    if not path:
        return None
    gateway = session.gateway
    try:
        saved = saved_operators(gateway, path)
        if ignores_unclaimed(session, run):
            return saved
        with collect_sink_unlike(gateway, saved):
            planned = planned_operators(gateway, tenv, query=query, statements=statements)
    except Exception:  # unreadable here (a file system the kernel cannot reach): Flink decides
        log.debug("the state fit check of %s could not run", path, exc_info=True)
        return None
    ids = {p.operator_id for p in planned} | {p.user_defined_id for p in planned
                                              if p.user_defined_id}
    missing = [s for s in saved if s.operator_id not in ids and s.has_state
               and not s.is_collect_sink]
    if missing:
        raise mismatch_error(path, missing)
    return saved


def mismatch_error(path: str, operators: Sequence[SavedOperator]) -> StateMismatchError:
    names = sorted({op.label for op in operators})
    return StateMismatchError(
        f"The query changed in a way its saved state cannot follow: {path} holds state of "
        f"{', '.join(names)}, which the new query no longer has.",
        path=path, operators=names, fix=WAYS_OUT)


@contextmanager
def select_restores(session: FlinkSession, saved: Sequence[SavedOperator] | None
                    ) -> Iterator[None]:
    """Submit a streaming SELECT so that its old collect sink's state is left behind (and
    nothing else: :func:`check_fit` made sure)."""
    if saved is None:
        yield
        return
    configs = session.envs.configurations(False)
    before = [conf.toMap().get(IGNORE_UNCLAIMED) for conf in configs]
    for conf in configs:
        conf.setString(IGNORE_UNCLAIMED, "true")
    try:
        with collect_sink_unlike(session.gateway, saved):
            yield
    finally:
        for conf, value in zip(configs, before):
            if value is None:
                conf.removeKey(IGNORE_UNCLAIMED)
            else:
                conf.setString(IGNORE_UNCLAIMED, value)


def refusal(session: FlinkSession, run: CellRun, exc: BaseException
            ) -> StateMismatchError | None:
    """:func:`explain_refusal` for an exception Flink raised while a run was submitting."""
    text = str(getattr(exc, "stack_trace", None) or exc)
    prepared = run.prepared
    return explain_refusal(session, text, prepared.restore_path if prepared else None)


def explain_refusal(session: FlinkSession, text: str, path: str | None
                    ) -> StateMismatchError | None:
    """Flink's refusal to restore (``text``: its message or trace) in a user's words, or None
    if ``text`` is about something else."""
    if not path:
        return None
    max_parallelism = _MAX_PARALLELISM.search(text)
    if max_parallelism:
        operator, old, new = max_parallelism.groups()
        return StateMismatchError(
            f"The saved state in {path} was written with maxParallelism={old}; this job has "
            f"{new}, and keyed state cannot move between them.",
            path=path, operators=[_label(session, path, operator)],
            fix=f"Set maxParallelism={old} in the cell header (parallelism can change), or "
                "start fresh.")
    cannot_map = _CANNOT_MAP.search(text)
    if cannot_map is None:
        return None
    return mismatch_error(path, [_saved(session, path, cannot_map.group(1))])


def _saved(session: FlinkSession, path: str, operator_id: str) -> SavedOperator:
    try:
        for op in saved_operators(session.gateway, path):
            if op.operator_id == operator_id:
                return op
    except Exception:  # the id is all we have then
        log.debug("reading %s failed", path, exc_info=True)
    return SavedOperator(operator_id, None, None, 0, 0, True)


def _label(session: FlinkSession, path: str, operator_id: str) -> str:
    return _saved(session, path, operator_id).label
