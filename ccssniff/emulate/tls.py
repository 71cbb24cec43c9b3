"""TLS for the emulators: the contexts ISO 15118 asks for, and a memory-BIO pair for the lab.

ISO 15118-2 runs TLS 1.2 with server authentication (the SECC certificate chain up to the V2G
root) and the ECDSA suites on secp256r1; ISO 15118-20 runs TLS 1.3 with mutual authentication
(the EVCC shows its OEM provisioning chain). Real drivers wrap kernel TCP sockets with these
contexts; the lab joins a client and a server ``SSLObject`` through memory BIOs, which keeps its
stacks sans-IO: bytes in, bytes out, no sockets.
"""
from __future__ import annotations

import ssl
import tempfile
from pathlib import Path

from ccssniff.emulate.pki import create_pki

# ISO 15118-2 [V2G2-602]: the two suites; OpenSSL 3 no longer has the static ECDH one, so the
# ephemeral suite is what a handshake between two of our stacks picks.
ISO2_CIPHERS = "ECDHE-ECDSA-AES128-SHA256:ECDH-ECDSA-AES128-SHA256"


def check_tls_protocols(protocols: str | tuple[str, ...]) -> tuple[str, ...]:
    protocols = (protocols,) if isinstance(protocols, str) else tuple(protocols)
    if not any(p in ("iso2", "iso20") for p in protocols):
        raise ValueError("DIN 70121 has no TLS: use --protocol iso2 or iso20 with --tls")
    return protocols


class PkiFiles:
    """The PEM files of a test PKI in a directory (written by ``ccssniff pki create`` or made here)."""

    def __init__(self, directory: Path | None = None) -> None:
        self._temporary = None
        if directory is None:
            self._temporary = tempfile.TemporaryDirectory(prefix="ccssniff-pki-")
            directory = Path(self._temporary.name)
            create_pki().write(directory)
        self.directory = Path(directory)
        missing = [name for name in ("secc.chain.pem", "secc.key.pem", "v2g_root.pem", "oem_root.pem",
                                     "oem_provisioning.chain.pem", "oem_provisioning.key.pem")
                   if not (self.directory / name).is_file()]
        if missing:
            raise ValueError(f"{directory} is no test PKI (missing {', '.join(missing)}); "
                             "make one with: ccssniff pki create DIR")

    def path(self, name: str) -> str:
        return str(self.directory / name)

    def close(self) -> None:
        if self._temporary is not None:
            self._temporary.cleanup()


def _versions(context: ssl.SSLContext, protocols: tuple[str, ...]) -> None:
    """TLS 1.2 for ISO 15118-2, TLS 1.3 for ISO 15118-20; both when a stack offers both."""
    context.minimum_version = ssl.TLSVersion.TLSv1_2 if "iso2" in protocols else ssl.TLSVersion.TLSv1_3
    context.maximum_version = ssl.TLSVersion.TLSv1_3 if "iso20" in protocols else ssl.TLSVersion.TLSv1_2
    if "iso2" in protocols:
        context.set_ciphers(ISO2_CIPHERS)
    context.set_ecdh_curve("prime256v1")


def server_context(pki: PkiFiles, protocols: str | tuple[str, ...], keylog: str | None = None) -> ssl.SSLContext:
    protocols = check_tls_protocols(protocols)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _versions(context, protocols)
    context.load_cert_chain(pki.path("secc.chain.pem"), pki.path("secc.key.pem"))
    if "iso20" in protocols:  # ISO 15118-20: the EVCC authenticates too
        context.verify_mode = ssl.CERT_REQUIRED if "iso2" not in protocols else ssl.CERT_OPTIONAL
        context.load_verify_locations(pki.path("oem_root.pem"))
    if keylog:
        context.keylog_filename = keylog
    return context


def client_context(pki: PkiFiles, protocols: str | tuple[str, ...], keylog: str | None = None) -> ssl.SSLContext:
    protocols = check_tls_protocols(protocols)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _versions(context, protocols)
    context.check_hostname = False  # the SECC certificate names the EVSE ID, not a host
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(pki.path("v2g_root.pem"))
    if "iso20" in protocols:
        context.load_cert_chain(pki.path("oem_provisioning.chain.pem"), pki.path("oem_provisioning.key.pem"))
    if keylog:
        context.keylog_filename = keylog
    return context


class MemoryTlsPair:
    """A TLS client (EV) and server (EVSE) in one process; each call returns the bytes each side sent.

    ``handshake()`` and ``send()`` return ``[(from_client, record bytes), ...]`` in wire order;
    the receiving side reads and checks what arrives, so both state machines stay real.
    """

    def __init__(self, pki: PkiFiles, protocol: str) -> None:
        client, server = client_context, server_context
        check_tls_protocols(protocol)  # DIN fails here
        self._keylog_dir = tempfile.TemporaryDirectory(prefix="ccssniff-keys-")
        self.keylog_path = str(Path(self._keylog_dir.name) / "keys.log")
        self._client_in, self._client_out, self._server_in, self._server_out = (ssl.MemoryBIO() for _ in range(4))
        self.client = client(pki, protocol, self.keylog_path).wrap_bio(self._client_in, self._client_out)
        self.server = server(pki, protocol).wrap_bio(self._server_in, self._server_out, server_side=True)

    def _pump(self, wire: list[tuple[bool, bytes]]) -> None:
        for from_client, source, target in ((True, self._client_out, self._server_in),
                                            (False, self._server_out, self._client_in)):
            data = source.read()
            if data:
                wire.append((from_client, data))
                target.write(data)

    def handshake(self) -> list[tuple[bool, bytes]]:
        wire: list[tuple[bool, bytes]] = []
        done = [False, False]
        for _ in range(16):
            for index, end in enumerate((self.client, self.server)):
                if not done[index]:
                    try:
                        end.do_handshake()
                        done[index] = True
                    except ssl.SSLWantReadError:
                        pass
            self._pump(wire)
            if all(done):
                break
        else:
            raise ssl.SSLError("TLS handshake did not complete in the lab")
        return wire

    def send(self, from_client: bool, data: bytes) -> list[tuple[bool, bytes]]:
        sender, receiver = (self.client, self.server) if from_client else (self.server, self.client)
        sender.write(data)
        wire: list[tuple[bool, bytes]] = []
        self._pump(wire)
        received = b""
        while len(received) < len(data):
            received += receiver.read(len(data) - len(received))
        self._pump(wire)  # TLS 1.3 session tickets the client reads along
        if received != data:
            raise ssl.SSLError("the lab's TLS peer read other bytes than were sent")
        return wire

    def close(self) -> list[tuple[bool, bytes]]:
        """Both sides send close_notify."""
        wire: list[tuple[bool, bytes]] = []
        for end in (self.client, self.server):
            try:
                end.unwrap()
            except (ssl.SSLWantReadError, ssl.SSLError):
                pass
            self._pump(wire)
        return wire

    def keylog(self) -> str:
        try:
            return Path(self.keylog_path).read_text()
        except OSError:
            return ""

    def cleanup(self) -> None:
        self._keylog_dir.cleanup()

    @property
    def version(self) -> str | None:
        return self.client.version()

    @property
    def cipher(self) -> str | None:
        cipher = self.client.cipher()
        return cipher[0] if cipher else None
