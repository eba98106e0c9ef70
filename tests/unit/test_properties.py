"""Zeppelin paragraph headers: syntax (parse_header), magic lines, and typed properties."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from jupyter_flink.errors import PropertyError
from jupyter_flink.parsing.durations import parse_duration as parse_any_duration
from jupyter_flink.parsing.header import (
    KINDS,
    parse_header,
    rewrite_cell_magic_line,
    split_magic_header,
)
from jupyter_flink.parsing.properties import PROPERTY_HELP, ParagraphProperties


def parse_duration(text: str) -> timedelta:
    """Durations as cell headers read them: a bare number is milliseconds (Flink's rule)."""
    return parse_any_duration(text, bare_unit="ms")


def props(header: str, kind: str = "ssql") -> ParagraphProperties:
    return ParagraphProperties.from_header(parse_header(header), kind=kind)


# --------------------------------------------------------------------------- parse_header


@pytest.mark.parametrize("line", ["", "   ", "\t\n"])
def test_empty_line_has_no_properties(line: str) -> None:
    assert parse_header(line) == {}


def test_empty_parentheses_have_no_properties() -> None:
    assert parse_header("()") == {}
    assert parse_header("( , ,, )") == {}


def test_contract_example() -> None:
    header = "(type=update, jobName=word_count, savepointDir=file:///tmp/sp)"
    assert parse_header(header) == {
        "type": "update",
        "jobName": "word_count",
        "savepointDir": "file:///tmp/sp",
    }


def test_zeppelin_single_template_unquoted_keeps_markup() -> None:
    # Zeppelin's own example: <, >, {, }, / are ordinary value characters.
    assert parse_header("(type=single, template=<h1>Total {0}</h1>)") == {
        "type": "single",
        "template": "<h1>Total {0}</h1>",
    }


def test_double_quotes_protect_commas() -> None:
    assert parse_header('(type=update, parallelism=2, jobName="wc, v2")') == {
        "type": "update",
        "parallelism": "2",
        "jobName": "wc, v2",
    }


def test_quoted_template_with_comma_stays_one_value() -> None:
    header = '(type=single, template="<h1>Total {0}, {1}</h1>")'
    assert parse_header(header)["template"] == "<h1>Total {0}, {1}</h1>"


def test_quotes_protect_equals_and_parentheses() -> None:
    assert parse_header('(jobName="a=b (c)", x.y=")")') == {"jobName": "a=b (c)", "x.y": ")"}


def test_leading_and_trailing_whitespace_ignored() -> None:
    assert parse_header("  \t( jobName = wc ,  wait )  \n") == {"jobName": "wc", "wait": "true"}


def test_whitespace_inside_value_is_kept() -> None:
    assert parse_header("(jobName = word  count )") == {"jobName": "word  count"}


def test_whitespace_inside_quotes_is_kept() -> None:
    assert parse_header('(jobName="  padded  ")') == {"jobName": "  padded  "}


def test_only_first_equals_separates_key_and_value() -> None:
    assert parse_header("(a.b=c=d)") == {"a.b": "c=d"}


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (r"(jobName=say \"hi\")", 'say "hi"'),
        (r"(jobName=back\\slash)", "back\\slash"),
        (r"(jobName=a\,b)", "a,b"),
        (r"(jobName=a\=b)", "a=b"),
        (r"(jobName=a\)b)", "a)b"),
        (r'(jobName="in \"quotes\", too")', 'in "quotes", too'),
        (r"(jobName=\ lead)", " lead"),
    ],
)
def test_backslash_escapes_any_character(header: str, value: str) -> None:
    assert parse_header(header) == {"jobName": value}


def test_bare_key_means_true() -> None:
    assert parse_header("(wait, resumeFromSavepoint)") == {
        "wait": "true",
        "resumeFromSavepoint": "true",
    }


def test_empty_items_between_commas_ignored() -> None:
    assert parse_header("(,a=1,,  ,b=2,)") == {"a": "1", "b": "2"}


