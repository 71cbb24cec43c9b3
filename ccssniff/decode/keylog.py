"""TLS session keys in the NSS key log format, from wherever a trace gets them.

One line per secret: ``LABEL <client random, hex> <secret, hex>``. TLS 1.2 stacks log
``CLIENT_RANDOM`` (the 48-byte master secret); TLS 1.3 stacks log the handshake and traffic
secrets. Keys come from a file (``--keylog``), from UDP packets of the trace itself (test systems
such as dSPACE's and EVerest's charger send their key-log lines into the trace on any port), and
from pcapng Decryption Secrets Blocks. Lines we cannot use are counted, never fatal.
"""
from __future__ import annotations

import binascii
import os
from typing import Iterable

TLS12_LABEL = "CLIENT_RANDOM"
_KNOWN_PREFIXES = (TLS12_LABEL, "CLIENT_", "SERVER_", "EXPORTER_SECRET", "EARLY_EXPORTER_SECRET")
# What a UDP payload must start with to be read as key-log text (any port).
_PAYLOAD_PREFIXES = tuple(prefix.encode() for prefix in (TLS12_LABEL + " ", "CLIENT_HANDSHAKE_", "SERVER_HANDSHAKE_",
                                                         "CLIENT_TRAFFIC_", "SERVER_TRAFFIC_", "EXPORTER_SECRET ",
                                                         "CLIENT_EARLY_", "EARLY_EXPORTER_", "# "))
_SECRET_LENGTHS = (32, 48, 64)  # SHA-256, SHA-384 secrets; a TLS 1.2 master secret is 48 bytes
HOW_TO_GET_KEYS = ("no TLS keys for this connection: give the stack's key log with --keylog FILE "
                   "(NSS key log format, as stacks on OpenSSL, NSS or Python's ssl write it with "
                   "SSLKEYLOGFILE or their key-log option), or record with a test system or charger that "
                   "sends its keys into the trace (dSPACE's test system, EVerest)")


def looks_like_keylog(payload: bytes) -> bool:
    """True when a datagram's payload starts like NSS key-log text."""
    return payload.startswith(_PAYLOAD_PREFIXES)


class KeyLog:
    """Secrets by client random: ``{client_random: {label: secret}}``; the order lines came in is kept."""

    def __init__(self) -> None:
        self.secrets: dict[bytes, dict[str, bytes]] = {}
        self.lines = 0       # lines that gave a key
        self.rejected = 0    # lines that looked like key-log lines but could not be used
        self.first_rejection: str | None = None

    def __len__(self) -> int:
        return len(self.secrets)

    def lookup(self, client_random: bytes) -> dict[str, bytes] | None:
        return self.secrets.get(client_random)

    def add_line(self, line: str) -> bool:
        """Add one line; returns whether it gave a key. Comments and blank lines are ignored."""
        line = line.strip()
        if not line or line.startswith("#"):
            return False
        parts = line.split()
        if len(parts) != 3 or not parts[0].startswith(_KNOWN_PREFIXES):
            return self._reject(line, "not LABEL CLIENT_RANDOM SECRET")
        label, random_hex, secret_hex = parts
        try:
            client_random = binascii.unhexlify(random_hex)
            secret = binascii.unhexlify(secret_hex)
        except (binascii.Error, ValueError):
            return self._reject(line, "not hexadecimal")
        if len(client_random) != 32:
            return self._reject(line, f"client random of {len(client_random)} bytes, not 32")
        if len(secret) not in _SECRET_LENGTHS:
            return self._reject(line, f"secret of {len(secret)} bytes")
        if label == TLS12_LABEL and len(secret) != 48:
            return self._reject(line, "a TLS 1.2 master secret has 48 bytes")
        self.secrets.setdefault(client_random, {})[label] = secret
        self.lines += 1
        return True

    def _reject(self, line: str, reason: str) -> bool:
        self.rejected += 1
        if self.first_rejection is None:
            self.first_rejection = f"{reason}: {line[:80]}"
        return False

    def add_text(self, text: str | bytes) -> int:
        """Add every line of a key-log text; returns how many gave a key."""
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("ascii", "replace")
        return sum(self.add_line(line) for line in text.splitlines())

    def add_file(self, path: str | os.PathLike) -> int:
        with open(path, "rb") as file:
            return self.add_text(file.read())

    def merge(self, other: "KeyLog") -> None:
        for client_random, labels in other.secrets.items():
            self.secrets.setdefault(client_random, {}).update(labels)
        self.lines += other.lines

    def nss_text(self, only: Iterable[bytes] | None = None) -> str:
        """The keys as NSS key-log text (all of them, or those of the client randoms in ``only``)."""
        randoms = self.secrets if only is None else [r for r in only if r in self.secrets]
        lines = []
        for client_random in randoms:
            for label, secret in self.secrets[client_random].items():
                lines.append(f"{label} {client_random.hex()} {secret.hex()}\n")
        return "".join(lines)
