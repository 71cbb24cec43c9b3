"""HomePlug AV key derivation: NMK from a passphrase, NID from an NMK."""

from __future__ import annotations

import hashlib
import os

NMK_SALT = bytes.fromhex("08856DAF7CF58186")
NMK_ITERATIONS = 1000
NID_ITERATIONS = 5
KEY_SIZE = 16
NID_SIZE = 7


def _pbkdf1_sha256(secret: bytes, salt: bytes, iterations: int) -> bytes:
    digest = hashlib.sha256(secret + salt).digest()
    for _ in range(iterations - 1):
        digest = hashlib.sha256(digest).digest()
    return digest


def nmk_from_passphrase(passphrase: str | bytes) -> bytes:
    """The 16-byte Network Membership Key HomePlug AV derives from a network password."""
    secret = passphrase.encode("utf-8") if isinstance(passphrase, str) else bytes(passphrase)
    return _pbkdf1_sha256(secret, NMK_SALT, NMK_ITERATIONS)[:KEY_SIZE]


def nid_from_nmk(nmk: bytes, security_level: int = 0) -> bytes:
    """The 7-byte Network ID of an NMK: 52 bits of its hash, then the 2-bit security level."""
    if len(nmk) != KEY_SIZE:
        raise ValueError(f"an NMK has {KEY_SIZE} bytes, not {len(nmk)}")
    if not 0 <= security_level <= 3:
        raise ValueError(f"security level is 2 bits (0..3), not {security_level}")
    digest = _pbkdf1_sha256(bytes(nmk), b"", NID_ITERATIONS)
    # 52 hash bits: six whole bytes, then the high nibble of the seventh as its low nibble.
    return digest[:6] + bytes([(digest[6] >> 4) | (security_level << 4)])


def random_nmk() -> bytes:
    """A fresh random NMK (what an EVSE puts into CM_SLAC_MATCH.CNF for a new session)."""
    return os.urandom(KEY_SIZE)


class NetworkKey(str):
    """A secret key (NMK, NEK) as summaries and events carry it: text that is the masked key.

    Whatever prints it unawares (JSON, f-strings, logs, reports) shows ``a1:**:...:ff``; the key
    itself is ``.key``, and renderers reveal it with :func:`render_key` only when the user asked
    (``--show-key``).
    """

    key: bytes

    def __new__(cls, key: bytes) -> "NetworkKey":
        text = super().__new__(cls, mask_key(key))
        text.key = bytes(key)
        return text

    def __repr__(self) -> str:
        return f"NetworkKey({str.__str__(self)!r})"

    def __reduce__(self):
        return (NetworkKey, (self.key,))


MASK = "**"  # one hidden byte


def mask_key(key: bytes, sep: str = ":") -> str:
    """``a1:**:**:...:ff``: the first and the last byte of a key, the others hidden.

    Enough to tell two keys apart on a timeline, too little to join the network with. Keys of
    two bytes or fewer are hidden whole.
    """
    if len(key) <= 2:
        return sep.join([MASK] * len(key))
    return sep.join([f"{key[0]:02x}"] + [MASK] * (len(key) - 2) + [f"{key[-1]:02x}"])


def render_key(key: "bytes | NetworkKey", show: bool, sep: str = ":") -> str:
    """The text of a key in any output or log: all of it with ``show`` (``--show-key``), else masked."""
    raw = key.key if isinstance(key, NetworkKey) else bytes(key)
    if show:
        return raw.hex(sep) if sep else raw.hex()
    return mask_key(raw, sep)


def reveal_keys(fields: dict, show: bool) -> dict:
    """``fields`` with every NetworkKey value in full when ``show``; the same dict otherwise."""
    if not show or not any(isinstance(value, NetworkKey) for value in fields.values()):
        return fields
    return {name: render_key(value, True) if isinstance(value, NetworkKey) else value
            for name, value in fields.items()}
