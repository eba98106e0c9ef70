"""The JVM side of a live result, and the snapshots it hands over.

``java/LiveResult.java`` drains a query's changelog in a JVM thread and keeps the result in
the mode Zeppelin offers: ``update`` (the materialized changelog), ``append`` (the newest
rows) or ``single`` (one row). A snapshot goes through a private file on tmpfs (a JSON header
with the counters and the end state, then an Arrow stream): py4j would send the bytes
base64-encoded, ~80 times slower. PyFlink's row iterator (three py4j round trips per row) is
never used.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .java_helpers import load_class, new_instance

if TYPE_CHECKING:
    import pandas as pd

MODES = {"update": 0, "append": 1, "single": 2}


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


def open_live_result(gateway: Any, table_result: Any, *, mode: str, max_rows: int) -> Any:
    """Start draining ``table_result`` (a PyFlink TableResult) into a JVM-side LiveResult."""
    java_class = load_class(gateway, "LiveResult.java", "jupyterflink.LiveResult")
    j_result = table_result._j_table_result
    row_type = j_result.getResolvedSchema().toPhysicalRowDataType().getLogicalType()
    result = new_instance(gateway, java_class, j_result, row_type, MODES[mode], max_rows)
    result.start()
    return result


def unsupported_column(gateway: Any, j_table: Any) -> tuple[str, str] | None:
    """The first column of a Java Table whose type the live table cannot carry: (name, type)."""
    java_class = load_class(gateway, "LiveResult.java", "jupyterflink.LiveResult")
    row_type = j_table.getResolvedSchema().toPhysicalRowDataType().getLogicalType()
    types = gateway.new_array(gateway.jvm.Class, 1)
    types[0] = row_type.getClass()
    args = gateway.new_array(gateway.jvm.Object, 1)
    args[0] = row_type
    found = java_class.getMethod("unsupportedColumn", types).invoke(None, args)
    if found is None:
        return None
    name, _, type_text = str(found).partition("\t")
    return name, type_text
