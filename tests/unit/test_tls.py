"""TLS material (per-kernel key pair, remote client stores), the REST client with a client
certificate against a real TLS server, and the settings %%flink.conf may not change for the
embedded cluster."""

from __future__ import annotations

import json
import os
import ssl
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from jupyter_flink.errors import ConfigurationError, RestError
from jupyter_flink.flink.cluster import NO_ORIGIN, check_embedded_settings
from jupyter_flink.flink.session import FlinkSession
from jupyter_flink.flink.tls import DIR_PREFIX, KernelTls, kernel_tls, remote_client_tls
from jupyter_flink.parsing.conf import parse_conf
from jupyter_flink.rest import FlinkRestClient, NoRetry
from tests.support.tls import PASSWORD, Pki
from tests.unit.test_options_unit import OPTIONS, FakeFlink, option


@pytest.fixture
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "runtime"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(directory))
    return directory


@pytest.fixture
def material(runtime_dir: Path) -> Iterator[KernelTls]:
    tls = kernel_tls()
    yield tls
    tls.remove()


# ------------------------------------------------------------------------- the kernel's pair


def test_material_is_private_and_goes_away(material: KernelTls, runtime_dir: Path) -> None:
    directory = material.directory
    assert directory.parent == runtime_dir
    assert directory.name.startswith(f"{DIR_PREFIX}{os.getpid()}-")
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert sorted(p.name for p in directory.iterdir()) == [
        "cert.pem", "key.pem", "keystore.p12", "truststore.p12"]
    assert {stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()} == {0o600}
    material.remove()
    material.remove()  # idempotent
    assert not directory.exists() and material.removed


