"""Reading Java exceptions: one line a person can act on, out of a chain of causes.

Flink wraps the useful message several layers deep ("TableException: Failed to execute sql"
-> "ValidationException: Object 'x' not found"), and its REST answers carry whole stack
traces. Everywhere we show one, we show the same thing: ``SimpleName: message`` of the
deepest cause that has a message. The trace itself stays one step away (``%flink.trace``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["best_cause", "java_causes", "summarize_java_trace"]

# "java.io.IOException: msg", "Caused by: org.x.FooException: msg", "org.x.Outer$InnerError"
_THROWABLE = re.compile(
    r"^(?:Caused by: )?((?:[A-Za-z_$][\w$]*\.)*[A-Za-z_$][\w$]*(?:Exception|Error|Throwable))"
    r"(?::\s*(.*))?$"
)


def best_cause(causes: Iterable[tuple[str, str | None]]) -> str:
    """``SimpleName: message`` of the deepest cause with a message.

    ``causes`` are (class name, message) pairs from the outermost exception inwards. Wrappers
    come first and the specific cause last, so the last one with a message wins; a message
    of ``null`` counts as none. Without any message, the deepest class name.
    """
    found = [(name.rsplit(".", 1)[-1], (message or "").strip()) for name, message in causes]
    for name, message in reversed(found):
        if message and message not in ("null", "None"):
            return f"{name}: {message}"
    return found[-1][0] if found else "unknown Java error"


def summarize_java_trace(text: str) -> str:
    """:func:`best_cause` of a Java stack trace given as text.

    Text that is not a stack trace gives its first non-blank line ("" for blank text).
    """
    causes: list[tuple[str, str | None]] = []
    for line in text.splitlines():
        match = _THROWABLE.match(line.strip())
        if match and not line.startswith(("\t", " ")):
            causes.append((match.group(1), match.group(2)))
    if causes:
        return best_cause(causes)
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def java_causes(java_exc: Any) -> list[tuple[str, str | None]]:
    """(class name, message) of a live Java exception (a py4j ``JavaObject``) and its
    causes, outermost first."""
    causes: list[tuple[str, str | None]] = []
    cause = java_exc
    while cause is not None:
        message = cause.getMessage()
        causes.append((str(cause.getClass().getName()), None if message is None else str(message)))
        nxt = cause.getCause()
        cause = None if nxt is None or nxt.equals(cause) else nxt
    return causes
