"""Who made a modem: the IEEE OUI registry, offline, from the netaddr package's copy of it.

Users compare chargers by the powerline modem inside them (Qualcomm/Atheros, Vertexcom, ...) and
by who built the box; the first three bytes of a MAC address tell the registrant. Locally
administered addresses (bit 1 of the first byte, as emulators and some cars use) and multicast
addresses have no registrant.
"""
from __future__ import annotations

import functools

__all__ = ["vendor_of"]


def vendor_of(mac: "str | bytes") -> "str | None":
    """The organisation the MAC's OUI is registered to, e.g. 'Atheros Communications'; None when
    the address is local, multicast, unregistered or not a MAC at all."""
    if isinstance(mac, (bytes, bytearray, memoryview)):
        raw = bytes(mac)
    else:
        text = str(mac).replace(":", "").replace("-", "").replace(".", "").strip()
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            return None
    if len(raw) != 6 or raw[0] & 0x03:  # multicast or locally administered: no registrant
        return None
    return _organisation(raw[:3])


@functools.lru_cache(maxsize=4096)
def _organisation(oui: bytes) -> "str | None":
    try:
        import netaddr
    except ImportError:  # declared in install_requires; a broken install still decodes
        return None
    try:
        registration = netaddr.OUI(int.from_bytes(oui, "big")).registration()
    except (netaddr.NotRegisteredError, IndexError, ValueError):
        return None
    organisation = " ".join(str(registration.org).split())
    return organisation or None
