"""Tab and Shift+Tab through jupyter_client, on real flink kernels and a real Flink catalog.

Three kernels: ``fresh`` has run no Flink cell (and has an empty option cache of its own),
``kernel`` runs a conf cell, tables from SQL and from Python, and a job, and ``cached``
starts after that with the option cache ``kernel`` wrote, and still runs no Flink cell.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from jupyter_flink.completion.replies import TYPES_KEY
from tests.support.kernel import KernelDriver, running_kernel, without_warm_start

pytestmark = pytest.mark.flink

CONF = """%%flink.conf
state.checkpoints.dir {chk}
execution.checkpointing.interval 5 s
"""
DDL = """%%flink.ssql
CREATE TABLE orders (
  order_id BIGINT,
  customer STRING,
  amount DOUBLE,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND,
  PRIMARY KEY (order_id) NOT ENFORCED
) WITH ('connector' = 'datagen', 'rows-per-second' = '1');
CREATE TABLE vault (id INT) WITH (
  'connector' = 'blackhole', 'password' = 'hunter2', 's3.secret-key' = 'sesame',
  'key.format' = 'json');
CREATE VIEW big_orders AS SELECT * FROM orders WHERE amount > 10;
CREATE TABLE order_sink (customer STRING, amount DOUBLE) WITH ('connector' = 'blackhole');
"""
PYTHON_TABLES = """%%flink
stenv.create_temporary_view(
    "py_people", stenv.from_elements([(1, "ada")], ["person_id", "person_name"]))
stenv.execute_sql("CREATE TABLE py_events (event_id INT, kind STRING) "
                  "WITH ('connector' = 'blackhole')")
"""
JOB = """%%flink.ssql(jobName=completion_job)
INSERT INTO order_sink SELECT customer, amount FROM orders
"""


def java_children(kernel: KernelDriver) -> list[str]:
    return [p.name() for p in psutil.Process(kernel.pid).children(recursive=True)
            if "java" in p.name()]


def matches(reply: dict[str, Any]) -> list[str]:
    assert reply["status"] == "ok", reply
    return list(reply["matches"])


def types(reply: dict[str, Any]) -> dict[str, str]:
    return {item["text"]: item["type"] for item in reply["metadata"][TYPES_KEY]}


def help_text(reply: dict[str, Any]) -> str:
    assert reply["status"] == "ok" and reply["found"], reply
    return str(reply["data"]["text/plain"])


def complete_at(kernel: KernelDriver, code: str) -> dict[str, Any]:
    """Complete at the ``|`` in ``code``."""
    cursor = code.index("|")
    return kernel.complete(code.replace("|", "", 1), cursor)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelDriver]:
    cache = tmp_path_factory.mktemp("empty-option-cache")
    # No warm start: what completion does before Flink runs, and that it starts no JVM.
    env = {"XDG_CACHE_HOME": str(cache), **without_warm_start(cache)}
    with running_kernel(env=env) as driver:
        yield driver


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelDriver]:
    with running_kernel(cwd=str(tmp_path_factory.mktemp("completion"))) as driver:
        yield driver


@pytest.fixture(scope="module")
def session(kernel: KernelDriver, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A conf cell (with a Flink 1.x key), tables from SQL and from Python, a running job."""
    checkpoints = tmp_path_factory.mktemp("checkpoints").as_uri()
    kernel.execute(CONF.format(chk=checkpoints), cell_id="conf")
    kernel.execute(DDL, cell_id="ddl")
    kernel.execute(PYTHON_TABLES, cell_id="python")
    kernel.execute(JOB, cell_id="job")
    job_id = kernel.execute("jobs = %flink.jobs\nprint(jobs.loc[0, 'job id'])").stdout.strip()
    return {"checkpoints": checkpoints, "job_id": job_id}