def test_explicitly_empty_value_is_kept_empty() -> None:
    assert parse_header('(a=, b="")') == {"a": "", "b": ""}


def test_balanced_unquoted_parentheses_belong_to_the_value() -> None:
    assert parse_header("(template=f(x, y), wait)") == {"template": "f(x, y)", "wait": "true"}


def test_quoted_value_can_be_mixed_with_plain_text() -> None:
    assert parse_header('(jobName=wc-"a, b"-2)') == {"jobName": "wc-a, b-2"}


def test_missing_parentheses_is_an_error_with_an_example() -> None:
    with pytest.raises(PropertyError, match=r"inside parentheses.*%%flink\.ssql\(type=update"):
        parse_header("type=update")


def test_text_after_closing_paren_is_an_error() -> None:
    with pytest.raises(PropertyError, match=r"'extra' after the closing parenthesis"):
        parse_header("(type=update) extra")


def test_unterminated_quote_says_where() -> None:
    with pytest.raises(PropertyError, match=r"Unterminated double quote.*'\"wc, v2\)'") as info:
        parse_header('(type=update, jobName="wc, v2)')
    assert "Close the quote" in str(info.value)


def test_unclosed_parenthesis_says_where() -> None:
    with pytest.raises(PropertyError, match=r"Unclosed parenthesis.*'\(x, y'"):
        parse_header("(template=f(x, y")


def test_missing_closing_parenthesis_of_header() -> None:
    with pytest.raises(PropertyError, match=r"Unclosed parenthesis.*'\(type=update'"):
        parse_header("(type=update")


def test_long_excerpt_is_shortened() -> None:
    with pytest.raises(PropertyError) as info:
        parse_header('(jobName="' + "x" * 100)
    assert "..." in str(info.value)
    assert "x" * 100 not in str(info.value)


def test_duplicate_key_is_an_error_naming_it() -> None:
    with pytest.raises(PropertyError, match=r"jobName is given twice \(jobName=a and jobName=b\)"):
        parse_header("(jobName=a, jobName=b)")


def test_duplicate_key_error_carries_the_name() -> None:
    with pytest.raises(PropertyError) as info:
        parse_header("(wait, wait=false)")
    assert info.value.name == "wait"


def test_value_without_key_is_an_error() -> None:
    with pytest.raises(PropertyError, match=r"no name: '=3'.*name=value"):
        parse_header("(=3)")


def test_trailing_lone_backslash_is_an_error() -> None:
    with pytest.raises(PropertyError, match="lone backslash"):
        parse_header("(jobName=a\\")


# --------------------------------------------------------------------------- magic lines


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("%%flink.ssql(type=update)", ("flink.ssql", "(type=update)")),
        ("%%flink.ssql  (a=b)", ("flink.ssql", "(a=b)")),
        ("%%flink.ssql (a=b)\n", ("flink.ssql", "(a=b)")),
        ("%%flink", ("flink", "")),
        ("%%flink\n", ("flink", "")),
        ("%%flink_bsql(parallelism=2)", ("flink_bsql", "(parallelism=2)")),
        ("%%flink.conf", ("flink.conf", "")),
    ],
)
def test_split_magic_header(line: str, expected: tuple[str, str]) -> None:
    assert split_magic_header(line) == expected


@pytest.mark.parametrize("line", ["SELECT 1", "%flink.ssql(a=b)", ""])
def test_split_magic_header_rejects_non_cell_magic(line: str) -> None:
    with pytest.raises(ValueError, match="not a cell magic line"):
        split_magic_header(line)


@pytest.mark.parametrize(
    "name",
    ["flink", "flink.conf", "flink.ssql", "flink.bsql", "flink_conf", "flink_ssql", "flink_bsql"],
)
def test_rewrite_inserts_space_for_our_magics(name: str) -> None:
    assert rewrite_cell_magic_line(f'%%{name}(a=b, c="d")\n') == f'%%{name} (a=b, c="d")\n'


