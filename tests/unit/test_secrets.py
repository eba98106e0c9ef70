"""Secrets: masking what we print, ${env:...} / ${file:...} references, and where they are
allowed (conf values, interpreter secrets, header Flink keys)."""

from __future__ import annotations

import json
import secrets as random
from pathlib import Path

import pytest

from jupyter_flink import secrets
from jupyter_flink.display.job_facts import KernelFacts, job_payload
from jupyter_flink.display.job_status import ClusterAddress, render_html, render_text
from jupyter_flink.errors import ConfigurationError, PropertyError
from jupyter_flink.jobs.registry import Owner, TrackedJob
from jupyter_flink.options.interpreter_keys import resolve_interpreter
from jupyter_flink.parsing.header import parse_header
from jupyter_flink.parsing.properties import ParagraphProperties
from jupyter_flink.recording.record import strip_credentials


def unique(prefix: str = "secret") -> str:
    """A value no other test remembered (remembered values are per process)."""
    return f"{prefix}-{random.token_hex(6)}"


# ------------------------------------------------------------------------- URL credentials


@pytest.mark.parametrize(("text", "shown"), [
    ("Could not check s3://KEY:SECRET@bucket/sp before submitting",
     "Could not check s3://***@bucket/sp before submitting"),
    ("s3://AKIA:wJalr/K7MDENG/bPxRfiCY+KEY@bucket/chk/chk-3",  # unescaped "/" in the secret
     "s3://***@bucket/chk/chk-3"),
    ("https://user@host:8443/x and hdfs://nn:8020/p@q", "https://***@host:8443/x and "
     "hdfs://nn:8020/p@q"),
    ("file:///tmp/a@b/chk-1", "file:///tmp/a@b/chk-1"),  # an "@" in a path
    ("'s3://a:b@bucket/x'", "'s3://***@bucket/x'"),
    ("no url here: user@example.com", "no url here: user@example.com"),
])
def test_url_credentials_are_masked(text: str, shown: str) -> None:
    assert secrets.mask(text) == shown


@pytest.mark.parametrize(("url", "recorded"), [
    ("s3://KEY:SECRET@bucket/chk/chk-1", "s3://bucket/chk/chk-1"),
    ("s3://AKIA:se/cr+et@bucket/sp", "s3://bucket/sp"),
    ("hdfs://nn:8020/chk", "hdfs://nn:8020/chk"),
    ("file:/tmp/chk-1", "file:/tmp/chk-1"),
])
def test_records_drop_url_credentials(url: str, recorded: str) -> None:
    assert strip_credentials(url) == recorded
    assert strip_credentials(None) is None


# ------------------------------------------------------------------------- references


def test_env_reference_is_resolved_and_then_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    value = unique()
    monkeypatch.setenv("JF_UNIT_SECRET", value)
    resolved = secrets.resolve_references("token=${env:JF_UNIT_SECRET};", key="k")
    assert resolved == f"token={value};"
    assert secrets.mask(f"Flink said: bad value {value!r}") == "Flink said: bad value '***'"


def test_file_reference_drops_one_trailing_newline(tmp_path: Path) -> None:
    value = unique()
    secret_file = tmp_path / "secret"
    secret_file.write_text(value + "\n")
    assert secrets.resolve_references(f"${{file:{secret_file}}}") == value
    assert value not in secrets.mask(f"it was {value}")


def test_several_references_in_one_value(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    user, password = unique("user"), unique("pw")
    monkeypatch.setenv("JF_UNIT_USER", user)
    (tmp_path / "pw").write_text(password)
    value = f"s3://${{env:JF_UNIT_USER}}:${{file:{tmp_path / 'pw'}}}@bucket/x"
    assert secrets.resolve_references(value) == f"s3://{user}:{password}@bucket/x"


def test_a_missing_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JF_UNIT_MISSING", raising=False)
    with pytest.raises(ConfigurationError) as info:
        secrets.resolve_references("${env:JF_UNIT_MISSING}", key="s3.secret-key")
    assert info.value.key == "s3.secret-key"
    assert "JF_UNIT_MISSING" in info.value.message and "is not set" in info.value.message
    assert "${file:PATH}" in (info.value.fix or "")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"nope.* cannot be read: No such file"):
        secrets.resolve_references(f"${{file:{tmp_path / 'nope'}}}", key="k")


