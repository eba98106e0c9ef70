"""The IPython side: a completion matcher (IPython's Matcher API v2) for the Flink magics.

ipykernel answers a complete_request with IPython's completer, which runs every matcher on
the whole cell text and the cursor; ours is registered in ``IPCompleter.custom_matchers`` by
``%load_ext jupyter_flink``, so Tab works in any IPython kernel. Where the cursor is in a
Flink magic, our completions replace the fragment we say and the other matchers (Jedi, file
names...) are suppressed; everywhere else (Python in ``%%flink`` cells and plain cells) the
matcher returns nothing and IPython completes as always. IPython cannot suppress the other
matchers when ours has nothing, so the flink kernel answers Flink magics before IPython's
completer runs (``FlinkKernel.do_complete``, :mod:`.replies`). A failure here is logged and
completes nothing: Tab must never break.
"""

from __future__ import annotations

import logging
from typing import Any

from IPython.core.completer import (
    CompletionContext,
    SimpleCompletion,
    SimpleMatcherResult,
    context_matcher,
)

from .completer import FlinkCompleter

__all__ = ["IDENTIFIER", "cursor_offset", "make_matcher", "register", "unregister"]

log = logging.getLogger(__name__)

IDENTIFIER = "jupyter_flink.completion"
# Before IPython's own matchers (priority 0), so that ours can suppress them.
_PRIORITY = 10


def cursor_offset(context: CompletionContext) -> int:
    """The cursor as an offset into ``context.full_text``."""
    lines = context.full_text.split("\n")
    return sum(len(line) + 1 for line in lines[:context.cursor_line]) + context.cursor_position


def make_matcher(completer: FlinkCompleter) -> Any:
    """A matcher function answering from ``completer``."""

    @context_matcher(priority=_PRIORITY, identifier=IDENTIFIER)
    def flink_matcher(context: CompletionContext) -> SimpleMatcherResult:
        try:
            found = completer.complete(context.full_text, cursor_offset(context))
        except Exception:
            log.warning("jupyter-flink completion failed", exc_info=True)
            found = None
        if found is None or not found.candidates:
            return {"completions": [], "suppress": False}
        limit = context.limit or len(found.candidates)
        return {
            "completions": [SimpleCompletion(c.text, type=c.type)
                            for c in found.candidates[:limit]],
            "matched_fragment": found.fragment,
            "suppress": True,
            "ordered": True,
        }

    return flink_matcher


def register(shell: Any, completer: FlinkCompleter) -> Any:
    """Add a matcher for ``completer`` to ``shell``'s completer; returns it (to unregister)."""
    matcher = make_matcher(completer)
    shell.Completer.custom_matchers.append(matcher)
    return matcher


def unregister(shell: Any, matcher: Any) -> None:
    if matcher in shell.Completer.custom_matchers:
        shell.Completer.custom_matchers.remove(matcher)