@pytest.mark.parametrize(
    "line",
    [
        "%%flink.ssql (type=update)",  # already spaced
        "%%flink.ssql",
        "%%flinkx(a=b)",
        "%%flink.sql(a=b)",
        "%%bash(a)",
        "%flink.ssql(a=b)",
        "print('%%flink(')",
        "SELECT (1)",
        "",
    ],
)
def test_rewrite_leaves_other_lines_unchanged(line: str) -> None:
    assert rewrite_cell_magic_line(line) == line


def test_rewrite_then_split_round_trip() -> None:
    line = rewrite_cell_magic_line("%%flink.ssql(type=single, template=<h1>{0}</h1>)")
    name, header = split_magic_header(line)
    assert name == "flink.ssql"
    assert parse_header(header) == {"type": "single", "template": "<h1>{0}</h1>"}


def test_rewrite_only_touches_the_first_line() -> None:
    cell = "%%flink.ssql(a=b)\n%%flink.ssql(c=d)\n"
    assert rewrite_cell_magic_line(cell) == "%%flink.ssql (a=b)\n%%flink.ssql(c=d)\n"


# --------------------------------------------------------------------------- typed properties


def test_defaults_when_nothing_given() -> None:
    p = ParagraphProperties.from_header({}, kind="ssql")
    assert p.kind == "ssql"
    assert p.result_type == "update"
    assert p.refresh_interval_ms == 3000
    assert p.max_resubmits == 3
    assert p.restart_policy == "never"
    assert p.resume_from_savepoint is False
    assert p.resume_from_latest_checkpoint is False
    assert p.wait is False
    assert p.job_name is None
    assert p.restore_path is None
    assert p.flink_overrides == {}


def test_full_conversion() -> None:
    p = props(
        '(type=append, jobName="wc, v2", parallelism=2, maxParallelism=128,'
        " savepointDir=file:///tmp/sp, resumeFromSavepoint=TRUE, resumeFromLatestCheckpoint=false,"
        " allowNonRestoredState, wait, runAsOne=True, refreshInterval=500, maxRows=100,"
        " resultName=counts, autoSavepointInterval=10min, restartPolicy=fromSavepointOnFailure,"
        " maxResubmits=0, claimMode=no_claim, execution.savepoint.path=file:/tmp/sp/savepoint-1)"
    )
    assert p == ParagraphProperties(
        kind="ssql",
        job_name="wc, v2",
        parallelism=2,
        max_parallelism=128,
        savepoint_dir="file:///tmp/sp",
        resume_from_savepoint=True,
        resume_from_latest_checkpoint=False,
        restore_path="file:/tmp/sp/savepoint-1",
        claim_mode="NO_CLAIM",
        allow_non_restored_state=True,
        wait=True,
        run_as_one=True,
        result_type="append",
        refresh_interval_ms=500,
        max_rows=100,
        result_name="counts",
        auto_savepoint_interval=timedelta(minutes=10),
        restart_policy="fromSavepointOnFailure",
        max_resubmits=0,
    )


def test_zeppelin_single_example_is_valid() -> None:
    p = props("(type=single, template=<h1>Total {0}</h1>)")
    assert (p.result_type, p.template) == ("single", "<h1>Total {0}</h1>")


@pytest.mark.parametrize("name", ["execution.savepoint.path", "execution.state-recovery.path"])
def test_restore_path_under_either_name(name: str) -> None:
    assert props(f"({name}=file:/tmp/chk/abc/chk-4)", "flink").restore_path == (
        "file:/tmp/chk/abc/chk-4"
    )


def test_restore_path_both_names_same_value_is_fine() -> None:
    p = props("(execution.savepoint.path=/a, execution.state-recovery.path=/a)", "flink")
    assert p.restore_path == "/a"
    assert p.flink_overrides == {}


def test_restore_path_both_names_different_values_is_an_error() -> None:
    with pytest.raises(PropertyError) as info:
        props("(execution.savepoint.path=/a, execution.state-recovery.path=/b)", "flink")
    message = str(info.value)
    assert "execution.savepoint.path=/a" in message
    assert "execution.state-recovery.path=/b" in message
    assert "Keep only one" in message
    assert info.value.name == "execution.state-recovery.path"


