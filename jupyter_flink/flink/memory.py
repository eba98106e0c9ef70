"""The embedded cluster's memory, chosen for a laptop rather than a production TaskManager.

The embedded cluster is a MiniCluster inside PyFlink's JVM, so most of Flink's memory model
does not apply to it: ``taskmanager.memory.process.size``, ``flink.size``, ``jvm-metaspace``,
``jvm-overhead`` and every ``jobmanager.memory.*`` key are ignored (Flink warns about the
former; the JobManager shares the JVM), and the JVM's own heap limit (Java's default, a
quarter of the machine's memory) bounds everything on the heap. What Flink does reserve
there, and what these defaults set on purpose (``%%flink.conf`` overrides them, the cluster
then restarts if no job runs):

* managed memory, used by batch operators (sorts, hash joins and aggregations spill past it)
  and by RocksDB state: 128 MB, allocated only while such an operator runs, split among the
  slots (16 MB each with 8 slots). A production TaskManager gives 40% of its memory.
* network buffers, which carry records between tasks: 64 MB (2,048 buffers of 32 KB),
  enough for the shuffles of 8 slots' worth of jobs; Flink's standalone default is 10% of
  the TaskManager's memory, at least 64 MB.
* task heap and off-heap budgets stay unbounded (Flink's local default): on the embedded
  cluster they only limit what slots may be asked for, not what the JVM uses.

Measured (bench/bench_memory.py): the kernel with its JVM and one running job uses less
resident memory than a plain PyFlink script running the same job (0.73-0.89x), and stays
flat over a 30-minute live table run; Flink reports the figures above on /taskmanagers.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["LOCAL_MEMORY_DEFAULTS"]

LOCAL_MEMORY_DEFAULTS: Mapping[str, str] = {
    "taskmanager.memory.managed.size": "128m",
    "taskmanager.memory.network.min": "64m",
    "taskmanager.memory.network.max": "64m",
}
