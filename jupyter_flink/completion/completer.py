"""Tab and Shift+Tab for the Flink magics of one kernel: what to offer, what to show.

:class:`FlinkCompleter` locates the cursor (:mod:`.context`) and asks the part that knows:
the option registry for conf keys and values, the header property table, the live catalog
and Flink's planner for SQL, the job registry for job magics. It never starts the JVM or a
cluster: the option registry is the session's if Flink already runs, else the one a kernel
cached on disk (:meth:`OptionRegistry.from_cache`), else only the integration's own keys;
the catalog is read only from a started session, else SQL gets keywords only.

Catalog answers are kept until the next cell runs (only cells change the catalog), so a
burst of Tabs costs one py4j call for the names plus Flink's planner for the hints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..flink.catalog import CatalogNames, CatalogReader, ColumnInfo, FunctionInfo, TableInfo
from ..flink.configuration import default_job_settings
from ..jobs.registry import TrackedJob
from ..options.interpreter_keys import INTERPRETER_ALIASES, INTERPRETER_KEYS
from ..options.registry import OptionRegistry
from . import header
from .candidates import Completions
from .conf import OptionKeys, scope_of
from .context import Place, Spot, locate
from .help import (
    OptionHelp,
    function_help,
    option_help,
    property_help,
    table_help,
)
from .jobs import job_candidates
from .sql import sql_candidates

if TYPE_CHECKING:
    from ..flink.session import FlinkSession

__all__ = ["FlinkCompleter"]


class LiveCatalog:
    """One table environment's catalog, its answers kept for one generation (one cell run)."""

    def __init__(self, reader: CatalogReader, generation: object):
        self.reader = reader
        self.generation = generation
        self._names: CatalogNames | None = None
        self._tables: dict[str, TableInfo | None] = {}
        self._functions: dict[str, FunctionInfo | None] = {}

    def hints(self, statement: str, position: int) -> list[str]:
        return self.reader.hints(statement, position)

    def names(self) -> CatalogNames:
        if self._names is None:
            self._names = self.reader.names()
        return self._names

    def describe(self, path: str) -> TableInfo | None:
        if path not in self._tables:
            self._tables[path] = self.reader.describe(path)
        return self._tables[path]

    def columns(self, path: str) -> tuple[ColumnInfo, ...]:
        table = self.describe(path)
        return table.columns if table else ()

    def function(self, name: str) -> FunctionInfo | None:
        if name not in self._functions:
            self._functions[name] = self.reader.function(name)
        return self._functions[name]


