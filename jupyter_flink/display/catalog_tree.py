"""``%flink.catalog``: catalogs > databases > tables and views > columns, as a tree.

HTML ``<details>`` elements make it collapsible in any notebook frontend (the current catalog
and database start open); ``text/plain`` draws the same tree for the others.
"""

from __future__ import annotations

from html import escape
from typing import Any

from ..flink.catalog import CatalogNames, CatalogObject

__all__ = ["CatalogTree"]

_STYLE = ("font-family: var(--jp-code-font-family, monospace); font-size: "
          "var(--jp-code-font-size, 13px); line-height: 1.5")
_LIST = "list-style: none; margin: 0; padding-left: 1.4em"
_NOTE = "color: var(--jp-ui-font-color2, #777)"


class CatalogTree:
    """A display of what a table environment's catalogs hold."""

    def __init__(self, names: CatalogNames, *, title: str):
        self.names = names
        self.title = title

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.text(), "text/html": self.html()}

    def __repr__(self) -> str:
        return self.text()

    # ----------------------------------------------------------------- text

    def text(self) -> str:
        names = self.names
        lines = [self.title]
        catalogs = list(names.catalogs.items())
        for i, (catalog, databases) in enumerate(catalogs):
            last_catalog = i == len(catalogs) - 1
            lines.append(_branch("", last_catalog) + catalog + self._current_mark(catalog)
                         + _error(names.errors.get(catalog)))
            pad = _pad("", last_catalog)
            items = list(databases.items())
            for j, (database, objects) in enumerate(items):
                last_db = j == len(items) - 1
                current = catalog == names.current_catalog and database == names.current_database
                lines.append(_branch(pad, last_db) + database + (" (current)" if current else ""))
                lines += _object_lines(_pad(pad, last_db), objects)
        if names.truncated:
            lines.append("(more tables than shown)")
        return "\n".join(lines)

    def _current_mark(self, catalog: str) -> str:
        return " (current)" if catalog == self.names.current_catalog else ""

    # ----------------------------------------------------------------- HTML

    def html(self) -> str:
        names = self.names
        parts = [f'<div class="jupyter-flink-catalog" style="{_STYLE}">',
                 f"<div><b>{escape(self.title)}</b></div>"]
        for catalog, databases in names.catalogs.items():
            is_current = catalog == names.current_catalog
            parts.append(f"<details{' open' if is_current else ''}><summary>"
                         f"<b>{escape(catalog)}</b> {_note('catalog' + _current(is_current))}"
                         f"{_note(escape(_error(names.errors.get(catalog))))}</summary>"
                         f'<ul style="{_LIST}">')
            for database, objects in databases.items():
                here = is_current and database == names.current_database
                parts.append(f"<li><details{' open' if here else ''}><summary>{escape(database)} "
                             f"{_note(f'database, {_count(objects)}' + _current(here))}"
                             f'</summary><ul style="{_LIST}">')
                parts += [f"<li>{_object_html(o)}</li>" for o in objects]
                parts.append("</ul></details></li>")
            parts.append("</ul></details>")
        if names.truncated:
            parts.append(f"<div>{_note('(more tables than shown)')}</div>")
        parts.append("</div>")
        return "".join(parts)


def _branch(pad: str, last: bool) -> str:
    return pad + ("└─ " if last else "├─ ")


def _pad(pad: str, last: bool) -> str:
    return pad + ("   " if last else "│  ")


def _error(error: str | None) -> str:
    return f" (unreadable: {error})" if error else ""


def _current(current: bool) -> str:
    return ", current" if current else ""


def _count(objects: tuple[CatalogObject, ...]) -> str:
    return f"{len(objects)} table{'' if len(objects) == 1 else 's'}"


def _note(text: str) -> str:
    return f'<span style="{_NOTE}">{text}</span>' if text else ""


def _object_lines(pad: str, objects: tuple[CatalogObject, ...]) -> list[str]:
    lines = []
    for k, obj in enumerate(objects):
        last = k == len(objects) - 1
        lines.append(_branch(pad, last) + f"{obj.name}  [{obj.kind}]")
        columns = obj.columns or ()
        width = max((len(c.name) for c in columns), default=0)
        for m, column in enumerate(columns):
            lines.append(_branch(_pad(pad, last), m == len(columns) - 1)
                         + f"{column.name:<{width}}  {column.type}")
    return lines


def _object_html(obj: CatalogObject) -> str:
    columns = obj.columns or ()
    rows = "".join(f"<li>{escape(c.name)} {_note(escape(c.type))}</li>" for c in columns)
    return (f"<details><summary>{escape(obj.name)} {_note(obj.kind)}</summary>"
            f'<ul style="{_LIST}">{rows}</ul></details>')