@pytest.mark.parametrize("value", ["${env:}", "${file:}"])
def test_an_empty_reference_is_an_error(value: str) -> None:
    with pytest.raises(ConfigurationError, match="names no"):
        secrets.resolve_references(value)


def test_a_large_file_is_not_a_secret(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * (secrets.MAX_FILE_BYTES + 1))
    with pytest.raises(ConfigurationError, match="larger than"):
        secrets.resolve_references(f"${{file:{big}}}")


def test_other_dollar_braces_are_left_alone() -> None:
    assert not secrets.has_references("${user.home}/x and $HOME")
    assert secrets.resolve_references("${user.home}/x") == "${user.home}/x"


def test_short_values_are_not_remembered() -> None:
    secrets.remember("on")
    assert secrets.mask("on and on") == "on and on"


# ------------------------------------------------------------------------- tables


@pytest.mark.parametrize(("key", "value", "shown"), [
    ("s3.secret-key", "${env:S3_SECRET}", "${env:S3_SECRET}"),
    ("s3.secret-key", "plain-written-secret", "***"),
    ("security.ssl.rest.keystore-password", "pw", "***"),
    ("flink.execution.remote.headers", "Authorization: Bearer abc", "***"),
    ("execution.checkpointing.dir", "s3://K:S@bucket/chk", "s3://***@bucket/chk"),
    ("parallelism.default", "4", "4"),
    ("s3.secret-key", None, None),
])
def test_configuration_tables_hide_secrets(key: str, value: str | None,
                                           shown: str | None) -> None:
    assert secrets.shown_setting(key, value) == shown


# ------------------------------------------------------------------------- where allowed


def test_interpreter_secrets_take_references_other_keys_do_not() -> None:
    _, value, _ = resolve_interpreter("flink.execution.remote.ssl.key-password",
                                      "${env:KEY_PW}")
    assert value == "${env:KEY_PW}"
    assert resolve_interpreter("flink.execution.remote.headers",
                               "Authorization: Bearer ${file:/run/token}")[1].endswith("}")
    with pytest.raises(ConfigurationError, match="read only in Flink settings and in secrets"):
        resolve_interpreter("flink.execution.remote.port", "${env:PORT}")


def test_header_flink_keys_keep_references_other_properties_refuse_them() -> None:
    props = ParagraphProperties.from_header(
        parse_header("(jobName=wc, s3.secret-key=${env:S3_SECRET})"), kind="ssql")
    assert props.flink_overrides == {"s3.secret-key": "${env:S3_SECRET}"}
    with pytest.raises(PropertyError, match=r"savepointDir: .*read only in the values of Flink"):
        ParagraphProperties.from_header(parse_header("(savepointDir=${env:DIR})"), kind="ssql")


# ------------------------------------------------------------------------- status outputs


def test_status_output_masks_and_shows_an_unbrowsable_cluster_as_text() -> None:
    value = unique()
    secrets.remember(value)
    job = TrackedJob(job_id="a" * 32, name=value, owner=Owner(None, "c", value))
    job.failure = "Could not read s3://K:S@bucket/x"
    job.latest_checkpoint_path = "s3://K:S@bucket/chk/chk-1"
    local = ClusterAddress("https://127.0.0.1:1234", browsable=False)
    text, page = render_text(job, local), render_html(job, local)
    for shown in (text, page):
        assert value not in shown and "K:S@" not in shown and "s3://***@bucket" in shown
    assert "https://127.0.0.1:1234 (needs this kernel's client certificate" in text
    assert "href=" not in page and "<code title=" in page
    remote = ClusterAddress("https://flink.example:8081")
    assert "href='https://flink.example:8081'" in render_html(job, remote)
    # the JSON of our MIME type (saved in the notebook, sent on the jobs comm) alike
    payload = json.dumps(job_payload(job, KernelFacts(), None, now_ms=0, series=True))
    assert value not in payload and "K:S@" not in payload and "s3://***@bucket" in payload
