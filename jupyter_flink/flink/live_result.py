"""The JVM side of a live result: ``java/LiveResult.java`` draining a query's changelog.

``LiveResult`` keeps the result in the mode Zeppelin offers: ``update`` (the materialized
changelog), ``append`` (the newest rows) or ``single`` (one row), and writes snapshots for
:mod:`jupyter_flink.display.snapshots` to read. PyFlink's row iterator (three py4j round trips
per row) is never used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .java_helpers import load_class, new_instance

if TYPE_CHECKING:
    pass

MODES = {"update": 0, "append": 1, "single": 2}


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
