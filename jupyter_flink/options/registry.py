"""Flink's configuration options: check, translate and classify ``%%flink.conf`` keys.

:class:`OptionRegistry` knows every option of the Flink on the class path, read from Flink
itself (:mod:`jupyter_flink.option_discovery`) and cached per Flink version and jar set, so
only the first kernel on a machine pays for the scan. It

- resolves a key and value to the Flink 2 settings to make (:meth:`OptionRegistry.resolve`):
  values are parsed by Flink in the JVM, Flink 1.x names become their Flink 2 names through
  Flink's own fallback keys, and the few Flink 1.x keys and values Flink 2 removed are
  translated by :mod:`jupyter_flink.option_rules`;
- says whether a key acts per job, at cluster start, or on this integration
  (:meth:`OptionRegistry.scope`);
- suggests keys for typos and describes settings for display.

Interpreter-level keys (``flink.execution.mode``...) are ours, listed in
:mod:`jupyter_flink.interpreter_keys`, and pass through with their values checked.
"""

from __future__ import annotations

import difflib
import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigurationError
from . import discovery
from .cache import (
    cache_file,
    default_cache_dir,
    installed_flink_version,
    newest_cache,
    read_cache,
    write_cache,
)
from .discovery import OptionInfo, Rejection
from .interpreter_keys import (
    INTERPRETER_ALIASES,
    INTERPRETER_KEYS,
    is_interpreter_key,
    resolve_interpreter,
)
from .rules import (
    CLUSTER_KEYS,
    DYNAMIC_KEYS,
    JOB_KEYS,
    JOB_OWNERS,
    JOB_PACKAGES,
    removed_key_targets,
    translate_removed,
    value_problem,
)

__all__ = ["OptionInfo", "OptionRegistry", "Resolved"]

log = logging.getLogger(__name__)



class FlinkView(Protocol):
    """Flink's own parsing and descriptions (:class:`~.option_discovery.JvmOptions`)."""

    def check(self, info: OptionInfo, value: str) -> Rejection | None: ...

    def description(self, info: OptionInfo) -> str: ...

    def text(self, info: OptionInfo) -> str: ...

    def parsed(self, info: OptionInfo, value: str) -> str: ...

    def class_exists(self, name: str) -> bool: ...


_EXPECTED = {
    "duration": "is not a duration (e.g. '10 s', '10000 ms', '1 min')",
    "memory": "is not a memory size (e.g. '512 mb', '1 gb', '1024m')",
    "integer": "is not an integer (a whole number from -2147483648 to 2147483647)",
    "long": "is not a whole number",
    "float": "is not a number (e.g. '0.5')",
    "double": "is not a number (e.g. '0.5')",
    "boolean": "is not a boolean (true or false)",
    "map": "is not a map (e.g. 'key1:value1,key2:value2')",
    "list": "is not a list (items separated by ';')",
}
# Placeholders that stand for the rest of a key ("flink.hadoop.<key>"), not one segment.
_TAIL_PLACEHOLDERS = ("<key>", "<param>", "<parameter>")


@dataclass(frozen=True)
class Resolved:
    """The Flink 2 settings one ``%%flink.conf`` line stands for, and a notice to show."""

    settings: tuple[tuple[str, str], ...]
    notice: str | None = None


@dataclass(frozen=True)
class _Family:
    """Keys Flink accepts by pattern; ``option`` types their values when Flink declares one."""

    pattern: re.Pattern[str]
    option: OptionInfo | None
    scope: str
    specificity: int


