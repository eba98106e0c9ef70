"""What Flink's option data cannot tell us: the one hand-written part of option handling.

Keys, types, defaults, fallback and deprecated keys and enum constants all come from Flink
at run time (:mod:`jupyter_flink.option_discovery`). This module holds the rest, kept small,
each entry with the reason it exists:

- :data:`STRING_CHOICES`: string options whose accepted values live in an enum elsewhere;
- :data:`DYNAMIC_KEYS`: key families Flink reads by prefix, with no ConfigOption to find;
- :data:`JOB_OWNERS` and friends: which options act per job (the rest need a cluster start);
- :func:`translate_removed`: Flink 1.x keys and values that Flink 2 removed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..errors import ConfigurationError

__all__ = [
    "CLUSTER_KEYS",
    "DYNAMIC_KEYS",
    "JOB_KEYS",
    "JOB_OWNERS",
    "JOB_PACKAGES",
    "STRING_CHOICES",
    "DynamicKeys",
    "Removal",
    "removed_key_targets",
    "translate_removed",
    "value_problem",
]

# restart-strategy.type is a string; RestartBackoffTimeStrategyFactoryLoader then rejects
# anything outside this enum ("foo is an unknown value of RestartStrategyType").
STRING_CHOICES: Mapping[str, tuple[str, str]] = {
    "restart-strategy.type": (
        "org.apache.flink.configuration.RestartStrategyOptions$RestartStrategyType",
        "getAllAvailableValues",
    ),
}


@dataclass(frozen=True)
class DynamicKeys:
    """A family of keys Flink (or one of its plugins) reads by prefix."""

    pattern: str  # regular expression for the whole key
    scope: str
    why: str


# Families Flink declares itself are derived from its data instead: keys with placeholders
# (external-resource.<resource_name>.amount), @SuffixOption families
# (metrics.reporter.<name>.*), and map options written as prefixes
# (pipeline.global-job-parameters.<k>). env.java.opts.* and python.* are plain options in
# Flink 2, so they need no entry.
DYNAMIC_KEYS: tuple[DynamicKeys, ...] = (
    DynamicKeys(r"(s3|s3a|fs\.s3a|presto\.s3)\..+", "cluster",
                "the S3 file system plugins copy these into their Hadoop/Presto configuration "
                "(S3FileSystemFactory.FLINK_CONFIG_PREFIXES)"),
    DynamicKeys(r"(gs|fs\.gs)\..+", "cluster",
                "the GCS plugin copies these (FLINK_CONFIG_PREFIXES)"),
    DynamicKeys(r"(azure|fs\.azure)\..+", "cluster",
                "the Azure plugin copies these (FLINK_CONFIG_PREFIXES)"),
    DynamicKeys(r"fs\.oss\..+", "cluster", "the OSS plugin copies these into its Hadoop config"),
    DynamicKeys(r"fs\.[a-z0-9+.-]+\.(limit\.(total|input|output|timeout|stream-timeout)"
                r"|priority\..+)", "cluster",
                "CoreOptions.fileSystemConnectionLimit*(scheme) and fileSystemFactoryPriority"
                "(scheme, factory) build these per URI scheme"),
    DynamicKeys(r"containerized\.(master|taskmanager)\.env\..+", "cluster",
                "ResourceManagerOptions declares only the prefix (environment variables)"),
    DynamicKeys(r"table\.exec\.emit\..+", "job",
                "experimental window-emit options of the planner (WindowEmitStrategy), which "
                "lives in the planner's own class loader where the scan cannot see it"),
    DynamicKeys(r"table\.(catalog|secret)-store\.[a-z0-9-]+\..+", "cluster",
                "options of the catalog/secret store chosen by table.*-store.kind, read by "
                "the store's factory when the table environment is created"),
)

# Options that act per job: Flink reads them from the job's configuration when the job is
# built or starts (StreamExecutionEnvironment/ExecutionConfig, the table planner, the state
# backend, checkpoint storage and restart strategy loaders). All other options configure
# processes (JobManager, TaskManager, REST, RPC, blobs, metrics, HA, memory, security...)
# and take effect only when a cluster starts. Classes named in full; packages end in ".".
JOB_OWNERS: frozenset[str] = frozenset(
    "org.apache.flink.configuration." + name for name in (
        "PipelineOptions", "ExecutionOptions", "CheckpointingOptions", "StateBackendOptions",
        "StateRecoveryOptions", "RestartStrategyOptions", "StateChangelogOptions",
        "StateLatencyTrackOptions", "StateSizeTrackOptions", "BatchExecutionOptions",
        "DeploymentOptions", "SinkOptions",
    )
) | {"org.apache.flink.client.cli.ClientOptions"}
JOB_PACKAGES: tuple[str, ...] = (
    "org.apache.flink.table.api.config.",  # table.* settings, read per statement
    "org.apache.flink.python.",  # PythonOptions, shipped with each job
    "org.apache.flink.state.",  # RocksDB and ForSt backends, configured per job
    "org.apache.flink.contrib.streaming.state.",
    "org.apache.flink.changelog.fs.",
    "org.apache.flink.cep.configuration.",
)
# Per-job keys declared in process-level classes (ExecutionConfig reads them per job).
JOB_KEYS: frozenset[str] = frozenset({"parallelism.default", "metrics.latency.interval"})
# Process-level keys declared in per-job classes. TaskManagers read local-backup.dirs when
# they start; the JobManager sizes each job's completed-checkpoint store from its own
# configuration, so a per-job num-retained is silently ignored (measured on Flink 2.3).
CLUSTER_KEYS: frozenset[str] = frozenset({"execution.checkpointing.local-backup.dirs",
                                          "execution.checkpointing.num-retained"})


@dataclass(frozen=True)
class Removal:
    """What to set instead of a Flink 1.x key or value that Flink 2 removed."""

    settings: tuple[tuple[str, str], ...]
    notice: str


# Flink 1.13 (FLIP-142) split state backends from checkpoint storage and deprecated
# MemoryStateBackend ("jobmanager") and FsStateBackend ("filesystem"); Flink 2.0 removed
# them (StateBackendLoader 2.3: "Cannot find configured state backend factory class:
# filesystem"). Both kept state on the heap, so: hashmap plus that checkpoint storage.
_OLD_BACKENDS = ("filesystem", "jobmanager")
# FLINK-19319 (Flink 1.12) made event time the default and deprecated TimeCharacteristic;
# Flink 2.0 removed it together with pipeline.time-characteristic.
_TIME_CHARACTERISTICS: Mapping[str, str] = {
    "eventtime": "event time is always on",
    "processingtime": "use processing-time windows and timers explicitly (PROCTIME() in SQL)",
    "ingestiontime": "assign timestamps with a WatermarkStrategy instead",
}
# Deprecated names that Flink 1.x still read and Flink 2 dropped from the fallback keys.
_DROPPED_NAMES: Mapping[str, str] = {
    # Flink 1.x RocksDBOptions.LOCAL_DIRECTORIES.withDeprecatedKeys(...); none in 2.3.
    "state.backend.rocksdb.checkpointdir": "state.backend.rocksdb.localdir",
}


def translate_removed(key: str, value: str) -> Removal | None:
    """The Flink 2 settings for a removed Flink 1.x ``key``/``value``, or None if not removed."""
    if key in ("state.backend", "state.backend.type") and value.lower() in _OLD_BACKENDS:
        storage = value.lower()
        hint = " (which needs execution.checkpointing.dir)" if storage == "filesystem" else ""
        return Removal(
            (("state.backend.type", "hashmap"), ("execution.checkpointing.storage", storage)),
            f"{key} {value} was removed in Flink 2; using state.backend.type hashmap and "
            f"execution.checkpointing.storage {storage}{hint}.",
        )
    if key == "pipeline.time-characteristic":
        advice = _TIME_CHARACTERISTICS.get(re.sub(r"[_\s-]", "", value.lower()))
        if advice is None:
            raise ConfigurationError(
                f"{key}: {value!r} is not one of EventTime, ProcessingTime, IngestionTime",
                key=key, fix="Flink 2 removed this option anyway; delete the line.")
        return Removal((), f"{key} was removed in Flink 2 and is ignored: {advice}.")
    if key in _DROPPED_NAMES:
        new = _DROPPED_NAMES[key]
        return Removal(((new, value),), f"{key} is a Flink 1.x name that Flink 2 dropped; "
                                        f"using {new}.")
    return None


def removed_key_targets(key: str) -> tuple[str, ...] | None:
    """The Flink 2 keys a removed ``key`` turns into (whatever its value), or None."""
    if key == "pipeline.time-characteristic":
        return ()
    return (_DROPPED_NAMES[key],) if key in _DROPPED_NAMES else None


# --------------------------------------------------------------------------- values

# What Flink accepts at parse time but refuses (or quietly misreads) when a job or the
# cluster starts: checked in the %%flink.conf cell, where the key can be named.
MIN_CHECKPOINT_INTERVAL_MS = 10  # CheckpointCoordinator: "larger than or equal to 10 ms"
STATE_BACKENDS = ("hashmap", "rocksdb", "forst")
PATH_KEYS = ("execution.checkpointing.dir", "execution.checkpointing.savepoint-dir",
             "execution.state-recovery.path")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def value_problem(key: str, value: str, *, millis: Callable[[], int | None],
                  class_exists: Callable[[str], bool]) -> str | None:
    """Why Flink would refuse ``value`` for ``key`` later although it parses (None: fine).

    ``millis`` gives the value as a duration in ms (as Flink reads it), ``class_exists``
    whether the JVM has a class: both ask Flink itself.
    """
    if key == "execution.checkpointing.interval":
        interval = millis()
        if interval is not None and interval < MIN_CHECKPOINT_INTERVAL_MS:
            return (f"{value!r} is shorter than the {MIN_CHECKPOINT_INTERVAL_MS} ms Flink allows "
                    "between checkpoints; to switch checkpointing off, remove the key.")
    if key == "state.backend.type":
        lowered = value.strip().lower()
        if lowered in STATE_BACKENDS:
            return None
        if "." in value and class_exists(value.strip()):
            return None  # a StateBackendFactory class of the user's
        return (f"{value!r} is not a state backend: use {', '.join(STATE_BACKENDS)} (or the "
                "class name of a StateBackendFactory on the class path).")
    if key in PATH_KEYS:
        return _path_problem(value)
    return None


def _path_problem(value: str) -> str | None:
    text = value.strip()
    if any(ch.isspace() for ch in text):
        return f"{value!r} contains white space: write the path as a URI (%20 for a space)."
    scheme = _SCHEME.match(text)
    if scheme is None:
        if text.startswith("/"):
            return None
        return (f"{value!r} is a relative path: it would land in the JVM's working directory. "
                "Use an absolute path or a URI such as file:///tmp/flink or s3://bucket/dir.")
    if scheme.group(1).lower() == "file":
        rest = text[len("file:"):]
        if rest.startswith("//") and not rest.startswith("///"):
            host = rest[2:].split("/", 1)[0]
            if host not in ("", "localhost"):
                return (f"{value!r} names the host {host!r}: a local path needs three "
                        f"slashes, file:///{rest[2:]}.")
        elif not rest.startswith("/"):
            return f"{value!r} is not an absolute file URI: write file:///path/to/dir."
    return None
