"""Zeppelin paragraph properties: what a cell header may say, checked and converted.

:func:`~jupyter_flink.parsing.header.parse_header` turns ``(type=update, jobName=wc)`` into
strings; :meth:`ParagraphProperties.from_header` checks each against the table below
(unknown names, values of the wrong type, properties that mean nothing for the cell's kind are
errors naming the property) and converts them. Names with a dot that are not in the table are
Flink options for this cell's job, checked later against Flink's own option registry.
"""

from __future__ import annotations

import dataclasses
import difflib
import keyword
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ..errors import PropertyError
from ..secrets import has_references
from .durations import parse_duration
from .header import KINDS

__all__ = ["PROPERTY_HELP", "ParagraphProperties", "PropertyInfo", "property_infos"]

# --------------------------------------------------------------------------- value converters

def _whole(low: int, high: int | None = None) -> Callable[[str], int]:
    """A converter to an int within [low, high]."""

    def convert(text: str) -> int:
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ValueError(text)
        number = int(text)
        if number < low or (high is not None and number > high):
            raise ValueError(text)
        return number

    return convert


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise ValueError(text)
    return lowered == "true"


def _text_value(text: str) -> str:
    if not text:
        raise ValueError(text)
    return text


class _choice:  # lower case: used like the converter functions around it
    """A case-insensitive converter to one of ``choices``, returned as spelled there."""

    def __init__(self, *choices: str):
        self.choices = choices
        self._by_lower = {c.lower(): c for c in choices}

    def __call__(self, text: str) -> str:
        if text.lower() not in self._by_lower:
            raise ValueError(text)
        return self._by_lower[text.lower()]


def _identifier(text: str) -> str:
    if not text.isidentifier() or keyword.iskeyword(text):
        raise ValueError(text)
    return text


def _interval(text: str) -> timedelta:
    interval = parse_duration(text, bare_unit="ms")
    if interval < timedelta(seconds=1):
        raise ValueError(text)
    return interval


# --------------------------------------------------------------------------- the property table

_SQL = frozenset({"ssql", "bsql"})
_ALL = frozenset(KINDS)


@dataclass(frozen=True)
class _Prop:
    """One accepted header property: where it goes and how its text is checked."""

    name: str
    attr: str
    convert: Callable[[str], Any]
    accepted: str
    meaning: str
    kinds: frozenset[str] = _ALL


_BOOL = "true or false"
# fmt: off
_PROPS: tuple[_Prop, ...] = (
    _Prop("jobName", "job_name", _text_value, "text", "name of the Flink job"),
    _Prop("parallelism", "parallelism", _whole(1), "a whole number >= 1", "job parallelism"),
    _Prop("maxParallelism", "max_parallelism", _whole(1, 32768),
          "a whole number from 1 to 32768", "maximum parallelism (number of key groups)"),
    _Prop("savepointDir", "savepoint_dir", _text_value, "a directory URI",
          "take a savepoint there when the cell's job is stopped"),
    _Prop("resumeFromSavepoint", "resume_from_savepoint", _boolean, _BOOL,
          "resume from the savepoint recorded for this cell"),
    _Prop("resumeFromLatestCheckpoint", "resume_from_latest_checkpoint", _boolean, _BOOL,
          "resume from the latest checkpoint recorded for this cell"),
    _Prop("execution.savepoint.path", "restore_path", _text_value, "a savepoint or checkpoint path",
          "resume from this path (Flink 1 name)"),
    _Prop("execution.state-recovery.path", "restore_path", _text_value,
          "a savepoint or checkpoint path", "resume from this path (Flink 2 name)"),
    _Prop("resumeFrom", "resume_from", _whole(1), "a whole number >= 1",
          "resume from entry N of the cell's history (%flink.history; 1 is the newest)"),
    _Prop("claimMode", "claim_mode", _choice("CLAIM", "NO_CLAIM"), "CLAIM or NO_CLAIM",
          "whether Flink takes ownership of the restored snapshot"),
    _Prop("execution.state-recovery.claim-mode", "claim_mode", _choice("CLAIM", "NO_CLAIM"),
          "CLAIM or NO_CLAIM", "same as claimMode (Flink's name)"),
    _Prop("allowNonRestoredState", "allow_non_restored_state", _boolean, _BOOL,
          "skip snapshot state that no operator of the new job claims"),
    _Prop("wait", "wait", _boolean, _BOOL, "keep the cell busy until the job ends"),
    _Prop("runAsOne", "run_as_one", _boolean, _BOOL,
          "run all INSERT statements of the cell as one job", _SQL),
    _Prop("type", "result_type", _choice("single", "append", "update"),
          "single, append or update", "how streaming results are shown", _SQL),
    _Prop("refreshInterval", "refresh_interval_ms", _whole(100), "milliseconds >= 100",
          "how often live results are redrawn", _SQL),
    _Prop("template", "template", _text_value, "text with {0}, {1}, ...",
          "HTML template for type=single results", _SQL),
    _Prop("maxRows", "max_rows", _whole(1), "a whole number >= 1",
          "most result rows kept and shown", _SQL),
    _Prop("resultName", "result_name", _identifier, "a Python identifier",
          "also bind the result table (pandas) to this variable", _SQL),
    _Prop("autoSavepointInterval", "auto_savepoint_interval", _interval,
          "a duration >= 1 s, e.g. 10min, 30s (a bare number is ms)",
          "take a savepoint this often while the job runs"),
    _Prop("autoSavepointRetain", "auto_savepoint_retain", _whole(1), "a whole number >= 1",
          "automatic savepoints kept per cell; older ones are deleted"),
    _Prop("restartPolicy", "restart_policy", _choice("never", "fromSavepointOnFailure"),
          "never or fromSavepointOnFailure",
          "resubmit a failed job from its latest savepoint or not"),
    _Prop("maxResubmits", "max_resubmits", _whole(0), "a whole number >= 0",
          "most resubmissions under restartPolicy=fromSavepointOnFailure"),
)
# fmt: on
_BY_NAME = {p.name: p for p in _PROPS}
_BY_LOWER = {p.name.lower(): p.name for p in _PROPS}


