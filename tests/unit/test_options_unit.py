"""The option registry's rules without a JVM: a hand-made option list and a fake Flink."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from jupyter_flink.errors import ConfigurationError
from jupyter_flink.options.cache import SCHEMA_VERSION, cache_file
from jupyter_flink.options.cache import read_cache as _read_cache
from jupyter_flink.options.cache import write_cache as _write_cache
from jupyter_flink.options.discovery import (
    OptionInfo,
    Rejection,
    first_sentence,
    format_duration,
)
from jupyter_flink.options.interpreter_keys import (
    INTERPRETER_KEYS,
    interpreter_defaults,
    parse_headers,
)
from jupyter_flink.options.registry import OptionRegistry

CONF = "org.apache.flink.configuration."


def option(key: str, kind: str = "string", owner: str = "CheckpointingOptions", *,
           fallback: tuple[str, ...] = (), deprecated_keys: tuple[str, ...] | None = None,
           enum_values: tuple[str, ...] = (), deprecated: bool = False,
           default: str | None = None) -> OptionInfo:
    return OptionInfo(
        key=key, type_name=kind.title(), kind=kind, default=default, fallback_keys=fallback,
        deprecated_keys=fallback if deprecated_keys is None else deprecated_keys,
        owner=owner if "." in owner else CONF + owner, field=key.upper().replace(".", "_"),
        enum_values=enum_values, deprecated=deprecated)


OPTIONS = [
    option("execution.checkpointing.interval", "duration"),
    option("execution.checkpointing.dir", fallback=("state.checkpoints.dir",)),
    option("execution.checkpointing.storage"),
    option("execution.checkpointing.num-retained", "integer",
           fallback=("state.checkpoints.num-retained",)),
    option("execution.checkpointing.externalized-checkpoint-retention", "enum",
           enum_values=("DELETE_ON_CANCELLATION", "RETAIN_ON_CANCELLATION",
                        "NO_EXTERNALIZED_CHECKPOINTS")),
    option("execution.checkpointing.local-backup.enabled", "boolean",
           fallback=("execution.state-recovery.from-local", "state.backend.local-recovery"),
           deprecated_keys=("state.backend.local-recovery",)),
    option("execution.state-recovery.from-local", "boolean", "StateRecoveryOptions",
           fallback=("state.backend.local-recovery",)),
    option("state.backend.type", owner="StateBackendOptions", fallback=("state.backend",),
           default="hashmap"),
    option("restart-strategy.type", owner="RestartStrategyOptions", fallback=("restart-strategy",),
           enum_values=("none", "off", "fixed-delay", "failure-rate")),
    option("state.backend.rocksdb.localdir", owner="org.apache.flink.state.rocksdb.RocksDBOptions"),
    option("parallelism.default", "integer", "CoreOptions", default="1"),
    option("classloader.resolve-order", owner="CoreOptions", default="child-first"),
    option("rest.port", "integer", "RestOptions", default="8081"),
    option("taskmanager.memory.process.size", "memory", "TaskManagerOptions"),
    option("table.exec.mini-batch.enabled", "boolean",
           "org.apache.flink.table.api.config.ExecutionConfigOptions"),
    option("pipeline.global-job-parameters", "map", "PipelineOptions"),
    option("jobstore.type", owner="JobManagerOptions", deprecated=True),
    option("metrics.reporter.<name>.interval", "duration", "MetricOptions"),
    option("metrics.reporter.<name>.<parameter>", owner="MetricOptions"),
    option("flink.hadoop.<key>", owner="org.apache.flink.yarn.configuration.YarnConfigOptions"),
]


class FakeFlink:
    """Refuses the value "bad" and describes every option the same way."""

    def __init__(self) -> None:
        self.checked: list[tuple[str, str]] = []

    def check(self, info: OptionInfo, value: str) -> Rejection | None:
        self.checked.append((info.key, value))
        return Rejection("Could not parse", "java.lang.IllegalArgumentException: ...") \
            if value == "bad" else None

    def description(self, info: OptionInfo) -> str:
        return f"About {info.key}."

    def parsed(self, info: OptionInfo, value: str) -> str:
        """Durations as Flink reads "0", "5 ms", "1 s" (ms as text); other values as they are."""
        number, _, unit = value.partition(" ")
        return str(int(number) * {"": 1, "ms": 1, "s": 1000}[unit]) \
            if info.kind == "duration" else value

    def class_exists(self, name: str) -> bool:
        return name == "com.example.MyStateBackendFactory"


@pytest.fixture
def flink() -> FakeFlink:
    return FakeFlink()


@pytest.fixture
def registry(flink: FakeFlink) -> OptionRegistry:
    return OptionRegistry(OPTIONS, flink_version="2.3.0", flink=flink)


def error(registry: OptionRegistry, key: str, value: str) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        registry.resolve(key, value)
    return info.value


# ------------------------------------------------------------------ resolving


def test_current_key_passes_through_and_is_checked(registry: OptionRegistry,
                                                   flink: FakeFlink) -> None:
    resolved = registry.resolve(" execution.checkpointing.interval ", " 10 s ")
    assert resolved.settings == (("execution.checkpointing.interval", "10 s"),)
    assert resolved.notice is None
    assert flink.checked == [("execution.checkpointing.interval", "10 s")]


def test_string_options_skip_the_jvm(registry: OptionRegistry, flink: FakeFlink) -> None:
    registry.resolve("execution.checkpointing.dir", "file:///tmp/chk")
    assert flink.checked == []


def test_fallback_key_becomes_its_current_key(registry: OptionRegistry) -> None:
    resolved = registry.resolve("state.checkpoints.num-retained", "20")
    assert resolved.settings == (("execution.checkpointing.num-retained", "20"),)
    assert resolved.notice == ("state.checkpoints.num-retained is the Flink 1.x name; "
                               "using execution.checkpointing.num-retained.")


def test_fallback_shared_by_two_options_sets_both(registry: OptionRegistry) -> None:
    resolved = registry.resolve("state.backend.local-recovery", "true")
    assert dict(resolved.settings) == {"execution.checkpointing.local-backup.enabled": "true",
                                       "execution.state-recovery.from-local": "true"}


def test_a_key_that_is_also_a_fallback_stays_itself(registry: OptionRegistry) -> None:
    resolved = registry.resolve("execution.state-recovery.from-local", "true")
    assert resolved.settings == (("execution.state-recovery.from-local", "true"),)


@pytest.mark.parametrize("value", ["filesystem", "FileSystem", "jobmanager"])
def test_removed_state_backends_become_hashmap_plus_storage(registry: OptionRegistry,
                                                            value: str) -> None:
    resolved = registry.resolve("state.backend", value)
    assert resolved.settings == (("state.backend.type", "hashmap"),
                                 ("execution.checkpointing.storage", value.lower()))
    assert resolved.notice is not None and "removed in Flink 2" in resolved.notice


def test_state_backend_rocksdb_is_only_renamed(registry: OptionRegistry) -> None:
    resolved = registry.resolve("state.backend", "rocksdb")
    assert resolved.settings == (("state.backend.type", "rocksdb"),)
    assert resolved.notice == "state.backend is the Flink 1.x name; using state.backend.type."


@pytest.mark.parametrize("value", ["EventTime", "ProcessingTime", "IngestionTime", "event_time"])
def test_time_characteristic_is_dropped_with_a_notice(registry: OptionRegistry,
                                                      value: str) -> None:
    resolved = registry.resolve("pipeline.time-characteristic", value)
    assert resolved.settings == ()
    assert resolved.notice is not None and resolved.notice.startswith(
        "pipeline.time-characteristic was removed in Flink 2 and is ignored")


def test_time_characteristic_value_is_still_checked(registry: OptionRegistry) -> None:
    err = error(registry, "pipeline.time-characteristic", "WallClock")
    assert err.message == ("pipeline.time-characteristic: 'WallClock' is not one of EventTime, "
                           "ProcessingTime, IngestionTime")


def test_dropped_rocksdb_name(registry: OptionRegistry) -> None:
    resolved = registry.resolve("state.backend.rocksdb.checkpointdir", "/data/rocks")
    assert resolved.settings == (("state.backend.rocksdb.localdir", "/data/rocks"),)


def test_string_choices_are_checked_without_the_jvm(registry: OptionRegistry) -> None:
    assert registry.resolve("restart-strategy", "Fixed-Delay").settings == (
        ("restart-strategy.type", "Fixed-Delay"),)
    err = error(registry, "restart-strategy", "sometimes")
    assert err.message == ("restart-strategy: 'sometimes' is not one of none, off, fixed-delay, "
                           "failure-rate")


@pytest.mark.parametrize(("key", "expected"), [
    ("execution.checkpointing.interval",
     "is not a duration (e.g. '10 s', '10000 ms', '1 min')"),
    ("parallelism.default", "is not an integer"),
    ("table.exec.mini-batch.enabled", "is not a boolean (true or false)"),
    ("taskmanager.memory.process.size", "is not a memory size"),
    ("pipeline.global-job-parameters", "is not a map"),
    ("execution.checkpointing.externalized-checkpoint-retention",
     "is not one of DELETE_ON_CANCELLATION, RETAIN_ON_CANCELLATION, NO_EXTERNALIZED_CHECKPOINTS"),
])
def test_rejected_values_get_one_line_per_type(registry: OptionRegistry, key: str,
                                                expected: str) -> None:
    err = error(registry, key, "bad")
    assert err.message.startswith(f"{key}: 'bad' {expected}")
    assert "\n" not in err.message
    assert err.details == "java.lang.IllegalArgumentException: ..."
    assert err.key == key


def test_error_names_the_key_as_written(registry: OptionRegistry) -> None:
    err = error(registry, "state.checkpoints.num-retained", "bad")
    assert err.message.startswith("state.checkpoints.num-retained: 'bad' is not an integer")


def test_deprecated_option_gets_a_notice(registry: OptionRegistry) -> None:
    assert registry.resolve("jobstore.type", "File").notice == (
        "jobstore.type is deprecated in Flink 2.3.0.")


def test_families_from_placeholders_are_typed(registry: OptionRegistry) -> None:
    assert registry.resolve("metrics.reporter.prom.interval", "10 s").settings == (
        ("metrics.reporter.prom.interval", "10 s"),)
    assert error(registry, "metrics.reporter.prom.interval", "bad").message.startswith(
        "metrics.reporter.prom.interval: 'bad' is not a duration")
    assert registry.get("metrics.reporter.prom.port") is not None
    assert registry.resolve("flink.hadoop.dfs.replication", "2").notice is None


def test_map_options_accept_prefixed_entries(registry: OptionRegistry, flink: FakeFlink) -> None:
    resolved = registry.resolve("pipeline.global-job-parameters.user", "bad")
    assert resolved.settings == (("pipeline.global-job-parameters.user", "bad"),)
    assert flink.checked == []


@pytest.mark.parametrize("key", ["s3.access-key", "fs.s3a.endpoint", "gs.writer.chunk.size",
                                 "fs.hdfs.limit.total", "fs.s3.priority.org.example.S3Factory",
                                 "containerized.master.env.JAVA_HOME",
                                 "table.exec.emit.early-fire.enabled"])
def test_dynamic_key_families_are_accepted(registry: OptionRegistry, key: str) -> None:
    assert registry.resolve(key, "x").settings == ((key, "x"),)


def test_unknown_key_suggests_the_close_one(registry: OptionRegistry) -> None:
    err = error(registry, "execution.checkpointing.intervall", "10 s")
    assert err.message == "Unknown Flink option 'execution.checkpointing.intervall'."
    assert err.fix is not None
    assert err.fix.startswith("Did you mean 'execution.checkpointing.interval'? ")
    assert "flink-docs-release-2.3/docs/deployment/config/" in err.fix


def test_suggestions_match_last_segment_and_old_names(registry: OptionRegistry) -> None:
    assert registry.suggest("checkpointing.interval")[0] == "execution.checkpointing.interval"
    assert registry.suggest("state.checkpoint.dir") == ["execution.checkpointing.dir"]
    assert registry.suggest("flink.execution.mod") == ["flink.execution.mode"]
    assert registry.suggest("zzz") == []


# ------------------------------------------------------------------ interpreter keys


def test_interpreter_keys_are_ours(registry: OptionRegistry, flink: FakeFlink) -> None:
    assert registry.resolve("flink.execution.mode", "REMOTE").settings == (
        ("flink.execution.mode", "remote"),)
    assert registry.resolve_interpreter("flink.shutdown.stop_jobs", "False") == (
        "flink.shutdown.stop_jobs", "false")
    assert registry.scope("flink.maxRows") == "interpreter"
    assert flink.checked == []


def test_zeppelin_alias_is_translated(registry: OptionRegistry) -> None:
    resolved = registry.resolve("zeppelin.flink.job.check_interval", "500")
    assert resolved.settings == (("flink.job.check_interval", "500"),)
    assert resolved.notice == ("zeppelin.flink.job.check_interval is Zeppelin's name; "
                               "using flink.job.check_interval.")
    assert registry.scope("zeppelin.flink.job.check_interval") == "interpreter"


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("flink.execution.mode", "yarn", "is not one of local, remote"),
    ("flink.execution.remote.port", "80800", "is not a port number (1-65535)"),
    ("flink.execution.remote.https", "yes", "is not a boolean (true or false)"),
    ("flink.job.check_interval", "0", "is not a positive whole number of milliseconds"),
    ("flink.maxRows", "many", "is not a positive whole number"),
    ("flink.execution.remote.host", "http://flink:8081", "is not a host name"),
])
def test_interpreter_values_are_checked(registry: OptionRegistry, key: str, value: str,
                                        expected: str) -> None:
    assert error(registry, key, value).message == f"{key}: {value!r} {expected}"


def test_headers_in_both_forms() -> None:
    assert parse_headers('{"Authorization": "Bearer x", "X-N": 1}') == {
        "Authorization": "Bearer x", "X-N": "1"}
    assert parse_headers("Authorization: Bearer x; X-Team: data") == {
        "Authorization": "Bearer x", "X-Team": "data"}
    assert parse_headers("  ") == {}
    with pytest.raises(ConfigurationError, match="not a 'Name: value' header"):
        parse_headers("Authorization Bearer x")
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        parse_headers("{oops")


def test_interpreter_defaults_are_valid(registry: OptionRegistry) -> None:
    for key, default in interpreter_defaults().items():
        if default:
            assert registry.resolve_interpreter(key, default) == (key, default)
    assert set(interpreter_defaults()) == set(INTERPRETER_KEYS)


# ------------------------------------------------------------------ scope, describe


@pytest.mark.parametrize(("key", "scope"), [
    ("execution.checkpointing.interval", "job"),
    ("state.checkpoints.dir", "job"),  # old name: its Flink 2 key's scope
    ("state.backend", "job"),
    ("restart-strategy", "job"),
    ("table.exec.mini-batch.enabled", "job"),  # a package of per-job classes
    ("state.backend.rocksdb.localdir", "job"),
    ("parallelism.default", "job"),  # a per-job key in a process-level class
    ("classloader.resolve-order", "cluster"),
    ("rest.port", "cluster"),
    ("taskmanager.memory.process.size", "cluster"),
    ("metrics.reporter.prom.interval", "cluster"),
    ("s3.access-key", "cluster"),
    ("pipeline.global-job-parameters.user", "job"),
    ("pipeline.time-characteristic", "job"),
    ("state.backend.rocksdb.checkpointdir", "job"),
])
def test_scope(registry: OptionRegistry, key: str, scope: str) -> None:
    assert registry.scope(key) == scope


def test_scope_of_unknown_key_is_the_unknown_key_error(registry: OptionRegistry) -> None:
    with pytest.raises(ConfigurationError, match=r"Unknown Flink option 'rest\.prot'"):
        registry.scope("rest.prot")


def test_describe_rows(registry: OptionRegistry) -> None:
    rows = registry.describe({"parallelism.default": "4", "flink.maxRows": "10",
                              "s3.access-key": "x"})
    assert rows[0] == {"key": "parallelism.default", "value": "4", "default": "1",
                       "type": "Integer", "scope": "job",
                       "description": "About parallelism.default."}
    assert rows[1]["type"] == "Integer" and rows[1]["scope"] == "interpreter"
    assert rows[1]["default"] == "1000"
    assert rows[2]["type"] is None and rows[2]["scope"] == "cluster"
    assert [r["value"] for r in registry.describe(["rest.port"])] == [None]
    (unknown,) = registry.describe(["no.such.key"])  # shown, not raised
    assert (unknown["type"], unknown["scope"], unknown["description"]) == (None, None, "")


# ------------------------------------------------------------------ cache and helpers


def test_cache_file_changes_with_version_and_jars(tmp_path: Path) -> None:
    jar = tmp_path / "flink-dist-2.3.0.jar"
    jar.write_bytes(b"x")
    first = cache_file(tmp_path, "2.3.0", [str(jar)])
    assert first == cache_file(tmp_path, "2.3.0", [str(jar)])
    assert first != cache_file(tmp_path, "2.3.1", [str(jar)])
    jar.write_bytes(b"xy")
    assert first != cache_file(tmp_path, "2.3.0", [str(jar)])
    assert first.name.startswith("flink-options-2.3.0-")


def test_cache_round_trip_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "options.json"
    _write_cache(path, "2.3.0", OPTIONS)
    assert _read_cache(path) == OPTIONS
    assert os.listdir(path.parent) == ["options.json"]  # no temp file left behind


def test_bad_cache_files_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "options.json"
    assert _read_cache(path) is None
    path.write_text("{not json")
    assert _read_cache(path) is None
    path.write_text(json.dumps({"schema": SCHEMA_VERSION + 1, "options": []}))
    assert _read_cache(path) is None


def test_unwritable_cache_is_not_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    _write_cache(blocker / "options.json", "2.3.0", OPTIONS)  # parent is a file: logged only


@pytest.mark.parametrize(("iso", "flink"), [
    ("PT10M", "10 min"), ("PT0S", "0 ms"), ("PT0.05S", "50 ms"), ("PT720H", "30 d"),
    ("PT1H30M", "90 min"), ("PT1.5S", "1500 ms"), ("P1D", "P1D"),
])
def test_format_duration(iso: str, flink: str) -> None:
    assert format_duration(iso) == flink


def test_first_sentence() -> None:
    html = ("The checkpoint storage to use.<br />It can be <code>jobmanager</code> or "
            "&quot;filesystem&quot;.")
    assert first_sentence(html) == "The checkpoint storage to use."
    assert first_sentence("No full stop") == "No full stop"
    assert first_sentence("x" * 300).endswith("…")


@pytest.mark.parametrize(("key", "value", "says"), [
    ("execution.checkpointing.interval", "0", "shorter than the 10 ms"),
    ("execution.checkpointing.interval", "5 ms", "shorter than the 10 ms"),
    ("state.backend.type", "filesytem", "is not a state backend: use hashmap, rocksdb"),
    ("execution.checkpointing.dir", "file://tmp/chk", "names the host 'tmp'"),
    ("execution.checkpointing.dir", "checkpoints", "is a relative path"),
    ("execution.checkpointing.dir", "file:///my checkpoints", "white space"),
])
def test_values_flink_would_refuse_later_are_refused_now(registry: OptionRegistry, key: str,
                                                         value: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says) as info:
        registry.resolve(key, value)
    assert info.value.key == key


@pytest.mark.parametrize(("key", "value"), [
    ("execution.checkpointing.interval", "1 s"),
    ("state.backend.type", "RocksDB"),
    ("state.backend.type", "com.example.MyStateBackendFactory"),
    ("execution.checkpointing.dir", "file:///tmp/chk"),
    ("execution.checkpointing.dir", "s3://bucket/chk"),
    ("execution.checkpointing.dir", "/tmp/chk"),
])
def test_sensible_values_pass(registry: OptionRegistry, key: str, value: str) -> None:
    registry.resolve(key, value)
