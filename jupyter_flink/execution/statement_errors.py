"""Flink rejected a statement or a call: one short paragraph naming the line, the trace aside.

Calcite's parse errors list every token it would have accepted ("Was expecting one of:"
followed by 60-160 lines); a person needs the position and a few of them. The full text is
kept in the error's ``details`` for ``%flink.trace``.
"""

from __future__ import annotations

import re
import traceback
from typing import Any

from ..errors import StatementError
from ..flink.gateway import java_error_summary
from ..parsing.sql import Statement

__all__ = ["code_error", "java_trace", "shorten_expected", "statement_error", "user_code_line"]

EXPECTED_SHOWN = 5
_ENCOUNTERED = re.compile(r'Encountered "([A-Za-z_]\w*)"')
_REFUSED_BY_CLUSTER = "RestClientException"  # Flink's client got an error status back
_EXPECTING = re.compile(r"\s*Was expecting(?: one of)?:\s*(.*)$", re.S)


def shorten_expected(message: str, shown: int = EXPECTED_SHOWN) -> str:
    """Keep at most ``shown`` of the tokens a parse error says it expected."""
    match = _EXPECTING.search(message)
    if match is None:
        return message
    tokens = [t.strip().removesuffix("...").strip() for t in match.group(1).splitlines()]
    tokens = [t for t in tokens if t]
    head = message[:match.start()].rstrip()
    if not tokens:
        return head
    more = f" (and {len(tokens) - shown} more)" if len(tokens) > shown else ""
    text = f"{head} Expected one of: {', '.join(tokens[:shown])}{more}."
    word = _ENCOUNTERED.search(head)
    if word and any("IDENTIFIER" in t for t in tokens):
        text += (f" If {word.group(1)} is meant as a name, it is a reserved word: write it "
                 f"`{word.group(1)}`.")
    return text


def statement_error(statement: Statement, exc: BaseException) -> StatementError:
    """The error for a statement Flink rejected."""
    summary = shorten_expected(java_error_summary(exc))
    first_line = statement.sql.strip().splitlines()[0][:80]
    details = getattr(exc, "stack_trace", None) or traceback.format_exc()
    if summary.startswith(_REFUSED_BY_CLUSTER):
        # The cluster's REST endpoint answered the submission with an error status: the
        # statement is fine, the cluster did not take this kernel's request.
        return StatementError(
            f"Line {statement.line}: the Flink cluster refused the job of `{first_line}`: "
            f"{summary.removeprefix(_REFUSED_BY_CLUSTER).lstrip(': ')}",
            statement=statement.sql, details=details,
            fix="The statement is fine: check what the cluster wants from its clients "
                "(flink.execution.remote.headers, flink.execution.remote.ssl.*; %flink.info "
                "shows where jobs go), then run the cell again.")
    return StatementError(
        f"Line {statement.line}: Flink rejected `{first_line}`: {summary}",
        statement=statement.sql,
        fix="Fix the statement and run the cell again.", details=details)


def code_error(exc: BaseException, line: int | None, trace: str) -> StatementError:
    """The error for a call of ``%%flink`` code that Flink rejected."""
    return StatementError(f"Line {line}: Flink rejected this call: {java_error_summary(exc)}",
                          fix="Fix the code and run the cell again.", details=trace)


def java_trace(exc: BaseException) -> str | None:
    """The Java stack trace behind a PyFlink/py4j exception, or None for a Python error."""
    trace = getattr(exc, "stack_trace", None)  # pyflink.util.exceptions.JavaException
    if trace:
        return str(trace)
    if type(exc).__name__ == "Py4JJavaError":
        return str(exc)
    return None


def user_code_line(tb: Any, filename: str) -> int | None:
    """The line of the user's cell where ``tb`` passed last."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
