"""Cell header properties: ``%%flink.ssql(type=update, jobName=...)`` names and values.

Names are the properties the cell's kind takes (:func:`~jupyter_flink.parsing.properties.
property_infos`), minus those the header already gives, then Flink's per-job options (a
header may set any of them for the cell's job). Values are the property's choices, or what
the Flink option's type allows.
"""

from __future__ import annotations

from ..parsing.properties import PropertyInfo, property_infos
from .candidates import Candidate, by_prefix
from .conf import OptionKeys

__all__ = ["name_candidates", "property_info", "value_candidates"]

# Flink keys are offered once this much of a name is typed: with less, the few properties
# would drown in a thousand options.
_MIN_FOR_FLINK_KEYS = 2


def property_info(name: str, kind: str | None = None) -> PropertyInfo | None:
    """The property called ``name`` (for cells of ``kind`` if given)."""
    return next((p for p in property_infos(kind) if p.name == name), None)


def name_candidates(keys: OptionKeys, kind: str, fragment: str, given: frozenset[str]
                    ) -> list[Candidate]:
    """Property names for a ``kind`` cell, then Flink's per-job option keys."""
    properties = {p.name: p for p in property_infos(kind) if p.name not in given}
    found = [Candidate(name, "property") for name in by_prefix(fragment, list(properties))]
    if len(fragment) >= _MIN_FOR_FLINK_KEYS:
        found += [c for c in keys.keys(fragment, scope="job", interpreter=False)
                  if c.text not in properties and c.text not in given]
    return found


def value_candidates(keys: OptionKeys, kind: str, name: str, fragment: str
                     ) -> list[Candidate]:
    """Values of the property (or Flink option) ``name``."""
    prop = property_info(name, kind)
    if prop is not None:
        return [Candidate(v, "value") for v in by_prefix(fragment, list(prop.choices))]
    return keys.values(name, fragment) if "." in name else []