@pytest.fixture(scope="module")
def cached(session: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[KernelDriver]:
    """A new kernel once ``kernel`` has cached Flink's options; it runs no Flink cell."""
    with running_kernel(env=without_warm_start(tmp_path_factory.mktemp("cached"))) as driver:
        yield driver


# ------------------------------------------------------------------------- no JVM


def test_before_any_flink_cell_sql_offers_keywords_only_and_starts_no_jvm(
        fresh: KernelDriver) -> None:
    reply = fresh.complete("%%flink.ssql\nSEL")
    assert matches(reply) == ["SELECT"] and types(reply) == {"SELECT": "keyword"}
    assert matches(fresh.complete("%%flink.bsql\nselect * fr")) == ["freshness", "from"]
    # Nothing Flink knows, and no Python name either (Python's abs() would match)
    assert matches(fresh.complete("%%flink.ssql\nSELECT * FROM abs")) == []
    assert not fresh.inspect("%%flink.ssql\nSELECT * FROM orders")["found"]
    assert matches(fresh.complete("%%flink.conf\nflink.execution.m")) == ["flink.execution.mode"]
    assert matches(fresh.complete("%%flink.conf\nflink.execution.mode ")) == ["local", "remote"]
    assert "execution.checkpointing.interval" in matches(
        fresh.complete("%%flink.conf\nexecution.checkpointing.inter"))
    assert "when Flink first runs" in help_text(
        fresh.inspect("%%flink.conf\nexecution.checkpointing.interval 10 s", 20))
    assert matches(fresh.complete("%%flink.ssql(resume")) == [
        "resumeFromSavepoint", "resumeFromLatestCheckpoint", "resumeFrom"]
    fresh.pump(0.5)
    said = [m for m in fresh.iopub if m["msg_type"] in ("stream", "display_data", "error")]
    assert said == [], "completion printed something"
    assert java_children(fresh) == []


def test_python_completion_still_works_in_plain_and_flink_cells(fresh: KernelDriver) -> None:
    assert "path" in matches(fresh.complete("import os\nos.pa"))
    assert "path" in matches(fresh.complete("%%flink\nimport os\nos.pa"))
    assert "%%flink.ssql" in matches(fresh.complete("%%flink.ss"))
    assert java_children(fresh) == []


def test_a_plain_ipython_kernel_completes_after_load_ext(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    cache = tmp_path_factory.mktemp("plain-kernel-cache")
    with running_kernel("python3", env={"XDG_CACHE_HOME": str(cache),
                                        **without_warm_start(cache)}) as plain:
        plain.execute("%load_ext jupyter_flink")
        assert matches(plain.complete("%%flink.conf\nflink.execution.m")) == [
            "flink.execution.mode"]
        assert matches(plain.complete("%%flink.ssql(jobName=x, type=ap")) == ["append"]
        assert "SELECT" in matches(plain.complete("%%flink.ssql\nSEL"))
        assert "path" in matches(plain.complete("%%flink\nimport os\nos.pa"))
        assert java_children(plain) == []


# ------------------------------------------------------------------------- %%flink.conf


def test_conf_keys_come_from_flinks_option_registry(kernel: KernelDriver,
                                                    session: dict[str, Any]) -> None:
    code = "%%flink.conf\nexecution.checkpointing.inter"
    reply = kernel.complete(code)
    assert matches(reply) == ["execution.checkpointing.interval",
                              "execution.checkpointing.interval-during-backlog"]
    assert reply["cursor_start"] == len("%%flink.conf\n")
    assert reply["cursor_end"] == len(code)
    assert types(reply)["execution.checkpointing.interval"] == "Duration"
    # A dotted segment finds the key too
    assert "execution.checkpointing.interval" in matches(
        kernel.complete("%%flink.conf\ncheckpointing.interv"))


def test_flink_1_key_completes_and_shows_its_flink_2_name(kernel: KernelDriver,
                                                          session: dict[str, Any]) -> None:
    reply = kernel.complete("%%flink.conf\nstate.checkpoints.d")
    assert "state.checkpoints.dir" in matches(reply)
    assert "execution.checkpointing.dir" in types(reply)["state.checkpoints.dir"]
    text = help_text(kernel.inspect("%%flink.conf\nstate.checkpoints.dir /tmp", 25))
    assert "Flink 2 calls it execution.checkpointing.dir" in text
    assert "checkpoint" in text.lower().split("\n", 2)[2]  # Flink's own description
    assert f"Current value: {session['checkpoints']}  (set by %%flink.conf)" in text


def test_conf_values_follow_the_options_type(kernel: KernelDriver,
                                             session: dict[str, Any]) -> None:
    retention = "%%flink.conf\nexecution.checkpointing.externalized-checkpoint-retention "
    assert matches(kernel.complete(retention + "RET")) == ["RETAIN_ON_CANCELLATION"]
    assert set(matches(kernel.complete(retention))) == {
        "DELETE_ON_CANCELLATION", "RETAIN_ON_CANCELLATION", "NO_EXTERNALIZED_CHECKPOINTS"}
    assert matches(kernel.complete("%%flink.conf\nexecution.checkpointing.unaligned.enabled t")
                   ) == ["true"]
    assert matches(kernel.complete("%%flink.conf\nexecution.checkpointing.interval=10 m")
                   ) == ["10 ms", "10 min"]


def test_shift_tab_on_a_conf_key_shows_flinks_description_and_the_value_in_force(
        kernel: KernelDriver, session: dict[str, Any]) -> None:
    reply = kernel.inspect("%%flink.conf\nexecution.checkpointing.interval 10 s", 25)
    text = help_text(reply)
    assert text.startswith("execution.checkpointing.interval  (Duration, per job)")
    assert "checkpoints" in text  # Flink's description
    assert "Default: (none)" in text
    assert "Current value: 5 s  (set by %%flink.conf)" in text
    assert "text/markdown" in reply["data"]


# ------------------------------------------------------------------------- headers


def test_cell_headers_complete_properties_values_and_job_options(
        kernel: KernelDriver, session: dict[str, Any]) -> None:
    assert matches(kernel.complete("%%flink.ssql(resume")) == [
        "resumeFromSavepoint", "resumeFromLatestCheckpoint", "resumeFrom"]
    assert "resultName" in matches(kernel.complete("%%flink.ssql(res"))
    assert matches(kernel.complete("%%flink.ssql(jobName=x, type=")) == [
        "single", "append", "update"]
    assert matches(kernel.complete("%%flink.bsql(wait=")) == ["true", "false"]
    assert "type" not in matches(kernel.complete("%%flink(ty"))  # SQL cells only
    reply = kernel.complete("%%flink(table.exec.mini-batch.en")
    assert matches(reply) == ["table.exec.mini-batch.enabled"]
    assert types(reply)["table.exec.mini-batch.enabled"] == "Boolean"
    assert matches(complete_at(kernel, "%%flink.ssql(jobName=a, resume|, type=update)\nSELECT 1")
                   ) == ["resumeFromSavepoint", "resumeFromLatestCheckpoint", "resumeFrom"]
    assert "cell's job is stopped" in help_text(kernel.inspect("%%flink.ssql(savepointDir=x)",
                                                               16))
    assert "mini-batch" in help_text(kernel.inspect("%%flink.ssql(table.exec.mini-batch."
                                                    "enabled=true)", 20))


# ------------------------------------------------------------------------- SQL


def test_sql_completes_keywords_functions_tables_views_and_columns(
        kernel: KernelDriver, session: dict[str, Any]) -> None:
    assert matches(kernel.complete("%%flink.ssql\nSELECT * FR")) == ["FROM"]
    assert "orders" in matches(kernel.complete("%%flink.ssql\nSELECT * FROM ord"))
    reply = complete_at(kernel, "%%flink.ssql\nSELECT cust| FROM orders")
    assert matches(reply) == ["customer"] and types(reply) == {"customer": "column"}
    assert matches(kernel.complete("%%flink.ssql\nSELECT o.am")) == []  # no alias yet
    assert matches(complete_at(kernel, "%%flink.ssql\nSELECT o.am| FROM orders o")
                   ) == ["o.amount"]
    reply = kernel.complete("%%flink.bsql\nCREATE TABLE t (a INT);\nSELECT * FROM big_")
    assert types(reply) == {"big_orders": "view"}
    assert "UPPER" in matches(kernel.complete("%%flink.ssql\nSELECT UPP"))
    assert "default_catalog.default_database" in matches(
        kernel.complete("%%flink.ssql\nSELECT * FROM default_catalog.def"))
    assert "default_catalog" in matches(kernel.complete("%%flink.ssql\nUSE CATALOG default_"))
    assert matches(kernel.complete("%flink.bsql SELECT * FROM order_s")) == ["order_sink"]


def test_sql_sees_tables_created_in_python_code(kernel: KernelDriver,
                                                session: dict[str, Any]) -> None:
    reply = kernel.complete("%%flink.ssql\nSELECT * FROM py_")
    assert types(reply) == {"py_events": "table", "py_people": "view"}
    assert matches(complete_at(kernel, "%%flink.ssql\nSELECT person_n| FROM py_people")
                   ) == ["person_name"]
    text = help_text(kernel.inspect("%%flink.ssql\nSELECT * FROM py_people", 27))
    assert "temporary view" in text and "person_name" in text


def test_shift_tab_on_a_table_shows_its_schema_with_secrets_masked(
        kernel: KernelDriver, session: dict[str, Any]) -> None:
    text = help_text(kernel.inspect("%%flink.ssql\nSELECT * FROM orders", 27))
    assert text.startswith("default_catalog.default_database.orders  (table)")
    assert "order_id  BIGINT NOT NULL" in text
    assert "Watermark: FOR ts AS `ts` - INTERVAL '5' SECOND" in text
    assert "Primary key: order_id" in text
    assert "'connector' = 'datagen'" in text
    vault = help_text(kernel.inspect("%%flink.ssql\nINSERT INTO vault SELECT 1", 25))
    assert "hunter2" not in vault and "sesame" not in vault
    assert "'password' = '******'" in vault and "'s3.secret-key' = '******'" in vault
    assert "'key.format' = 'json'" in vault
    view = help_text(kernel.inspect("%%flink.ssql\nSELECT * FROM big_orders", 27))
    assert "(view)" in view and "WHERE `amount` > 10" in view


def test_shift_tab_on_a_function_shows_its_signature(kernel: KernelDriver,
                                                     session: dict[str, Any]) -> None:
    text = help_text(kernel.inspect("%%flink.bsql\nSELECT UPPER(customer) FROM orders", 22))
    assert "UPPER(<CHARACTER_STRING>)" in text and "built-in scalar function" in text


# ------------------------------------------------------------------------- jobs, catalog


def test_job_magics_complete_the_kernels_job_names_and_ids(kernel: KernelDriver,
                                                           session: dict[str, Any]) -> None:
    job_id = session["job_id"]
    for magic in ("cancel", "stop", "savepoint", "checkpoints"):
        reply = kernel.complete(f"%flink.{magic} compl")
        assert matches(reply) == ["completion_job"], magic
        assert types(reply)["completion_job"].startswith("job, ")
    assert matches(kernel.complete(f"%flink.savepoint {job_id[:6]}")) == [job_id]
    assert matches(kernel.complete("%flink.stop --")) == ["--all", "--dir"]
    assert matches(kernel.complete("%flink.cancel nothing_like_it")) == []


def test_flink_catalog_shows_a_collapsible_tree(kernel: KernelDriver,
                                               session: dict[str, Any]) -> None:
    reply = kernel.execute("%flink.catalog")
    html = reply.data("text/html")[0]
    assert "<details open><summary><b>default_catalog</b>" in html
    assert "orders" in html and "py_people" in html and "customer" in html
    text = reply.result or ""
    assert "default_catalog (current)" in text and "order_id" in text and "[view]" in text


def test_python_completion_still_works_next_to_a_running_session(
        kernel: KernelDriver, session: dict[str, Any]) -> None:
    assert "get_parallelism" in matches(kernel.complete("%%flink\nsenv.get_paral"))
    assert "get_parallelism" in matches(kernel.complete("senv.get_paral"))


# ------------------------------------------------------------------------- cached options


def test_cached_options_complete_in_a_new_kernel_without_a_jvm(cached: KernelDriver) -> None:
    reply = cached.complete("%%flink.conf\nexecution.checkpointing.inter")
    assert matches(reply) == ["execution.checkpointing.interval",
                              "execution.checkpointing.interval-during-backlog"]
    assert "execution.checkpointing.dir" in types(
        cached.complete("%%flink.conf\nstate.checkpoints.d"))["state.checkpoints.dir"]
    text = help_text(cached.inspect("%%flink.conf\nexecution.checkpointing.interval", 20))
    assert "Flink's description appears once Flink runs" in text
    assert java_children(cached) == []


def test_shift_tab_outside_flink_magics_is_ipythons(cached: KernelDriver) -> None:
    assert "Return the number of items" in help_text(cached.inspect("len", 3))
