"""``%%flink.conf`` bodies: java.util.Properties syntax, line numbers, and errors."""

from __future__ import annotations

import pytest

from jupyter_flink.errors import ConfigurationError
from jupyter_flink.parsing.conf import ConfEntry, parse_conf
from tests.support.seeds import (
    SEED_000,
    SEED_004_FAILURE_RATE,
    SEED_004_FIXED_DELAY,
    SEED_004_NONE,
    SEED_004_RETAINED,
    SEED_004_SAVEPOINTS,
)

# Zeppelin's guide (seed 000), the `%flink.conf` block that enables checkpointing.


def pairs(text: str) -> list[tuple[str, str]]:
    return [(e.key, e.value) for e in parse_conf(text)]


def conf_error(text: str) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        parse_conf(text)
    return info.value


# --------------------------------------------------------------------------- seeds


def test_seed_000_zeppelin_conf_block() -> None:
    assert parse_conf(SEED_000) == [
        ConfEntry(1, "pipeline.time-characteristic", "EventTime"),
        ConfEntry(2, "execution.checkpointing.interval", "10000"),
        ConfEntry(
            3, "execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION"
        ),
        ConfEntry(4, "state.backend", "filesystem"),
        ConfEntry(5, "state.checkpoints.dir", "file:///tmp/flink/checkpoints"),
    ]


def test_seed_004_fixed_delay() -> None:
    assert parse_conf(SEED_004_FIXED_DELAY) == [
        ConfEntry(1, "restart-strategy", "fixed-delay"),
        ConfEntry(2, "restart-strategy.fixed-delay.attempts", "3"),
        ConfEntry(3, "restart-strategy.fixed-delay.delay", "10 s"),
    ]


def test_seed_004_failure_rate() -> None:
    assert pairs(SEED_004_FAILURE_RATE) == [
        ("restart-strategy", "failure-rate"),
        ("restart-strategy.failure-rate.max-failures-per-interval", "3"),
        ("restart-strategy.failure-rate.failure-rate-interval", "5 min"),
        ("restart-strategy.failure-rate.delay", "10 s"),
    ]


def test_seed_004_no_restart() -> None:
    assert pairs(SEED_004_NONE) == [("restart-strategy", "none")]


def test_seed_004_retained_and_savepoint_dir_keep_colons_in_value() -> None:
    assert pairs(SEED_004_RETAINED + SEED_004_SAVEPOINTS) == [
        ("state.checkpoints.num-retained", "20"),
        ("state.savepoints.dir", "hdfs://namenode:9000/flink/savepoints"),
    ]


def test_seeds_together_with_comments_keep_line_numbers() -> None:
    text = "# checkpointing\n" + SEED_000 + "\n! restarts\n" + SEED_004_FIXED_DELAY
    entries = parse_conf(text)
    assert [e.line for e in entries] == [2, 3, 4, 5, 6, 9, 10, 11]
    assert entries[5] == ConfEntry(9, "restart-strategy", "fixed-delay")


# --------------------------------------------------------------------------- separators


@pytest.mark.parametrize(
    "line",
    [
        "key value",
        "key=value",
        "key:value",
        "key: value",
        "key = value",
        "key : value",
        "key\tvalue",
        "  key   value",
        "key \f value",
        "key=value   ",
        "key value\t",
    ],
)
def test_all_separator_styles(line: str) -> None:
    assert pairs(line) == [("key", "value")]


def test_only_one_separator_is_skipped() -> None:
    assert pairs("key == value") == [("key", "= value")]
    assert pairs("key := value") == [("key", "= value")]
    assert pairs("key :: value") == [("key", ": value")]


def test_whitespace_then_separator_then_whitespace() -> None:
    assert pairs("key   =   value") == [("key", "value")]


def test_later_separators_belong_to_the_value() -> None:
    assert pairs("a=b=c") == [("a", "b=c")]
    assert pairs("url: http://host:8081/x") == [("url", "http://host:8081/x")]


def test_value_keeps_inner_whitespace() -> None:
    assert pairs("pipeline.name  my  job  ") == [("pipeline.name", "my  job")]


def test_key_ends_at_whitespace_even_before_equals_in_value() -> None:
    assert pairs("key value=x") == [("key", "value=x")]


# --------------------------------------------------------------------------- comments, blanks


@pytest.mark.parametrize("text", ["", "\n\n", "   \n\t\n", "# a comment", "! bang comment"])
def test_no_entries(text: str) -> None:
    assert parse_conf(text) == []


def test_comments_after_leading_whitespace() -> None:
    assert pairs("   # indented comment\n\t! too\nk v") == [("k", "v")]


def test_hash_inside_a_line_is_not_a_comment() -> None:
    assert pairs("pipeline.name job#1 # not a comment") == [
        ("pipeline.name", "job#1 # not a comment")
    ]


def test_comment_line_ending_in_backslash_does_not_continue() -> None:
    assert parse_conf("# comment \\\nk v") == [ConfEntry(2, "k", "v")]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_line_endings(newline: str) -> None:
    text = newline.join(["a 1", "", "# c", "b 2"])
    assert parse_conf(text) == [ConfEntry(1, "a", "1"), ConfEntry(4, "b", "2")]


# --------------------------------------------------------------------------- continuations


def test_continuation_joins_lines_and_drops_leading_whitespace() -> None:
    text = "pipeline.jars file:///a.jar;\\\n        file:///b.jar\nnext v"
    assert parse_conf(text) == [
        ConfEntry(1, "pipeline.jars", "file:///a.jar;file:///b.jar"),
        ConfEntry(3, "next", "v"),
    ]


