"""TLS material: the embedded cluster's per-kernel key pair, and a remote cluster's client side.

The embedded cluster's REST endpoint accepts only clients presenting this kernel's certificate
(mutual TLS), and its blob server speaks TLS as well (:mod:`jupyter_flink.flink.cluster`). When
the cluster starts, :func:`kernel_tls` generates an RSA-2048 key and a self-signed certificate
(SAN ``127.0.0.1`` and ``localhost``) that is at once the server certificate, the client
certificate and the only trust anchor of both sides. Flink reads it from PKCS12 files, Python
from PEM files. RSA because Flink's default cipher suites (``security.ssl.algorithms``) are
``TLS_ECDHE_RSA_*``: an EC key fails the handshake.

The files live in a private directory (0700, files 0600) in Jupyter's runtime directory, where
Jupyter keeps each kernel's connection file and HMAC key, named ``jupyter-flink-tls-<pid>-*``
after the kernel's process. They are deleted when the cluster stops and when the process exits
normally; directories of processes that died without cleaning up are removed by the next
kernel. The PKCS12 password is random and kept in memory; nothing here is logged or printed.

For a remote cluster that wants client certificates (``flink.execution.remote.ssl.*``), the
kernel's REST client reads the user's PEM files as they are, and :func:`remote_client_tls`
writes them as a PKCS12 key store and trust store for Flink's own client, which reads no PEM.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import secrets
import shutil
import tempfile
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from ..rest.http import ClientCertificate

__all__ = ["ClientTls", "KernelTls", "kernel_tls", "remote_client_tls"]

DIR_PREFIX = "jupyter-flink-tls-"
VALID_DAYS = 30
_KEY_ALIAS = b"jupyter-flink"


@dataclass(frozen=True)
class ClientTls:
    """How a client reaches one cluster over TLS: the kernel's REST client (``rest_options``,
    for :class:`~jupyter_flink.rest.FlinkRestClient`) and Flink's own (``flink_settings``)."""

    ca: str | None  # PEM bundle of trusted CAs; None: the system's
    certificate: ClientCertificate | None = None
    check_hostname: bool = True
    flink_settings: Mapping[str, str] = field(default_factory=dict)

    def rest_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"verify": self.ca or True,
                                   "check_hostname": self.check_hostname}
        if self.certificate is not None:
            options["client_cert"] = self.certificate
        return options


class PrivateDirectory:
    """A directory only this user can read, removed by :meth:`remove` or at normal exit."""

    def __init__(self, kind: str = ""):
        parent = _runtime_dir()
        _remove_stale(parent)
        self.path = Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-{kind}",
                                          dir=parent))  # mode 0700
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.path), True)

    def write(self, name: str, data: bytes) -> str:
        path = self.path / name
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        return str(path)

    def remove(self) -> None:
        self._finalizer()

    @property
    def removed(self) -> bool:
        return not self._finalizer.alive


class KernelTls:
    """The embedded cluster's key pair and certificate, in PKCS12 and PEM files."""

    def __init__(self, directory: PrivateDirectory, password: str):
        self._directory = directory
        self._password = password
        self.directory = directory.path
        self.keystore = str(directory.path / "keystore.p12")
        self.truststore = str(directory.path / "truststore.p12")
        self.cert = str(directory.path / "cert.pem")
        self.key = str(directory.path / "key.pem")

    def __repr__(self) -> str:
        return f"KernelTls({str(self.directory)!r})"

    def server_settings(self) -> dict[str, str]:
        """The cluster side: REST with mutual TLS (hostname checked), internal TLS."""
        return {**self._stores("rest"), **self._stores("internal"),
                "security.ssl.rest.enabled": "true",
                "security.ssl.rest.authentication-enabled": "true",
                "security.ssl.rest.verify-hostname": "true",
                "security.ssl.internal.enabled": "true"}

    def client(self) -> ClientTls:
        """The client side of the same settings (the kernel's REST client, Flink's client)."""
        flink = {**self._stores("rest"), "security.ssl.rest.enabled": "true",
                 "security.ssl.rest.authentication-enabled": "true",
                 "security.ssl.rest.verify-hostname": "true"}
        return ClientTls(self.cert, ClientCertificate(self.cert, self.key), True, flink)

    def _stores(self, kind: str) -> dict[str, str]:
        prefix = f"security.ssl.{kind}."
        return {prefix + "keystore": self.keystore, prefix + "keystore-type": "PKCS12",
                prefix + "keystore-password": self._password,
                prefix + "key-password": self._password,
                prefix + "truststore": self.truststore, prefix + "truststore-type": "PKCS12",
                prefix + "truststore-password": self._password}

    def remove(self) -> None:
        """Delete the files (idempotent); the settings above then point nowhere."""
        self._directory.remove()

    @property
    def removed(self) -> bool:
        return self._directory.removed


