"""``%%flink.conf`` cell bodies: Flink options in Java ``.properties`` syntax.

The rules are those of ``java.util.Properties.load`` (read by the ``javaproperties``
library), so ``key value``, ``key=value``, ``key: value`` and ``key = value`` all work, as do
the blocks in Zeppelin's guide (``execution.checkpointing.interval 10000``) and
flink-conf.yaml's flat form (``restart-strategy.fixed-delay.delay: 10 s``):

* blank lines, and lines whose first non-blank character is ``#`` or ``!``, are comments;
* the key ends at the first unescaped ``=``, ``:`` or whitespace; whitespace and at most one
  ``=``/``:`` follow; the value is the rest, with leading and (unlike Java) trailing whitespace
  removed;
* a line ending in an odd number of backslashes continues on the next one, whose leading
  whitespace is dropped;
* ``\\t \\n \\r \\f \\uXXXX`` are escapes, and a backslash before any other character keeps
  that character literally (``\\=``, ``\\:``, ``\\ ``, ``\\#``, ``\\!``, ``\\\\``).

Unlike Java, an entry without a key or without a value is an error, since in a notebook it is
always a typo. Duplicate keys are kept, in order; the caller lets the last one win.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import javaproperties
from javaproperties import InvalidUEscapeError, KeyValue

from ..errors import ConfigurationError

__all__ = ["ConfEntry", "parse_conf"]

_NEWLINES = re.compile(r"\r\n|\r|\n")
_BLANK = " \t\f"  # what Java's Properties counts as whitespace
# The key as written (escapes included), then the separator if there is one.
_SEPARATOR = re.compile(r"[ \t\f]*(?:\\.|[^ \t\f=:\\])*[ \t\f]*([=:])?", re.S)


@dataclass(frozen=True)
class ConfEntry:
    """One ``key value`` entry; ``line`` is the 1-based line where the entry starts."""

    line: int
    key: str
    value: str


def parse_conf(text: str, first_line: int = 1) -> list[ConfEntry]:
    """Parse a ``%%flink.conf`` body into its entries, in order (duplicates included).

    ``first_line`` is the number of the body's first line in the cell (2: after the magic).
    """
    entries: list[ConfEntry] = []
    line = first_line
    try:
        for element in javaproperties.parse(text):
            if isinstance(element, KeyValue):
                entries.append(_entry(element, line))
            line += len(_NEWLINES.findall(element.source))
    except InvalidUEscapeError as exc:
        raise ConfigurationError(
            f"Malformed \\uXXXX escape {exc.escape!r}.", line=line,
            fix="Write \\u followed by four hex digits, or \\\\u for a literal \\u.") from None
    return entries


def _entry(element: KeyValue, line: int) -> ConfEntry:
    raw = _NEWLINES.split(element.source.rstrip("\r\n"))[-1]
    value = element.value
    # Java keeps trailing whitespace; in a notebook it is invisible and never meant. An
    # escaped one (``\ ``) was meant.
    trailing = len(raw) - len(raw.rstrip(_BLANK))
    if trailing and _ends_in_escape(raw.rstrip(_BLANK)):
        trailing -= 1
    if trailing:
        value = value[:-trailing]
    match = _SEPARATOR.match(element.source)
    separator = (match.group(1) if match else None) or ""
    if not element.key:
        raise ConfigurationError(
            f"{element.source.strip()!r} has no key before the {separator!r}.",
            line=line,
            fix="Write `key value` or `key=value`, e.g. `execution.checkpointing.interval 10 s`.",
        )
    if not value:
        raise _no_value(element.key, separator, line)
    return ConfEntry(line=line, key=element.key, value=value)


def _ends_in_escape(text: str) -> bool:
    """True if ``text`` ends in an odd number of backslashes (the next character is escaped)."""
    return (len(text) - len(text.rstrip("\\"))) % 2 == 1


def _no_value(key: str, separator: str, line: int) -> ConfigurationError:
    """The error for a key without a value, with a hint that fits how it was written."""
    if separator == ":":
        # Most likely the first line of nested YAML (`execution:` / `  checkpointing:`).
        fix = (
            f"Write `{key}: value`. Nested YAML is not supported here: write each option on "
            "one line with its full dotted key, e.g. `execution.checkpointing.interval: 10 s`."
        )
    else:
        fix = f"Write `{key} value` (or `{key}=value`), or remove the line."
    return ConfigurationError(f"{key} has no value.", line=line, key=key, fix=fix)