def test_certificate_names_loopback_and_serves_both_sides(material: KernelTls) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID

    cert = x509.load_pem_x509_certificate(Path(material.cert).read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048  # Flink's RSA suites


def test_stores_open_with_the_password_only_in_the_settings(material: KernelTls) -> None:
    from cryptography.hazmat.primitives.serialization import pkcs12

    settings = material.server_settings()
    password = settings["security.ssl.rest.keystore-password"]
    assert password not in repr(material) and password not in str(material.directory)
    keystore = pkcs12.load_pkcs12(Path(material.keystore).read_bytes(), password.encode())
    assert keystore.key is not None and keystore.cert is not None
    truststore = pkcs12.load_pkcs12(Path(material.truststore).read_bytes(), password.encode())
    assert truststore.key is None and len(truststore.additional_certs) == 1
    for prefix in ("security.ssl.rest.", "security.ssl.internal."):
        assert settings[prefix + "keystore"] == material.keystore
        assert settings[prefix + "truststore"] == material.truststore
    assert settings["security.ssl.rest.authentication-enabled"] == "true"
    assert settings["security.ssl.internal.enabled"] == "true"
    client = material.client()
    assert client.certificate is not None and client.ca == material.cert
    assert "security.ssl.internal.enabled" not in client.flink_settings


def test_two_kernels_get_two_key_pairs(material: KernelTls) -> None:
    other = kernel_tls()
    try:
        assert Path(other.cert).read_bytes() != Path(material.cert).read_bytes()
        assert other.directory != material.directory
    finally:
        other.remove()


def test_directories_of_dead_kernels_are_removed(runtime_dir: Path) -> None:
    runtime_dir.mkdir(parents=True, exist_ok=True)
    dead = runtime_dir / f"{DIR_PREFIX}999999999-abc"  # no such process
    dead.mkdir()
    (dead / "key.pem").write_text("old")
    alive = runtime_dir / f"{DIR_PREFIX}1-abc"  # init never dies
    alive.mkdir()
    material = kernel_tls()
    material.remove()
    assert not dead.exists() and alive.exists()


# ------------------------------------------------------------------------- a real handshake


class Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        data = json.dumps({"flink-version": "2.3.0"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def mutual_tls_server(material: KernelTls) -> Iterator[str]:
    """An HTTPS server that, like the embedded cluster, wants the kernel's certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(material.cert, material.key)
    context.load_verify_locations(material.cert)
    context.verify_mode = ssl.CERT_REQUIRED
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_rest_client_gets_in_with_the_kernel_certificate_only(material: KernelTls,
                                                              mutual_tls_server: str) -> None:
    options = material.client().rest_options()
    with FlinkRestClient(mutual_tls_server, timeout=5, retry=NoRetry(), **options) as rest:
        assert rest.config()["flink-version"] == "2.3.0"
    without = {k: v for k, v in options.items() if k != "client_cert"}
    with FlinkRestClient(mutual_tls_server, timeout=5, retry=NoRetry(), **without) as rest, \
            pytest.raises(RestError, match="unreachable"):
        rest.config()


# ------------------------------------------------------------------------- remote clusters


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path / "pki")


def test_remote_pem_files_become_stores_for_flink(pki: Pki, runtime_dir: Path) -> None:
    from cryptography.hazmat.primitives.serialization import pkcs12

    tls, directory = remote_client_tls(ca=pki.ca, cert=pki.client_cert, key=pki.client_key,
                                       key_password=PASSWORD, verify_hostname=True)
    assert directory is not None
    try:
        flink = tls.flink_settings
        password = flink["security.ssl.rest.keystore-password"]
        keystore = pkcs12.load_pkcs12(Path(flink["security.ssl.rest.keystore"]).read_bytes(),
                                      password.encode())
        assert keystore.key is not None
        trusted = pkcs12.load_pkcs12(Path(flink["security.ssl.rest.truststore"]).read_bytes(),
                                     password.encode())
        assert len(trusted.additional_certs) == 1
        assert flink["security.ssl.rest.authentication-enabled"] == "true"
        assert flink["security.ssl.rest.verify-hostname"] == "true"
        options = tls.rest_options()
        assert options["verify"] == pki.ca and options["client_cert"].password == PASSWORD
        assert PASSWORD not in repr(options)
    finally:
        directory.remove()
    assert not directory.path.exists()


def test_remote_ca_alone_needs_no_client_store(pki: Pki, runtime_dir: Path) -> None:
    tls, directory = remote_client_tls(ca=pki.ca, cert=None, key=None, key_password=None,
                                       verify_hostname=False)
    assert directory is not None and tls.certificate is None
    assert "security.ssl.rest.keystore" not in tls.flink_settings
    assert tls.rest_options() == {"verify": pki.ca, "check_hostname": False}
    directory.remove()


@pytest.mark.parametrize(("given", "says"), [
    ({"key": None}, "flink.execution.remote.ssl.key is not set"),
    ({"key_password": None}, "key-password"),
    ({"key_password": "wrong"}, "cannot be read"),
    ({"cert": "/nonexistent.pem"}, "cannot be read"),
])
def test_remote_client_errors_say_what_to_fix(pki: Pki, runtime_dir: Path, given: dict,
                                              says: str) -> None:
    arguments = {"ca": pki.ca, "cert": pki.client_cert, "key": pki.client_key,
                 "key_password": PASSWORD, "verify_hostname": True, **given}
    with pytest.raises(ConfigurationError) as info:
        remote_client_tls(**arguments)
    assert says in str(info.value)
    assert "wrong" not in info.value.message and PASSWORD not in str(info.value)
    assert not list(runtime_dir.glob(f"{DIR_PREFIX}*remote*")), "a failed set-up left files"


# ------------------------------------------------------------------------- what stays pinned


@pytest.mark.parametrize(("key", "value", "says"), [
    ("security.ssl.rest.enabled", "false", "only this kernel may reach it"),
    ("security.ssl.rest.authentication-enabled", "false", "certificate"),
    ("security.ssl.internal.enabled", "false", "blob server"),
    ("security.ssl.rest.keystore", "/tmp/mine.p12", "jupyter-flink sets"),
    ("web.submit.enable", "true", "would accept jar uploads"),
    ("web.access-control-allow-origin", "*", "web pages of that origin"),
    ("rest.bind-address", "0.0.0.0", "listens on 127.0.0.1 only"),
])
def test_settings_that_would_open_the_embedded_cluster(key: str, value: str, says: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        check_embedded_settings({key: value})
    assert info.value.key == key and key in info.value.message and says in info.value.message
    assert "flink.execution.mode remote" in (info.value.fix or "")


def test_harmless_values_of_pinned_keys_pass() -> None:
    check_embedded_settings({"web.submit.enable": "false", "rest.address": "localhost",
                             "web.access-control-allow-origin": NO_ORIGIN,
                             "security.ssl.algorithms": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"})


def session() -> FlinkSession:
    from jupyter_flink.options.registry import OptionRegistry

    options = [*OPTIONS, option("web.submit.enable", "boolean", "WebOptions"),
               option("security.ssl.rest.enabled", "boolean", "SecurityOptions"),
               option("s3.secret-key", owner="org.apache.flink.fs.s3.S3Options")]
    return FlinkSession(options=OptionRegistry(options, flink_version="2.3.0",
                                               flink=FakeFlink()))


def test_conf_cell_refuses_pinned_settings_in_local_mode_with_the_line() -> None:
    flink = session()
    with pytest.raises(ConfigurationError) as info:
        flink.configure("c1", parse_conf("parallelism.default 2\nweb.submit.enable true\n"))
    assert info.value.line == 2 and info.value.message.startswith("Line 2: web.submit.enable")
    assert flink.flink_settings() == {}  # a bad cell changes nothing
    # for a remote cluster, security.ssl.rest.* are the client's settings: allowed
    flink.configure("c2", parse_conf("flink.execution.mode remote\n"
                                     "security.ssl.rest.enabled true\n"))
    assert flink.flink_settings() == {"security.ssl.rest.enabled": "true"}


def test_conf_keeps_references_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JF_UNIT_CONF_SECRET", "resolved-value-123")
    flink = session()
    flink.configure("c1", parse_conf("s3.secret-key ${env:JF_UNIT_CONF_SECRET}\n"))
    assert flink.flink_settings() == {"s3.secret-key": "${env:JF_UNIT_CONF_SECRET}"}
    monkeypatch.delenv("JF_UNIT_CONF_SECRET")
    with pytest.raises(ConfigurationError) as info:
        flink.configure("c2", parse_conf("parallelism.default 1\n"
                                         "s3.secret-key ${env:JF_UNIT_CONF_SECRET}\n"))
    assert info.value.line == 2 and "JF_UNIT_CONF_SECRET" in info.value.message


# ------------------------------------------------------------------------- ports for everyone


def test_listeners_beyond_loopback_are_found_and_named() -> None:
    import socket

    from jupyter_flink.flink.listeners import exposure_note, wide_listeners

    with socket.socket() as private, socket.socket() as public:
        private.bind(("127.0.0.1", 0))
        private.listen()
        public.bind(("0.0.0.0", 0))
        public.listen()
        port, private_port = public.getsockname()[1], private.getsockname()[1]
        found = wide_listeners()
    assert ("0.0.0.0", port) in found
    assert all(p != private_port for _, p in found)
    note = exposure_note({("0.0.0.0", port), ("::", 7)})
    assert note is not None and f"0.0.0.0:{port}" in note and "[::]:7" in note
    assert "senv, stenv and btenv" in note
    assert exposure_note(set()) is None
