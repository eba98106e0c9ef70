"""Splitting SQL cells into statements, classifying them, and SET/RESET parsing."""

from __future__ import annotations

import pytest

from jupyter_flink.errors import StatementError
from jupyter_flink.parsing.sql import (
    Statement,
    StatementKind,
    classify,
    describe_done,
    parse_reset,
    parse_set,
    split_statements,
)

K = StatementKind


def sqls(text: str) -> list[str]:
    return [s.sql for s in split_statements(text)]


def statement_error(text: str) -> StatementError:
    with pytest.raises(StatementError) as info:
        split_statements(text)
    return info.value


# --------------------------------------------------------------------------- splitting


def test_empty_cell() -> None:
    assert split_statements("") == []
    assert split_statements("  \n\n ;; ;\n") == []


def test_single_statement_without_semicolon() -> None:
    assert split_statements("SELECT 1") == [Statement("SELECT 1", 1, K.SELECT)]


def test_trailing_statement_without_semicolon_counts() -> None:
    assert sqls("SET 'a' = 'b';\nSELECT * FROM t") == ["SET 'a' = 'b'", "SELECT * FROM t"]


def test_text_is_kept_as_written_minus_semicolon_and_outer_whitespace() -> None:
    text = "\n   CREATE TABLE t (\n  id BIGINT\n) WITH ('connector' = 'datagen')  ;  \n"
    assert sqls(text) == ["CREATE TABLE t (\n  id BIGINT\n) WITH ('connector' = 'datagen')"]


def test_line_numbers_are_of_first_token() -> None:
    text = "\n\nSELECT 1;\n\n  SELECT\n2;SELECT 3"
    assert [(s.sql, s.line) for s in split_statements(text)] == [
        ("SELECT 1", 3),
        ("SELECT\n2", 5),
        ("SELECT 3", 6),
    ]


def test_semicolon_in_single_quoted_string() -> None:
    assert sqls("SELECT 'a;b' AS x; SELECT 2") == ["SELECT 'a;b' AS x", "SELECT 2"]


def test_doubled_single_quote_is_an_escape() -> None:
    assert sqls("SELECT 'it''s; fine'; SELECT ''''") == ["SELECT 'it''s; fine'", "SELECT ''''"]


def test_empty_string_literal() -> None:
    assert sqls("SELECT ''; SELECT 1") == ["SELECT ''", "SELECT 1"]


def test_semicolon_in_double_quoted_identifier() -> None:
    assert sqls('SELECT "a;b" FROM t; SELECT 1') == ['SELECT "a;b" FROM t', "SELECT 1"]


def test_semicolon_in_backtick_identifier() -> None:
    assert sqls("CREATE TABLE `my;table` (a INT); DROP TABLE `my;table`") == [
        "CREATE TABLE `my;table` (a INT)",
        "DROP TABLE `my;table`",
    ]


def test_doubled_backtick_is_an_escape() -> None:
    assert sqls("SELECT `a``;b` FROM t;SELECT 1") == ["SELECT `a``;b` FROM t", "SELECT 1"]


def test_quotes_of_other_kinds_inside_a_string() -> None:
    assert sqls("""SELECT 'say "hi"; `x`' ; SELECT 1""") == [
        """SELECT 'say "hi"; `x`'""",
        "SELECT 1",
    ]


def test_semicolon_in_line_comment() -> None:
    assert sqls("SELECT 1 -- not the end; really\n, 2; SELECT 3") == [
        "SELECT 1 -- not the end; really\n, 2",
        "SELECT 3",
    ]


def test_semicolon_in_block_comment() -> None:
    assert sqls("SELECT /* a; b */ 1; SELECT 2") == ["SELECT /* a; b */ 1", "SELECT 2"]


def test_quote_inside_comment_does_not_open_a_string() -> None:
    assert sqls("-- don't\nSELECT 1; /* it's */ SELECT 2") == ["SELECT 1", "SELECT 2"]


def test_comment_markers_inside_strings_are_text() -> None:
    assert sqls("SELECT '--x', '/*y'; SELECT 2") == ["SELECT '--x', '/*y'", "SELECT 2"]


def test_comment_only_statements_are_dropped() -> None:
    text = "-- just a note;\n/* and ; another */;\nSELECT 1;\n-- trailing note"
    assert split_statements(text) == [Statement("SELECT 1", 3, K.SELECT)]


