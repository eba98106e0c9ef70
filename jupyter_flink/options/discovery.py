"""Read Flink's configuration options out of the running JVM, and parse values with Flink.

Flink keeps no runtime registry of its options. Its documentation generator
(``flink-docs``, ``ConfigurationOptionLocator``) finds them by class name: every
``*Options``, ``*Config`` or ``*Parameters`` class, whose public static ``ConfigOption``
fields are the options. We do the same over the jars on the JVM's own class path, read the
class list with :mod:`zipfile`, and reflect over the classes through py4j.

Py4j round trips are the cost (releasing a Java object costs one too), so the scan is shaped
around them: one call prints a class's fields, one per annotation type names the deprecated
and suffix fields, and each option costs six (the field, its generic type, its value and
``toString`` with key, default and fallback keys, two releases). Most of the time goes to the
JVM loading and initialising the option classes, so Java compiled into the JVM would not be
much faster. Descriptions are formatted on demand (:class:`JvmOptions`). The result is cached
per Flink version and jar set (:mod:`jupyter_flink.options.cache`). Figures: bench/README.md.
"""

from __future__ import annotations

import html
import os
import re
import zipfile
from dataclasses import dataclass
from typing import Any

from py4j.protocol import Py4JError, Py4JJavaError

from ..traces import java_causes
from .rules import STRING_CHOICES

__all__ = [
    "JvmOptions",
    "OptionInfo",
    "Rejection",
    "classpath_jars",
    "first_sentence",
    "flink_version",
    "format_duration",
    "option_classes",
    "plain_text",
    "scan",
]

# Flink's docs generator: ``(?<className>[a-zA-Z]*(?:Options|Config|Parameters))``.
_OPTION_CLASS = re.compile(
    r"^org/apache/flink/(?:[a-z0-9_]+/)+[A-Z][A-Za-z0-9]*(?:Options|Config|Parameters)\.class$")
# Options of table factories: keys of a CREATE TABLE ... WITH (...) clause, not configuration.
_FACTORY_PACKAGES = ("org.apache.flink.connector.", "org.apache.flink.formats.",
                     "org.apache.flink.table.connector.")
_FIELD = re.compile(
    r"public static (?:final )?org\.apache\.flink\.configuration\.ConfigOption ([\w.$]+)\.(\w+)")
_TO_STRING = re.compile(
    r"^Key: '(?P<key>.*?)' , default: (?P<default>.*) \(fallback keys: \[(?P<fallback>.*)\]\)$",
    re.S)
_FALLBACK = re.compile(r"\{key=(.*?), isDeprecated=(true|false)\}")
_KINDS = {
    "java.lang.String": "string", "java.lang.Boolean": "boolean",
    "java.lang.Integer": "integer", "java.lang.Long": "long", "java.lang.Float": "float",
    "java.lang.Double": "double", "java.time.Duration": "duration",
    "org.apache.flink.configuration.MemorySize": "memory",
}
_ISO_DURATION = re.compile(r"^PT(?:(-?\d+)H)?(?:(-?\d+)M)?(?:(-?\d+)(?:\.(\d+))?S)?$")
# Flink's TimeUtils.formatWithHighestUnit: the largest unit that divides the duration.
_UNITS = (("d", 86_400 * 10**9), ("h", 3_600 * 10**9), ("min", 60 * 10**9), ("s", 10**9),
          ("ms", 10**6), ("µs", 10**3), ("ns", 1))


@dataclass(frozen=True)
class OptionInfo:
    """One Flink configuration option, as Flink declares it.

    ``key`` may hold placeholders (``metrics.reporter.<name>.interval``) for families of
    keys. ``kind`` names the parser: string, boolean, integer, long, float, double,
    duration, memory, enum, list, map or other.
    """

    key: str
    type_name: str
    kind: str
    default: str | None
    fallback_keys: tuple[str, ...]
    deprecated_keys: tuple[str, ...]
    owner: str
    field: str
    enum_values: tuple[str, ...] = ()
    deprecated: bool = False


@dataclass(frozen=True)
class Rejection:
    """Flink refused a value: its innermost message, and the whole Java trace."""

    reason: str
    trace: str


def flink_version(gateway: Any) -> str:
    return str(gateway.jvm.org.apache.flink.runtime.util.EnvironmentInformation.getVersion())


def classpath_jars(gateway: Any) -> list[str]:
    """The jars on the JVM's class path: where Flink's classes (and options) come from."""
    path = str(gateway.jvm.System.getProperty("java.class.path"))
    return sorted(p for p in path.split(os.pathsep) if p.endswith(".jar") and os.path.isfile(p))


