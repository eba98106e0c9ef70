"""SQL completion: Flink's planner's hints, the live catalog, and keywords.

With a running session, Flink's own planner suggests what fits the statement (Calcite's
``SqlAdvisor`` behind ``Parser.getCompletionHints``, as in Flink's SQL client): keywords,
functions, tables, and columns once the statement names its tables. The catalog adds what the
planner misses in half-written statements: tables and views of the current database, columns
of the tables the statement names (also behind an alias), databases, catalogs, functions.
Before the first Flink cell there is no catalog and no JVM to ask: keywords only.

Flink's hints name tables in full (``default_catalog.default_database.orders``); where the
current catalog and database make the short name resolve, the short name is offered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Protocol

from ..flink.catalog import CatalogNames, ColumnInfo
from .candidates import Candidate, unique
from .context import Spot
from .keywords import KEYWORDS, STATEMENT_STARTS

__all__ = ["Catalog", "referenced_tables", "sql_candidates"]

_RANKS = {"column": 0, "table": 1, "view": 1, "database": 2, "catalog": 3, "function": 4,
          "keyword": 5}
_TABLE_REF = re.compile(
    r"\b(?:FROM|JOIN|INTO|TABLE|UPDATE|DESCRIBE|DESC)\s+"
    r"(?P<path>(?:`[^`]+`|[\w$]+)(?:\.(?:`[^`]+`|[\w$]+))*)"
    r"(?:\s+(?:AS\s+)?(?P<alias>[A-Za-z_][\w$]*))?", re.I)
_HINT = re.compile(r"[\w$]+(?:\.[\w$]+)*")
_KEYWORD_SET = frozenset(KEYWORDS)


class Catalog(Protocol):
    """The live catalog as completion reads it (cached by the caller)."""

    def names(self) -> CatalogNames: ...

    def columns(self, path: str) -> tuple[ColumnInfo, ...]: ...


def sql_candidates(spot: Spot, *, hints: Sequence[str] = (),
                   catalog: Catalog | None = None) -> list[Candidate]:
    """What may replace ``spot.fragment`` in its statement, best first."""
    parts = spot.fragment.split(".")
    last = parts[-1]
    found: list[Candidate] = []
    planner: list[Candidate] = []
    if catalog is not None:
        names = catalog.names()
        planner = _fitting(_from_hints(hints, parts, names), last)
        found = planner + _fitting(_from_catalog(parts, spot.statement, names, catalog,
                                                 functions=not planner), last)
    if len(parts) == 1 and not planner:  # the planner knows which keywords fit: if it said
        found += _keywords(spot, last)  # nothing (no JVM, a statement's first word), all do
    return sorted(unique(found), key=lambda c: _RANKS.get(c.type, 6))


def _fitting(candidates: list[Candidate], last: str) -> list[Candidate]:
    """Those whose last dotted segment starts with ``last`` (ignoring case)."""
    return [c for c in candidates
            if c.text.rsplit(".", 1)[-1].lower().startswith(last.lower())]


def referenced_tables(statement: str) -> dict[str, str]:
    """Names and aliases the statement gives its tables -> the table's path."""
    refs: dict[str, str] = {}
    for match in _TABLE_REF.finditer(statement):
        path = match.group("path").replace("`", "")
        refs[path.rsplit(".", 1)[-1]] = path
        refs[path] = path
        alias = match.group("alias")
        if alias and alias.upper() not in _KEYWORD_SET:
            refs[alias] = path
    return refs


def _case(word: str, typed: str) -> str:
    """A keyword in the case the user types keywords in."""
    return word.lower() if typed and typed.islower() and word.isupper() else word


def _keywords(spot: Spot, last: str) -> list[Candidate]:
    if not last:
        at_start = not spot.statement[:spot.position].strip()
        return [Candidate(k, "keyword") for k in STATEMENT_STARTS] if at_start else []
    return [Candidate(_case(k, last), "keyword") for k in KEYWORDS
            if k.lower().startswith(last.lower())]


def _from_hints(hints: Iterable[str], parts: list[str], names: CatalogNames
                ) -> list[Candidate]:
    functions = {f.lower() for f in names.all_functions}
    found = []
    for hint in hints:
        if not _HINT.fullmatch(hint):
            continue  # punctuation: "(", "+", "/*+"
        segments = _shorten(hint.split("."), len(parts), names)
        if len(segments) < len(parts):
            segments = parts[:len(parts) - len(segments)] + segments
        text = ".".join(segments)
        if "." not in hint and hint.isupper():
            kind = "function" if hint.lower() in functions else "keyword"
            found.append(Candidate(_case(text, parts[-1]), kind))
        else:
            found.append(Candidate(text, _kind_of(hint.split("."), names)))
    return found


def _shorten(segments: list[str], typed: int, names: CatalogNames) -> list[str]:
    """Drop the current catalog (and database) from a hint the user typed shorter."""
    if len(segments) == 3 and typed < 3 and segments[0] == names.current_catalog:
        segments = segments[1:]
    if len(segments) == 2 and typed < 2 and segments[0] == names.current_database:
        segments = segments[1:]
    return segments


def _kind_of(segments: list[str], names: CatalogNames) -> str:
    if len(segments) == 3:
        objects = names.objects(segments[0], segments[1])
        return next((o.kind for o in objects if o.name == segments[2]), "table")
    if len(segments) == 1 and segments[0] in names.catalogs:
        return "catalog"
    if len(segments) == 1 and segments[0] in names.catalogs.get(names.current_catalog, {}):
        return "database"
    return "column"


def _from_catalog(parts: list[str], statement: str, names: CatalogNames, catalog: Catalog,
                  *, functions: bool) -> list[Candidate]:
    """Names from the catalog; functions only if ``functions`` (where the planner has
    hints, it knows whether a function fits)."""
    qualifier, last = parts[:-1], parts[-1]
    prefix = "".join(f"{q}." for q in qualifier)
    refs = referenced_tables(statement)
    found: list[Candidate] = []
    if not qualifier:
        for path in dict.fromkeys(refs.values()):
            found += [Candidate(c.name, "column") for c in catalog.columns(path)]
        found += [Candidate(o.name, o.kind) for o in names.objects()]
        found += [Candidate(d, "database") for d in names.catalogs.get(names.current_catalog, {})]
        found += [Candidate(c, "catalog") for c in names.catalogs]
        if functions:
            found += [Candidate(f, "function") for f in names.functions]
            if last:  # SQL's built-ins (the camel-case names are the Table API's)
                found += [Candidate(_case(f, last), "function") for f in names.all_functions
                          if f.isupper()]
        return found
    if len(qualifier) == 1:
        head = qualifier[0]
        if head in refs:
            found += [Candidate(prefix + c.name, "column") for c in catalog.columns(refs[head])]
        found += [Candidate(prefix + d, "database") for d in names.catalogs.get(head, {})]
        found += [Candidate(prefix + o.name, o.kind)
                  for o in names.objects(names.current_catalog, head)]
    elif len(qualifier) == 2:
        found += [Candidate(prefix + o.name, o.kind) for o in names.objects(*qualifier)]
        path = ".".join(qualifier)
        if path in refs or any(o.name == qualifier[1] for o in names.objects(None, qualifier[0])):
            found += [Candidate(prefix + c.name, "column") for c in catalog.columns(path)]
    return found
