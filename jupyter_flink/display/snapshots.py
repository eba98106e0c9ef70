"""Snapshots of a live result, as ``java/LiveResult.java`` hands them over.

A snapshot goes through a private file on tmpfs (a JSON header with the counters and the end
state, then an Arrow stream): py4j would send the bytes base64-encoded, far slower (figures in
bench/README.md).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Snapshot", "parse_snapshot", "snapshot_dir"]


@dataclass(frozen=True)
class Snapshot:
    """One fetch of the JVM-side result: the rows and the counters, consistent with each other."""

    frame: pd.DataFrame | None
    version: int
    received: int  # changelog rows applied so far
    dropped: int  # rows not kept because of maxRows
    retractions: int  # -U/-D rows among ``received``
    rows: int  # rows in ``frame``
    done: bool  # the result stream ended; nothing will change any more
    job_status: str | None = None  # the job's state when the stream ended (JVM's view)
    error: str | None = None  # why the stream broke, one line
    error_trace: str | None = None
    problem: str | None = None  # why ``frame`` could not be built, if it could not
    jvm_seconds: float = 0.0  # time the JVM took for the previous snapshot


def parse_snapshot(data: bytes) -> Snapshot:
    """Decode a ``LiveResult.snapshotTo()`` file: 4-byte length, JSON header, Arrow stream."""
    import pyarrow as pa

    view = memoryview(data)
    size = int.from_bytes(view[:4], "big")
    header = json.loads(bytes(view[4:4 + size]))
    frame = None
    problem = None
    try:
        with pa.ipc.open_stream(pa.py_buffer(view[4 + size:])) as reader:
            frame = reader.read_pandas()
    except Exception as exc:  # a value pandas cannot hold (e.g. a timestamp beyond 2262)
        problem = f"The rows cannot be turned into a pandas DataFrame: {exc}"
    return Snapshot(
        frame=frame, version=header["version"], received=header["received"],
        dropped=header["dropped"], retractions=header["retractions"], rows=header["rows"],
        done=header["done"], job_status=header.get("job_status"), error=header.get("error"),
        error_trace=header.get("error_trace"), problem=problem,
        jvm_seconds=header.get("snapshot_ns", 0) / 1e9)


def snapshot_dir() -> str:
    """A private directory for one live table's snapshot file, on tmpfs where there is one."""
    shm = "/dev/shm"
    base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    return tempfile.mkdtemp(prefix="jupyter-flink-live-", dir=base)
