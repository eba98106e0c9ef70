"""Where the cursor is in a cell, as completion and help see it.

:func:`locate` reads the whole cell text and the cursor offset (a completion or inspection
request carries both) and says which part of which magic the cursor is in: a
``%%flink.conf`` key or value, a property name or value in a cell header, a SQL statement
of a ``%%flink.ssql`` / ``%%flink.bsql`` cell (or line magic), or the job argument of
``%flink.cancel`` and friends. Everything else (Python in ``%%flink`` cells and plain cells)
is :attr:`Place.NONE`, left to IPython. Half-typed text never raises here.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

__all__ = ["CELL_KINDS", "JOB_MAGICS", "Place", "Spot", "locate"]

# Cell magic name -> the kind of cell (the underscore names are aliases of the dotted ones).
CELL_KINDS = {
    "flink": "flink",
    "flink.conf": "conf", "flink_conf": "conf",
    "flink.ssql": "ssql", "flink_ssql": "ssql",
    "flink.bsql": "bsql", "flink_bsql": "bsql",
}
JOB_MAGICS = ("flink.cancel", "flink.stop", "flink.savepoint", "flink.checkpoints")

_CELL_MAGIC = re.compile(r"\A(?:[ \t]*\r?\n)*[ \t]*%%(?P<name>[A-Za-z_][\w.]*)")
_LINE_MAGIC = re.compile(r"[ \t]*%(?P<name>flink\.\w+)(?P<gap>[ \t]+|$)")
_KEY_END = " \t\f=:"
_BLANK = " \t\f"
_WORD_AFTER = re.compile(r"[\w$]*")
_SQL_FRAGMENT = re.compile(r"[\w$.]*\Z")


class Place(enum.Enum):
    NONE = "none"  # not ours: Python, a comment, the magic's name...
    CONF_KEY = "conf key"
    CONF_VALUE = "conf value"
    HEADER_NAME = "header name"
    HEADER_VALUE = "header value"
    SQL = "sql"
    JOB = "job"


@dataclass(frozen=True)
class Spot:
    """The cursor's place; ``fragment`` is the text before the cursor a completion replaces
    and ``rest`` the remainder of the same word after it (help looks at both)."""

    place: Place
    cell: str | None = None  # "conf", "ssql", "bsql", "flink"; None for a line magic
    fragment: str = ""
    rest: str = ""
    key: str | None = None  # conf and header values: whose value; jobs: the magic's name
    statement: str = ""  # SQL: the statement the cursor is in, as written
    position: int = 0  # SQL: the cursor's offset in ``statement``
    given: frozenset[str] = field(default_factory=frozenset)  # header: names already there

    @property
    def word(self) -> str:
        """The whole word under the cursor."""
        return self.fragment + self.rest


NOWHERE = Spot(Place.NONE)


def locate(text: str, offset: int) -> Spot:
    """The place of the cursor at ``offset`` in the cell ``text``."""
    offset = max(0, min(offset, len(text)))
    magic = _CELL_MAGIC.match(text)
    kind = CELL_KINDS.get(magic.group("name")) if magic else None
    if magic is None or kind is None:
        return _line_magic(text, offset)
    name_end = magic.end()
    first_line_end = _line_end(text, name_end)
    if offset <= first_line_end:
        if offset <= name_end:
            return NOWHERE  # the magic's own name: IPython completes magics
        return _header(text, name_end, first_line_end, offset, kind)
    if kind == "conf":
        return _conf(text, offset)
    if kind in ("ssql", "bsql"):
        return _sql(text, first_line_end + 1, len(text), offset, kind, kind)
    return NOWHERE  # %%flink: Python


# --------------------------------------------------------------------------- lines


def _line_start(text: str, offset: int) -> int:
    return text.rfind("\n", 0, offset) + 1


def _line_end(text: str, offset: int) -> int:
    end = text.find("\n", offset)
    return len(text) if end < 0 else end


def _line_magic(text: str, offset: int) -> Spot:
    """``%flink.cancel JOB``, ``%flink.bsql SELECT ...`` on the cursor's line."""
    start, end = _line_start(text, offset), _line_end(text, offset)
    match = _LINE_MAGIC.match(text, start, end)
    if match is None or offset < match.end() or not match.group("gap"):
        return NOWHERE
    name = match.group("name")
    if name in ("flink.ssql", "flink.bsql"):
        return _sql(text, match.end(), end, offset, name[-4:], None)
    if name not in JOB_MAGICS:
        return NOWHERE
    words = text[match.end():offset].split(" ")
    if len(words) > 1 and words[-2] == "--dir":
        return NOWHERE  # a directory, not a job
    rest = _WORD_AFTER.match(text, offset, end)
    return Spot(Place.JOB, fragment=words[-1], rest=rest.group() if rest else "", key=name)


# --------------------------------------------------------------------------- %%flink.conf


