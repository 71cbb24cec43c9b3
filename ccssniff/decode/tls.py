"""TLS on a V2G connection: recognise it and count what is visible (sans-IO).

We cannot decrypt; we report the record layer: how many records of each content type, the
handshake messages sent in the clear, and the protocol version the server chose.
"""
from __future__ import annotations

from ccssniff.decode.tcp import Gap, StreamItem

CONTENT_TYPES = {20: "change_cipher_spec", 21: "alert", 22: "handshake", 23: "application_data"}
HANDSHAKE_TYPES = {
    1: "ClientHello", 2: "ServerHello", 4: "NewSessionTicket", 8: "EncryptedExtensions",
    11: "Certificate", 12: "ServerKeyExchange", 13: "CertificateRequest", 14: "ServerHelloDone",
    15: "CertificateVerify", 16: "ClientKeyExchange", 20: "Finished",
}
VERSIONS = {0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2", 0x0304: "TLS 1.3"}
_SUPPORTED_VERSIONS_EXTENSION = 43
MAX_RECORD_LENGTH = (1 << 14) + 2048
MAX_HANDSHAKE_BUFFER = 256 * 1024


def looks_like_tls(data: bytes) -> bool:
    """A TLS record header: content type, major version 3, minor 1..4, plausible length."""
    return (len(data) >= 5 and data[0] in CONTENT_TYPES and data[1] == 3 and 1 <= data[2] <= 4
            and ((data[3] << 8) | data[4]) <= MAX_RECORD_LENGTH)


def _server_hello_version(body: bytes) -> int | None:
    """The version a ServerHello selects: legacy field, or supported_versions (TLS 1.3)."""
    if len(body) < 38:
        return None
    version = (body[0] << 8) | body[1]
    position = 34
    session_id_length = body[position]
    position += 1 + session_id_length + 3  # session id, cipher suite, compression
    if position + 2 > len(body):
        return version
    end = min(len(body), position + 2 + ((body[position] << 8) | body[position + 1]))
    position += 2
    while position + 4 <= end:
        extension_type = (body[position] << 8) | body[position + 1]
        length = (body[position + 2] << 8) | body[position + 3]
        if extension_type == _SUPPORTED_VERSIONS_EXTENSION and length == 2 and position + 6 <= end:
            return (body[position + 4] << 8) | body[position + 5]
        position += 4 + length
    return version


class TlsTracker:
    """One direction of a TLS connection: record counts and clear-text handshake messages."""

    __slots__ = ("_buffer", "_handshake_buffer", "records", "handshake_messages", "version", "lost_sync",
                 "_encrypted")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._handshake_buffer = bytearray()  # handshake messages may span records
        self.records: dict[str, int] = {}
        self.handshake_messages: list[str] = []
        self.version: str | None = None
        self.lost_sync = False
        self._encrypted = False  # after ChangeCipherSpec handshake records are opaque

    def feed(self, items: list[StreamItem]) -> list[str]:
        """Returns the handshake message names newly seen in the clear."""
        seen: list[str] = []
        for item in items:
            if isinstance(item, Gap):
                self._buffer.clear()
                self.lost_sync = True
                continue
            if self.lost_sync:
                continue
            self._buffer += item
            self._records(seen)
        return seen

    def _records(self, seen: list[str]) -> None:
        buffer = self._buffer
        position = 0
        while len(buffer) - position >= 5:
            if not looks_like_tls(buffer[position:position + 5]):
                self.lost_sync = True
                buffer.clear()
                return
            end = position + 5 + ((buffer[position + 3] << 8) | buffer[position + 4])
            if end > len(buffer):
                break
            content_type = CONTENT_TYPES[buffer[position]]
            self.records[content_type] = self.records.get(content_type, 0) + 1
            if content_type == "change_cipher_spec":
                self._encrypted = True
            elif content_type == "handshake" and not self._encrypted:
                self._handshake_buffer += buffer[position + 5:end]
                self._handshake(seen)
            position = end
        del buffer[:position]

    def _handshake(self, seen: list[str]) -> None:
        fragment = self._handshake_buffer
        position = 0
        while position + 4 <= len(fragment):
            message_type = fragment[position]
            length = int.from_bytes(fragment[position + 1:position + 4], "big")
            if position + 4 + length > len(fragment):
                break
            name = HANDSHAKE_TYPES.get(message_type, f"handshake type {message_type}")
            self.handshake_messages.append(name)
            seen.append(name)
            if message_type == 2:
                version = _server_hello_version(bytes(fragment[position + 4:position + 4 + length]))
                if version is not None:
                    self.version = VERSIONS.get(version, f"{version:#06x}")
            position += 4 + length
        del fragment[:position]
        if len(fragment) > MAX_HANDSHAKE_BUFFER:
            fragment.clear()