def option_classes(jars: list[str]) -> list[str]:
    """Names of the classes in ``jars`` that may hold configuration options."""
    names: set[str] = set()
    for jar in jars:
        with zipfile.ZipFile(jar) as archive:
            names.update(n[:-6].replace("/", ".") for n in archive.namelist()
                         if _OPTION_CLASS.match(n) and "/shaded/" not in n)
    return sorted(n for n in names if not n.startswith(_FACTORY_PACKAGES))


def scan(gateway: Any, class_names: list[str]) -> list[OptionInfo]:
    """Reflect over ``class_names`` and return every option they declare, deduplicated."""
    refs = _Refs(gateway)
    found: dict[tuple[str, str], OptionInfo] = {}
    for name in class_names:
        try:
            cls = refs.Class.forName(name, False, refs.loader)
            fields = _FIELD.findall(str(refs.ArrayUtils.toString(cls.getFields())))
            if not fields:
                continue
            if cls.isAnnotationPresent(refs.Deprecated):
                deprecated = {f for _, f in fields}
            else:
                deprecated = refs.field_names(cls, refs.Deprecated)
            # @Documentation.SuffixOption("metrics.reporter.<name>") on "interval": a family
            suffixes = {f: str(cls.getField(f).getAnnotation(refs.SuffixOption).value())
                        for f in refs.field_names(cls, refs.SuffixOption)}
            for owner, field_name in fields:
                if (owner, field_name) not in found:
                    info = _read_option(refs, cls, owner, field_name,
                                        field_name in deprecated, suffixes.get(field_name))
                    if info is not None:
                        found[owner, field_name] = info
        except Py4JError:  # a class that needs a library we lack: no options for us
            continue
    return _dedupe(found.values())


def _read_option(refs: _Refs, cls: Any, owner: str, field_name: str, deprecated: bool,
                 suffix_of: str | None) -> OptionInfo | None:
    field = cls.getField(field_name)
    generic = str(field.toGenericString())
    option = field.get(None)
    text = _TO_STRING.match(str(option.toString()))
    if text is None:
        return None
    key = f"{suffix_of}.{text['key']}" if suffix_of else text["key"]
    if "." not in key or "#" in key:
        return None  # SQL hint or table option ('async', 'fields.#.kind'), not configuration
    # The declared type argument: ConfigOption.getClazz() is package-private.
    java_type = (generic.split("ConfigOption<", 1)[1].rsplit("> ", 1)[0]
                 if "ConfigOption<" in generic else "java.lang.Object")
    kind, enum_values = _kind(refs, java_type)
    default: str | None = None if text["default"] == "null" else text["default"]
    if default is not None and kind == "duration":
        default = format_duration(default)
    fallbacks = _FALLBACK.findall(text["fallback"])
    return OptionInfo(
        key=key,
        type_name=re.sub(r"(?:\w+[.$])+(\w+)", r"\1", java_type),
        kind=kind,
        default=default,
        fallback_keys=tuple(k for k, _ in fallbacks),
        deprecated_keys=tuple(k for k, flag in fallbacks if flag == "true"),
        owner=owner,
        field=field_name,
        enum_values=enum_values or _string_choices(refs, key),
        deprecated=deprecated,
    )


def _kind(refs: _Refs, java_type: str) -> tuple[str, tuple[str, ...]]:
    if java_type in _KINDS:
        return _KINDS[java_type], ()
    if java_type.startswith("java.util.Map<"):
        return "map", ()
    if java_type.startswith("java.util.List<"):
        return "list", refs.enum_constants(java_type[len("java.util.List<"):-1])
    constants = refs.enum_constants(java_type)
    return ("enum", constants) if constants else ("other", ())


def _string_choices(refs: _Refs, key: str) -> tuple[str, ...]:
    source = STRING_CHOICES.get(key)
    if source is None:
        return ()
    enum_class, method = source
    values: list[str] = []
    for constant in refs.Class.forName(enum_class, True, refs.loader).getEnumConstants():
        values += sorted(str(v) for v in getattr(constant, method)())
    return tuple(dict.fromkeys(values))


def _dedupe(options: Any) -> list[OptionInfo]:
    """One entry per key: a deprecated class's copy loses to the current one."""
    by_key: dict[str, OptionInfo] = {}
    for info in sorted(options, key=lambda o: (o.deprecated, o.owner, o.field)):
        by_key.setdefault(info.key, info)
    return sorted(by_key.values(), key=lambda o: o.key)


def format_duration(iso: str) -> str:
    """Java's ``Duration.toString()`` ("PT10M") the way Flink writes durations ("10 min")."""
    match = _ISO_DURATION.match(iso)
    if match is None:
        return iso
    hours, minutes, seconds, fraction = match.groups()
    nanos = ((int(hours or 0) * 60 + int(minutes or 0)) * 60 + int(seconds or 0)) * 10**9
    sign = -1 if (seconds or "").startswith("-") else 1
    nanos += sign * int((fraction or "0").ljust(9, "0")[:9])
    if nanos == 0:
        return "0 ms"
    label, size = next((label, size) for label, size in _UNITS if nanos % size == 0)
    return f"{nanos // size} {label}"