@pytest.mark.parametrize("name", ["claimMode", "execution.state-recovery.claim-mode"])
@pytest.mark.parametrize(("text", "mode"), [("claim", "CLAIM"), ("No_Claim", "NO_CLAIM")])
def test_claim_mode_under_either_name(name: str, text: str, mode: str) -> None:
    assert props(f"({name}={text})", "flink").claim_mode == mode


def test_claim_mode_names_agreeing_case_insensitively_is_fine() -> None:
    p = props("(claimMode=claim, execution.state-recovery.claim-mode=CLAIM)", "flink")
    assert p.claim_mode == "CLAIM"


def test_claim_mode_names_disagreeing_is_an_error() -> None:
    with pytest.raises(PropertyError, match=r"claimMode=CLAIM and .*claim-mode=NO_CLAIM"):
        props("(claimMode=CLAIM, execution.state-recovery.claim-mode=NO_CLAIM)", "flink")


@pytest.mark.parametrize(("text", "value"), [("true", True), ("TRUE", True), ("False", False)])
def test_booleans_are_case_insensitive(text: str, value: bool) -> None:
    assert props(f"(resumeFromLatestCheckpoint={text})", "flink").resume_from_latest_checkpoint is (
        value
    )


@pytest.mark.parametrize("text", ["yes", "1", "on", ""])
def test_bad_boolean_names_property_and_accepted_values(text: str) -> None:
    with pytest.raises(PropertyError) as info:
        props(f"(wait={text})", "flink")
    assert str(info.value) == f"wait={text}: expected true or false."
    assert info.value.name == "wait"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("(parallelism=abc)", "parallelism=abc: expected a whole number >= 1."),
        ("(parallelism=0)", "parallelism=0: expected a whole number >= 1."),
        ("(parallelism=1.5)", "parallelism=1.5: expected a whole number >= 1."),
        (
            "(maxParallelism=32769)",
            "maxParallelism=32769: expected a whole number from 1 to 32768.",
        ),
        ("(maxParallelism=0)", "maxParallelism=0: expected a whole number from 1 to 32768."),
        ("(refreshInterval=99)", "refreshInterval=99: expected milliseconds >= 100."),
        ("(refreshInterval=3s)", "refreshInterval=3s: expected milliseconds >= 100."),
        ("(maxRows=0)", "maxRows=0: expected a whole number >= 1."),
        ("(maxResubmits=-1)", "maxResubmits=-1: expected a whole number >= 0."),
        ("(type=table)", "type=table: expected single, append or update."),
        (
            "(restartPolicy=always)",
            "restartPolicy=always: expected never or fromSavepointOnFailure.",
        ),
        ("(claimMode=LEGACY)", "claimMode=LEGACY: expected CLAIM or NO_CLAIM."),
        ("(resultName=2x)", "resultName=2x: expected a Python identifier."),
        ("(resultName=class)", "resultName=class: expected a Python identifier."),
        ("(jobName=)", "jobName=: expected text."),
    ],
)
def test_ill_typed_values(header: str, message: str) -> None:
    with pytest.raises(PropertyError) as info:
        props(header)
    assert str(info.value) == message
    assert info.value.name == header[1:].split("=")[0]


@pytest.mark.parametrize(("text", "value"), [("1", 1), ("32768", 32768), ("+4", 4)])
def test_max_parallelism_bounds(text: str, value: int) -> None:
    assert props(f"(maxParallelism={text})", "flink").max_parallelism == value


def test_refresh_interval_minimum_is_accepted() -> None:
    assert props("(refreshInterval=100)").refresh_interval_ms == 100


@pytest.mark.parametrize("kind", ["ssql", "bsql"])
def test_type_values_are_normalized(kind: str) -> None:
    assert props("(type=SINGLE)", kind).result_type == "single"


