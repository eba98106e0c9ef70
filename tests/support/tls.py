"""TLS for the tests: finding a cluster's client credentials, and making a small PKI.

A kernel's embedded cluster takes only clients with the kernel's certificate. The tests run
as the same user, so they may read it where the kernel keeps it: ``jupyter-flink-tls-<kernel
pid>-*`` in Jupyter's runtime directory. :func:`credentials_for` finds the process listening
on a URL's port: the parent of a kernel's JVM is the kernel; a standalone JobManager started
by :mod:`tests.support.standalone` runs in its cluster's root, whose ``tls/`` holds the files.

:class:`Pki` is an independent certificate authority (not the product's code): a CA, a server
certificate for 127.0.0.1/localhost and a client certificate, in PEM and PKCS12.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PASSWORD = "test-store-password"


@dataclass(frozen=True)
class Credentials:
    """What a client needs to reach one TLS cluster: CA, client certificate and key."""

    ca: str
    cert: str | None = None
    key: str | None = None
    key_password: str | None = None

    def context(self, *, client_cert: bool = True) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca)
        if client_cert and self.cert and self.key:
            context.load_cert_chain(self.cert, self.key, password=self.key_password)
        return context


def listening_pid(port: int) -> int | None:
    import psutil

    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return int(conn.pid)
    return None


def kernel_tls_dir(kernel_pid: int) -> Path | None:
    """The private directory where the kernel ``kernel_pid`` keeps its TLS material."""
    from jupyter_core.paths import jupyter_runtime_dir

    found = sorted(Path(jupyter_runtime_dir()).glob(f"jupyter-flink-tls-{kernel_pid}-*"))
    found = [d for d in found if "-remote-" not in d.name and (d / "cert.pem").exists()]
    return found[-1] if found else None


def credentials_for(url: str) -> Credentials | None:
    """The client credentials of the cluster at ``url`` (None for plain HTTP)."""
    import psutil

    parts = urlsplit(url)
    if parts.scheme != "https" or parts.port is None:
        return None
    pid = listening_pid(parts.port)
    assert pid is not None, f"nothing listens on {url}"
    process = psutil.Process(pid)
    standalone = Path(process.cwd()) / "tls"
    if (standalone / "ca.pem").exists():
        return Credentials(str(standalone / "ca.pem"), str(standalone / "client.pem"),
                           str(standalone / "client-key.pem"), PASSWORD)
    parent = process.parent()
    assert parent is not None, f"the process on {url} has no parent"
    directory = kernel_tls_dir(parent.pid)
    assert directory is not None, f"no TLS material of kernel {parent.pid} for {url}"
    return Credentials(str(directory / "cert.pem"), str(directory / "cert.pem"),
                       str(directory / "key.pem"))


def httpx_verify(url: str) -> Any:
    """``verify=`` for httpx requests to ``url``: an SSLContext with the client certificate."""
    credentials = credentials_for(url)
    return credentials.context() if credentials is not None else True


class Pki:
    """A CA with one server certificate (127.0.0.1, localhost) and one client certificate,
    written to ``directory`` as PEM files and PKCS12 stores (password :data:`PASSWORD`; the
    client key's PEM is encrypted with it too)."""

    def __init__(self, directory: Path):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.serialization import pkcs12

        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        ca_key, ca = _certificate("jupyter-flink test CA", None, None, ca=True)
        server_key, server = _certificate("127.0.0.1", ca_key, ca, server=True)
        client_key, client = _certificate("notebook user", ca_key, ca)
        self.other_ca_key, self.other_ca = _certificate("someone else's CA", None, None,
                                                        ca=True)
        pem = serialization.Encoding.PEM
        encryption = serialization.BestAvailableEncryption(PASSWORD.encode())
        self.ca = self._write("ca.pem", ca.public_bytes(pem))
        self.client_cert = self._write("client.pem", client.public_bytes(pem))
        self.client_key = self._write("client-key.pem", client_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, encryption))
        stranger_key, stranger = _certificate("stranger", self.other_ca_key, self.other_ca)
        self.stranger_cert = self._write("stranger.pem", stranger.public_bytes(pem))
        self.stranger_key = self._write("stranger-key.pem", stranger_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        p12 = serialization.PrivateFormat.PKCS12.encryption_builder().build(PASSWORD.encode())
        self.server_keystore = self._write("server.p12", pkcs12.serialize_key_and_certificates(
            b"server", server_key, server, [ca], p12))
        self.truststore = self._write("truststore.p12", pkcs12.serialize_java_truststore(
            [pkcs12.PKCS12Certificate(ca, b"ca")], p12))

    def _write(self, name: str, data: bytes) -> str:
        path = self.directory / name
        path.write_bytes(data)
        path.chmod(0o600)
        return str(path)

    def server_settings(self) -> dict[str, str]:
        """A standalone cluster's REST endpoint with mutual TLS (Flink's own keys)."""
        return {
            "security.ssl.rest.enabled": "true",
            "security.ssl.rest.authentication-enabled": "true",
            "security.ssl.rest.keystore": self.server_keystore,
            "security.ssl.rest.keystore-type": "PKCS12",
            "security.ssl.rest.keystore-password": PASSWORD,
            "security.ssl.rest.key-password": PASSWORD,
            "security.ssl.rest.truststore": self.truststore,
            "security.ssl.rest.truststore-type": "PKCS12",
            "security.ssl.rest.truststore-password": PASSWORD,
        }


def _certificate(name: str, issuer_key: Any, issuer: Any, *, ca: bool = False,
                 server: bool = False) -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer.subject if issuer is not None else subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False))
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),
            critical=False)
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_encipherment=False, key_cert_sign=True,
            content_commitment=False, data_encipherment=False, key_agreement=False,
            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
    return key, builder.sign(issuer_key if issuer_key is not None else key, hashes.SHA256())
