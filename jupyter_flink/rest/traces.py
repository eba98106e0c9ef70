"""Reading Flink's error texts: REST ``errors`` lists and Java stack traces.

Flink puts whole Java stack traces into its REST answers (``{"errors": ["...RestHandlerException:
...\\n\\tat ..."]}``, ``operation.failure-cause.stack-trace``, ``exceptionHistory``). Users get one
line from them, the deepest cause with a message; the trace itself stays in ``details``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..traces import summarize_java_trace

__all__ = ["flink_errors", "mentions_missing_job", "summarize_java_trace"]

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