@pytest.mark.parametrize(
    "text", ["never", "NEVER", "fromSavepointOnFailure", "FromSavePointOnFailure"]
)
def test_restart_policy_is_normalized(text: str) -> None:
    expected = "never" if text.lower() == "never" else "fromSavepointOnFailure"
    assert props(f"(restartPolicy={text})", "flink").restart_policy == expected


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("10min", timedelta(minutes=10)),
        ("30 s", timedelta(seconds=30)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1500", timedelta(milliseconds=1500)),
        ("1000ms", timedelta(seconds=1)),
        ("5 MIN", timedelta(minutes=5)),
        ("3 seconds", timedelta(seconds=3)),
        ("1.5h", timedelta(minutes=90)),  # one duration grammar everywhere (as the CLI)
        ("1m30s", timedelta(seconds=90)),
    ],
)
def test_auto_savepoint_interval_durations(text: str, delta: timedelta) -> None:
    assert props(f"(autoSavepointInterval={text})", "flink").auto_savepoint_interval == delta


@pytest.mark.parametrize("text", ["500ms", "999", "0s", "ten minutes", "10 fortnights", "0.5s", ""])
def test_bad_auto_savepoint_interval(text: str) -> None:
    with pytest.raises(PropertyError, match=r"autoSavepointInterval=.*expected a duration >= 1 s"):
        props(f"(autoSavepointInterval={text})", "flink")


def test_parse_duration_plain_number_is_milliseconds() -> None:
    assert parse_duration("250") == timedelta(milliseconds=250)
    assert parse_duration(" 1 m ") == timedelta(minutes=1)


def test_parse_duration_rejects_junk() -> None:
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_flink_option_overrides_are_kept_unvalidated() -> None:
    p = props("(table.exec.mini-batch.enabled=true, pipeline.name=x, made.up.key=anything)")
    assert p.flink_overrides == {
        "table.exec.mini-batch.enabled": "true",
        "pipeline.name": "x",
        "made.up.key": "anything",
    }


def test_known_dotted_keys_are_not_overrides() -> None:
    p = props("(execution.state-recovery.path=/x, execution.state-recovery.claim-mode=CLAIM)")
    assert p.flink_overrides == {}


def test_unknown_property_suggests_close_match_and_lists_accepted() -> None:
    with pytest.raises(PropertyError) as info:
        props("(paralelism=2)")
    message = str(info.value)
    assert "Unknown paragraph property 'paralelism'" in message
    assert "Did you mean parallelism?" in message
    assert "Accepted: jobName, parallelism," in message
    assert "any Flink option" in message
    assert info.value.name == "paralelism"


def test_unknown_property_wrong_case_suggests_right_case() -> None:
    with pytest.raises(PropertyError, match=r"Did you mean jobName\?"):
        props("(jobname=wc)")


def test_miscased_known_dotted_name_is_not_taken_as_flink_option() -> None:
    with pytest.raises(PropertyError) as info:
        props("(execution.Savepoint.path=/x)", "flink")
    assert "Did you mean execution.savepoint.path?" in str(info.value)
    assert info.value.name == "execution.Savepoint.path"


def test_unknown_property_without_close_match() -> None:
    with pytest.raises(PropertyError) as info:
        props("(colour=blue)")
    assert "Did you mean" not in str(info.value)
    assert "Accepted:" in str(info.value)


def test_accepted_list_depends_on_kind() -> None:
    with pytest.raises(PropertyError) as info:
        props("(colour=blue)", "flink")
    assert "refreshInterval" not in str(info.value)
    assert "savepointDir" in str(info.value)


def test_zeppelin_comma_split_fragment_hints_at_quoting() -> None:
    # Zeppelin stored "{1} </h1>" as a property after splitting this template at its comma.
    with pytest.raises(PropertyError) as info:
        props("(type=single, template=<h1>Total {0}, {1} </h1>)")
    assert info.value.name == "{1} </h1>"
    assert "put that value in double quotes" in str(info.value)