def kernel_tls() -> KernelTls:
    """Generate this kernel's key pair and self-signed certificate, in a private directory."""
    from cryptography.hazmat.primitives import serialization

    directory = PrivateDirectory()
    try:
        password = secrets.token_urlsafe(24)
        key, cert = _self_signed()
        material = KernelTls(directory, password)
        pem = serialization.Encoding.PEM
        directory.write("keystore.p12", _pkcs12_keystore(key, [cert], password))
        directory.write("truststore.p12", _pkcs12_truststore([cert], password))
        directory.write("cert.pem", cert.public_bytes(pem))
        directory.write("key.pem", key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    except BaseException:
        directory.remove()
        raise
    return material


def remote_client_tls(*, ca: str | None, cert: str | None, key: str | None,
                      key_password: str | None, verify_hostname: bool,
                      ) -> tuple[ClientTls, PrivateDirectory | None]:
    """The client side for a remote cluster from the user's PEM files (any may be None).

    Returns the settings and the private directory holding the PKCS12 stores written for
    Flink's client (None when no file was needed); the caller removes it when done.
    """
    if (cert is None) != (key is None):
        missing = "flink.execution.remote.ssl.key" if key is None else \
            "flink.execution.remote.ssl.cert"
        raise ConfigurationError(
            f"A client certificate needs both its certificate and its key: {missing} is not set.",
            key=missing, fix="Set both flink.execution.remote.ssl.cert and .key (PEM files).")
    flink = {"security.ssl.rest.enabled": "true",
             "security.ssl.rest.verify-hostname": str(verify_hostname).lower()}
    if ca is None and cert is None:
        return ClientTls(None, None, verify_hostname, flink), None
    directory = PrivateDirectory("remote-")
    try:
        password = secrets.token_urlsafe(24)
        if ca is not None:
            store = directory.write("truststore.p12",
                                    _pkcs12_truststore(_read_certificates(ca, "ca"), password))
            flink.update({"security.ssl.rest.truststore": store,
                          "security.ssl.rest.truststore-type": "PKCS12",
                          "security.ssl.rest.truststore-password": password})
        certificate = None
        if cert is not None and key is not None:
            chain = _read_certificates(cert, "cert")
            private_key = _read_key(key, key_password)
            store = directory.write("keystore.p12", _pkcs12_keystore(private_key, chain,
                                                                     password))
            flink.update({"security.ssl.rest.keystore": store,
                          "security.ssl.rest.keystore-type": "PKCS12",
                          "security.ssl.rest.keystore-password": password,
                          "security.ssl.rest.key-password": password,
                          "security.ssl.rest.authentication-enabled": "true"})
            certificate = ClientCertificate(cert, key, key_password)
    except BaseException:
        directory.remove()
        raise
    return ClientTls(ca, certificate, verify_hostname, flink), directory


# ----------------------------------------------------------------------- keys and stores


def _self_signed() -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                         f"jupyter-flink kernel {os.getpid()}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    identifier = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    usage = x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=True,
                          content_commitment=False, data_encipherment=False,
                          key_agreement=False, crl_sign=False, encipher_only=False,
                          decipher_only=False)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(identifier, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
            identifier), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _encryption(password: str) -> Any:
    """PBES2 with AES-256 and an HMAC-SHA256 MAC: what Java 11.0.12+ reads."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    return (serialization.PrivateFormat.PKCS12.encryption_builder()
            .kdf_rounds(10000)
            .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
            .hmac_hash(hashes.SHA256())
            .build(password.encode()))


def _pkcs12_keystore(key: Any, chain: list[Any], password: str) -> bytes:
    from cryptography.hazmat.primitives.serialization import pkcs12

    return pkcs12.serialize_key_and_certificates(_KEY_ALIAS, key, chain[0], chain[1:] or None,
                                                 _encryption(password))


def _pkcs12_truststore(certs: list[Any], password: str) -> bytes:
    """Trusted certificate entries (Java ignores certificates of a PKCS12 without them)."""
    from cryptography.hazmat.primitives.serialization import pkcs12

    entries = [pkcs12.PKCS12Certificate(cert, f"trusted-{index}".encode())
               for index, cert in enumerate(certs)]
    return pkcs12.serialize_java_truststore(entries, _encryption(password))


def _read_certificates(path: str, what: str) -> list[Any]:
    from cryptography import x509

    key = f"flink.execution.remote.ssl.{what}"
    data = _read(path, key)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ConfigurationError(f"{key}: {path} holds no PEM certificate ({exc}).", key=key,
                                 fix="Give a PEM file (-----BEGIN CERTIFICATE-----); convert "
                                     "a PKCS12 file with `openssl pkcs12 -in F -nokeys`.") \
            from None
    return certs


def _read_key(path: str, password: str | None) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = "flink.execution.remote.ssl.key"
    data = _read(path, key)
    try:
        return load_pem_private_key(data, password.encode() if password else None)
    except (ValueError, TypeError) as exc:
        hint = ("Set flink.execution.remote.ssl.key-password (e.g. ${env:NAME})."
                if "encrypted" in str(exc) or "password" in str(exc).lower() else
                "Give a PEM private key; convert a PKCS12 file with "
                "`openssl pkcs12 -in F -nocerts`.")
        raise ConfigurationError(f"{key}: the private key in {path} cannot be read ({exc}).",
                                 key=key, fix=hint) from None


def _read(path: str, key: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{key}: {path} cannot be read ({exc.strerror or exc}).",
                                 key=key) from None


# ----------------------------------------------------------------------- the directories


def _runtime_dir() -> Path:
    """Jupyter's runtime directory (0700, beside the kernels' connection files); the
    temporary directory if it cannot be made."""
    from jupyter_core.paths import jupyter_runtime_dir

    path = Path(jupyter_runtime_dir())
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return Path(tempfile.gettempdir())
    return path if os.access(path, os.W_OK) else Path(tempfile.gettempdir())


def _remove_stale(parent: Path) -> None:
    """Remove the directories of kernels that died without cleaning up (kill -9)."""
    import psutil

    for path in parent.glob(DIR_PREFIX + "*"):
        pid = path.name[len(DIR_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not psutil.pid_exists(int(pid)) and path.is_dir():
            with contextlib.suppress(OSError):
                if path.stat().st_uid == os.getuid():
                    shutil.rmtree(path)