class FlinkCompleter:
    """Completions and help for the Flink magics of one kernel's session and jobs."""

    def __init__(self, session: FlinkSession, jobs: Callable[[], Sequence[TrackedJob]], *,
                 generation: Callable[[], object] = lambda: None,
                 cache_dir: Path | str | None = None):
        """``generation`` changes whenever the catalog may have (the execution count)."""
        self._session = session
        self._jobs = jobs
        self._generation = generation
        self._cache_dir = cache_dir
        self._from_cache: OptionRegistry | None = None
        self._keys = OptionKeys(None)
        self._catalogs: dict[int, LiveCatalog] = {}

    # ----------------------------------------------------------------- Tab

    def complete(self, text: str, offset: int) -> Completions | None:
        """Completions at ``offset`` of the cell ``text``; None where Python completes."""
        spot = locate(text, offset)
        if spot.place is Place.NONE:
            return None
        keys = self._option_keys()
        if spot.place is Place.CONF_KEY:
            found = keys.keys(spot.fragment)
        elif spot.place is Place.CONF_VALUE:
            found = keys.values(spot.key or "", spot.fragment)
        elif spot.place is Place.HEADER_NAME:
            found = header.name_candidates(keys, spot.cell or "flink", spot.fragment,
                                           spot.given)
        elif spot.place is Place.HEADER_VALUE:
            found = header.value_candidates(keys, spot.cell or "flink", spot.key or "",
                                            spot.fragment)
        elif spot.place is Place.SQL:
            catalog = self._catalog(spot)
            hints = catalog.hints(spot.statement, spot.position) if catalog else []
            found = sql_candidates(spot, hints=hints, catalog=catalog)
        else:
            found = job_candidates(spot.key or "", self._jobs(), spot.fragment)
        return Completions(spot.fragment, tuple(found))

    # ----------------------------------------------------------------- Shift+Tab

    def inspect(self, text: str, offset: int) -> dict[str, str] | None:
        """Help (a MIME bundle) on what is under the cursor; None if it is not ours."""
        spot = locate(text, offset)
        if spot.place is Place.CONF_KEY:
            return self._option_help(spot.word) if spot.word else None
        if spot.place is Place.CONF_VALUE:
            return self._option_help(spot.key or "")
        if spot.place in (Place.HEADER_NAME, Place.HEADER_VALUE):
            name = spot.word if spot.place is Place.HEADER_NAME else spot.key or ""
            prop = header.property_info(name, spot.cell) or header.property_info(name)
            if prop is not None:
                return property_help(prop)
            return self._option_help(name) if "." in name else None
        if spot.place is Place.SQL and spot.word:
            catalog = self._catalog(spot)
            if catalog is None:
                return None
            table = catalog.describe(spot.word)
            if table is not None:
                return table_help(table)
            function = catalog.function(spot.word)
            return function_help(function) if function else None
        return None

    # ----------------------------------------------------------------- sources

    def registry(self) -> OptionRegistry | None:
        """The session's option registry if Flink runs, else the cached one (no JVM)."""
        loaded = self._session.loaded_options
        if loaded is not None:
            return loaded
        if self._from_cache is None:  # until a kernel has cached them: looked for each time
            self._from_cache = OptionRegistry.from_cache(cache_dir=self._cache_dir)
        return self._from_cache

    def _option_keys(self) -> OptionKeys:
        registry = self.registry()
        if self._keys.registry is not registry:
            self._keys = OptionKeys(registry)
        return self._keys

    def _catalog(self, spot: Spot) -> LiveCatalog | None:
        reader = self._session.catalog_reader(batch=spot.key == "bsql")
        if reader is None:
            return None  # no session yet: nothing is started for a Tab
        generation = self._generation()
        catalog = self._catalogs.get(id(reader))
        if catalog is None or catalog.reader is not reader or catalog.generation != generation:
            catalog = self._catalogs[id(reader)] = LiveCatalog(reader, generation)
        return catalog

    def _option_help(self, key: str) -> dict[str, str]:
        spec = INTERPRETER_KEYS.get(INTERPRETER_ALIASES.get(key, key))
        if spec is not None:
            setting = self._session.interpreter_setting(spec.key)
            changed = setting != self._session.interpreter_default(spec.key)
            return option_help(OptionHelp(
                key=key, current_keys=(spec.key,) if spec.key != key else (),
                type_name=spec.type_name, default=spec.default, scope="interpreter",
                description=spec.help, value=setting,
                source="set by %%flink.conf" if changed else "default",
                choices=spec.choices or (("true", "false") if spec.kind == "boolean" else ())))
        registry = self.registry()
        info = self._option_keys().option(key)
        if registry is None or info is None:
            return option_help(OptionHelp(key=key, known=False,
                                          docs_url=registry.docs_url if registry else None))
        current = () if info.key == key else tuple(registry.current_keys(key))
        value, source = self._effective([key, *current], info.default)
        return option_help(OptionHelp(
            key=key, current_keys=current, type_name=info.type_name, default=info.default,
            scope=scope_of(registry, key),
            description=registry.full_description(info) if registry.has_descriptions else None,
            value=value, source=source, choices=info.enum_values,
            deprecated=info.deprecated, docs_url=registry.docs_url))

    def _effective(self, keys: list[str], default: str | None
                   ) -> tuple[str | None, str | None]:
        """The value jobs get now for any of ``keys``, and where it comes from."""
        sources: list[tuple[dict[str, Any], str]] = [
            (self._session.flink_settings(), "set by %%flink.conf"),
            (default_job_settings(), "jupyter-flink's default")]
        for settings, source in sources:
            for key in keys:
                if key in settings:
                    return str(settings[key]), source
        return (default, "Flink's default") if default is not None else (None, None)
