"""TLS on a V2G connection: the record layer of both directions, decrypted when keys are known (sans-IO).

``TlsSession.feed(direction, items)`` takes the reassembled TCP bytes (and gaps) of one
direction and returns what they hold: handshake message names, decrypted application data,
alerts, gaps and problems. It reads the client random, server random and cipher suite from the
clear-text hellos and looks the secrets up in a :class:`~ccssniff.decode.keylog.KeyLog` when
the first encrypted record arrives. Without keys it counts records as before.
"""
from __future__ import annotations

from typing import NamedTuple

from ccssniff.decode.keylog import KeyLog
from ccssniff.decode.tcp import Gap, StreamItem
from ccssniff.decode.tls_crypto import (CipherSuite, DecryptError, RecordCipher, SUITES, tls12_ciphers,
                                        tls13_cipher, tls13_next_secret)

CONTENT_TYPES = {20: "change_cipher_spec", 21: "alert", 22: "handshake", 23: "application_data",
                 24: "heartbeat"}
HANDSHAKE_TYPES = {
    1: "ClientHello", 2: "ServerHello", 4: "NewSessionTicket", 5: "EndOfEarlyData", 8: "EncryptedExtensions",
    11: "Certificate", 12: "ServerKeyExchange", 13: "CertificateRequest", 14: "ServerHelloDone",
    15: "CertificateVerify", 16: "ClientKeyExchange", 20: "Finished", 24: "KeyUpdate",
}
VERSIONS = {0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2", 0x0304: "TLS 1.3"}
ALERTS = {0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 22: "record_overflow",
          40: "handshake_failure", 42: "bad_certificate", 43: "unsupported_certificate",
          44: "certificate_revoked", 45: "certificate_expired", 46: "certificate_unknown",
          47: "illegal_parameter", 48: "unknown_ca", 49: "access_denied", 50: "decode_error",
          51: "decrypt_error", 70: "protocol_version", 71: "insufficient_security", 80: "internal_error",
          86: "inappropriate_fallback", 90: "user_canceled", 109: "missing_extension",
          110: "unsupported_extension", 112: "unrecognized_name", 116: "certificate_required",
          120: "no_application_protocol"}
_SUPPORTED_VERSIONS_EXTENSION = 43
_ENCRYPT_THEN_MAC_EXTENSION = 22
# RFC 8446 4.1.3: a ServerHello with this random is a HelloRetryRequest.
_HELLO_RETRY_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
MAX_RECORD_LENGTH = (1 << 14) + 2048
MAX_HANDSHAKE_BUFFER = 256 * 1024
# After lost bytes we look this many records ahead for the sequence number that authenticates.
_RESYNC_SEQUENCE_WINDOW = 32
_RESYNC_SCAN_LIMIT = 64 * 1024

# What feed() returns: (kind, value)
HANDSHAKE = "handshake"   # value: handshake message name (clear or decrypted)
DATA = "data"             # value: decrypted application data bytes
GAP = "gap"               # value: bytes lost (TCP gap or a record we could not decrypt)
ALERT = "alert"           # value: "level description"
PROBLEM = "problem"       # value: plain-words reason (record failed to authenticate, ...)
KEYS = "keys"             # value: "found" or "missing", once per connection


class TlsOutput(NamedTuple):
    kind: str
    value: object
    encrypted: bool = False


_new_output = tuple.__new__  # skips NamedTuple's Python-level __new__ on the hot path


def looks_like_tls(data: bytes) -> bool:
    """A TLS record header: content type, major version 3, minor 1..4, plausible length."""
    return (len(data) >= 5 and data[0] in CONTENT_TYPES and data[1] == 3 and 1 <= data[2] <= 4
            and ((data[3] << 8) | data[4]) <= MAX_RECORD_LENGTH)


class _Hello(NamedTuple):
    random: bytes
    version: int
    suite: int | None
    encrypt_then_mac: bool


def _parse_hello(body: bytes, server: bool) -> _Hello | None:
    """Random, negotiated version and suite of a ServerHello; random of a ClientHello."""
    if len(body) < 38:
        return None
    version = (body[0] << 8) | body[1]
    random = bytes(body[2:34])
    position = 35 + body[34]  # session id
    suite = None
    if server:
        if position + 3 > len(body):
            return _Hello(random, version, None, False)
        suite = (body[position] << 8) | body[position + 1]
        position += 3  # cipher suite, compression method
    else:
        if position + 2 > len(body):
            return _Hello(random, version, None, False)
        position += 2 + ((body[position] << 8) | body[position + 1])  # cipher suites
        if position >= len(body):
            return _Hello(random, version, None, False)
        position += 1 + body[position]  # compression methods
    encrypt_then_mac = False
    if position + 2 <= len(body):
        end = min(len(body), position + 2 + ((body[position] << 8) | body[position + 1]))
        position += 2
        while position + 4 <= end:
            extension_type = (body[position] << 8) | body[position + 1]
            length = (body[position + 2] << 8) | body[position + 3]
            if server and extension_type == _SUPPORTED_VERSIONS_EXTENSION and length == 2 and position + 6 <= end:
                version = (body[position + 4] << 8) | body[position + 5]
            elif extension_type == _ENCRYPT_THEN_MAC_EXTENSION:
                encrypt_then_mac = True
            position += 4 + length
    return _Hello(random, version, suite, encrypt_then_mac)


class TlsTracker:
    """One direction's record layer: splits the byte stream into records and counts them."""

    __slots__ = ("_buffer", "_handshake_buffer", "records", "handshake_messages", "version", "lost_sync",
                 "_encrypted", "cipher", "sequence", "resync", "failed", "decrypted", "undecrypted", "phase",
                 "keys_tried_at")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._handshake_buffer = bytearray()  # handshake messages may span records
        self.records: dict[str, int] = {}
        self.handshake_messages: list[str] = []
        self.version: str | None = None
        self.lost_sync = False       # bytes lost and no record boundary found since
        self._encrypted = False
        self.cipher: RecordCipher | None = None
        self.sequence = 0
        self.resync = False          # the next record's sequence number is unknown (bytes were lost)
        self.failed = 0
        self.decrypted = 0
        self.undecrypted = 0         # encrypted records we had no key for
        self.phase = "clear"         # clear, handshake (TLS 1.3 handshake keys), application
        self.keys_tried_at = -1      # size of the key log when this direction last looked for its keys

    def split(self, items: list[StreamItem], out: list[TlsOutput]) -> list[tuple[int, bytes, bytes]]:
        """Whole records of ``items`` as (content type, 5-byte header, body); gaps reported in ``out``."""
        records: list[tuple[int, bytes, bytes]] = []
        for item in items:
            if isinstance(item, Gap):
                self._buffer.clear()
                self._handshake_buffer.clear()
                self.lost_sync = True
                self.resync = True
                records.append((-1, b"", b""))  # marks the gap in order with the records
                continue
            buffer = self._buffer
            if self.lost_sync:
                buffer += item
                if not self._find_boundary():
                    continue
                data = bytes(buffer)
                buffer.clear()
            elif buffer:
                buffer += item
                data = bytes(buffer)
                buffer.clear()
            else:
                data = item  # records usually end where a segment ends: no copy
            self._records(data, records, out)
        return records

    def _records(self, data: bytes, records: list, out: list[TlsOutput]) -> None:
        counts = self.records
        position = 0
        size = len(data)
        while size - position >= 5:
            content_type = data[position]
            length = (data[position + 3] << 8) | data[position + 4]
            if content_type not in CONTENT_TYPES or data[position + 1] != 3 or not 1 <= data[position + 2] <= 4 \
                    or length > MAX_RECORD_LENGTH:
                out.append(TlsOutput(PROBLEM, "TLS record layer lost: bytes that are no record header"))
                self.lost_sync = True
                self.resync = True
                records.append((-1, b"", b""))
                self._buffer += data[position + 1:]
                if not self._find_boundary():
                    return
                data = bytes(self._buffer)
                self._buffer.clear()
                position, size = 0, len(data)
                continue
            end = position + 5 + length
            if end > size:
                break
            name = CONTENT_TYPES[content_type]
            counts[name] = counts.get(name, 0) + 1
            records.append((content_type, data[position:position + 5], data[position + 5:end]))
            position = end
        if position < size:
            self._buffer += data[position:]

    def _find_boundary(self) -> bool:
        """After lost bytes: a record header followed by another header (or the end of what we have)."""
        buffer = self._buffer
        limit = min(len(buffer) - 5, _RESYNC_SCAN_LIMIT)
        for position in range(0, limit + 1):
            if buffer[position] not in (21, 23) or buffer[position + 1] != 3 or buffer[position + 2] != 3:
                continue
            end = position + 5 + ((buffer[position + 3] << 8) | buffer[position + 4])
            if end > MAX_RECORD_LENGTH + position + 5:
                continue
            if end + 5 <= len(buffer):
                if not looks_like_tls(buffer[end:end + 5]):
                    continue
            elif end != len(buffer) and end < len(buffer):
                continue
            elif end > len(buffer) and len(buffer) - position < 1024:
                return False  # wait for more bytes before trusting a candidate
            del buffer[:position]
            self.lost_sync = False
            return True
        if len(buffer) > _RESYNC_SCAN_LIMIT:
            del buffer[:len(buffer) - 5]
        return False

    def handshake_fragment(self, fragment: bytes) -> list[tuple[int, bytes]]:
        """Whole handshake messages (type, body) from record fragments (they may span records)."""
        self._handshake_buffer += fragment
        buffer = self._handshake_buffer
        messages = []
        position = 0
        while position + 4 <= len(buffer):
            length = int.from_bytes(buffer[position + 1:position + 4], "big")
            if position + 4 + length > len(buffer):
                break
            messages.append((buffer[position], bytes(buffer[position + 4:position + 4 + length])))
            position += 4 + length
        del buffer[:position]
        if len(buffer) > MAX_HANDSHAKE_BUFFER:
            buffer.clear()
        return messages


class TlsSession:
    """Both directions of one TLS connection (0 = client/EV, 1 = server/EVSE)."""

    def __init__(self, keys: KeyLog | None = None) -> None:
        self.keys = keys
        self.directions = (TlsTracker(), TlsTracker())
        self.client_random: bytes | None = None
        self.server_random: bytes | None = None
        self.suite: CipherSuite | None = None
        self.suite_id: int | None = None
        self.version: int | None = None
        self.encrypt_then_mac = False
        self.key_status: str | None = None  # None until keys are needed, then "found" or "missing"
        self.problems = 0
        self.alerts: list[str] = []
        self.certificates: list[tuple[int, list[bytes]]] = []  # (direction, DER chain) seen in handshakes

    # --- summary -------------------------------------------------------------------------------

    @property
    def version_name(self) -> str | None:
        return VERSIONS.get(self.version, f"{self.version:#06x}") if self.version is not None else None

    @property
    def decrypted_records(self) -> int:
        return self.directions[0].decrypted + self.directions[1].decrypted

    @property
    def undecrypted_records(self) -> int:
        return self.directions[0].undecrypted + self.directions[1].undecrypted

    @property
    def failed_records(self) -> int:
        return self.directions[0].failed + self.directions[1].failed

    # --- input ---------------------------------------------------------------------------------

    def feed(self, direction: int, items: list[StreamItem]) -> list[TlsOutput]:
        tracker = self.directions[direction]
        if len(items) == 1 and tracker.cipher is not None and not tracker._buffer and not tracker.resync \
                and not tracker.lost_sync:
            # The common case: one segment holding exactly one application data record.
            data = items[0]
            if len(data) > 5 and data[0] == 23 and (data[3] << 8 | data[4]) + 5 == len(data) and data[1] == 3:
                try:
                    inner_type, plaintext = tracker.cipher.decrypt(tracker.sequence, 23, data[:5], data[5:])
                except DecryptError:
                    pass  # the full path below reports it
                else:
                    counts = tracker.records
                    counts["application_data"] = counts.get("application_data", 0) + 1
                    tracker.sequence += 1
                    tracker.decrypted += 1
                    if inner_type == 23:
                        return [_new_output(TlsOutput, (DATA, plaintext, True))]
                    out: list[TlsOutput] = []
                    self._plain(direction, tracker, inner_type, plaintext, out, encrypted=True)
                    return out
        out = []
        for content_type, header, body in tracker.split(items, out):
            if content_type == 23 and tracker.cipher is not None and not tracker.resync:
                # The common case, application data in an established epoch, without detours.
                try:
                    inner_type, plaintext = tracker.cipher.decrypt(tracker.sequence, 23, header, body)
                except DecryptError:
                    pass  # the full path below reports it
                else:
                    tracker.sequence += 1
                    tracker.decrypted += 1
                    if inner_type == 23:
                        out.append(_new_output(TlsOutput, (DATA, plaintext, True)))
                    else:
                        self._plain(direction, tracker, inner_type, plaintext, out, encrypted=True)
                    continue
            if content_type < 0:
                out.append(TlsOutput(GAP, 0))
                continue
            self._record(direction, tracker, content_type, header, body, out)
        return out

    def finish(self) -> list[tuple[int, TlsOutput]]:
        """End of the connection: (direction, problem) for each direction left inside a record."""
        out = []
        for direction, tracker in enumerate(self.directions):
            if tracker._buffer and not tracker.lost_sync:
                out.append((direction, TlsOutput(PROBLEM, f"TLS record cut off: the connection ended "
                                                          f"{len(tracker._buffer)} bytes into a record")))
                tracker._buffer.clear()
        return out

    def _record(self, direction: int, tracker: TlsTracker, content_type: int, header: bytes, body: bytes,
                out: list[TlsOutput]) -> None:
        tls13 = self.version == 0x0304
        if content_type == 20:  # ChangeCipherSpec: TLS 1.2 switches this direction to encryption
            if not tls13:
                tracker._encrypted = True
                tracker.sequence = 0
                tracker.cipher = self._tls12_cipher(direction, out)
            return
        encrypted = tracker._encrypted or (tls13 and content_type == 23 and self.server_random is not None)
        if not encrypted:
            self._plain(direction, tracker, content_type, body, out, encrypted=False)
            return
        if tls13 and tracker.phase == "clear":
            tracker._encrypted = True
            tracker.phase = "handshake"
            tracker.sequence = 0
            tracker.cipher = self._tls13_cipher(direction, "HANDSHAKE_TRAFFIC_SECRET", out)
        if tracker.cipher is None:
            if self.keys is not None and self.client_random is not None and \
                    self.keys.lines != tracker.keys_tried_at:
                # Keys may have arrived since (a live capture sees the key-log packets after the handshake).
                tracker.keys_tried_at = self.keys.lines
                self._retry_keys(direction, tracker, out)
            if tracker.cipher is None:
                tracker.sequence += 1
                tracker.undecrypted += 1
                out.append(TlsOutput(GAP, len(body)))
                return
        plain = self._decrypt(tracker, content_type, header, body, out)
        if plain is None:
            out.append(TlsOutput(GAP, len(body)))
            return
        inner_type, plaintext = plain
        tracker.decrypted += 1
        self._plain(direction, tracker, inner_type, plaintext, out, encrypted=True)

    def _decrypt(self, tracker: TlsTracker, content_type: int, header: bytes, body: bytes,
                 out: list[TlsOutput]) -> tuple[int, bytes] | None:
        cipher = tracker.cipher
        window = _RESYNC_SEQUENCE_WINDOW if tracker.resync else 1
        for offset in range(window):
            try:
                result = cipher.decrypt(tracker.sequence + offset, content_type, header, body)
            except DecryptError as error:
                last_error = str(error)
                continue
            tracker.sequence += offset + 1
            tracker.resync = False
            return result
        tracker.sequence += 1
        tracker.failed += 1
        self.problems += 1
        out.append(TlsOutput(PROBLEM, f"TLS record of {len(body)} bytes failed to authenticate ({last_error}): "
                                      "wrong key or lost bytes; decoding goes on"))
        return None

    def _plain(self, direction: int, tracker: TlsTracker, content_type: int, data: bytes, out: list[TlsOutput],
               encrypted: bool) -> None:
        if content_type == 23:
            if encrypted:
                out.append(TlsOutput(DATA, data, True))
            return
        if content_type == 21:
            if len(data) >= 2:
                level = {1: "warning", 2: "fatal"}.get(data[0], f"level {data[0]}")
                text = f"{ALERTS.get(data[1], f'alert {data[1]}')} ({level})"
                self.alerts.append(text)
                out.append(TlsOutput(ALERT, text, encrypted))
            return
        if content_type != 22:
            return
        for message_type, message in tracker.handshake_fragment(data):
            name = HANDSHAKE_TYPES.get(message_type, f"handshake type {message_type}")
            tracker.handshake_messages.append(name)
            out.append(TlsOutput(HANDSHAKE, name, encrypted))
            if message_type == 1 and direction == 0 and self.client_random is None:
                hello = _parse_hello(message, server=False)
                if hello is not None:
                    self.client_random = hello.random
            elif message_type == 2 and direction == 1:
                self._server_hello(message)
            elif message_type == 11:
                self._certificate(direction, message)
            elif message_type == 20 and self.version == 0x0304 and encrypted:
                # Finished ends this direction's handshake: the application traffic secret takes over.
                tracker.phase = "application"
                tracker.sequence = 0
                tracker.cipher = self._tls13_cipher(direction, "TRAFFIC_SECRET_0", out)
            elif message_type == 24 and self.version == 0x0304 and tracker.cipher is not None:
                tracker.sequence = 0
                tracker.cipher = tls13_next_secret(tracker.cipher)
                out.append(TlsOutput(HANDSHAKE, "key update applied", True))

    def _server_hello(self, message: bytes) -> None:
        hello = _parse_hello(message, server=True)
        if hello is None or hello.random == _HELLO_RETRY_RANDOM:
            return
        self.server_random = hello.random
        self.version = hello.version
        self.suite_id = hello.suite
        self.suite = SUITES.get(hello.suite)
        self.encrypt_then_mac = hello.encrypt_then_mac
        for tracker in self.directions:
            tracker.version = self.version_name

    def _certificate(self, direction: int, message: bytes) -> None:
        """Keep the DER certificates of a Certificate message (TLS 1.2 or 1.3 layout)."""
        chain: list[bytes] = []
        position = 0
        if self.version == 0x0304:
            if not message:
                return
            position = 1 + message[0]  # certificate_request_context
        if position + 3 > len(message):
            return
        end = min(len(message), position + 3 + int.from_bytes(message[position:position + 3], "big"))
        position += 3
        while position + 3 <= end:
            length = int.from_bytes(message[position:position + 3], "big")
            chain.append(message[position + 3:position + 3 + length])
            position += 3 + length
            if self.version == 0x0304 and position + 2 <= end:
                position += 2 + ((message[position] << 8) | message[position + 1])  # extensions
        if chain:
            self.certificates.append((direction, chain))

    # --- keys ----------------------------------------------------------------------------------

    def _secrets(self, out: list[TlsOutput]) -> dict[str, bytes] | None:
        secrets = None
        if self.keys is not None and self.client_random is not None:
            secrets = self.keys.lookup(self.client_random)
        if self.key_status is None or (self.key_status == "missing" and secrets):
            self.key_status = "found" if secrets else "missing"
            out.append(TlsOutput(KEYS, self.key_status))
        return secrets

    def _unusable(self, out: list[TlsOutput], reason: str) -> None:
        self.problems += 1
        out.append(TlsOutput(PROBLEM, reason))

    def _tls12_cipher(self, direction: int, out: list[TlsOutput]) -> RecordCipher | None:
        secrets = self._secrets(out)
        if not secrets:
            return None
        master = secrets.get("CLIENT_RANDOM")
        if master is None:
            self._unusable(out, "keys for this TLS 1.2 connection lack CLIENT_RANDOM (master secret)")
            return None
        if self.suite is None or self.server_random is None:
            self._unusable(out, f"cipher suite {self.suite_id!r} not supported for decryption" if self.suite_id
                           is not None else "no ServerHello seen: cannot derive TLS 1.2 keys")
            return None
        ciphers = tls12_ciphers(self.suite, master, self.client_random, self.server_random, self.encrypt_then_mac)
        return ciphers[direction]

    def _tls13_cipher(self, direction: int, label: str, out: list[TlsOutput]) -> RecordCipher | None:
        secrets = self._secrets(out)
        if not secrets:
            return None
        name = ("CLIENT_" if direction == 0 else "SERVER_") + label
        secret = secrets.get(name)
        if secret is None:
            return None  # perhaps later in a live trace; the summary counts records left encrypted
        if self.suite is None:
            self._unusable(out, f"cipher suite {self.suite_id!r} not supported for decryption")
            return None
        try:
            return tls13_cipher(self.suite, secret)
        except DecryptError as error:
            self._unusable(out, str(error))
            return None

    def _retry_keys(self, direction: int, tracker: TlsTracker, out: list[TlsOutput]) -> None:
        if self.version == 0x0304:
            label = "TRAFFIC_SECRET_0" if tracker.phase == "application" else "HANDSHAKE_TRAFFIC_SECRET"
            tracker.cipher = self._tls13_cipher(direction, label, out)
        else:
            tracker.cipher = self._tls12_cipher(direction, out)
