"""Reading Flink's error texts: REST ``errors`` lists and Java stack traces.

Flink puts whole Java stack traces into its REST answers (``{"errors": ["...RestHandlerException:
...\\n\\tat ..."]}``, ``operation.failure-cause.stack-trace``, ``exceptionHistory``). Users get one
line from them, the deepest cause with a message; the trace itself stays in ``details``.
"""

from __future__ import annotations

import json
import re
from typing import Any

# "java.io.IOException: msg", "Caused by: org.x.FooException: msg", "org.x.Outer$InnerError"
_THROWABLE = re.compile(
    r"^(?:Caused by: )?((?:[A-Za-z_$][\w$]*\.)*[A-Za-z_$][\w$]*(?:Exception|Error|Throwable))"
    r"(?::\s*(.*))?$"
)


def summarize_java_trace(text: str) -> str:
    """One line from a Java stack trace: ``SimpleName: message`` of its deepest cause.

    Wrappers (``CompletionException``, ``JobException: Recovery is suppressed ...``) come
    first in a trace and the specific cause last, so the last throwable with a message wins.
    Text that is not a stack trace gives its first non-blank line.
    """
    found: list[tuple[str, str]] = []
    for line in text.splitlines():
        match = _THROWABLE.match(line.strip())
        if match and not line.startswith(("\t", " ")):
            found.append((match.group(1).rsplit(".", 1)[-1], (match.group(2) or "").strip()))
    for name, message in reversed(found):
        if message and message != "null":
            return f"{name}: {message}"
    if found:
        return found[-1][0]
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def flink_errors(body: str) -> list[str]:
    """The ``errors`` list of a Flink REST error body, or [] when the body is something else."""
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        return []
    errors = parsed.get("errors") if isinstance(parsed, dict) else None
    if not isinstance(errors, list):
        return []
    return [str(error) for error in errors]


def mentions_missing_job(text: str) -> bool:
    """Whether a Flink error text says the job does not exist (as opposed to, say, a checkpoint)."""
    return bool(_MISSING_JOB.search(text))


_MISSING_JOB = re.compile(
    r"FlinkJobNotFoundException|NotFoundException: Job [0-9a-fA-F]{32} not found"
    r"|Job could not be found"
)
