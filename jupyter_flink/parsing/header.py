"""Zeppelin's paragraph header: the ``(key=value, ...)`` after a cell magic.

``%%flink.ssql(type=update, jobName=word_count, savepointDir=file:///tmp/sp)`` reaches the magic
as the line ``(type=update, jobName=word_count, savepointDir=file:///tmp/sp)`` once
:func:`rewrite_cell_magic_line` has put a space before the parenthesis. :func:`parse_header` turns
it into strings; :mod:`jupyter_flink.parsing.properties` checks and converts them.

Header syntax: comma-separated ``key=value`` items, whitespace around keys and values ignored,
double quotes protect commas, ``=`` and parentheses, a backslash escapes any character, a bare
key means ``true``, empty items are skipped and a key may appear once.
"""

from __future__ import annotations

import re

from ..errors import PropertyError

__all__ = ["KINDS", "MAGIC_NAMES", "parse_header", "rewrite_cell_magic_line",
           "split_magic_header"]

KINDS = ("flink", "ssql", "bsql")
MAGIC_NAMES = (
    "flink",
    "flink.conf",
    "flink.ssql",
    "flink.bsql",
    "flink_conf",
    "flink_ssql",
    "flink_bsql",
)

_OUR_MAGIC_RE = re.compile(r"^(\s*%%(?:" + "|".join(map(re.escape, MAGIC_NAMES)) + r"))\t*\(")
_ANY_CELL_MAGIC_RE = re.compile(r"^\s*%%([A-Za-z_][\w.]*)(.*)$", re.DOTALL)


# --------------------------------------------------------------------------- header syntax


def rewrite_cell_magic_line(line: str) -> str:
    """Insert a space between one of our cell magics and ``(``; leave every other line alone.

    IPython takes the magic name up to the first space, so ``%%flink.ssql(type=update)`` would
    otherwise look for a magic called ``flink.ssql(type=update)``.
    """
    return _OUR_MAGIC_RE.sub(r"\1 (", line, count=1)


def split_magic_header(first_line: str) -> tuple[str, str]:
    """Split a cell's first line into (magic name, header text).

    ``%%flink.ssql(a=b)`` and ``%%flink.ssql  (a=b)`` both give ``("flink.ssql", "(a=b)")``.
    """
    match = _ANY_CELL_MAGIC_RE.match(first_line.rstrip("\r\n"))
    if match is None:
        raise ValueError(f"not a cell magic line: {first_line!r}")
    return match.group(1), match.group(2).strip()


# A character of a key or value and whether it was quoted or escaped (and so must survive
# the whitespace trimming).
_Chars = list[tuple[str, bool]]


def _text(chars: _Chars) -> str:
    """Join characters, trimming whitespace at either end that was neither quoted nor escaped."""
    start, end = 0, len(chars)
    while start < end and chars[start][0].isspace() and not chars[start][1]:
        start += 1
    while end > start and chars[end - 1][0].isspace() and not chars[end - 1][1]:
        end -= 1
    return "".join(ch for ch, _ in chars[start:end])


def _excerpt(text: str, start: int) -> str:
    """The header from ``start`` on, shortened, to show the user where a problem begins."""
    rest = text[start:]
    return rest if len(rest) <= 30 else rest[:30] + "..."


def _scan_items(text: str) -> tuple[list[tuple[str, str]], int]:
    """Scan ``text`` (starting with ``(``) into (key, value) items; return them and the index
    of the closing parenthesis."""
    items: list[tuple[str, str]] = []
    key: _Chars | None = None
    buf: _Chars = []
    opened = [0]  # indexes of the unclosed unquoted parentheses
    quote_at: int | None = None
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 == len(text):
                raise PropertyError(
                    "The paragraph properties end with a lone backslash.",
                    fix="Write \\\\ for a backslash, or escape the character that follows it.",
                )
            buf.append((text[i + 1], True))
            i += 2
            continue
        if quote_at is not None:
            if ch == '"':
                quote_at = None
            else:
                buf.append((ch, True))
        elif ch == '"':
            quote_at = i
        elif ch == "(":
            opened.append(i)
            buf.append((ch, False))
        elif ch == ")":
            opened.pop()
            if not opened:
                _finish_item(items, key, buf)
                return items, i
            buf.append((ch, False))
        elif ch == "," and len(opened) == 1:
            _finish_item(items, key, buf)
            key, buf = None, []
        elif ch == "=" and key is None and len(opened) == 1:
            key, buf = buf, []
        else:
            buf.append((ch, False))
        i += 1
    if quote_at is not None:
        raise PropertyError(
            f"Unterminated double quote in the paragraph properties, starting at "
            f"{_excerpt(text, quote_at)!r}.",
            fix='Close the quote, or write \\" for a literal quote character.',
        )
    raise PropertyError(
        f"Unclosed parenthesis in the paragraph properties, opened at "
        f"{_excerpt(text, opened[-1])!r}.",
        fix="Add the missing ')', or quote a value that contains a parenthesis.",
    )


def _finish_item(items: list[tuple[str, str]], key: _Chars | None, buf: _Chars) -> None:
    """Append one ``key=value`` (or bare ``key``) item; skip empty ones."""
    if key is None:
        name = _text(buf)
        if name:
            items.append((name, "true"))
        return
    name = _text(key)
    value = _text(buf)
    if not name:
        raise PropertyError(
            f"A paragraph property has a value but no name: '={value}'.",
            fix="Write it as name=value, e.g. jobName=word_count.",
        )
    items.append((name, value))


def parse_header(line: str) -> dict[str, str]:
    """Parse ``(key=value, ...)`` into a dict of strings; empty text gives an empty dict."""
    text = line.strip()
    if not text:
        return {}
    if not text.startswith("("):
        raise PropertyError(
            f"Paragraph properties must be inside parentheses, got {text!r}.",
            fix="Write them right after the magic, e.g. %%flink.ssql(type=update, jobName=wc).",
        )
    items, end = _scan_items(text)
    rest = text[end + 1 :].strip()
    if rest:
        raise PropertyError(
            f"Unexpected text {rest!r} after the closing parenthesis of the paragraph properties.",
            fix="Put every property inside the parentheses; quote a value that contains ')'.",
        )
    result: dict[str, str] = {}
    for name, value in items:
        if name in result:
            raise PropertyError(
                f"Paragraph property {name} is given twice ({name}={result[name]} and "
                f"{name}={value}).",
                name=name,
                fix="Keep only one of them.",
            )
        result[name] = value
    return result
