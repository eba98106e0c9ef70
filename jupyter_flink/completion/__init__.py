"""Tab completion and Shift+Tab help for the Flink magics (conf keys and values, cell
headers, SQL, job names), for the flink kernel and any IPython kernel that loads the
extension."""

from __future__ import annotations

from .candidates import Candidate, Completions
from .completer import FlinkCompleter
from .matcher import register, unregister

__all__ = ["Candidate", "Completions", "FlinkCompleter", "register", "unregister"]