def test_leading_comments_are_stripped_and_line_points_past_them() -> None:
    text = "-- count words\n/* multi\nline */\nSELECT word, COUNT(*) FROM t GROUP BY word"
    assert split_statements(text) == [
        Statement("SELECT word, COUNT(*) FROM t GROUP BY word", 4, K.SELECT)
    ]


def test_trailing_comment_is_not_part_of_the_statement() -> None:
    assert sqls("SELECT 1 -- the answer") == ["SELECT 1"]
    assert sqls("SELECT 1 /* x */;") == ["SELECT 1"]


def test_multiline_block_comment_advances_line_numbers() -> None:
    statements = split_statements("/*\n\n\n*/ SELECT 1;\nSELECT 'a\nb';\nSELECT 3")
    assert [s.line for s in statements] == [4, 5, 7]


def test_hints_stay_in_the_text() -> None:
    assert sqls("SELECT /*+ OPTIONS('a'='b') */ * FROM t") == [
        "SELECT /*+ OPTIONS('a'='b') */ * FROM t"
    ]


def test_crlf_text() -> None:
    statements = split_statements("SELECT 1;\r\nSELECT 2;\r\n")
    assert [(s.sql, s.line) for s in statements] == [("SELECT 1", 1), ("SELECT 2", 2)]


# --------------------------------------------------------------------------- statement sets


EXECUTE_SET = """\
CREATE TABLE src (w STRING) WITH ('connector' = 'datagen');
EXECUTE STATEMENT SET
BEGIN
  INSERT INTO sink1 SELECT w FROM src;
  -- second sink
  INSERT INTO sink2 SELECT CASE WHEN w = 'a' THEN 1 ELSE 0 END FROM src;
END;
SELECT 1;
"""


def test_execute_statement_set_is_one_statement() -> None:
    statements = split_statements(EXECUTE_SET)
    assert [s.kind for s in statements] == [K.DDL, K.STATEMENT_SET, K.SELECT]
    block = statements[1]
    assert block.line == 2
    assert block.sql.startswith("EXECUTE STATEMENT SET\nBEGIN\n  INSERT INTO sink1")
    assert block.sql.endswith("FROM src;\nEND")
    assert block.inserts == (
        "INSERT INTO sink1 SELECT w FROM src",
        "INSERT INTO sink2 SELECT CASE WHEN w = 'a' THEN 1 ELSE 0 END FROM src",
    )


def test_begin_statement_set_is_one_statement() -> None:
    text = "begin statement set;\ninsert into a values (1);\ninsert into b values (2);\nend;"
    assert split_statements(text) == [
        Statement(
            text[:-1],
            1,
            K.STATEMENT_SET,
            ("insert into a values (1)", "insert into b values (2)"),
        )
    ]


def test_statement_set_on_one_line_without_final_semicolon() -> None:
    statements = split_statements("EXECUTE STATEMENT SET BEGIN INSERT INTO a SELECT 1; END")
    assert statements == [
        Statement(
            "EXECUTE STATEMENT SET BEGIN INSERT INTO a SELECT 1; END",
            1,
            K.STATEMENT_SET,
            ("INSERT INTO a SELECT 1",),
        )
    ]


def test_insert_overwrite_in_statement_set() -> None:
    statements = split_statements("BEGIN STATEMENT SET; INSERT OVERWRITE a SELECT 1; END;")
    assert statements[0].inserts == ("INSERT OVERWRITE a SELECT 1",)


def test_statement_set_ignores_empty_statements_inside() -> None:
    statements = split_statements("BEGIN STATEMENT SET;; INSERT INTO a SELECT 1;;\nEND;")
    assert statements[0].inserts == ("INSERT INTO a SELECT 1",)


def test_statement_set_without_end_is_an_error() -> None:
    error = statement_error("SELECT 1;\nBEGIN STATEMENT SET;\nINSERT INTO a SELECT 1;")
    assert str(error) == (
        "The statement set starting on line 2 has no END. "
        "Close it with END; after its last INSERT ...; statement."
    )


def test_end_inside_case_does_not_close_a_statement_set() -> None:
    error = statement_error("EXECUTE STATEMENT SET BEGIN INSERT INTO a SELECT CASE WHEN 1 END;")
    assert "has no END" in str(error)


