"""Exceptions raised by jupyter-flink.

Hierarchy::

    FlinkNotebookError            root of everything this package raises on purpose
    +-- UserError                 expected: bad input or a fault outside our code; shown as
    |   |                         one short paragraph, the Java/Python trace kept one step away
    |   +-- ConfigurationError    a %%flink.conf line, key or value (carries the line number)
    |   +-- PropertyError         a paragraph header property (carries the property name)
    |   +-- StatementError        a SQL statement or %%flink code that Flink rejected
    |   +-- JobError              a job that could not start, stop or savepoint
    |   +-- StateNotFoundError    a resume path without ``_metadata`` (carries the alternatives)
    |   +-- StateMismatchError    saved state the new job cannot take (carries the operators)
    |   +-- ClusterError          the Flink cluster cannot be started or reached
    |   +-- JavaNotFoundError     no usable Java runtime
    +-- RestError                 an HTTP call to Flink's REST API failed (status, body)

Anything else escaping the magics is a bug in jupyter-flink and is reported as such.
"""

from __future__ import annotations

from collections.abc import Sequence


class FlinkNotebookError(Exception):
    """Root of jupyter-flink's exceptions.

    ``message`` says what went wrong, ``fix`` what the user can do about it, and ``details``
    holds the long form (usually a Java stack trace) that the magics keep one step away.
    """

    def __init__(self, message: str, *, fix: str | None = None, details: str | None = None):
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.details = details

    def __str__(self) -> str:
        return f"{self.message} {self.fix}" if self.fix else self.message


class UserError(FlinkNotebookError):
    """An expected error: bad input, or a fault outside jupyter-flink."""


class ConfigurationError(UserError):
    """A ``%%flink.conf`` line or an interpreter setting is wrong."""

    def __init__(self, message: str, *, line: int | None = None, key: str | None = None, **kw):
        prefix = f"Line {line}: " if line is not None else ""
        super().__init__(prefix + message, **kw)
        self.line = line
        self.key = key


class PropertyError(UserError):
    """A paragraph header property is unknown or has a bad value."""

    def __init__(self, message: str, *, name: str | None = None, **kw):
        super().__init__(message, **kw)
        self.name = name


class StatementError(UserError):
    """Flink rejected a statement or the code of a ``%%flink`` cell."""

    def __init__(self, message: str, *, statement: str | None = None, **kw):
        super().__init__(message, **kw)
        self.statement = statement


class JobError(UserError):
    """A job could not be started, stopped, cancelled or savepointed."""

    def __init__(self, message: str, *, job_id: str | None = None, **kw):
        super().__init__(message, **kw)
        self.job_id = job_id


class StateNotFoundError(UserError):
    """A checkpoint or savepoint chosen for resuming has no ``_metadata``."""

    def __init__(self, message: str, *, path: str, alternatives: Sequence[str] = (), **kw):
        super().__init__(message, **kw)
        self.path = path
        self.alternatives = list(alternatives)


class StateMismatchError(UserError):
    """The state being restored does not fit the job: the query changed in a way its saved
    state cannot follow."""

    def __init__(self, message: str, *, path: str, operators: Sequence[str] = (), **kw):
        super().__init__(message, **kw)
        self.path = path
        self.operators = list(operators)


class ClusterError(UserError):
    """The Flink cluster cannot be started or reached."""


class JavaNotFoundError(UserError):
    """No Java runtime (11 or newer) was found."""


class RestError(FlinkNotebookError):
    """Flink's REST API answered with an unexpected status, or not at all."""

    def __init__(self, message: str, *, status: int | None = None, body: str | None = None, **kw):
        super().__init__(message, **kw)
        self.status = status
        self.body = body
