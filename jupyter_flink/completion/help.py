"""What Shift+Tab shows: help on an option, a header property, a table or a function.

Each help is a MIME bundle with ``text/plain`` (every frontend) and ``text/markdown``
(JupyterLab's tooltip renders it). Connector options whose names say they hold a secret
(password, secret, token, credentials, a key) are masked, and so are credentials in URLs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..flink.catalog import FunctionInfo, TableInfo
from ..parsing.properties import PropertyInfo
from ..recording.record import strip_credentials

__all__ = ["MASK", "OptionHelp", "function_help", "is_secret", "masked", "option_help",
           "property_help", "table_help"]

MASK = "******"
# Anywhere in the key; or a last segment naming a key (access-key, api-key, key) but not
# Kafka's key.format / key.fields, whose last segment is something else.
_SECRET_WORDS = re.compile(r"password|passwd|secret|token|credential|jaas", re.I)
_KEY_SEGMENT = re.compile(r"key(?:-?id)?$", re.I)
_SCOPES = {"job": "per job", "cluster": "at cluster start",
           "interpreter": "setting of jupyter-flink"}
_KINDS = {"flink": "%%flink", "ssql": "%%flink.ssql", "bsql": "%%flink.bsql"}


@dataclass(frozen=True)
class OptionHelp:
    """What is known about one configuration key."""

    key: str
    current_keys: tuple[str, ...] = ()  # the Flink 2 keys an old name sets
    type_name: str | None = None
    default: str | None = None
    scope: str | None = None
    description: str | None = None  # None: only Flink (the JVM) can describe it
    value: str | None = None  # the effective value now
    source: str | None = None  # where that value comes from
    choices: tuple[str, ...] = ()
    deprecated: bool = False
    docs_url: str | None = None
    known: bool = True  # False: no option of that name (or no registry to tell)


def is_secret(key: str) -> bool:
    """Whether a connector option's name says its value is a secret."""
    return bool(_SECRET_WORDS.search(key) or _KEY_SEGMENT.search(key.rsplit(".", 1)[-1]))


def masked(options: Mapping[str, str]) -> dict[str, str]:
    """``options`` with secret values masked and credentials removed from URLs."""
    return {k: MASK if is_secret(k) else str(strip_credentials(v)) for k, v in options.items()}


def _bundle(plain: list[str], markdown: list[str]) -> dict[str, str]:
    return {"text/plain": "\n".join(plain), "text/markdown": "\n\n".join(markdown)}


def option_help(option: OptionHelp) -> dict[str, str]:
    plain, markdown = [], []
    if option.current_keys:
        names = " and ".join(option.current_keys)
        plain.append(f"{option.key}: an old (Flink 1.x) name; Flink 2 calls it {names}.")
        markdown.append(f"`{option.key}`: an old (Flink 1.x) name; Flink 2 calls it "
                        + " and ".join(f"`{k}`" for k in option.current_keys) + ".")
    shown = option.current_keys[0] if option.current_keys else option.key
    facts = ", ".join(filter(None, [option.type_name, _SCOPES.get(option.scope or ""),
                                    "deprecated" if option.deprecated else None]))
    plain.append(f"{shown}" + (f"  ({facts})" if facts else ""))
    markdown.append(f"**`{shown}`**" + (f" ({facts})" if facts else ""))
    if not option.known:
        text = ("Not an option this Flink knows." if option.docs_url else
                "Flink's options are read when Flink first runs in a kernel (a %%flink.conf "
                "or Flink cell); until then only jupyter-flink's own keys are known.")
        plain.append(text)
        markdown.append(text)
    elif option.description:
        plain.append(option.description)
        markdown.append(option.description)
    elif option.description is None:
        text = "Flink's description appears once Flink runs in this kernel."
        plain.append(text)
        markdown.append(f"*{text}*")
    default = option.default if option.default not in (None, "") else None
    rows: list[tuple[str, str | None, str]] = [
        ("Default", default or "(none)", f"`{default}`" if default else "(none)"),
        ("Values", ", ".join(option.choices),
         ", ".join(f"`{c}`" for c in option.choices)),
        ("Current value", option.value and f"{option.value}  ({option.source})",
         f"`{option.value}` ({option.source})"),
        ("Flink's options", option.docs_url, option.docs_url or "")]
    for label, shown_text, markup in rows[2:] if not option.known else rows:
        if shown_text:
            plain.append(f"{label}: {shown_text}")
            markdown.append(f"{label}: {markup}")
    return _bundle(plain, markdown)


def property_help(prop: PropertyInfo) -> dict[str, str]:
    cells = ", ".join(_KINDS[k] for k in prop.kinds)
    accepted = prop.accepted + (f"; default {prop.default}" if prop.default else "")
    plain = [f"{prop.name}  (cell property of {cells})", prop.meaning, f"Accepted: {accepted}"]
    markdown = [f"**`{prop.name}`** (cell property of {cells})", prop.meaning,
                f"Accepted: {accepted}"]
    return _bundle(plain, markdown)


def table_help(table: TableInfo) -> dict[str, str]:
    kind = ("temporary " if table.temporary else "") + table.kind
    plain = [f"{table.identifier}  ({kind})"]
    markdown = [f"**`{table.identifier}`** ({kind})"]
    if table.comment:
        plain.append(table.comment)
        markdown.append(table.comment)
    width = max((len(c.name) for c in table.columns), default=0)
    type_width = max((len(c.type) for c in table.columns), default=0)
    plain.append("Columns:")
    rows = ["| column | type | |", "|---|---|---|"]
    for column in table.columns:
        extra = "  ".join(filter(None, [column.extras,
                                         f"-- {column.comment}" if column.comment else None]))
        plain.append(f"  {column.name:<{width}}  {column.type:<{type_width}}  {extra}".rstrip())
        rows.append(f"| `{column.name}` | {column.type} | {_cell(extra)} |")
    markdown.append("\n".join(rows))
    for rowtime, expression in table.watermarks:
        plain.append(f"Watermark: FOR {rowtime} AS {expression}")
        markdown.append(f"Watermark: `FOR {rowtime} AS {expression}`")
    if table.primary_key:
        key = ", ".join(table.primary_key)
        plain.append(f"Primary key: {key}")
        markdown.append(f"Primary key: `{key}`")
    if table.options:
        options = masked(table.options)
        plain.append("Options:")
        plain += [f"  '{k}' = '{v}'" for k, v in options.items()]
        markdown.append("Options:\n\n" + "\n".join(f"- `'{k}' = '{v}'`"
                                                    for k, v in options.items()))
    if table.query:
        plain.append(f"Query: {table.query}")
        markdown.append(f"Query:\n\n```sql\n{table.query}\n```")
    return _bundle(plain, markdown)


def function_help(function: FunctionInfo) -> dict[str, str]:
    origin = "built-in" if function.builtin else "temporary" if function.temporary else \
        "catalog"
    title = f"{function.name}  ({origin} {function.kind} function)"
    plain, markdown = [title], [f"**`{function.name}`** ({origin} {function.kind} function)"]
    if function.signature:
        plain.append(function.signature)
        markdown.append("```\n" + function.signature + "\n```")
    if function.class_name and not function.builtin:
        plain.append(f"Implemented by {function.class_name}")
        markdown.append(f"Implemented by `{function.class_name}`")
    return _bundle(plain, markdown)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "")
