"""``%%flink.conf`` cell bodies: Flink options in Java ``.properties`` syntax.

The rules are those of ``java.util.Properties.load``, so ``key value``, ``key=value``,
``key: value`` and ``key = value`` all work, as do the blocks in Zeppelin's guide
(``execution.checkpointing.interval 10000``) and flink-conf.yaml's flat form
(``restart-strategy.fixed-delay.delay: 10 s``):

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

from ..errors import ConfigurationError

__all__ = ["ConfEntry", "parse_conf"]

_NEWLINE = re.compile(r"\r\n|\r|\n")
_BLANK = " \t\f"  # what Java's Properties counts as whitespace
_SEPARATORS = "=:"
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True)
class ConfEntry:
    """One ``key value`` entry; ``line`` is the 1-based line where the entry starts."""

    line: int
    key: str
    value: str


def parse_conf(text: str) -> list[ConfEntry]:
    """Parse a ``%%flink.conf`` body into its entries, in order (duplicates included)."""
    entries: list[ConfEntry] = []
    lines = _NEWLINE.split(text)
    index = 0
    while index < len(lines):
        line_number = index + 1
        logical = lines[index].lstrip(_BLANK)
        index += 1
        if not logical or logical[0] in "#!":
            continue
        # A comment cannot be continued, but a continuation line may start with '#'.
        while _continues(logical):
            logical = logical[:-1]
            if index == len(lines):
                break
            logical += lines[index].lstrip(_BLANK)
            index += 1
        entries.append(_parse_entry(logical, line_number))
    return entries


def _continues(line: str) -> bool:
    """True if ``line`` ends in an odd number of backslashes."""
    trailing = len(line) - len(line.rstrip("\\"))
    return trailing % 2 == 1


def _unescape(logical: str, line: int) -> list[tuple[str, bool]]:
    """Decode escapes; each character comes with whether it was escaped (and so is literal)."""
    chars: list[tuple[str, bool]] = []
    i = 0
    while i < len(logical):
        ch = logical[i]
        if ch != "\\" or i + 1 == len(logical):
            chars.append((ch, False))
            i += 1
            continue
        escaped = logical[i + 1]
        if escaped == "u":
            digits = logical[i + 2 : i + 6]
            if len(digits) < 4 or not set(digits) <= _HEX:
                raise ConfigurationError(
                    f"Malformed \\uXXXX escape {logical[i : i + 6]!r}.",
                    line=line,
                    fix="Write \\u followed by four hex digits, or \\\\u for a literal \\u.",
                )
            chars.append((chr(int(digits, 16)), True))
            i += 6
            continue
        chars.append((_ESCAPES.get(escaped, escaped), True))
        i += 2
    return chars


def _parse_entry(logical: str, line: int) -> ConfEntry:
    """Split one logical line into key and value."""
    chars = _unescape(logical, line)
    end = len(chars)
    i = 0
    while i < end and not (chars[i][0] in _BLANK + _SEPARATORS and not chars[i][1]):
        i += 1
    key = "".join(ch for ch, _ in chars[:i])
    while i < end and chars[i][0] in _BLANK and not chars[i][1]:
        i += 1
    separator = ""
    if i < end and chars[i][0] in _SEPARATORS and not chars[i][1]:
        separator = chars[i][0]
        i += 1
        while i < end and chars[i][0] in _BLANK and not chars[i][1]:
            i += 1
    # Java keeps trailing whitespace; in a notebook it is invisible and never meant.
    while end > i and chars[end - 1][0].isspace() and not chars[end - 1][1]:
        end -= 1
    value = "".join(ch for ch, _ in chars[i:end])
    if not key:
        raise ConfigurationError(
            f"{logical.strip()!r} has no key before the {separator!r}.",
            line=line,
            fix="Write `key value` or `key=value`, e.g. `execution.checkpointing.interval 10 s`.",
        )
    if not value:
        raise _no_value(key, separator, line)
    return ConfEntry(line=line, key=key, value=value)


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
