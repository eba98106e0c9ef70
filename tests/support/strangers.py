"""A stranger on the same machine, trying every listening port it is given.

Run as a separate process (``python -m tests.support.strangers PORT...``): it holds none of
the kernel's secrets (no client certificate, no py4j token) and prints one JSON object per
port and probe: ``{"port", "probe", "accepted", "detail"}``. ``accepted`` means the stranger
got what the probe is after:

* ``http``: Flink's REST API over plain HTTP (``GET /jobs/overview`` answered with jobs);
* ``https-no-cert`` / ``https-own-cert``: the same over TLS without a client certificate, and
  with a self-signed certificate of the stranger's own;
* ``jar-upload``: ``POST /jars/upload`` accepted (plain HTTP, then TLS without a certificate);
* ``py4j``: a py4j client without the token called ``System.getProperty`` in a JVM;
* ``py4j-callback``: py4j's callback protocol, raw (``c / p1 / ping``), answered with a value;
* ``collect``: the collect sink's plain socket protocol answered with its version, then with
  rows of the running SELECT (the sink serves one connection at a time: while Flink's own
  coordinator holds it, a stranger waits);
* ``blob-put``: Flink's blob server stored a transient blob sent in plain text.

All probes of all ports run at once, each with a short timeout.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
TIMEOUT_S = 3.0
REQUEST = b"GET /jobs/overview HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
BOUNDARY = "strangerboundary"
JAR_BODY = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"jarfile\"; "
            "filename=\"a.jar\"\r\nContent-Type: application/x-java-archive\r\n\r\n"
            "PK\x05\x06" + "\0" * 18 + f"\r\n--{BOUNDARY}--\r\n").encode("latin-1")
UPLOAD = (f"POST /jars/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
          f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
          f"Content-Length: {len(JAR_BODY)}\r\n\r\n").encode() + JAR_BODY
BLOB_PUT = bytes([0, 0, 1]) + (5).to_bytes(4, "little") + b"hello" + \
    (-1).to_bytes(4, "little", signed=True)


def _exchange(port: int, payload: bytes, context: ssl.SSLContext | None = None) -> bytes:
    with socket.create_connection((HOST, port), timeout=TIMEOUT_S) as raw:
        sock = context.wrap_socket(raw, server_hostname=HOST) if context else raw
        sock.sendall(payload)
        chunks = []
        try:
            while len(b"".join(chunks)) < 65536:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except (TimeoutError, OSError):
            pass
        return b"".join(chunks)


def _no_verify(cert: tuple[str, str] | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if cert:
        context.load_cert_chain(*cert)
    return context


def _own_certificate(directory: Path) -> tuple[str, str]:
    """A self-signed client certificate that is not the kernel's."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stranger")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "stranger.pem", directory / "stranger-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def _http_status(answer: bytes) -> int | None:
    first = answer.split(b"\r\n", 1)[0].split()
    return int(first[1]) if len(first) > 1 and first[0].startswith(b"HTTP/") and \
        first[1].isdigit() else None


def probe_rest(port: int, context: ssl.SSLContext | None) -> tuple[bool, str]:
    answer = _exchange(port, REQUEST, context)
    return b'"jobs"' in answer, (answer[:80].decode("latin-1") or "no answer")


def probe_upload(port: int) -> tuple[bool, str]:
    details = []
    for context in (None, _no_verify()):
        try:
            answer = _exchange(port, UPLOAD, context)
        except (OSError, ssl.SSLError) as exc:
            details.append(f"{'tls' if context else 'plain'}: {type(exc).__name__}")
            continue
        status = _http_status(answer)
        if status == 200:
            return True, f"uploaded: {answer[:120]!r}"
        details.append(f"{'tls' if context else 'plain'}: {status or 'no HTTP answer'}")
    return False, "; ".join(details)


def probe_py4j(port: int) -> tuple[bool, str]:
    from py4j.java_gateway import GatewayParameters, JavaGateway

    gateway = JavaGateway(gateway_parameters=GatewayParameters(
        port=port, read_timeout=TIMEOUT_S, auto_close=True))
    try:
        user = gateway.jvm.java.lang.System.getProperty("user.name")
        return True, f"ran System.getProperty: {user!r}"
    finally:
        gateway.close()


def probe_callback(port: int) -> tuple[bool, str]:
    answer = _exchange(port, b"c\np1\nping\ne\n")
    return answer.startswith(b"!y"), repr(answer[:40])


def probe_collect(port: int) -> tuple[bool, str]:
    """The collect sink's protocol (CollectCoordinationRequest): ask with version "" for the
    sink's version, then with that version for the rows it holds (offset 0: nothing is
    acknowledged, so the real consumer loses nothing)."""
    def write_string(text: str) -> bytes:  # org.apache.flink.types.StringValue.writeString
        out = bytearray()
        for number in (len(text) + 1, *map(ord, text)):
            while number >= 0x80:
                out.append((number & 0x7F) | 0x80)
                number >>= 7
            out.append(number)
        return bytes(out)

    def read_varint(stream: Any) -> int:
        number, shift = 0, 0
        while True:
            byte = stream.read(1)
            if not byte:
                raise EOFError("closed")
            number |= (byte[0] & 0x7F) << shift
            shift += 7
            if byte[0] < 0x80:
                return number

    def read_string(stream: Any) -> str:
        return "".join(chr(read_varint(stream)) for _ in range(read_varint(stream) - 1))

    def ask(sock: socket.socket, stream: Any, version: str) -> tuple[str, int]:
        sock.sendall(write_string(version) + (0).to_bytes(8, "big"))
        version = read_string(stream)
        stream.read(8)  # the last checkpointed offset
        count = int.from_bytes(stream.read(4), "big")
        for _ in range(count):
            stream.read(int.from_bytes(stream.read(4), "big"))  # a serialized row
        return version, count

    with socket.create_connection((HOST, port), timeout=TIMEOUT_S) as sock:
        stream = sock.makefile("rb")
        version, _ = ask(sock, stream, "")
        if not version:
            return False, "no version"
        _, rows = ask(sock, stream, version)
        return True, f"collect sink version {version!r}: read {rows} rows"


def probe_blob(port: int) -> tuple[bool, str]:
    answer = _exchange(port, BLOB_PUT)
    stored = bool(answer) and answer[0] == 0 and not BLOB_PUT.startswith(answer)
    return stored, repr(answer[:24])


def run(ports: list[int]) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as scratch:
        own = _own_certificate(Path(scratch))
        probes = {
            "http": lambda p: probe_rest(p, None),
            "https-no-cert": lambda p: probe_rest(p, _no_verify()),
            "https-own-cert": lambda p: probe_rest(p, _no_verify(own)),
            "jar-upload": probe_upload,
            "py4j": probe_py4j,
            "py4j-callback": probe_callback,
            "collect": probe_collect,
            "blob-put": probe_blob,
        }

        def attempt(port: int, name: str) -> dict[str, Any]:
            try:
                accepted, detail = probes[name](port)
            except Exception as exc:  # a refusal, as far as the stranger is concerned
                accepted, detail = False, f"{type(exc).__name__}: {str(exc)[:100]}"
            return {"port": port, "probe": name, "accepted": accepted, "detail": detail}

        with ThreadPoolExecutor(max_workers=16) as pool:
            futures = [pool.submit(attempt, port, name) for port in ports for name in probes]
            return [future.result() for future in futures]


if __name__ == "__main__":
    for result in run([int(p) for p in sys.argv[1:]]):
        print(json.dumps(result), flush=True)
