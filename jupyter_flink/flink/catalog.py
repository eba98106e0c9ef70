"""What a table environment knows, read for completion, help and ``%flink.catalog``.

:class:`CatalogReader` asks one table environment (``stenv`` or ``btenv``) through
``java/CatalogInfo.java``: Flink's planner's completion hints (the ones Flink's SQL client
shows), the catalogs with their databases, tables, views and functions, a table's schema and
a function's signature. Each question is one py4j call answered in JSON, and none of them
raises: Tab and Shift+Tab must never fail because Flink could not answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .java_helpers import load_class, new_instance

__all__ = ["CatalogNames", "CatalogObject", "CatalogReader", "ColumnInfo", "FunctionInfo",
           "TableInfo"]


@dataclass(frozen=True)
class ColumnInfo:
    """One column: its name, Flink type, and what makes it computed or metadata."""

    name: str
    type: str
    extras: str | None = None  # "AS `amount` * 2", "METADATA FROM 'offset' VIRTUAL"
    comment: str | None = None


@dataclass(frozen=True)
class CatalogObject:
    """A table or view; ``columns`` only when they were asked for."""

    name: str
    kind: str  # "table" or "view"
    columns: tuple[ColumnInfo, ...] | None = None


@dataclass(frozen=True)
class CatalogNames:
    """Catalogs -> databases -> tables and views, the current ones, and the functions."""

    current_catalog: str
    current_database: str
    catalogs: Mapping[str, Mapping[str, tuple[CatalogObject, ...]]]
    functions: tuple[str, ...] = ()  # user-defined
    all_functions: tuple[str, ...] = ()  # built-in and user-defined
    truncated: bool = False
    errors: Mapping[str, str] = field(default_factory=dict)  # catalog -> why it failed

    def objects(self, catalog: str | None = None, database: str | None = None
                ) -> tuple[CatalogObject, ...]:
        """The tables and views of a database (default: the current one)."""
        databases = self.catalogs.get(catalog or self.current_catalog, {})
        return databases.get(database or self.current_database, ())


@dataclass(frozen=True)
class TableInfo:
    """What Shift+Tab shows about a table or view."""

    identifier: str
    kind: str
    temporary: bool
    columns: tuple[ColumnInfo, ...]
    watermarks: tuple[tuple[str, str], ...] = ()  # (rowtime column, watermark expression)
    primary_key: tuple[str, ...] = ()
    primary_key_name: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    comment: str | None = None
    query: str | None = None


@dataclass(frozen=True)
class FunctionInfo:
    """A function's kind and signature (None when Flink cannot say)."""

    name: str
    kind: str
    builtin: bool
    temporary: bool
    signature: str | None = None
    class_name: str | None = None


class CatalogReader:
    """One table environment's catalog, hints and schemas, in one py4j call per question."""

    def __init__(self, gateway: Any, tenv: Any):
        info_class = load_class(gateway, "CatalogInfo.java", "jupyterflink.CatalogInfo")
        self._info = new_instance(gateway, info_class, tenv._j_tenv)

    def hints(self, statement: str, position: int) -> list[str]:
        """Flink's planner's completion hints at ``position`` of ``statement``."""
        text = str(self._info.hints(statement, position))
        return text.split("\n") if text else []

    def names(self, *, limit: int = 2000, columns: bool = False) -> CatalogNames:
        """The catalogs, databases, tables, views (at most ``limit``) and functions."""
        data = json.loads(str(self._info.names(limit, columns)))
        catalogs: dict[str, dict[str, tuple[CatalogObject, ...]]] = {}
        errors: dict[str, str] = {}
        for catalog in data["catalogs"]:
            if catalog.get("error"):
                errors[catalog["name"]] = catalog["error"]
            catalogs[catalog["name"]] = {
                database["name"]: tuple(_object(o) for o in database["objects"])
                for database in catalog["databases"]}
        return CatalogNames(
            current_catalog=data["catalog"], current_database=data["database"],
            catalogs=catalogs, functions=tuple(data["functions"]),
            all_functions=tuple(data["all_functions"]), truncated=bool(data["truncated"]),
            errors=errors)

    def describe(self, path: str) -> TableInfo | None:
        """The table or view ``path`` resolves to (None if there is none)."""
        text = str(self._info.describe(path))
        if not text:
            return None
        data = json.loads(text)
        key = data.get("primary_key") or {}
        has_sql = data["kind"] != "view" or data.get("query")
        return TableInfo(
            identifier=data["identifier"], kind=data["kind"], temporary=data["temporary"],
            columns=tuple(_column(c) for c in data["columns"]),
            watermarks=tuple((w["column"], w["expression"]) for w in data["watermarks"]),
            primary_key=tuple(key.get("columns") or ()), primary_key_name=key.get("name"),
            options=dict(data["options"]),
            # A view made from a Python Table object carries Flink's summary as its comment.
            comment=(data.get("comment") or None) if has_sql else None,
            query=data.get("query"))

    def function(self, name: str) -> FunctionInfo | None:
        """The function ``name`` resolves to (None if the function catalog has none)."""
        text = str(self._info.function(name))
        if not text:
            return None
        data = json.loads(text)
        return FunctionInfo(name=data["name"], kind=data["kind"], builtin=data["builtin"],
                            temporary=data["temporary"], signature=data.get("signature"),
                            class_name=data.get("class"))


def _column(data: Mapping[str, Any]) -> ColumnInfo:
    return ColumnInfo(name=data["name"], type=data["type"], extras=data.get("extras"),
                      comment=data.get("comment"))


def _object(data: Mapping[str, Any]) -> CatalogObject:
    columns = data.get("columns")
    return CatalogObject(name=data["name"], kind=data["kind"],
                         columns=None if columns is None else tuple(_column(c) for c in columns))