def _conf(text: str, offset: int) -> Spot:
    """A ``key value`` line of a conf cell (Java properties syntax)."""
    start, end = _line_start(text, offset), _line_end(text, offset)
    if start >= 2 and _continues(text[_line_start(text, start - 1):start - 1]):
        return NOWHERE  # a continuation line: part of the previous value
    line = text[start:end]
    cursor = offset - start
    key_start = len(line) - len(line.lstrip(_BLANK))
    if line[key_start:key_start + 1] in ("#", "!"):
        return NOWHERE
    key_end = key_start
    while key_end < len(line) and line[key_end] not in _KEY_END:
        key_end += 2 if line[key_end] == "\\" else 1
    key_end = min(key_end, len(line))
    if cursor <= key_end:
        if cursor < key_start:
            return NOWHERE
        return Spot(Place.CONF_KEY, "conf", fragment=line[key_start:cursor],
                    rest=line[cursor:key_end])
    value_start = key_end
    while value_start < len(line) and line[value_start] in _BLANK:
        value_start += 1
    if value_start < len(line) and line[value_start] in "=:" and (
            line[key_end] in _BLANK or value_start == key_end):
        value_start += 1
        while value_start < len(line) and line[value_start] in _BLANK:
            value_start += 1
    key = line[key_start:key_end]
    if cursor < value_start:
        return Spot(Place.CONF_VALUE, "conf", key=key)
    return Spot(Place.CONF_VALUE, "conf", fragment=line[value_start:cursor],
                rest=line[cursor:].rstrip(), key=key)


def _continues(line: str) -> bool:
    """Whether a properties line continues on the next (an odd number of backslashes)."""
    return (len(line) - len(line.rstrip("\\"))) % 2 == 1


# --------------------------------------------------------------------------- headers


def _header(text: str, name_end: int, line_end: int, offset: int, kind: str) -> Spot:
    """Inside ``(...)`` after a cell magic: a property name or value."""
    opening = name_end
    while opening < line_end and text[opening] in " \t":
        opening += 1
    if opening >= line_end or text[opening] != "(" or offset <= opening:
        return NOWHERE
    item_start, equals = opening + 1, -1
    given: set[str] = set()
    depth, quoted, i = 1, False, opening + 1
    while i < offset:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if quoted:
            quoted = ch != '"'
        elif ch == '"':
            quoted = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return NOWHERE  # after the header
        elif ch == "," and depth == 1:
            given.add(_item_name(text[item_start:i]))
            item_start, equals = i + 1, -1
        elif ch == "=" and depth == 1 and equals < 0:
            equals = i
        i += 1
    after = re.match(r"[^=,)\s]*", text[offset:line_end])
    rest = after.group() if after else ""
    if equals < 0:
        return Spot(Place.HEADER_NAME, kind, fragment=text[item_start:offset].lstrip(),
                    rest=rest, given=frozenset(given - {""}))
    value = text[equals + 1:offset].lstrip()
    if quoted or value.startswith('"'):
        return NOWHERE  # free text in quotes
    return Spot(Place.HEADER_VALUE, kind, fragment=value, rest=rest,
                key=text[item_start:equals].strip(), given=frozenset(given - {""}))


def _item_name(item: str) -> str:
    return item.split("=", 1)[0].strip()


# --------------------------------------------------------------------------- SQL


def _sql(text: str, start: int, end: int, offset: int, kind: str, cell: str | None) -> Spot:
    """The statement around the cursor, between ``;`` outside strings and comments;
    ``kind`` is ssql or bsql, ``cell`` None for a line magic."""
    bounds = _statement_bounds(text, start, end, offset)
    if bounds is None:
        return NOWHERE  # in a string literal, a quoted identifier or a comment
    first, last = bounds
    statement = text[first:last]
    lead = len(statement) - len(statement.lstrip())
    fragment = _SQL_FRAGMENT.search(text, first, offset)
    rest = _WORD_AFTER.match(text, offset, last)
    return Spot(Place.SQL, cell, fragment=fragment.group() if fragment else "",
                rest=rest.group() if rest else "", key=kind, statement=statement[lead:],
                position=max(0, offset - first - lead))


def _statement_bounds(text: str, start: int, end: int, offset: int) -> tuple[int, int] | None:
    """(start, end) of the statement holding ``offset``; None if ``offset`` is in a literal."""
    first, i, state = start, start, ""
    at_cursor: str | None = None
    while i < end:
        if i == offset:
            at_cursor = state
        ch = text[i]
        if state == "":
            if ch in "'\"`":
                state = ch
            elif text.startswith("--", i):
                state = "--"
            elif text.startswith("/*", i):
                state, i = "/*", i + 1
            elif ch == ";":
                if i >= offset:
                    return (first, i) if not at_cursor else None
                first = i + 1
        elif state in "'\"`":
            if ch == state:
                if text.startswith(state, i + 1):
                    i += 1  # a doubled quote
                else:
                    state = ""
        elif state == "--":
            if ch == "\n":
                state = ""
        elif text.startswith("*/", i):
            state, i = "", i + 1
        i += 1
    if at_cursor is None:
        at_cursor = state
    return (first, end) if not at_cursor else None
