"""Split a ``%%flink.ssql`` / ``%%flink.bsql`` cell into SQL statements.

Statements end at ``;`` outside single-quoted strings (``''`` escapes a quote), double-quoted
and backtick identifiers, ``-- line`` and ``/* block */`` comments; the last one needs no ``;``.
Flink's statement sets stay one statement::

    EXECUTE STATEMENT SET BEGIN INSERT ...; INSERT ...; END;
    BEGIN STATEMENT SET; INSERT ...; INSERT ...; END;

Each statement keeps its text as written (comments inside included) and the line of its first
token, so errors can point at it.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import NamedTuple

from ..errors import StatementError

__all__ = [
    "Statement",
    "StatementKind",
    "classify",
    "parse_reset",
    "parse_set",
    "split_statements",
]


class StatementKind(enum.Enum):
    """What a statement does, from its first keyword."""

    DDL = "ddl"
    INSERT = "insert"
    SELECT = "select"
    SET = "set"
    RESET = "reset"
    SHOW = "show"
    EXPLAIN = "explain"
    DESCRIBE = "describe"
    USE = "use"
    STATEMENT_SET = "statement_set"
    OTHER = "other"


_FIRST_KEYWORD = {
    "CREATE": StatementKind.DDL,
    "DROP": StatementKind.DDL,
    "ALTER": StatementKind.DDL,
    "INSERT": StatementKind.INSERT,
    "SELECT": StatementKind.SELECT,
    "WITH": StatementKind.SELECT,
    "VALUES": StatementKind.SELECT,
    "SET": StatementKind.SET,
    "RESET": StatementKind.RESET,
    "SHOW": StatementKind.SHOW,
    "EXPLAIN": StatementKind.EXPLAIN,
    "DESCRIBE": StatementKind.DESCRIBE,
    "DESC": StatementKind.DESCRIBE,
    "USE": StatementKind.USE,
}


@dataclass(frozen=True)
class Statement:
    """One statement of a cell; ``line`` is the 1-based cell line of its first token.

    For a statement set, ``inserts`` holds the text of each INSERT inside it.
    """

    sql: str
    line: int
    kind: StatementKind
    inserts: tuple[str, ...] = ()


class _Token(NamedTuple):
    kind: str  # "word", "string", "ident", "comment" or "punct"
    text: str
    start: int
    end: int
    line: int


_EXECUTE_SET = ["EXECUTE", "STATEMENT", "SET", "BEGIN"]  # Flink >= 1.16
_BEGIN_SET = ["BEGIN", "STATEMENT", "SET"]  # the SQL client's older form
_WORD = re.compile(r"[\w$]+")
_QUOTES = {
    "'": ("string", "string literal"),
    '"': ("ident", "quoted identifier"),
    "`": ("ident", "quoted identifier"),
}


def _tokens(text: str, first_line: int = 1) -> list[_Token]:
    """Cut ``text`` into words, quoted strings/identifiers, comments and single characters."""
    tokens: list[_Token] = []
    line = first_line
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            if ch == "\n":
                line += 1
            i += 1
            continue
        if text.startswith("--", i):
            end = text.find("\n", i)
            end, kind = (len(text) if end < 0 else end), "comment"
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise StatementError(
                    f"Unterminated block comment starting on line {line}.",
                    fix="Close it with */.",
                )
            end, kind = end + 2, "comment"
        elif ch in _QUOTES:
            end, kind = _quoted_end(text, i, line), _QUOTES[ch][0]
        elif match := _WORD.match(text, i):
            end, kind = match.end(), "word"
        else:
            end, kind = i + 1, "punct"
        tokens.append(_Token(kind, text[i:end], i, end, line))
        line += text.count("\n", i, end)
        i = end
    return tokens


def _quoted_end(text: str, start: int, line: int) -> int:
    """The index just past the quoted token at ``start``; a doubled quote is an escape."""
    quote = text[start]
    i = start + 1
    while True:
        close = text.find(quote, i)
        if close < 0:
            what = _QUOTES[quote][1]
            raise StatementError(
                f"Unterminated {what} starting on line {line}: {_shorten(text[start:])!r}.",
                fix=f"Close it with {quote} (write {quote}{quote} for a {quote} inside it).",
            )
        if text.startswith(quote, close + 1):
            i = close + 2
            continue
        return close + 1


def _shorten(text: str) -> str:
    """The first line of ``text``, cut to 40 characters, for error messages."""
    first = text.splitlines()[0] if text else text
    return first if len(first) <= 40 else first[:40] + "..."


def _code(tokens: list[_Token]) -> list[_Token]:
    """The tokens that are not comments."""
    return [t for t in tokens if t.kind != "comment"]


def _words(tokens: list[_Token], count: int) -> list[str]:
    """The first ``count`` tokens, upper-cased, as long as they are words."""
    words = []
    for token in tokens[:count]:
        if token.kind != "word":
            break
        words.append(token.text.upper())
    return words


def _kind_of(code: list[_Token]) -> StatementKind:
    """The kind named by the first word, after any opening parentheses."""
    for token in code:
        if token.text == "(":  # `(SELECT ...) UNION (...)`
            continue
        if token.kind == "word":
            return _FIRST_KEYWORD.get(token.text.upper(), StatementKind.OTHER)
        break
    return StatementKind.OTHER


def classify(sql: str) -> StatementKind:
    """The kind of one statement, from its first keyword (comments and ``(`` skipped)."""
    code = _code(_tokens(sql))
    if _words(code, 4) == _EXECUTE_SET or _words(code, 3) == _BEGIN_SET:
        return StatementKind.STATEMENT_SET
    return _kind_of(code)


def split_statements(text: str, first_line: int = 1) -> list[Statement]:
    """Split a cell into statements; comment-only and empty ones are dropped.

    ``first_line`` is the number of the text's first line in the cell: 2 for the body of a
    cell magic, whose first line is the magic (line numbers count as the editor does).
    """
    segments: list[list[_Token]] = [[]]
    for token in _tokens(text, first_line):
        if token.kind == "punct" and token.text == ";":
            segments.append([])
        else:
            segments[-1].append(token)
    codes = [_code(segment) for segment in segments]
    statements: list[Statement] = []
    index = 0
    while index < len(codes):
        code = codes[index]
        index += 1
        if not code:
            continue
        if _words(code, 4) == _EXECUTE_SET:
            # The first INSERT shares its segment with the opening words.
            statement, index = _statement_set(text, code[0], code[4:], codes, index)
        elif _words(code, 3) == _BEGIN_SET and len(code) == 3:
            statement, index = _statement_set(text, code[0], [], codes, index)
        else:
            statement = Statement(_text(text, code), code[0].line, _kind_of(code))
        statements.append(statement)
    return statements


def _text(text: str, code: list[_Token]) -> str:
    """The cell text from the first to the last code token (inner comments kept)."""
    return text[code[0].start : code[-1].end]


def _statement_set(
    text: str, opening: _Token, first: list[_Token], codes: list[list[_Token]], index: int
) -> tuple[Statement, int]:
    """Gather a statement set's INSERTs up to its ``END``; return it and the next index."""
    inner = [first] if first else []
    while index < len(codes):
        code = codes[index]
        index += 1
        if _words(code, 2) == ["END"] and len(code) == 1:
            end = code[0]
            break
        if code:
            inner.append(code)
    else:
        raise StatementError(
            f"The statement set starting on line {opening.line} has no END.",
            fix="Close it with END; after its last INSERT ...; statement.",
        )
    for code in inner:
        if _kind_of(code) is not StatementKind.INSERT:
            raise StatementError(
                f"Line {code[0].line}: only INSERT statements can go in a statement set, "
                f"not {_shorten(_text(text, code))!r}.",
                statement=_text(text, code),
                fix="Move it before BEGIN or after END.",
            )
    if not inner:
        raise StatementError(
            f"The statement set starting on line {opening.line} has no INSERT statement.",
            fix="Put INSERT INTO ... statements between BEGIN and END, or remove the set.",
        )
    sql = text[opening.start : end.end]
    inserts = tuple(_text(text, c) for c in inner)
    return Statement(sql, opening.line, StatementKind.STATEMENT_SET, inserts), index


def _code_of(sql: str, keyword: str) -> list[_Token]:
    """The statement without comments or a final ``;``, checked to start with ``keyword``."""
    code = _code(_tokens(sql))
    if code and code[-1].text == ";":
        code.pop()
    if _words(code, 1) != [keyword]:
        raise ValueError(f"not a {keyword} statement: {sql!r}")
    return code


def _unquote(text: str) -> str:
    """Strip one pair of surrounding ' or " quotes (undoubling inner ones), if the whole text
    is one quoted token."""
    quote = text[:1]
    if len(text) < 2 or quote not in ("'", '"') or text[-1] != quote:
        return text
    inner = text[1:-1]
    if quote in inner.replace(quote * 2, ""):  # e.g. 'a' = 'b': more than one token
        return text
    return inner.replace(quote * 2, quote)


def parse_set(sql: str) -> tuple[str, str] | None:
    """``SET 'key' = 'value'`` (quotes optional) -> ``(key, value)``; bare ``SET`` -> None."""
    code = _code_of(sql, "SET")
    if len(code) == 1:
        return None
    equals = next((t for t in code[1:] if t.kind == "punct" and t.text == "="), None)
    key = _unquote(sql[code[1].start : equals.start].strip()) if equals else ""
    value = _unquote(sql[equals.end : code[-1].end].strip()) if equals else ""
    if not key or not value:
        raise StatementError(
            f"Line {code[0].line}: SET needs a key and a value: {_shorten(sql.strip())!r}.",
            statement=sql,
            fix="Write SET 'key' = 'value', or SET alone to list the settings.",
        )
    return key, value


def parse_reset(sql: str) -> str | None:
    """``RESET 'key'`` (quotes optional) -> key; bare ``RESET`` (reset all) -> None."""
    code = _code_of(sql, "RESET")
    if len(code) == 1:
        return None
    return _unquote(sql[code[1].start : code[-1].end].strip())


_OBJECTS = ("TABLE", "VIEW", "FUNCTION", "DATABASE", "CATALOG", "MODEL")
_DONE = {"CREATE": "Created", "DROP": "Dropped", "ALTER": "Altered"}


def describe_done(statement: Statement) -> str | None:
    """What a DDL or USE statement did, in one line, as Flink's SQL client says it
    ("Created table src."); None for other statements."""
    code = _code(_tokens(statement.sql))
    words = [_ident(t.text) for t in code if t.kind in ("word", "ident")]
    upper = [w.upper() for w in words]
    if not upper:
        return None
    if upper[0] == "USE":
        if len(upper) >= 3 and upper[1] == "CATALOG":
            return f"Using catalog {words[2]}."
        return f"Using database {_name(code[1:])}." if len(upper) >= 2 else None
    verb = _DONE.get(upper[0])
    kind = next((w for w in upper[1:4] if w in _OBJECTS), None)
    if verb is None or kind is None:
        return None
    rest = code[[t.text.upper() for t in code].index(kind) + 1:]
    guarded = False
    while rest and rest[0].kind == "word" and rest[0].text.upper() in ("IF", "NOT", "EXISTS"):
        guarded = True
        rest = rest[1:]
    if not rest:
        return None
    name = _name(rest)
    if guarded and verb == "Created":
        return f"{kind.capitalize()} {name} is defined (created unless it existed)."
    if guarded and verb == "Dropped":
        return f"{kind.capitalize()} {name} is gone (dropped if it existed)."
    return f"{verb} {kind.lower()} {name}."


def _name(tokens: list[_Token]) -> str:
    """A possibly qualified name (``cat.db.t``, with quoted parts) at the start of
    ``tokens``."""
    parts: list[str] = []
    for token in tokens:
        if token.kind in ("word", "ident") and (not parts or parts[-1] == "."):
            parts.append(_ident(token.text))
        elif token.text == "." and parts and parts[-1] != ".":
            parts.append(".")
        else:
            break
    return "".join(parts).rstrip(".")


def _ident(text: str) -> str:
    """An identifier as written, without its quotes (backticks or double quotes)."""
    if len(text) >= 2 and text[0] == text[-1] == "`":
        return text[1:-1].replace("``", "`")
    return _unquote(text)