def plain_text(description_html: str) -> str:
    """An option's HTML description as one paragraph of plain text."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", description_html))
    return re.sub(r"\s+", " ", text).strip()


def first_sentence(description_html: str, limit: int = 200) -> str:
    """Plain text of the first sentence of an option's HTML description."""
    text = plain_text(description_html)
    match = re.match(r"(.+?[.!?])(?:\s|$)", text)
    sentence = match.group(1) if match else text
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"


class _Refs:
    """Java classes the scan uses, looked up once (each lookup is a round trip)."""

    def __init__(self, gateway: Any):
        jvm = gateway.jvm
        self.Class = jvm.java.lang.Class
        self.loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
        # commons-lang3 ships in flink-dist; its toString(Object) prints a whole array in one
        # call, where py4j would fetch the elements one by one.
        self.ArrayUtils = jvm.org.apache.commons.lang3.ArrayUtils
        self.FieldUtils = jvm.org.apache.commons.lang3.reflect.FieldUtils
        self.Deprecated = self.Class.forName("java.lang.Deprecated")
        self.SuffixOption = self.Class.forName(
            "org.apache.flink.annotation.docs.Documentation$SuffixOption")
        self._enums: dict[str, tuple[str, ...]] = {}

    def field_names(self, cls: Any, annotation: Any) -> set[str]:
        """Names of ``cls``'s fields carrying ``annotation`` (one round trip per class)."""
        listed = str(self.FieldUtils.getFieldsListWithAnnotation(cls, annotation).toString())
        return {f for _, f in _FIELD.findall(listed)}

    def enum_constants(self, java_type: str) -> tuple[str, ...]:
        """``toString()`` of each constant, which is what Flink matches (ignoring case)."""
        if java_type not in self._enums:
            try:
                constants = self.Class.forName(java_type, False, self.loader).getEnumConstants()
            except Py4JError:  # a generic type or an absent class: not an enum
                constants = None
            text = str(self.ArrayUtils.toString(constants)) if constants is not None else "{}"
            self._enums[java_type] = tuple(v for v in text.strip("{}").split(",") if v)
        return self._enums[java_type]


class JvmOptions:
    """Flink's own view of single options, in the JVM: parse a value, describe an option."""

    def __init__(self, gateway: Any):
        jvm = gateway.jvm
        self._Class = jvm.java.lang.Class
        self._loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
        self._Configuration = jvm.org.apache.flink.configuration.Configuration
        self._exceptions = jvm.org.apache.flink.util.ExceptionUtils
        self._formatter = jvm.org.apache.flink.configuration.description.HtmlFormatter()
        self._options: dict[tuple[str, str], tuple[Any, str]] = {}

    def check(self, info: OptionInfo, value: str) -> Rejection | None:
        """None if Flink accepts ``value`` for ``info`` (``Configuration.get``), else why not."""
        option, java_key = self._option(info)
        conf = self._Configuration()
        conf.setString(java_key, value)
        try:
            conf.get(option)
        except Py4JJavaError as exc:
            error = exc.java_exception
            trace = str(self._exceptions.stringifyException(error))
            return Rejection(reason=str(java_causes(error)[-1][1]), trace=trace)
        return None

    def parsed(self, info: OptionInfo, value: str) -> str:
        """``value`` as Flink reads it, in a form a rule can use: a duration in ms, a class
        loaded or not ("class:<name>:found"/"missing"), else its text."""
        option, java_key = self._option(info)
        conf = self._Configuration()
        conf.setString(java_key, value)
        read = conf.get(option)
        if hasattr(read, "toMillis"):
            return str(read.toMillis())
        return str(read)

    def class_exists(self, name: str) -> bool:
        try:
            self._Class.forName(name, False, self._loader)
        except Py4JError:
            return False
        return True

    def description(self, info: OptionInfo) -> str:
        """The first sentence of Flink's description (formatting all of them costs ~1 s)."""
        return first_sentence(self._html(info))

    def text(self, info: OptionInfo) -> str:
        """Flink's whole description, as plain text."""
        return plain_text(self._html(info))

    def _html(self, info: OptionInfo) -> str:
        option, _ = self._option(info)
        return str(self._formatter.format(option.description()))

    def _option(self, info: OptionInfo) -> tuple[Any, str]:
        ident = (info.owner, info.field)
        if ident not in self._options:
            cls = self._Class.forName(info.owner, True, self._loader)
            option = cls.getField(info.field).get(None)
            self._options[ident] = (option, str(option.key()))
        return self._options[ident]