@pytest.mark.parametrize(
    "header",
    [
        "(type=single)",
        "(refreshInterval=500)",
        "(template=x)",
        "(maxRows=5)",
        "(resultName=df)",
        "(runAsOne=true)",
    ],
)
def test_sql_only_properties_rejected_for_flink_cells(header: str) -> None:
    name = header[1:].split("=")[0]
    with pytest.raises(PropertyError) as info:
        props(header, "flink")
    assert str(info.value) == (
        f"Property {name} is only for %%flink.ssql and %%flink.bsql cells, not %%flink. "
        f"Remove {name} from this cell's header."
    )
    assert info.value.name == name


@pytest.mark.parametrize("kind", ["ssql", "bsql"])
def test_sql_only_properties_accepted_for_sql_cells(kind: str) -> None:
    p = props("(type=single, refreshInterval=500, maxRows=5, resultName=df, runAsOne)", kind)
    assert (p.result_type, p.refresh_interval_ms, p.max_rows, p.result_name, p.run_as_one) == (
        "single",
        500,
        5,
        "df",
        True,
    )


def test_template_needs_type_single() -> None:
    with pytest.raises(PropertyError) as info:
        props("(template=<h1>{0}</h1>)")
    assert "only used with type=single" in str(info.value)
    assert "Add type=single" in str(info.value)
    assert info.value.name == "template"


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        ParagraphProperties.from_header({}, kind="pyflink")


def test_bare_flag_from_header_is_true() -> None:
    assert props("(resumeFromSavepoint)", "flink").resume_from_savepoint is True


def test_properties_are_frozen() -> None:
    p = props("(jobName=wc)")
    with pytest.raises(AttributeError):
        p.job_name = "other"  # type: ignore[misc]


# --------------------------------------------------------------------------- help table


def test_help_table_lists_every_contract_property() -> None:
    names = [name for name, _, _ in PROPERTY_HELP]
    for required in [
        "jobName",
        "parallelism",
        "maxParallelism",
        "savepointDir",
        "resumeFromSavepoint",
        "resumeFromLatestCheckpoint",
        "execution.savepoint.path",
        "execution.state-recovery.path",
        "allowNonRestoredState",
        "type",
        "refreshInterval",
        "template",
        "wait",
        "runAsOne",
    ]:
        assert required in names
    assert len(names) == len(set(names))


def test_help_table_shows_defaults() -> None:
    rows = {name: accepted for name, accepted, _ in PROPERTY_HELP}
    assert rows["type"] == "single, append or update; default update"
    assert rows["refreshInterval"].endswith("default 3000")
    assert rows["maxResubmits"].endswith("default 3")
    assert rows["wait"].endswith("default false")


def test_every_help_row_is_accepted_by_some_kind() -> None:
    # Each named property in the help must really be accepted somewhere (no stale rows).
    for name, _, meaning in PROPERTY_HELP:
        if name.startswith("<"):
            continue
        kinds = ["ssql"] if "(SQL cells)" in meaning else list(KINDS)
        for kind in kinds:
            try:
                ParagraphProperties.from_header({name: "x"}, kind=kind)
            except PropertyError as error:  # a bad value is fine, an unknown name is not
                assert "Unknown" not in str(error)


# --------------------------------------------------------------------------- round trips


def quote(value: str) -> str:
    """Quote a value the way the docs tell users to."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def escape(value: str) -> str:
    """Backslash-escape every character instead of quoting."""
    return "".join("\\" + ch for ch in value)


def test_quoted_and_escaped_values_round_trip_seeded() -> None:
    rng = random.Random(20240611)
    alphabet = "ab =,()\"\\\t<>{}/:;'#\nxé"
    for _ in range(500):
        values = {
            f"k{i}.x": "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
            for i in range(rng.randint(1, 4))
        }
        for encode in (quote, escape):
            header = "(" + ", ".join(f"{k}={encode(v)}" for k, v in values.items()) + ")"
            assert parse_header(header) == values, header