# --------------------------------------------------------------------------- typed result


@dataclass(frozen=True)
class ParagraphProperties:
    """The checked properties of one paragraph; defaults apply to what the header left out."""

    kind: str = "flink"
    job_name: str | None = None
    parallelism: int | None = None
    max_parallelism: int | None = None
    savepoint_dir: str | None = None
    resume_from_savepoint: bool = False
    resume_from_latest_checkpoint: bool = False
    restore_path: str | None = None
    resume_from: int | None = None
    claim_mode: str | None = None
    allow_non_restored_state: bool | None = None  # None: as %%flink.conf says
    wait: bool = False
    run_as_one: bool = False
    result_type: str = "update"
    refresh_interval_ms: int = 3000
    template: str | None = None
    max_rows: int | None = None
    result_name: str | None = None
    auto_savepoint_interval: timedelta | None = None
    auto_savepoint_retain: int = 5
    restart_policy: str = "never"
    max_resubmits: int = 3
    # Dotted keys we do not know: Flink options for this paragraph's job, checked later
    # against Flink's own option registry by the session.
    flink_overrides: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_header(cls, raw: Mapping[str, str], *, kind: str) -> ParagraphProperties:
        """Check and convert :func:`parse_header`'s result for a cell of ``kind``.

        ``kind`` is ``"flink"``, ``"ssql"`` or ``"bsql"``; properties that mean nothing there
        are errors.
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        values: dict[str, Any] = {}
        given_as: dict[str, str] = {}  # attribute -> the property name that set it
        overrides: dict[str, str] = {}
        for name, text in raw.items():
            prop = _BY_NAME.get(name)
            if prop is None:
                # A miscased known name (execution.Savepoint.path) must not slip through
                # as a Flink option.
                if "." in name and name.lower() not in _BY_LOWER:
                    overrides[name] = text
                    continue
                raise _unknown_property(name, kind)
            if has_references(text):
                raise PropertyError(
                    f"{name}: ${{env:...}} and ${{file:...}} are read only in the values of "
                    "Flink settings (e.g. s3.secret-key=${env:S3_SECRET}).", name=name,
                    fix=f"Write {name}'s value itself.")
            if kind not in prop.kinds:
                cells = " and ".join(_magic(k) for k in KINDS if k in prop.kinds)
                raise PropertyError(
                    f"Property {name} is only for {cells} cells, not {_magic(kind)}.",
                    name=name,
                    fix=f"Remove {name} from this cell's header.",
                )
            try:
                value = prop.convert(text)
            except ValueError:
                raise PropertyError(
                    f"{name}={text}: expected {prop.accepted}.", name=name
                ) from None
            if prop.attr in values and values[prop.attr] != value:
                other = given_as[prop.attr]
                raise PropertyError(
                    f"{other}={raw[other]} and {name}={text} set the same thing to different "
                    "values.",
                    name=name,
                    fix=f"Keep only one of {other} and {name}.",
                )
            values[prop.attr] = value
            given_as[prop.attr] = name
        explicit = [name for name in ("resumeFromSavepoint", "resumeFromLatestCheckpoint",
                                      "execution.savepoint.path",
                                      "execution.state-recovery.path")
                    if name in given_as.values() and values[_BY_NAME[name].attr] not in
                    (False, None)]
        if "resume_from" in values and explicit:
            raise PropertyError(
                f"resumeFrom={values['resume_from']} and {explicit[0]} both say where to "
                "resume from.", name="resumeFrom", fix="Keep only one of them.")
        if "template" in values and values.get("result_type") != "single":
            raise PropertyError(
                "Property template is only used with type=single.",
                name="template",
                fix="Add type=single to the header, or remove template.",
            )
        return cls(kind=kind, flink_overrides=overrides, **values)


def _magic(kind: str) -> str:
    return "%%flink" if kind == "flink" else f"%%flink.{kind}"


def _unknown_property(name: str, kind: str) -> PropertyError:
    """An error for an unknown property, with a close match and the accepted names."""
    accepted = [p.name for p in _PROPS if kind in p.kinds]
    close = _BY_LOWER.get(name.lower())
    if close is None:
        matches = difflib.get_close_matches(name, list(_BY_NAME), n=1, cutoff=0.6)
        close = matches[0] if matches else None
    message = f"Unknown paragraph property {name!r}."
    if close is not None:
        message += f" Did you mean {close}?"
    elif not re.fullmatch(r"[\w.-]+", name):
        # Zeppelin's own parser split `template=<h1>{0}, {1}</h1>` at the comma; the second
        # half shows up here as a property name.
        message += " If it is part of the previous value, put that value in double quotes."
    return PropertyError(
        message,
        name=name,
        fix=f"Accepted: {', '.join(accepted)}, or any Flink option (a name with a dot).",
    )


def _help_default(prop: _Prop) -> str:
    default = _FIELD_DEFAULTS[prop.attr]
    if default is None:
        return prop.accepted
    if isinstance(default, bool):
        default = str(default).lower()
    return f"{prop.accepted}; default {default}"


_FIELD_DEFAULTS = {
    f.name: f.default
    for f in dataclasses.fields(ParagraphProperties)
    if f.default is not dataclasses.MISSING
}

@dataclass(frozen=True)
class PropertyInfo:
    """One header property as completion and help show it."""

    name: str
    accepted: str  # "true or false", "a whole number >= 1", ...
    meaning: str
    default: str | None
    choices: tuple[str, ...]  # the values to offer, when there is a fixed set
    kinds: tuple[str, ...]  # the cells that take it: flink, ssql, bsql


def property_infos(kind: str | None = None) -> list[PropertyInfo]:
    """The header properties a ``kind`` cell takes (every one if ``kind`` is None)."""
    infos = []
    for prop in _PROPS:
        if kind is not None and kind not in prop.kinds:
            continue
        default = _FIELD_DEFAULTS[prop.attr]
        if isinstance(default, bool):
            default = str(default).lower()
        if prop.convert is _boolean:
            choices: tuple[str, ...] = ("true", "false")
        elif isinstance(prop.convert, _choice):
            choices = prop.convert.choices
        else:
            choices = ()
        infos.append(PropertyInfo(
            name=prop.name, accepted=prop.accepted, meaning=prop.meaning,
            default=None if default is None else str(default), choices=choices,
            kinds=tuple(k for k in KINDS if k in prop.kinds)))
    return infos


PROPERTY_HELP: list[tuple[str, str, str]] = [
    (p.name, _help_default(p), p.meaning if p.kinds == _ALL else f"{p.meaning} (SQL cells)")
    for p in _PROPS
] + [("<flink.option>", "any value", "a Flink option (name with a dot) for this job only")]