def test_continuation_over_several_lines_reports_first_line() -> None:
    text = "\n\nkey \\\n  a\\\n  b\\\n  c\nother 1"
    assert parse_conf(text) == [ConfEntry(3, "key", "abc"), ConfEntry(7, "other", "1")]


def test_continuation_line_may_start_with_hash() -> None:
    assert pairs("key a\\\n#b") == [("key", "a#b")]


def test_even_backslashes_do_not_continue() -> None:
    assert pairs("path C:\\\\\nnext v") == [("path", "C:\\"), ("next", "v")]


def test_odd_backslashes_continue() -> None:
    assert pairs("path C:\\\\\\\n x") == [("path", "C:\\x")]


def test_continuation_at_end_of_text() -> None:
    assert pairs("key value\\") == [("key", "value")]


def test_continuation_before_separator() -> None:
    assert pairs("key\\\n  = value") == [("key", "value")]


def test_continuation_keeps_whitespace_before_backslash() -> None:
    assert pairs("key a \\\n  b") == [("key", "a b")]


# --------------------------------------------------------------------------- escapes


@pytest.mark.parametrize(
    ("line", "key", "value"),
    [
        ("k a\\tb", "k", "a\tb"),
        ("k a\\nb", "k", "a\nb"),
        ("k a\\rb", "k", "a\rb"),
        ("k a\\fb", "k", "a\fb"),
        ("k a\\\\b", "k", "a\\b"),
        ("k \\u00e9t\\u00E9", "k", "été"),
        ("a\\=b c", "a=b", "c"),
        ("a\\:b c", "a:b", "c"),
        ("a\\ b c", "a b", "c"),
        ("\\#not-comment v", "#not-comment", "v"),
        ("\\!not-comment v", "!not-comment", "v"),
        ("k \\#v", "k", "#v"),
        ("k a\\qb", "k", "aqb"),  # like Java: backslash before other characters is dropped
        ("k\\u0041 v", "kA", "v"),
    ],
)
def test_escapes_in_keys_and_values(line: str, key: str, value: str) -> None:
    assert pairs(line) == [(key, value)]


def test_escaped_leading_space_in_value_is_kept() -> None:
    assert pairs("k \\ padded") == [("k", " padded")]


def test_escaped_trailing_space_in_value_is_kept() -> None:
    assert pairs("k padded\\ ") == [("k", "padded ")]


def test_escaped_tab_at_end_is_kept() -> None:
    assert pairs("k x\\t") == [("k", "x\t")]


def test_unicode_escape_can_produce_separator_without_ending_key() -> None:
    assert pairs("a\\u003db c") == [("a=b", "c")]


# --------------------------------------------------------------------------- duplicates


def test_duplicate_keys_are_all_returned_in_order() -> None:
    assert parse_conf("k 1\nother x\nk 2") == [
        ConfEntry(1, "k", "1"),
        ConfEntry(2, "other", "x"),
        ConfEntry(3, "k", "2"),
    ]


def test_last_duplicate_wins_when_made_a_dict() -> None:
    assert dict(pairs("k 1\nk 2")) == {"k": "2"}


def test_entries_are_frozen() -> None:
    entry = parse_conf("k v")[0]
    with pytest.raises(AttributeError):
        entry.value = "w"  # type: ignore[misc]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("text", "line"), [("= value", 1), ("a 1\n\n  : value", 3)])
def test_empty_key_is_an_error_with_line(text: str, line: int) -> None:
    error = conf_error(text)
    assert error.line == line
    assert str(error).startswith(f"Line {line}: ")
    assert "has no key" in str(error)
    assert "Write `key value` or `key=value`" in str(error)


def test_key_without_value_is_an_error_with_line_and_fix() -> None:
    error = conf_error("state.backend hashmap\nexecution.checkpointing.interval\n")
    assert error.line == 2
    assert error.key == "execution.checkpointing.interval"
    assert str(error) == (
        "Line 2: execution.checkpointing.interval has no value. "
        "Write `execution.checkpointing.interval value` "
        "(or `execution.checkpointing.interval=value`), or remove the line."
    )


@pytest.mark.parametrize("text", ["k =", "k=", "k   ", "k =   \t"])
def test_empty_value_is_an_error(text: str) -> None:
    error = conf_error(text)
    assert error.line == 1
    assert "k has no value" in str(error)


def test_nested_yaml_gets_a_hint() -> None:
    error = conf_error("execution:\n  checkpointing:\n    interval: 10 s\n")
    assert error.line == 1
    assert error.key == "execution"
    assert "Nested YAML is not supported" in str(error)
    assert "execution.checkpointing.interval: 10 s" in str(error)


@pytest.mark.parametrize("escape", ["\\u12", "\\u12G4", "\\u", "\\uXYZW"])
def test_malformed_unicode_escape(escape: str) -> None:
    error = conf_error(f"a 1\nkey {escape}")
    assert error.line == 2
    assert "Malformed \\uXXXX escape" in str(error)
    assert "four hex digits" in str(error)


def test_error_line_of_continued_entry_is_its_first_line() -> None:
    error = conf_error("a 1\nkey x\\\n  \\u12")
    assert error.line == 2


def test_configuration_error_is_a_user_error() -> None:
    from jupyter_flink.errors import UserError

    assert isinstance(conf_error("k"), UserError)