def test_non_insert_in_statement_set_is_an_error_naming_the_line() -> None:
    error = statement_error("BEGIN STATEMENT SET;\nINSERT INTO a SELECT 1;\nSELECT 2;\nEND;")
    assert str(error).startswith("Line 3: only INSERT statements can go in a statement set")
    assert "'SELECT 2'" in str(error)
    assert error.statement == "SELECT 2"
    assert "Move it before BEGIN or after END" in str(error)


def test_empty_statement_set_is_an_error() -> None:
    error = statement_error("BEGIN STATEMENT SET;\nEND;")
    assert "has no INSERT statement" in str(error)


def test_begin_alone_is_not_a_statement_set() -> None:
    assert split_statements("BEGIN; SELECT 1") == [
        Statement("BEGIN", 1, K.OTHER),
        Statement("SELECT 1", 1, K.SELECT),
    ]


# --------------------------------------------------------------------------- kinds


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("CREATE TABLE t (a INT)", K.DDL),
        ("create temporary view v as select 1", K.DDL),
        ("DROP TABLE t", K.DDL),
        ("ALTER TABLE t RENAME TO u", K.DDL),
        ("INSERT INTO t SELECT 1", K.INSERT),
        ("insert overwrite t select 1", K.INSERT),
        ("SELECT 1", K.SELECT),
        ("WITH x AS (SELECT 1) SELECT * FROM x", K.SELECT),
        ("VALUES (1), (2)", K.SELECT),
        ("(SELECT 1) UNION ALL (SELECT 2)", K.SELECT),
        ("((select 1))", K.SELECT),
        ("SET 'a' = 'b'", K.SET),
        ("set", K.SET),
        ("RESET", K.RESET),
        ("SHOW TABLES", K.SHOW),
        ("EXPLAIN PLAN FOR SELECT 1", K.EXPLAIN),
        ("DESCRIBE t", K.DESCRIBE),
        ("desc t", K.DESCRIBE),
        ("USE CATALOG c", K.USE),
        ("use db1", K.USE),
        ("LOAD MODULE hive", K.OTHER),
        ("42", K.OTHER),
        ("-- only\n/* comments */ SHOW JOBS", K.SHOW),
        ("EXECUTE STATEMENT SET BEGIN INSERT INTO a SELECT 1; END", K.STATEMENT_SET),
        ("BEGIN STATEMENT SET", K.STATEMENT_SET),
    ],
)
def test_classify(sql: str, kind: StatementKind) -> None:
    assert classify(sql) is kind


def test_split_assigns_kinds() -> None:
    text = "SET 'x'='y'; RESET; SHOW TABLES; DESC t; USE c; EXPLAIN SELECT 1; CALL f()"
    assert [s.kind for s in split_statements(text)] == [
        K.SET,
        K.RESET,
        K.SHOW,
        K.DESCRIBE,
        K.USE,
        K.EXPLAIN,
        K.OTHER,
    ]


def test_keyword_prefix_is_not_a_keyword() -> None:
    assert classify("SELECTED_ROWS") is K.OTHER
    assert classify("inserted") is K.OTHER


# --------------------------------------------------------------------------- errors


def test_unterminated_string_names_its_line() -> None:
    error = statement_error("SELECT 1;\nSELECT 'oops;\nSELECT 3;")
    assert str(error) == (
        'Unterminated string literal starting on line 2: "\'oops;". '
        "Close it with ' (write '' for a ' inside it)."
    )


def test_unterminated_double_quoted_identifier() -> None:
    error = statement_error('\n\nSELECT "col FROM t')
    assert str(error).startswith("Unterminated quoted identifier starting on line 3")


def test_unterminated_backtick_identifier() -> None:
    error = statement_error("SELECT `col FROM t")
    assert "Unterminated quoted identifier starting on line 1" in str(error)
    assert "Close it with `" in str(error)


def test_unterminated_block_comment_names_its_line() -> None:
    error = statement_error("SELECT 1;\n\n/* forgot to close\nSELECT 2;")
    assert str(error) == "Unterminated block comment starting on line 3. Close it with */."


def test_long_unterminated_string_is_shortened() -> None:
    error = statement_error("SELECT '" + "x" * 200)
    assert "..." in str(error)
    assert "x" * 100 not in str(error)


def test_line_comment_at_end_without_newline_is_fine() -> None:
    assert sqls("SELECT 1; -- done") == ["SELECT 1"]


