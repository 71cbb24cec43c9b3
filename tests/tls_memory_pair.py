"""A real TLS client and server (Python's ssl, OpenSSL) joined by memory BIOs: the bytes each sends.

Run as a script (``python tls_memory_pair.py VERSION CIPHER``) to get JSON on stdout; tests run it
in a subprocess when they need OpenSSL configured for one TLS 1.3 suite (``OPENSSL_CONF``), which
Python's ssl module cannot select itself.
"""
from __future__ import annotations

import datetime
import json
import ssl
import sys
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test SECC")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _pump(source: ssl.MemoryBIO, target: ssl.MemoryBIO, log: list, direction: int) -> None:
    data = source.read()
    if data:
        log.append((direction, data.hex()))
        target.write(data)


def run(version: str, cipher: str | None, messages: list[tuple[int, bytes]]) -> dict:
    """Handshake, then each (direction, bytes) message; returns the bytes sent (in order) and the key log."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        cert, key = self_signed(directory)
        keylog = directory / "keys.log"
        tls_version = ssl.TLSVersion.TLSv1_3 if version == "1.3" else ssl.TLSVersion.TLSv1_2
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_context.load_cert_chain(cert, key)
        client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client_context.check_hostname = False
        client_context.verify_mode = ssl.CERT_NONE
        for context in (server_context, client_context):
            context.minimum_version = context.maximum_version = tls_version
            if cipher and version == "1.2":
                context.set_ciphers(cipher)
        client_context.keylog_filename = str(keylog)
        client_in, client_out, server_in, server_out = (ssl.MemoryBIO() for _ in range(4))
        client = client_context.wrap_bio(client_in, client_out)
        server = server_context.wrap_bio(server_in, server_out, server_side=True)
        chunks: list[tuple[int, str]] = []  # (0 client / 1 server, hex) in the order sent
        for _ in range(20):
            for end in (client, server):
                try:
                    end.do_handshake()
                except ssl.SSLWantReadError:
                    pass
            _pump(client_out, server_in, chunks, 0)
            _pump(server_out, client_in, chunks, 1)
            if client.version() and server.version():
                try:
                    client.do_handshake(), server.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    continue
        received: list[str] = []
        for direction, data in messages:
            sender, receiver = (client, server) if direction == 0 else (server, client)
            sender.write(data)
            _pump(client_out, server_in, chunks, 0)
            _pump(server_out, client_in, chunks, 1)
            got = b""
            while len(got) < len(data):
                got += receiver.read(len(data) - len(got))
            received.append(got.hex())
        for end in (client, server):
            try:
                end.unwrap()
            except (ssl.SSLWantReadError, ssl.SSLError):
                pass
        _pump(client_out, server_in, chunks, 0)
        _pump(server_out, client_in, chunks, 1)
        return {"chunks": chunks,
                "keylog": keylog.read_text(), "version": client.version(), "cipher": client.cipher()[0],
                "received": received}


if __name__ == "__main__":
    payloads = [(i % 2, bytes([0x01, 0xFE, 0x80, 0x01]) + (40 + i).to_bytes(4, "big") + bytes(range(40 + i)))
                for i in range(6)]
    print(json.dumps(run(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] != "-" else None, payloads)))
