"""Text notation of MAC addresses and binary keys (aa:bb:cc:...)."""

from __future__ import annotations

import functools
import re

_SEPARATORS = re.compile(r"[\s:.\-]")


class MacAddress(bytes):
    """A 6-byte MAC address that prints as aa:bb:cc:dd:ee:ff and compares equal to its bytes."""

    __slots__ = ()

    def __new__(cls, value: bytes | str = b"\x00" * 6) -> "MacAddress":
        raw = parse_hex(value) if isinstance(value, str) else bytes(value)
        if len(raw) != 6:
            raise ValueError(f"a MAC address has 6 bytes, not {len(raw)}: {value!r}")
        return super().__new__(cls, raw)

    def __str__(self) -> str:
        return format_hex(self)

    def __repr__(self) -> str:
        return f"MacAddress('{format_hex(self)}')"


# For 6 bytes already cut from a frame: skips the checks of MacAddress() on the parse hot path.
mac_from_wire = functools.partial(bytes.__new__, MacAddress)

BROADCAST = MacAddress(b"\xff" * 6)
ZERO_MAC = MacAddress(b"\x00" * 6)


def format_hex(data: bytes, sep: str = ":") -> str:
    """Lower-case hex with a separator between bytes: b'\\x01\\xab' -> '01:ab'."""
    return data.hex(sep) if sep and data else data.hex()


def format_mac(data: bytes) -> str:
    """aa:bb:cc:dd:ee:ff notation of a 6-byte address."""
    return str(MacAddress(data))


def parse_hex(text: str, size: int | None = None) -> bytes:
    """Bytes from hex text with optional separators (':', '-', '.', spaces), checking the size if given."""
    digits = _SEPARATORS.sub("", text.strip())
    if digits[:2].lower() == "0x":
        digits = digits[2:]
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        raise ValueError(f"not a hex string: {text!r}") from None
    if size is not None and len(raw) != size:
        raise ValueError(f"expected {size} bytes, got {len(raw)}: {text!r}")
    return raw


def parse_mac(text: str) -> MacAddress:
    """MacAddress from 'aa:bb:cc:dd:ee:ff', 'aa-bb-...', 'aabb.ccdd.eeff' or plain hex."""
    return MacAddress(parse_hex(text, 6))
