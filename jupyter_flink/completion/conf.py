"""Configuration keys and their values: what ``%%flink.conf`` lines (and header options) take.

Keys come from Flink's option registry (:class:`~jupyter_flink.options.registry.OptionRegistry`):
every option with a fixed key, shown with its Java type, and every fallback key (mostly Flink
1.x names) shown with the Flink 2 key it sets. The integration's own keys come with them.
Without a registry (no kernel has cached Flink's options yet, and completion never starts the
JVM to read them) only what is known without Flink is offered.

Values are offered where the option's type allows: enum constants, booleans, a number with
each duration or memory unit, and otherwise the option's default.
"""

from __future__ import annotations

import re

from ..errors import ConfigurationError
from ..options.interpreter_keys import INTERPRETER_ALIASES, INTERPRETER_KEYS
from ..options.registry import OptionInfo, OptionRegistry
from ..options.rules import CLUSTER_KEYS, JOB_KEYS
from .candidates import Candidate, by_prefix

__all__ = ["OURS", "STATIC_KEYS", "OptionKeys", "scope_of"]

# Flink keys known without Flink's registry: what jupyter-flink sets by default or treats
# specially. Offered (typed "Flink option") only until the registry is cached.
STATIC_KEYS = tuple(sorted({
    "execution.checkpointing.dir", "execution.checkpointing.savepoint-dir",
    "execution.checkpointing.externalized-checkpoint-retention",
    "execution.checkpointing.interval", "execution.state-recovery.path",
    "restart-strategy.type", "state.backend.type", *JOB_KEYS, *CLUSTER_KEYS,
}))
_DURATION_UNITS = ("ms", "s", "min", "h", "d")
_MEMORY_UNITS = ("kb", "mb", "gb")
_NUMBER = re.compile(r"(\d+)\s*([a-zµ]*)", re.I)
OURS = "jupyter-flink"


class OptionKeys:
    """The keys and values to offer from one registry (None: no registry yet); the key
    tables are built once, since a Tab must answer in milliseconds."""

    def __init__(self, registry: OptionRegistry | None):
        self.registry = registry
        self._tables: dict[str | None, list[tuple[str, str]]] = {}

    def keys(self, fragment: str, *, scope: str | None = None,
             interpreter: bool = True) -> list[Candidate]:
        """Keys matching ``fragment``: Flink's (only those acting in ``scope`` if given),
        their old names, and (if ``interpreter``) the integration's own."""
        if scope not in self._tables:
            self._tables[scope] = self._table(scope)
        types = dict(self._tables[scope])
        if interpreter:
            types.update({k: OURS for k in INTERPRETER_KEYS})
            types.update({k: f"{OURS} (Zeppelin's name of {v})"
                          for k, v in INTERPRETER_ALIASES.items()})
        return [Candidate(key, types[key]) for key in by_prefix(fragment, sorted(types))]

    def _table(self, scope: str | None) -> list[tuple[str, str]]:
        registry = self.registry
        if registry is None:
            return [(k, "Flink option") for k in STATIC_KEYS]
        table = [(info.key, info.type_name + (" (deprecated)" if info.deprecated else ""))
                 for info in registry.options()
                 if scope is None or scope_of(registry, info.key) == scope]
        known = {key for key, _ in table}
        table += [(old, f"old name of {' and '.join(current)}")
                  for old, current in registry.old_names().items()
                  if old not in known and (scope is None or scope_of(registry, old) == scope)]
        return table

    def option(self, key: str) -> OptionInfo | None:
        """The option ``key`` sets (through its Flink 2 name for an old one)."""
        registry = self.registry
        if registry is None:
            return None
        info = registry.get(key)
        if info is None:
            current = registry.current_keys(key)
            info = registry.get(current[0]) if current else None
        return info

    def values(self, key: str, fragment: str) -> list[Candidate]:
        """Values for ``key`` that fit ``fragment``, as far as the key's type tells."""
        spec = INTERPRETER_KEYS.get(INTERPRETER_ALIASES.get(key, key))
        if spec is not None:
            choices = spec.choices or (("true", "false") if spec.kind == "boolean" else ())
            values = list(choices) or ([spec.default] if spec.default else [])
            return [Candidate(v, "value") for v in by_prefix(fragment, values)]
        info = self.option(key)
        return [] if info is None else _values(info, fragment)


def _values(info: OptionInfo, fragment: str) -> list[Candidate]:
    if info.kind == "boolean":
        return [Candidate(v, "Boolean") for v in by_prefix(fragment, ["true", "false"])]
    if info.enum_values and info.kind in ("enum", "string"):
        return [Candidate(v, info.type_name) for v in by_prefix(fragment, info.enum_values)]
    if info.enum_values and info.kind == "list":  # e.g. a;b;c of an enum
        done, _, last = fragment.rpartition(";")
        head = f"{done};" if done else ""
        return [Candidate(head + v, info.type_name)
                for v in by_prefix(last, info.enum_values)]
    if info.kind in ("duration", "memory"):
        units = _DURATION_UNITS if info.kind == "duration" else _MEMORY_UNITS
        number = _NUMBER.fullmatch(fragment.strip())
        if number:
            amount, unit = number.groups()
            return [Candidate(f"{amount} {u}", info.type_name)
                    for u in units if u.startswith(unit.lower())]
    if info.default is not None and info.default.lower().startswith(fragment.lower()):
        return [Candidate(info.default, "default")]
    return []


def scope_of(registry: OptionRegistry, key: str) -> str | None:
    try:
        return registry.scope(key)
    except ConfigurationError:  # an old name whose Flink 2 key this Flink lacks
        return None
