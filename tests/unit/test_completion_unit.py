"""Completion and help without a JVM: the cursor's place, candidates, help texts, the option
cache, the catalog tree, and the matcher inside a real IPython shell."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from IPython.core.completer import provisionalcompleter
from IPython.core.interactiveshell import InteractiveShell

from jupyter_flink.completion.candidates import Candidate, by_prefix
from jupyter_flink.completion.conf import OptionKeys
from jupyter_flink.completion.context import Place, Spot, locate
from jupyter_flink.completion.header import name_candidates, value_candidates
from jupyter_flink.completion.help import (
    OptionHelp,
    function_help,
    is_secret,
    option_help,
    table_help,
)
from jupyter_flink.completion.jobs import job_candidates
from jupyter_flink.completion.matcher import IDENTIFIER
from jupyter_flink.completion.sql import referenced_tables, sql_candidates
from jupyter_flink.display.catalog_tree import CatalogTree
from jupyter_flink.flink.catalog import (
    CatalogNames,
    CatalogObject,
    ColumnInfo,
    FunctionInfo,
    TableInfo,
)
from jupyter_flink.jobs.registry import Owner, TrackedJob
from jupyter_flink.magics import FlinkMagics
from jupyter_flink.options.cache import write_cache
from jupyter_flink.options.discovery import OptionInfo
from jupyter_flink.options.registry import OptionRegistry

CONF = "org.apache.flink.configuration."


def option(key: str, kind: str = "string", owner: str = "CheckpointingOptions", *,
           type_name: str | None = None, fallback: tuple[str, ...] = (),
           enum_values: tuple[str, ...] = (), default: str | None = None) -> OptionInfo:
    return OptionInfo(key=key, type_name=type_name or kind.title(), kind=kind, default=default,
                      fallback_keys=fallback, deprecated_keys=fallback,
                      owner=owner if "." in owner else CONF + owner,
                      field=key.upper().replace(".", "_"), enum_values=enum_values)


OPTIONS = [
    option("execution.checkpointing.interval", "duration", type_name="Duration"),
    option("execution.checkpointing.interval-during-backlog", "duration", type_name="Duration"),
    option("execution.checkpointing.dir", fallback=("state.checkpoints.dir",)),
    option("execution.checkpointing.externalized-checkpoint-retention", "enum",
           type_name="ExternalizedCheckpointRetention",
           enum_values=("DELETE_ON_CANCELLATION", "RETAIN_ON_CANCELLATION",
                        "NO_EXTERNALIZED_CHECKPOINTS")),
    option("execution.checkpointing.unaligned.enabled", "boolean"),
    option("taskmanager.memory.process.size", "memory", "TaskManagerOptions"),
    option("table.exec.mini-batch.enabled", "boolean",
           "org.apache.flink.table.api.config.ExecutionConfigOptions"),
    option("state.backend.type", owner="StateBackendOptions", fallback=("state.backend",),
           default="hashmap"),
]


@pytest.fixture
def keys() -> OptionKeys:
    return OptionKeys(OptionRegistry(OPTIONS, flink_version="2.3.0"))


def at(marked: str) -> Spot:
    """The place of the ``|`` in ``marked``."""
    return locate(marked.replace("|", "", 1), marked.index("|"))


def texts(candidates: list[Candidate]) -> list[str]:
    return [c.text for c in candidates]


# ------------------------------------------------------------------------- context


@pytest.mark.parametrize(("marked", "place", "fragment", "key"), [
    ("%%flink.conf\nexecution.checkpointing.inter|", Place.CONF_KEY,
     "execution.checkpointing.inter", None),
    ("%%flink_conf\n  state.backend.ty|pe hashmap", Place.CONF_KEY, "state.backend.ty", None),
    ("%%flink.conf\nexecution.checkpointing.interval 10|", Place.CONF_VALUE, "10",
     "execution.checkpointing.interval"),
    ("%%flink.conf\nrestart-strategy.type=fix|", Place.CONF_VALUE, "fix",
     "restart-strategy.type"),
    ("%%flink.conf\nrestart-strategy.type : fix|", Place.CONF_VALUE, "fix",
     "restart-strategy.type"),
    ("%%flink.conf\nexecution.checkpointing.interval |", Place.CONF_VALUE, "",
     "execution.checkpointing.interval"),
    ("%%flink.conf\n# execution.check|", Place.NONE, "", None),
    ("%%flink.conf\na.b c \\\n  d.e|", Place.NONE, "", None),  # a continuation line
    ("%%flink.ssql(type=up|", Place.HEADER_VALUE, "up", "type"),
    ("%%flink.ssql (jobName=a, res|", Place.HEADER_NAME, "res", None),
    ("%%flink.bsql(template=\"<b>{0}, |", Place.NONE, "", None),  # quoted free text
    ("%%flink.ssql(jobName=a)|", Place.NONE, "", None),
    ("%%flink.ss|ql", Place.NONE, "", None),  # the magic's name is IPython's
    ("%%flink\nimport os\nos.pa|", Place.NONE, "", None),  # Python
    ("import os\nos.pa|", Place.NONE, "", None),
    ("%flink.cancel wor|", Place.JOB, "wor", "flink.cancel"),
    ("x = 1\n%flink.stop --dir /tm|", Place.NONE, "", None),  # a directory
    ("%flink.bsql SELECT * FROM or|", Place.SQL, "or", "bsql"),
    ("%%flink.ssql\nSELECT * FROM t WHERE x = 'ab|c'", Place.NONE, "", None),
    ("%%flink.ssql\n-- a comm|ent\nSELECT 1", Place.NONE, "", None),
    ("%%flink.ssql\nSELECT o.cu| FROM orders o", Place.SQL, "o.cu", "ssql"),
])
def test_the_cursors_place_is_found(marked: str, place: Place, fragment: str,
                                    key: str | None) -> None:
    spot = at(marked)
    assert (spot.place, spot.fragment, spot.key) == (place, fragment, key)


def test_sql_statement_is_the_one_around_the_cursor() -> None:
    spot = at("%%flink.ssql\nCREATE TABLE t (a INT);\nSELECT * FROM o|rders WHERE x = 'a;b';"
              " SELECT 1")
    assert spot.statement == "SELECT * FROM orders WHERE x = 'a;b'"
    assert spot.statement[:spot.position] == "SELECT * FROM o"
    assert (spot.fragment, spot.rest, spot.word) == ("o", "rders", "orders")


def test_header_knows_the_properties_already_given() -> None:
    spot = at("%%flink.ssql(jobName=\"a, b\", type=update, |)")
    assert spot.place is Place.HEADER_NAME and spot.given == {"jobName", "type"}


# ------------------------------------------------------------------------- conf


def test_names_starting_with_the_fragment_come_before_those_with_a_segment_that_does() -> None:
    names = ["pipeline.checkpointing.x", "checkpointing.a", "Checkpointing.B", "checkpoints"]
    assert by_prefix("checkpointing.", names) == [
        "checkpointing.a", "Checkpointing.B", "pipeline.checkpointing.x"]
    assert by_prefix("", names) == names


def test_conf_keys_come_with_their_types_and_old_names(keys: OptionKeys) -> None:
    found = keys.keys("execution.checkpointing.inter")
    assert [(c.text, c.type) for c in found] == [
        ("execution.checkpointing.interval", "Duration"),
        ("execution.checkpointing.interval-during-backlog", "Duration")]
    assert keys.keys("state.checkpoints.d") == [
        Candidate("state.checkpoints.dir", "old name of execution.checkpointing.dir")]
    assert "execution.checkpointing.interval" in texts(keys.keys("checkpointing.int"))
    assert texts(keys.keys("flink.execution.m")) == ["flink.execution.mode"]


def test_conf_keys_without_a_registry_are_the_integrations_and_static_ones() -> None:
    keys = OptionKeys(None)
    assert texts(keys.keys("flink.exec")) == [
        "flink.execution.mode", "flink.execution.remote.headers", "flink.execution.remote.host",
        "flink.execution.remote.https", "flink.execution.remote.port",
        "flink.execution.remote.ssl.ca", "flink.execution.remote.ssl.cert",
        "flink.execution.remote.ssl.key", "flink.execution.remote.ssl.key-password",
        "flink.execution.remote.ssl.verify-hostname"]
    assert "execution.checkpointing.interval" in texts(keys.keys("execution.checkpointing."))
    assert keys.values("flink.execution.remote.https", "") == [
        Candidate("true", "value"), Candidate("false", "value")]
    assert keys.values("execution.checkpointing.interval", "10") == []  # type unknown


def test_conf_values_follow_the_options_type(keys: OptionKeys) -> None:
    retention = "execution.checkpointing.externalized-checkpoint-retention"
    assert texts(keys.values(retention, "ret")) == ["RETAIN_ON_CANCELLATION"]
    assert texts(keys.values("execution.checkpointing.unaligned.enabled", "")) == [
        "true", "false"]
    assert texts(keys.values("execution.checkpointing.interval", "10")) == [
        "10 ms", "10 s", "10 min", "10 h", "10 d"]
    assert texts(keys.values("execution.checkpointing.interval", "10 m")) == [
        "10 ms", "10 min"]
    assert texts(keys.values("taskmanager.memory.process.size", "2 g")) == ["2 gb"]
    assert texts(keys.values("state.backend", "")) == ["hashmap"]  # old name, its default
    assert keys.values("execution.checkpointing.dir", "file") == []


# ------------------------------------------------------------------------- headers


def test_header_names_are_the_cells_properties_then_per_job_options(keys: OptionKeys) -> None:
    assert texts(name_candidates(keys, "ssql", "resume", frozenset())) == [
        "resumeFromSavepoint", "resumeFromLatestCheckpoint", "resumeFrom"]
    assert "type" not in texts(name_candidates(keys, "flink", "ty", frozenset()))
    assert "jobName" not in texts(name_candidates(keys, "ssql", "", frozenset({"jobName"})))
    found = name_candidates(keys, "flink", "table.exec.m", frozenset())
    assert found == [Candidate("table.exec.mini-batch.enabled", "Boolean")]
    # Cluster options cannot be set per job
    assert name_candidates(keys, "flink", "taskmanager.mem", frozenset()) == []


def test_header_values_are_the_propertys_choices(keys: OptionKeys) -> None:
    assert texts(value_candidates(keys, "ssql", "type", "")) == ["single", "append", "update"]
    assert texts(value_candidates(keys, "bsql", "wait", "t")) == ["true"]
    assert texts(value_candidates(keys, "flink", "restartPolicy", "from")) == [
        "fromSavepointOnFailure"]
    assert texts(value_candidates(keys, "flink", "table.exec.mini-batch.enabled", "")) == [
        "true", "false"]
    assert value_candidates(keys, "flink", "jobName", "") == []


# ------------------------------------------------------------------------- SQL


class FakeCatalog:
    """Two tables and a view in the current database, one in another catalog."""

    def __init__(self) -> None:
        self.described: list[str] = []

    def names(self) -> CatalogNames:
        return CatalogNames(
            current_catalog="default_catalog", current_database="default_database",
            catalogs={"default_catalog": {"default_database": (
                CatalogObject("orders", "table"), CatalogObject("order_view", "view"),
                CatalogObject("people", "table"))},
                "hive": {"sales": (CatalogObject("returns", "table"),)}},
            functions=("my_udf",), all_functions=("UPPER", "UPDATE_TIME", "fromBase64"))

    def columns(self, path: str) -> tuple[ColumnInfo, ...]:
        self.described.append(path)
        tables = {"orders": ("order_id", "customer", "amount"), "people": ("person_id",)}
        return tuple(ColumnInfo(c, "STRING") for c in tables.get(path.rsplit(".", 1)[-1], ()))


def sql(marked: str, hints: tuple[str, ...] = (), catalog: Any = None) -> list[tuple[str, str]]:
    return [(c.text, c.type) for c in sql_candidates(at(marked), hints=hints, catalog=catalog)]


def test_sql_without_a_session_offers_keywords_only() -> None:
    assert sql("%%flink.ssql\nSEL|") == [("SELECT", "keyword")]
    assert sql("%%flink.ssql\nselect * fr|") == [("freshness", "keyword"), ("from", "keyword")]
    assert ("SHOW", "keyword") in sql("%%flink.ssql\n|")  # statement starts
    assert sql("%%flink.ssql\nSELECT * FROM orders WHERE |") == []
    assert sql("%%flink.ssql\nSELECT * FROM default_catalog.|") == []


def test_planner_hints_are_shortened_to_what_resolves_and_typed() -> None:
    catalog = FakeCatalog()
    found = sql("%%flink.ssql\nSELECT * FROM or|",
                ("default_catalog.default_database.orders",
                 "default_catalog.default_database.order_view", "hive.sales.returns"), catalog)
    assert found[:2] == [("orders", "table"), ("order_view", "view")]
    assert ("hive.sales.returns", "table") not in found  # does not start with "or"
    assert sql("%%flink.ssql\nSELECT * FROM default_catalog.default_database.or|",
               ("default_catalog.default_database.orders",), catalog)[0] == (
        "default_catalog.default_database.orders", "table")
    # Keywords in the user's case; punctuation dropped; the planner's keywords replace ours
    assert sql("%%flink.ssql\nselect * fr|", ("FROM", "("), catalog) == [("from", "keyword")]


def test_sql_catalog_names_columns_behind_aliases_and_functions() -> None:
    catalog = FakeCatalog()
    assert sql("%%flink.ssql\nSELECT cu| FROM orders", ("CUME_DIST", "customer"), catalog) == [
        ("customer", "column"), ("cume_dist", "keyword")]
    assert sql("%%flink.ssql\nSELECT o.am| FROM orders AS o JOIN people p ON o.x = p.y",
               catalog=catalog) == [("o.amount", "column")]
    assert sql("%%flink.ssql\nSELECT * FROM hive.|", catalog=catalog) == [
        ("hive.sales", "database")]
    assert sql("%%flink.ssql\nSELECT * FROM hive.sales.re|", catalog=catalog) == [
        ("hive.sales.returns", "table")]
    assert sql("%%flink.ssql\nSELECT up|", catalog=catalog) == [
        ("upper", "function"), ("update_time", "function"), ("update", "keyword")]
    assert sql("%%flink.ssql\nSELECT my|", catalog=catalog) == [("my_udf", "function")]
    # Where the planner has hints, it decides whether a function fits
    assert sql("%%flink.ssql\nSELECT * FROM orders WHERE up|", ("UPDATE",), catalog) == [
        ("update", "keyword")]


def test_referenced_tables_map_names_and_aliases() -> None:
    assert referenced_tables("SELECT * FROM cat.db.orders o JOIN `people` AS p ON o.a = p.b "
                             "WHERE 1 = 1") == {
        "orders": "cat.db.orders", "cat.db.orders": "cat.db.orders", "o": "cat.db.orders",
        "people": "people", "p": "people"}
    assert "WHERE" not in referenced_tables("SELECT * FROM t WHERE x = 1")


# ------------------------------------------------------------------------- jobs


def job(name: str, job_id: str, state: str, submitted: float) -> TrackedJob:
    return TrackedJob(job_id=job_id, name=name, owner=Owner(None, None, name), state=state,
                      submitted_at=submitted)


def test_job_magics_complete_names_then_ids_of_running_jobs() -> None:
    jobs = [job("word_count", "a1" * 16, "RUNNING", 1.0), job("word_old", "b2" * 16,
                                                               "CANCELED", 2.0)]
    found = job_candidates("flink.cancel", jobs, "wo")
    assert found == [Candidate("word_count", "job, RUNNING")]
    assert texts(job_candidates("flink.checkpoints", jobs, "wo")) == ["word_old", "word_count"]
    assert job_candidates("flink.stop", jobs, "a1a1") == [
        Candidate("a1" * 16, "id of word_count, RUNNING")]
    assert texts(job_candidates("flink.savepoint", jobs, "--")) == ["--all", "--dir"]


# ------------------------------------------------------------------------- help


@pytest.mark.parametrize(("key", "secret"), [
    ("password", True), ("properties.sasl.jaas.config", True), ("s3.secret-key", True),
    ("fs.s3a.access.key", True), ("api-key", True), ("token", True),
    ("properties.ssl.keystore.password", True), ("key.format", False), ("key.fields", False),
    ("connector", False), ("fields.key.kind", False), ("topic", False),
])
def test_secret_options_are_recognised_by_name(key: str, secret: bool) -> None:
    assert is_secret(key) is secret


def test_table_help_shows_the_schema_and_masks_secrets() -> None:
    bundle = table_help(TableInfo(
        identifier="c.d.orders", kind="table", temporary=False,
        columns=(ColumnInfo("order_id", "BIGINT NOT NULL", comment="the id"),
                 ColumnInfo("total", "DOUBLE", extras="AS `amount` * 2")),
        watermarks=(("ts", "`ts` - INTERVAL '5' SECOND"),), primary_key=("order_id",),
        options={"connector": "kafka", "properties.sasl.jaas.config": "password=\"x\"",
                 "path": "s3://user:pw@bucket/x"}))
    text = bundle["text/plain"]
    assert text.splitlines()[:4] == ["c.d.orders  (table)", "Columns:",
                                     "  order_id  BIGINT NOT NULL  -- the id",
                                     "  total     DOUBLE           AS `amount` * 2"]
    assert "Watermark: FOR ts AS `ts` - INTERVAL '5' SECOND" in text
    assert "'properties.sasl.jaas.config' = '******'" in text
    assert "'path' = 's3://bucket/x'" in text and "pw" not in text
    assert "| `order_id` | BIGINT NOT NULL | -- the id |" in bundle["text/markdown"]


def test_option_help_says_what_is_known() -> None:
    text = option_help(OptionHelp(
        key="state.checkpoints.dir", current_keys=("execution.checkpointing.dir",),
        type_name="String", scope="job", description=None, value="file:///c",
        source="set by %%flink.conf", docs_url="https://x"))["text/plain"]
    assert text.splitlines() == [
        "state.checkpoints.dir: an old (Flink 1.x) name; Flink 2 calls it "
        "execution.checkpointing.dir.",
        "execution.checkpointing.dir  (String, per job)",
        "Flink's description appears once Flink runs in this kernel.",
        "Default: (none)", "Current value: file:///c  (set by %%flink.conf)",
        "Flink's options: https://x"]
    unknown = option_help(OptionHelp(key="a.b", known=False))["text/plain"]
    assert "only jupyter-flink's own keys are known" in unknown


def test_function_help_shows_the_signature() -> None:
    text = function_help(FunctionInfo("UPPER", "scalar", builtin=True, temporary=False,
                                      signature="UPPER(<CHARACTER_STRING>)"))["text/plain"]
    assert text == "UPPER  (built-in scalar function)\nUPPER(<CHARACTER_STRING>)"


# ------------------------------------------------------------------------- option cache


def test_options_load_from_the_newest_cache_without_a_jvm(tmp_path: Path) -> None:
    assert OptionRegistry.from_cache(flink_version="2.3.0", cache_dir=tmp_path) is None
    old = tmp_path / "flink-options-2.3.0-aaaa.json"
    write_cache(old, "2.3.0", OPTIONS[:1])
    os.utime(old, (time.time() - 60, time.time() - 60))
    write_cache(tmp_path / "flink-options-2.3.0-bbbb.json", "2.3.0", OPTIONS)
    write_cache(tmp_path / "flink-options-2.2.0-cccc.json", "2.2.0", [])
    registry = OptionRegistry.from_cache(flink_version="2.3.0", cache_dir=tmp_path)
    assert registry is not None and registry.source == "cache"
    assert len(registry) == len(OPTIONS)
    assert not registry.has_descriptions and registry.full_description(OPTIONS[0]) is None


# ------------------------------------------------------------------------- %flink.catalog


def test_catalog_tree_draws_catalogs_databases_tables_and_columns() -> None:
    names = CatalogNames(
        current_catalog="default_catalog", current_database="default_database",
        catalogs={"default_catalog": {"default_database": (
            CatalogObject("orders", "table", (ColumnInfo("id", "BIGINT"),
                                              ColumnInfo("customer", "STRING"))),
            CatalogObject("v", "view", ()))}, "other": {"db": ()}})
    tree = CatalogTree(names, title="Catalog of stenv")
    assert tree.text().splitlines() == [
        "Catalog of stenv",
        "├─ default_catalog (current)",
        "│  └─ default_database (current)",
        "│     ├─ orders  [table]",
        "│     │  ├─ id        BIGINT",
        "│     │  └─ customer  STRING",
        "│     └─ v  [view]",
        "└─ other",
        "   └─ db"]
    html = tree._repr_mimebundle_()["text/html"]
    assert html.count("<details open>") == 2 and "<details><summary>orders" in html


# ------------------------------------------------------------------------- in IPython




def complete(shell: InteractiveShell, code: str) -> list[tuple[str, str, int]]:
    with provisionalcompleter():
        return [(c.text, c.type, c.start) for c in shell.Completer.completions(code, len(code))]


def test_the_extension_completes_flink_magics_in_any_ipython(shell: InteractiveShell) -> None:
    assert complete(shell, "%%flink.conf\nflink.execution.mo") == [
        ("flink.execution.mode", "jupyter-flink", 13)]
    assert complete(shell, "%%flink.ssql(jobName=x, type=ap") == [("append", "value", 29)]
    shell.user_ns["stenv_like"] = 1
    assert complete(shell, "%%flink\nx = 1\nstenv_l") == [("stenv_like", "instance", 14)]
    assert any(text == "path" for text, _, _ in complete(shell, "import os\nos.pa"))


def test_unloading_the_extension_removes_the_matcher(shell: InteractiveShell) -> None:
    ids = [getattr(m, "matcher_identifier", None) for m in shell.Completer.custom_matchers]
    assert ids.count(IDENTIFIER) == 1
    shell.extension_manager.unload_extension("jupyter_flink")
    assert IDENTIFIER not in [getattr(m, "matcher_identifier", None)
                              for m in shell.Completer.custom_matchers]
    shell.extension_manager.load_extension("jupyter_flink")


def test_magics_answer_kernel_requests_only_for_flink_parts(shell: InteractiveShell) -> None:
    magics = next(m for m in shell.magics_manager.registry.values()
                  if isinstance(m, FlinkMagics))
    code = "%%flink.conf\nflink.job.check"
    reply = magics.complete_cell(code, len(code))
    assert reply is not None
    assert (reply["matches"], reply["cursor_start"], reply["cursor_end"]) == (
        ["flink.job.check_interval", "zeppelin.flink.job.check_interval"], 13, len(code))
    assert magics.complete_cell("import os\nos.pa", 15) is None
    bundle = magics.inspect_cell("%%flink.ssql(wait=true)", 15)
    assert bundle is not None and "keep the cell busy" in bundle["text/plain"]
    assert magics.inspect_cell("%%flink.ssql\nSELECT * FROM orders", 27) is None  # no session
    shell.run_line_magic("flink.catalog", "")  # says there is no session, starts nothing
    assert not magics.session.started
