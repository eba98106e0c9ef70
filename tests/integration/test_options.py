"""OptionRegistry on real Flink 2.3: options scanned from the JVM, values parsed by Flink.

One JVM and one scan per module; the seeds' ``%%flink.conf`` blocks go through the real
parser and the registry, and the translated settings are handed to Flink's own loaders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jupyter_flink.errors import ConfigurationError
from jupyter_flink.flink.gateway import get_gateway, java_configuration
from jupyter_flink.options import discovery as option_discovery
from jupyter_flink.options.discovery import OptionInfo
from jupyter_flink.options.registry import OptionRegistry, Resolved
from jupyter_flink.parsing.conf import parse_conf
from tests.support.seeds import (
    SEED_000,
    SEED_004_FAILURE_RATE,
    SEED_004_FIXED_DELAY,
    SEED_004_NONE,
    SEED_004_RETAINED,
    SEED_004_SAVEPOINTS,
)

pytestmark = [
    pytest.mark.flink,
    pytest.mark.timeout(120),
]


# What each kind of option takes, to feed every fallback key Flink knows.
SAMPLES = {"boolean": "true", "integer": "2", "long": "2", "float": "0.5", "double": "0.5",
           "duration": "3 s", "memory": "64 mb", "map": "k:v", "string": "x", "list": "a"}


@pytest.fixture(scope="module")
def gateway() -> Any:
    return get_gateway()


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("option-cache")


@pytest.fixture(scope="module")
def registry(gateway: Any, cache_dir: Path) -> OptionRegistry:
    registry = OptionRegistry.load(gateway, cache_dir=cache_dir)
    assert registry.source == "scan"
    print(f"scanned {len(registry)} options in {registry.load_seconds:.2f} s")
    return registry


def resolve_block(registry: OptionRegistry, text: str) -> list[Resolved]:
    return [registry.resolve(entry.key, entry.value) for entry in parse_conf(text)]


def settings(resolved: list[Resolved]) -> dict[str, str]:
    return {k: v for r in resolved for k, v in r.settings}


def notices(resolved: list[Resolved]) -> list[str]:
    return [r.notice for r in resolved if r.notice]


# ------------------------------------------------------------------ discovery


def test_scan_finds_flinks_options(registry: OptionRegistry) -> None:
    assert len(registry) > 800
    interval = registry.get("execution.checkpointing.interval")
    assert interval is not None
    assert (interval.kind, interval.type_name) == ("duration", "Duration")
    assert interval.owner == "org.apache.flink.configuration.CheckpointingOptions"
    retention = registry.get("execution.checkpointing.externalized-checkpoint-retention")
    assert retention is not None and retention.default == "NO_EXTERNALIZED_CHECKPOINTS"
    assert set(retention.enum_values) == {"RETAIN_ON_CANCELLATION", "DELETE_ON_CANCELLATION",
                                          "NO_EXTERNALIZED_CHECKPOINTS"}
    timeout = registry.get("execution.checkpointing.timeout")
    assert timeout is not None and timeout.default == "10 min"
    dir_option = registry.get("execution.checkpointing.dir")
    assert dir_option is not None and "state.checkpoints.dir" in dir_option.deprecated_keys


def test_connector_options_are_not_configuration(registry: OptionRegistry) -> None:
    with pytest.raises(ConfigurationError, match="Unknown Flink option"):
        registry.resolve("sink.rolling-policy.rollover-interval", "1 s")


# ------------------------------------------------------------------ the seeds


def test_seed_000_zeppelin_block(registry: OptionRegistry, gateway: Any) -> None:
    resolved = resolve_block(registry, SEED_000)
    assert settings(resolved) == {
        "execution.checkpointing.interval": "10000",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "state.backend.type": "hashmap",
        "execution.checkpointing.storage": "filesystem",
        "execution.checkpointing.dir": "file:///tmp/flink/checkpoints",
    }
    assert notices(resolved) == [
        "pipeline.time-characteristic was removed in Flink 2 and is ignored: event time is "
        "always on.",
        "state.backend filesystem was removed in Flink 2; using state.backend.type hashmap and "
        "execution.checkpointing.storage filesystem (which needs execution.checkpointing.dir).",
        "state.checkpoints.dir is the Flink 1.x name; using execution.checkpointing.dir.",
    ]
    # Flink's own loaders accept the translation: heap state, file-system checkpoints.
    jvm = gateway.jvm
    conf = java_configuration(gateway, settings(resolved))
    loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
    log = jvm.org.slf4j.LoggerFactory.getLogger("test_options")
    backend = jvm.org.apache.flink.runtime.state.StateBackendLoader.loadStateBackendFromConfig(
        conf, loader, log)
    storage = jvm.org.apache.flink.runtime.state.CheckpointStorageLoader.fromConfig(
        conf, loader, log).get()
    assert backend.getClass().getSimpleName() == "HashMapStateBackend"
    assert storage.getClass().getSimpleName() == "FileSystemCheckpointStorage"


def test_seed_000_recovery_keys(registry: OptionRegistry) -> None:
    resolved = registry.resolve("execution.savepoint.path", "file:///tmp/chk/job/chk-4")
    assert resolved.settings == (("execution.state-recovery.path", "file:///tmp/chk/job/chk-4"),)
    assert resolved.notice == ("execution.savepoint.path is the Flink 1.x name; "
                               "using execution.state-recovery.path.")


@pytest.mark.parametrize(("block", "strategy", "factory"), [
    (SEED_004_FIXED_DELAY, "fixed-delay", "FixedDelayRestartBackoffTimeStrategyFactory"),
    (SEED_004_FAILURE_RATE, "failure-rate", "FailureRateRestartBackoffTimeStrategyFactory"),
    (SEED_004_NONE, "none", "NoRestartBackoffTimeStrategyFactory"),
])
def test_seed_004_restart_strategies(registry: OptionRegistry, gateway: Any, block: str,
                                     strategy: str, factory: str) -> None:
    resolved = resolve_block(registry, block)
    flink_settings = settings(resolved)
    assert flink_settings["restart-strategy.type"] == strategy
    assert "restart-strategy" not in flink_settings
    assert notices(resolved) == [
        "restart-strategy is the Flink 1.x name; using restart-strategy.type."]
    assert {registry.scope(k) for k in flink_settings} == {"job"}
    loader = gateway.jvm.org.apache.flink.runtime.executiongraph.failover.\
        RestartBackoffTimeStrategyFactoryLoader
    made = loader.createRestartBackoffTimeStrategyFactory(
        java_configuration(gateway, flink_settings), java_configuration(gateway, {}), True)
    assert made.getClass().getSimpleName() == factory


@pytest.mark.parametrize(("block", "key"), [
    (SEED_004_RETAINED, "execution.checkpointing.num-retained"),
    (SEED_004_SAVEPOINTS, "execution.checkpointing.savepoint-dir"),
])
def test_seed_004_renamed_keys(registry: OptionRegistry, block: str, key: str) -> None:
    (resolved,) = resolve_block(registry, block)
    old = parse_conf(block)[0].key
    assert resolved.settings == ((key, parse_conf(block)[0].value),)
    assert resolved.notice == f"{old} is the Flink 1.x name; using {key}."


# ------------------------------------------------------------------ Flink's data, not ours


def test_every_deprecated_key_flink_knows_translates(registry: OptionRegistry) -> None:
    """Fallback keys come from the scan: each one resolves to the options that list it."""
    old_keys = {old for info in registry.options() for old in info.deprecated_keys}
    checked = 0
    for old in sorted(k for k in old_keys if k not in registry):  # an option stays itself
        targets = [t for k in registry.current_keys(old) if (t := registry.get(k)) is not None]
        assert targets, old
        # a value every target takes (web.port feeds an int option and a string one)
        value = _sample(([t for t in targets if t.kind != "string"] or targets)[0])
        resolved = registry.resolve(old, value)
        assert {(t.key, value) for t in targets} <= set(resolved.settings), old
        assert resolved.notice is not None and old in resolved.notice
        checked += 1
    assert checked > 50
    # one that nothing in jupyter-flink names: pekko's Flink 1.x akka.* keys
    assert registry.resolve("akka.ask.timeout", "10 s").settings == (
        ("pekko.ask.timeout", "10 s"),)


# Values the conf cell checks for meaning, not only type (options.rules.value_problem).
MEANINGFUL = {"execution.state-recovery.path": "file:///tmp/x",
              "execution.checkpointing.dir": "file:///tmp/x",
              "execution.checkpointing.savepoint-dir": "file:///tmp/x",
              "state.backend.type": "hashmap"}


def _sample(info: OptionInfo) -> str:
    if info.key in MEANINGFUL:
        return MEANINGFUL[info.key]
    if info.kind == "enum" or (info.enum_values and info.kind in ("string", "list")):
        return info.enum_values[0]
    return SAMPLES.get(info.kind, info.default or "x")


def test_string_choices_come_from_flinks_enum(registry: OptionRegistry) -> None:
    restart = registry.get("restart-strategy.type")
    assert restart is not None
    assert {"none", "fixed-delay", "failure-rate", "exponential-delay"} <= set(
        restart.enum_values)


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(("key", "value", "message"), [
    ("execution.checkpointing.interval", "10x",
     "execution.checkpointing.interval: '10x' is not a duration (e.g. '10 s', '10000 ms', "
     "'1 min')"),
    ("parallelism.default", "four",
     "parallelism.default: 'four' is not an integer (a whole number from -2147483648 to "
     "2147483647)"),
    ("pipeline.object-reuse", "yes",
     "pipeline.object-reuse: 'yes' is not a boolean (true or false)"),
    ("execution.checkpointing.mode", "AT-LEAST-ONCE",
     "execution.checkpointing.mode: 'AT-LEAST-ONCE' is not one of EXACTLY_ONCE, AT_LEAST_ONCE"),
    ("taskmanager.memory.process.size", "lots",
     "taskmanager.memory.process.size: 'lots' is not a memory size (e.g. '512 mb', '1 gb', "
     "'1024m')"),
    ("state.checkpoints.num-retained", "many",
     "state.checkpoints.num-retained: 'many' is not an integer (a whole number from "
     "-2147483648 to 2147483647)"),
    ("pipeline.global-job-parameters", "a=1",
     "pipeline.global-job-parameters: 'a=1' is not a map (e.g. 'key1:value1,key2:value2')"),
    ("metrics.reporter.prom.interval", "often",
     "metrics.reporter.prom.interval: 'often' is not a duration (e.g. '10 s', '10000 ms', "
     "'1 min')"),
])
def test_ill_typed_values(registry: OptionRegistry, key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        registry.resolve(key, value)
    assert info.value.message == message
    assert info.value.details is not None
    assert "Could not parse value" in info.value.details  # the Java trace, one step away


def test_good_values_pass(registry: OptionRegistry) -> None:
    for key, value in [("execution.checkpointing.interval", "1 min"),
                       ("execution.checkpointing.mode", "at_least_once"),
                       ("taskmanager.memory.process.size", "1024m"),
                       ("pipeline.jars", "file:///a.jar;file:///b.jar"),
                       ("pipeline.global-job-parameters", "a:1,b:2")]:
        assert registry.resolve(key, value).settings == ((key, value),)


@pytest.mark.parametrize(("typo", "meant"), [
    ("execution.checkpointing.intervall", "execution.checkpointing.interval"),
    ("table.exec.mini-batch.enabeld", "table.exec.mini-batch.enabled"),
    ("state.checkpoint.dir", "execution.checkpointing.dir"),
    ("restart-strategy.fixed-delay.attempt", "restart-strategy.fixed-delay.attempts"),
    ("checkpointing.interval", "execution.checkpointing.interval"),
])
def test_typos_get_suggestions(registry: OptionRegistry, typo: str, meant: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        registry.resolve(typo, "1")
    assert info.value.message == f"Unknown Flink option '{typo}'."
    assert info.value.fix is not None
    assert info.value.fix.startswith(f"Did you mean '{meant}'")
    assert "https://nightlies.apache.org/flink/flink-docs-release-2.3/" in info.value.fix


# ------------------------------------------------------------------ scope and display


@pytest.mark.parametrize(("key", "scope"), [
    ("execution.checkpointing.interval", "job"),
    ("state.checkpoints.dir", "job"),
    ("state.backend", "job"),
    ("restart-strategy.fixed-delay.delay", "job"),
    ("table.exec.state.ttl", "job"),
    ("python.executable", "job"),
    ("parallelism.default", "job"),
    ("state.backend.rocksdb.memory.managed", "job"),
    ("rest.port", "cluster"),
    ("taskmanager.numberOfTaskSlots", "cluster"),
    ("jobmanager.memory.process.size", "cluster"),
    ("metrics.reporter.prom.port", "cluster"),
    ("high-availability.type", "cluster"),
    ("pekko.ask.timeout", "cluster"),
    ("execution.checkpointing.local-backup.dirs", "cluster"),  # read at TaskManager start
    ("flink.execution.mode", "interpreter"),
])
def test_scope(registry: OptionRegistry, key: str, scope: str) -> None:
    assert registry.scope(key) == scope


def test_describe_uses_flinks_descriptions(registry: OptionRegistry) -> None:
    rows = registry.describe({"execution.checkpointing.interval": "10 s", "flink.maxRows": "50"})
    assert rows[0]["type"] == "Duration" and rows[0]["scope"] == "job"
    assert rows[0]["description"].startswith("Gets the interval in which checkpoints")
    assert rows[1] == {"key": "flink.maxRows", "value": "50", "default": "1000",
                       "type": "Integer", "scope": "interpreter",
                       "description": "most rows a SQL result table shows"}


# ------------------------------------------------------------------ the cache


def test_second_load_reads_the_cache(registry: OptionRegistry, gateway: Any, cache_dir: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def no_scan(*args: Any) -> list[OptionInfo]:
        raise AssertionError("scanned although the cache was warm")

    monkeypatch.setattr(option_discovery, "scan", no_scan)
    again = OptionRegistry.load(gateway, cache_dir=cache_dir)
    assert again.source == "cache"
    assert again.load_seconds < 1.0
    assert again.options() == registry.options()
    assert again.get("execution.checkpointing.dir") == registry.get("execution.checkpointing.dir")


def test_another_flink_version_rescans(registry: OptionRegistry, gateway: Any, cache_dir: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    scans: list[list[str]] = []

    def counting_scan(gw: Any, classes: list[str]) -> list[OptionInfo]:
        scans.append(classes)
        return registry.options()

    monkeypatch.setattr(option_discovery, "flink_version", lambda gw: "2.3.99")
    monkeypatch.setattr(option_discovery, "scan", counting_scan)
    other = OptionRegistry.load(gateway, cache_dir=cache_dir)
    assert (other.source, other.flink_version, len(scans)) == ("scan", "2.3.99", 1)
    assert len(list(cache_dir.glob("flink-options-*.json"))) == 2
    assert OptionRegistry.load(gateway, cache_dir=cache_dir).source == "cache"