class OptionRegistry:
    """Every option of one Flink version, and the rules to apply ``%%flink.conf`` lines."""

    def __init__(self, options: Iterable[OptionInfo], *, flink_version: str,
                 flink: FlinkView | None = None, source: str = "memory",
                 load_seconds: float = 0.0):
        """``flink`` parses values as Flink would; without it only choices are checked."""
        self.flink_version = flink_version
        self.source = source  # "scan", "cache" or "memory": where the options came from
        self.load_seconds = load_seconds
        self._flink = flink
        self._descriptions: dict[str, str] = {}
        options = list(options)
        self._options = {o.key: o for o in options if "<" not in o.key}
        self._fallbacks: dict[str, list[OptionInfo]] = {}
        for info in self._options.values():
            for old in info.fallback_keys:
                self._fallbacks.setdefault(old, []).append(info)
        self._families = sorted(_families(options), key=lambda f: -f.specificity)

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, gateway: Any, *, cache_dir: Path | str | None = None) -> OptionRegistry:
        """The options of the Flink behind ``gateway``: from the cache, else scanned and cached."""
        start = time.perf_counter()
        version = discovery.flink_version(gateway)
        jars = discovery.classpath_jars(gateway)
        path = cache_file(Path(cache_dir) if cache_dir else default_cache_dir(), version, jars)
        options, source = read_cache(path), "cache"
        if options is None:
            options, source = discovery.scan(gateway, discovery.option_classes(jars)), "scan"
            if options:  # an empty scan is a fault to retry, not a result to keep
                write_cache(path, version, options)
        return cls(options, flink_version=version, flink=discovery.JvmOptions(gateway),
                   source=source, load_seconds=time.perf_counter() - start)

    @classmethod
    def from_cache(cls, *, flink_version: str | None = None,
                   cache_dir: Path | str | None = None) -> OptionRegistry | None:
        """The options a kernel cached earlier for this Flink version, without any JVM.

        Values are then checked for choices only and options have no descriptions; None if
        no kernel has cached them yet. The newest cache of the version wins (a cache file is
        per jar set, and only the JVM knows which jars it runs with).
        """
        start = time.perf_counter()
        version = flink_version or installed_flink_version()
        if version is None:
            return None
        path = newest_cache(Path(cache_dir) if cache_dir else default_cache_dir(), version)
        options = read_cache(path) if path else None
        if options is None:
            return None
        return cls(options, flink_version=version, source="cache",
                   load_seconds=time.perf_counter() - start)

    @property
    def docs_url(self) -> str:
        release = ".".join(self.flink_version.split(".")[:2])
        return f"https://nightlies.apache.org/flink/flink-docs-release-{release}/docs/deployment/config/"

    # ------------------------------------------------------------------ lookups

    def __len__(self) -> int:
        return len(self._options)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is the current name of an option (old names and families are not)."""
        return key in self._options

    def options(self) -> list[OptionInfo]:
        """Every option with a fixed key, sorted by key."""
        return [self._options[k] for k in sorted(self._options)]

    def get(self, key: str) -> OptionInfo | None:
        """The option governing ``key``: its own, or its family's (metrics.reporter.x.interval)."""
        if key in self._options:
            return self._options[key]
        family = self._family(key)
        return family.option if family else None

    def old_names(self) -> dict[str, list[str]]:
        """Every fallback key (mostly Flink 1.x names) -> the current keys it sets."""
        return {old: [o.key for o in infos] for old, infos in self._fallbacks.items()
                if old not in self._options}

    def current_keys(self, key: str) -> list[str]:
        """The Flink 2 keys ``key`` sets: itself, or the options naming it as a fallback key."""
        if key in self._options or self._family(key):
            return [key]
        return [o.key for o in self._fallbacks.get(key, [])]

    # ------------------------------------------------------------------ resolving

    def resolve(self, key: str, value: str) -> Resolved:
        """The settings to make for ``key value``; ConfigurationError if Flink would refuse it."""
        key, value = key.strip(), value.strip()
        if is_interpreter_key(key):
            canonical, normalised, notice = resolve_interpreter(key, value)
            return Resolved(((canonical, normalised),), notice)
        removal = translate_removed(key, value)
        if removal is not None:
            for new_key, new_value in removal.settings:
                self._check_value(key, self._require(new_key), new_value)
            return Resolved(removal.settings, removal.notice)
        if key in self._options:
            info = self._options[key]
            self._check_value(key, info, value)
            notice = (f"{key} is deprecated in Flink {self.flink_version}."
                      if info.deprecated else None)
            return Resolved(((key, value),), notice)
        if key in self._fallbacks:
            targets = self._fallbacks[key]
            for info in targets:
                self._check_value(key, info, value)
            names = " and ".join(o.key for o in targets)
            deprecated = any(key in o.deprecated_keys for o in targets)
            notice = (f"{key} is the Flink 1.x name; using {names}." if deprecated
                      else f"{key} is read as {names}.")
            return Resolved(tuple((o.key, value) for o in targets), notice)
        family = self._family(key)
        if family is None:
            raise self._unknown(key)
        if family.option is not None:
            self._check_value(key, family.option, value)
        return Resolved(((key, value),))

    def resolve_interpreter(self, key: str, value: str) -> tuple[str, str]:
        """An interpreter-level key and value, checked: (canonical key, normalised value)."""
        canonical, normalised, _ = resolve_interpreter(key.strip(), value)
        return canonical, normalised

    def scope(self, key: str) -> str:
        """Where ``key`` acts: "job", "cluster" or "interpreter".

        "job": each job submitted afterwards; "cluster": only when a cluster starts;
        "interpreter": this integration. A Flink option is per job when its class is one
        Flink reads from the job's configuration (see :mod:`jupyter_flink.option_rules`);
        old names take the scope of their Flink 2 keys.
        """
        scope = self._scope(key.strip())
        if scope is None:
            raise self._unknown(key.strip())
        return scope

    def suggest(self, key: str, n: int = 3) -> list[str]:
        """Up to ``n`` current keys like ``key``: close as a whole, or by their last segment.

        Old names count too but are suggested as their Flink 2 key; only candidates about as
        close as the best one are kept, so a clear typo gets one answer.
        """
        names = {k: k for k in self._options}
        names.update({old: infos[0].key for old, infos in self._fallbacks.items()})
        names.update({k: k for k in INTERPRETER_KEYS})
        names.update(INTERPRETER_ALIASES)
        last = key.rsplit(".", 1)[-1]
        scored: dict[str, float] = {}
        matcher = difflib.SequenceMatcher(b=key)  # caches its analysis of ``key``
        for name, current in names.items():
            matcher.set_seq1(name)
            if matcher.real_quick_ratio() < 0.5 or matcher.quick_ratio() < 0.5:
                continue
            whole = matcher.ratio()
            if whole < 0.75:
                tail = difflib.SequenceMatcher(None, last, name.rsplit(".", 1)[-1]).ratio()
                if tail < 0.8 or whole < 0.5:
                    continue
            scored[current] = max(whole, scored.get(current, 0.0))
        ranked = sorted(scored.items(), key=lambda item: -item[1])
        return [k for k, score in ranked if score >= ranked[0][1] - 0.1][:n] if ranked else []

    def describe(self, settings: Mapping[str, str | None] | Iterable[str]) -> list[dict[str, Any]]:
        """Rows (key, value, default, type, scope, description) for a table of settings.

        Keys this Flink does not know get empty fields rather than an error.
        """
        items = (settings.items() if isinstance(settings, Mapping)
                 else ((k, None) for k in settings))
        rows = []
        for key, value in items:
            spec = INTERPRETER_KEYS.get(INTERPRETER_ALIASES.get(key, key))
            info = None if spec else self.get(key)
            rows.append({
                "key": key,
                "value": value,
                "default": spec.default if spec else info.default if info else None,
                "type": spec.type_name if spec else info.type_name if info else None,
                "scope": self._scope(key),
                "description": spec.help if spec else self.description(info) if info else "",
            })
        return rows

    def description(self, info: OptionInfo) -> str:
        """The first sentence of Flink's description of ``info`` ("" without a JVM)."""
        if info.key not in self._descriptions:
            self._descriptions[info.key] = self._flink.description(info) if self._flink else ""
        return self._descriptions[info.key]

    def full_description(self, info: OptionInfo) -> str | None:
        """Flink's whole description of ``info``; None without a JVM (only Flink formats it)."""
        return self._flink.text(info) if self._flink else None

    @property
    def has_descriptions(self) -> bool:
        """Whether Flink (the JVM) is there to describe options."""
        return self._flink is not None

    # ------------------------------------------------------------------ internals

    def _scope(self, key: str) -> str | None:
        if is_interpreter_key(key):
            return "interpreter"
        family = None if key in self._options else self._family(key)
        if family is not None:
            return family.scope
        names = self.current_keys(key) or removed_key_targets(key)
        if names is None or any(k not in self._options for k in names):
            return None
        if not names:
            return "job"  # pipeline.time-characteristic: an ignored per-job setting
        per_job = any(_option_scope(self._options[k]) == "job" for k in names)
        return "job" if per_job else "cluster"

    def _family(self, key: str) -> _Family | None:
        return next((f for f in self._families if f.pattern.fullmatch(key)), None)

    def _require(self, key: str) -> OptionInfo:
        info = self._options.get(key)
        if info is None:  # a translation target this Flink does not have
            raise self._unknown(key)
        return info

    def _check_value(self, written: str, info: OptionInfo, value: str) -> None:
        """Raise ConfigurationError, in one line, if Flink would not accept ``value``."""
        if info.kind == "string" and info.enum_values:
            if value.lower() not in {v.lower() for v in info.enum_values}:
                raise ConfigurationError(
                    f"{written}: {value!r} is not one of {', '.join(info.enum_values)}",
                    key=written)
            return
        if self._flink is None:
            return
        if info.kind == "string":
            self._check_meaning(written, info, value)
            return
        rejection = self._flink.check(info, value)
        if rejection is None:
            self._check_meaning(written, info, value)
            return
        if info.kind == "enum":
            expected = "is not one of " + ", ".join(info.enum_values)
        elif info.kind == "list" and info.enum_values:
            expected = f"is not a list of {', '.join(info.enum_values)} (separated by ';')"
        else:
            expected = _EXPECTED.get(info.kind, f"was refused by Flink: {rejection.reason}")
        raise ConfigurationError(f"{written}: {value!r} {expected}", key=written,
                                 details=rejection.trace)

    def _check_meaning(self, written: str, info: OptionInfo, value: str) -> None:
        """What Flink parses but refuses later (rules.value_problem), with the key named."""
        flink = self._flink
        assert flink is not None

        def millis() -> int | None:
            try:
                return int(flink.parsed(info, value)) if info.kind == "duration" else None
            except Exception:  # the type check above already said what is wrong
                return None

        problem = value_problem(info.key, value, millis=millis,
                                class_exists=flink.class_exists)
        if problem:
            raise ConfigurationError(f"{written}: {problem}", key=written)

    def _unknown(self, key: str) -> ConfigurationError:
        hints = self.suggest(key)
        did = ("Did you mean " + " or ".join(f"'{h}'" for h in hints) + "? ") if hints else ""
        return ConfigurationError(f"Unknown Flink option '{key}'.", key=key,
                                  fix=f"{did}Flink's options: {self.docs_url}")


def _option_scope(info: OptionInfo) -> str:
    if info.key in CLUSTER_KEYS:
        return "cluster"
    per_job = (info.key in JOB_KEYS or info.owner in JOB_OWNERS
               or info.owner.startswith(JOB_PACKAGES))
    return "job" if per_job else "cluster"


def _families(options: list[OptionInfo]) -> Iterable[_Family]:
    """Key families: placeholders and map prefixes from Flink's data, then our own list."""
    for info in options:
        if "<" in info.key:
            parts = re.split(r"(<[^>]+>)", info.key)
            regex = "".join((".+" if p in _TAIL_PLACEHOLDERS else "[^.]+")
                            if p.startswith("<") else re.escape(p) for p in parts)
            literal = sum(len(p) for p in parts if not p.startswith("<"))
            yield _Family(re.compile(regex), info, _option_scope(info), literal)
        elif info.kind == "map":  # Flink also reads map options as "<key>.<map key>" entries
            yield _Family(re.compile(re.escape(info.key) + r"\..+"), None, _option_scope(info),
                          len(info.key))
    for keys in DYNAMIC_KEYS:
        yield _Family(re.compile(keys.pattern), None, keys.scope, 0)