# --------------------------------------------------------------------------- SET / RESET


@pytest.mark.parametrize(
    ("sql", "pair"),
    [
        (
            "SET 'execution.checkpointing.interval' = '10 s'",
            ("execution.checkpointing.interval", "10 s"),
        ),
        ("SET 'table.exec.mini-batch.enabled'='true'", ("table.exec.mini-batch.enabled", "true")),
        ("SET table.exec.mini-batch.enabled=true", ("table.exec.mini-batch.enabled", "true")),
        ("set parallelism.default = 2", ("parallelism.default", "2")),
        ("SET pipeline.name = my job;", ("pipeline.name", "my job")),
        ("SET 'pipeline.name' = 'it''s mine'", ("pipeline.name", "it's mine")),
        ("SET 'a=b' = 'c=d'", ("a=b", "c=d")),
        ('SET "k" = "v"', ("k", "v")),
        ("-- comment\nSET k = v -- trailing", ("k", "v")),
        ("SET 'k' = 'a' || 'b'", ("k", "'a' || 'b'")),
    ],
)
def test_parse_set(sql: str, pair: tuple[str, str]) -> None:
    assert parse_set(sql) == pair


@pytest.mark.parametrize("sql", ["SET", "set;", "  SET  ", "/* c */ SET"])
def test_bare_set_means_show(sql: str) -> None:
    assert parse_set(sql) is None


@pytest.mark.parametrize("sql", ["SET k", "SET 'k'", "SET = v", "SET k =", "SET k = ''"])
def test_set_without_key_or_value_is_an_error(sql: str) -> None:
    with pytest.raises(StatementError) as info:
        parse_set(sql)
    assert "SET needs a key and a value" in str(info.value)
    assert "SET 'key' = 'value'" in str(info.value)
    assert info.value.statement == sql


def test_parse_set_rejects_other_statements() -> None:
    with pytest.raises(ValueError, match="not a SET statement"):
        parse_set("SELECT 1")


@pytest.mark.parametrize(
    ("sql", "key"),
    [
        ("RESET", None),
        ("reset;", None),
        ("RESET 'table.exec.mini-batch.enabled'", "table.exec.mini-batch.enabled"),
        ("RESET table.exec.mini-batch.enabled", "table.exec.mini-batch.enabled"),
        ("RESET 'it''s'", "it's"),
        ("RESET pipeline.name -- why", "pipeline.name"),
    ],
)
def test_parse_reset(sql: str, key: str | None) -> None:
    assert parse_reset(sql) == key


def test_parse_reset_rejects_other_statements() -> None:
    with pytest.raises(ValueError, match="not a RESET statement"):
        parse_reset("SET a = b")


def test_set_statements_from_a_split_cell() -> None:
    cell = "SET 'execution.checkpointing.interval' = '10 s';\nSET;\nRESET 'x';\nRESET;"
    statements = split_statements(cell)
    assert [parse_set(s.sql) for s in statements if s.kind is K.SET] == [
        ("execution.checkpointing.interval", "10 s"),
        None,
    ]
    assert [parse_reset(s.sql) for s in statements if s.kind is K.RESET] == ["x", None]


@pytest.mark.parametrize(("sql", "said"), [
    ("CREATE TABLE src (id INT) WITH ('connector' = 'datagen')", "Created table src."),
    ("create temporary view v as select 1", "Created view v."),
    ("CREATE TABLE IF NOT EXISTS cat.db.`my t` (a INT)",
     "Table cat.db.my t is defined (created unless it existed)."),
    ("DROP TABLE IF EXISTS x", "Table x is gone (dropped if it existed)."),
    ("ALTER TABLE t RENAME TO u", "Altered table t."),
    ("CREATE TEMPORARY SYSTEM FUNCTION f AS 'a.B'", "Created function f."),
    ("USE CATALOG c", "Using catalog c."),
    ("USE db1", "Using database db1."),
    ("SELECT 1", None),
])
def test_ddl_says_what_it_did(sql: str, said: str | None) -> None:
    assert describe_done(split_statements(sql)[0]) == said


def test_statement_lines_count_the_magic_line() -> None:
    statements = split_statements("SELECT 1;\n\nSELECT 2", first_line=2)
    assert [s.line for s in statements] == [2, 4]
