"""Completion replies in Jupyter's messaging protocol, as ipykernel builds them.

The flink kernel answers a complete_request in a Flink magic itself (so that no Python
completion mixes in when Flink has nothing to offer); the reply has the shape of
ipykernel's, including the per-match types JupyterLab shows
(``metadata._jupyter_types_experimental``).
"""

from __future__ import annotations

from typing import Any

from .candidates import Completions

__all__ = ["TYPES_KEY", "complete_reply"]

TYPES_KEY = "_jupyter_types_experimental"


def complete_reply(found: Completions, cursor_pos: int) -> dict[str, Any]:
    """The content of a complete_reply: ``found`` replaces the fragment before the cursor."""
    start = cursor_pos - len(found.fragment)
    return {
        "status": "ok",
        "matches": [c.text for c in found.candidates],
        "cursor_start": start,
        "cursor_end": cursor_pos,
        "metadata": {TYPES_KEY: [
            {"start": start, "end": cursor_pos, "text": c.text, "type": c.type,
             "signature": ""} for c in found.candidates]},
    }
