"""HomePlug AV management message (MME) framing: header, registry of definitions, parse and build.

Wire format after the Ethernet header (ethertype 0x88E1):

    MMV (1) | MMTYPE (2, little-endian) | FMI (1) FMSN (1), only when MMV != 0 | [OUI (3), vendor MMEs] | body

The low two bits of MMTYPE tell the variant: 0 REQ, 1 CNF, 2 IND, 3 RSP.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Any, Callable, ClassVar

from .fields import LayoutError, Record, record
from .names import PUBLIC, VENDOR
from .notation import MacAddress, mac_from_wire

ETHERTYPE_HOMEPLUG_AV = 0x88E1
ETHERTYPE_VLAN = 0x8100
ETHERNET_MIN_FRAME = 60  # without FCS
QUALCOMM_OUI = bytes.fromhex("00B052")
VARIANTS = ("REQ", "CNF", "IND", "RSP")
# Qualcomm vendor MMEs that Wireshark leaves unnamed, by the names of Qualcomm's own public
# toolkit (open-plc-utils, mme/qualcomm.h): base MMTYPE (REQ) -> name without the variant.
QUALCOMM_TOOLKIT_NAMES = {
    0xA044: "VS_ARPC", 0xA060: "VS_HOST_ACTION", 0xA064: "VS_RD_BLK_NVM", 0xA074: "VS_NW_INFO_STATS",
    0xA078: "VS_SLAVE_MEM", 0xA07C: "VS_FAC_DEFAULTS", 0xA080: "VS_PTS_NVM", 0xA084: "VS_MULTICAST_INFO",
    0xA088: "VS_CLASSIFICATION", 0xA08C: "VS_DIAG_STAGE", 0xA094: "VS_SET_LED_BEHAVIOR",
    0xA098: "VS_WRITE_AND_EXECUTE_APPLET", 0xA09C: "VS_MDIO_COMMAND", 0xA0A0: "VS_SLAVE_REG",
    0xA0A4: "VS_BANDWIDTH_LIMITING", 0xA0A8: "VS_SNID_OPERATION", 0xA0AC: "VS_NN_MITIGATE",
    0xA0B0: "VS_MODULE_OPERATION", 0xA0B4: "VS_DIAG_NETWORK_PROBE", 0xA0BC: "VS_GPIO_STATE_CHANGE",
    0xA0C0: "VS_CONN_ADD", 0xA0C4: "VS_CONN_MOD", 0xA0C8: "VS_CONN_REL", 0xA0CC: "VS_CONN_INFO",
    0xA0D0: "VS_MULTIPORT_LNK_STA", 0xA0D4: "VS_RAND_MAC_ADDR", 0xA0D8: "VS_CUSTOM_INFO",
    0xA0DC: "VS_EM_ID_TABLE", 0xA0E0: "VS_STANDBY", 0xA0E4: "VS_SLEEPSCHEDULE",
    0xA0E8: "VS_SLEEPSCHEDULE_NOTIFICATION", 0xA0F0: "VS_MICROCONTROLLER_DIAG", 0xA0F4: "VS_DEBUG_INFO",
    0xA0F8: "VS_GET_PROPERTY", 0xA100: "VS_SET_PROPERTY", 0xA104: "VS_PHYSWITCH_MDIO",
    0xA108: "VS_FLASH_ERASE", 0xA10C: "VS_SELFTEST_ONETIME_CONFIG", 0xA110: "VS_SELFTEST_RESULTS",
    0xA114: "VS_MDU_TRAFFIC_STATS", 0xA118: "VS_FORWARD_CONFIG", 0xA148: "VS_ACCESS_LEVEL_CONTROL",
    0xA200: "VS_HYBRID_INFO",
}
# Vendor diagnostics that neither Wireshark nor a public document names, seen from QCA modems and
# test systems (the latter with a zero OUI): named here, not decoded.
UNDOCUMENTED = {
    (0xA14E, QUALCOMM_OUI): "VS_DIAG_A14E.IND",
    (0xA14E, bytes(3)): "VS_DIAG_A14E.IND",
}


def known_name(mmtype: int, oui: bytes | None = None) -> str | None:
    """The name of an MMTYPE (with its vendor OUI in the vendor range): Wireshark's in our
    spelling, else Qualcomm's toolkit's, else ours for a known diagnostic; None when nobody names it."""
    if mmtype < 0x8000:
        return PUBLIC.get(mmtype)
    vendor = VENDOR.get(oui) if oui is not None else None
    if vendor is not None and mmtype in vendor[1]:
        return vendor[1][mmtype]
    if oui == QUALCOMM_OUI and mmtype & ~3 in QUALCOMM_TOOLKIT_NAMES:
        return f"{QUALCOMM_TOOLKIT_NAMES[mmtype & ~3]}.{variant_name(mmtype)}"
    return UNDOCUMENTED.get((mmtype, oui))


def vendor_name(oui: bytes) -> str | None:
    """'Qualcomm Atheros' for a vendor OUI whose MMEs are named, else None."""
    vendor = VENDOR.get(bytes(oui))
    return vendor[0] if vendor is not None else None


class MmeError(ValueError):
    """An MME that cannot be parsed or built; names the message and, when known, the field."""

    def __init__(self, message_name: str, problem: str, field: str | None = None):
        where = f" field {field!r}:" if field else ""
        super().__init__(f"{message_name}:{where} {problem}")
        self.message_name = message_name
        self.field = field
        self.problem = problem


def variant_name(mmtype: int) -> str:
    """'REQ', 'CNF', 'IND' or 'RSP' from the low two bits of an MMTYPE."""
    return VARIANTS[mmtype & 3]


@dataclasses.dataclass(kw_only=True, repr=False)
class Mme(Record):
    """A HomePlug AV management message: Ethernet addresses, MME header and the message's fields.

    ``src``/``dst`` are None when unknown (payload parsed without its Ethernet header).
    ``fmi`` (fragment count and index, a nibble each) and ``fmsn`` (fragment sequence number)
    exist on the wire only for MMV != 0 and must stay 0 with MMV 0.
    """

    name: ClassVar[str] = ""
    mmtype: ClassVar[int] = 0
    oui: ClassVar[bytes | None] = None
    default_mmv: ClassVar[int] = 1
    mmv_only: ClassVar[int | None] = None  # layouts that exist for one MMV only
    summary: ClassVar[tuple] = ()  # field names or (label, function) pairs for key_fields()

    dst: MacAddress | None = None
    src: MacAddress | None = None
    mmv: int = -1  # -1 (not given): the class's default_mmv, filled in by __post_init__
    fmi: int = 0
    fmsn: int = 0

    def __post_init__(self) -> None:
        if self.mmv == -1:
            self.mmv = self.default_mmv
        for side in ("dst", "src"):
            value = getattr(self, side)
            if value is not None and not isinstance(value, MacAddress):
                setattr(self, side, MacAddress(value))

    @property
    def variant(self) -> str:
        return variant_name(self.mmtype)

    def key_fields(self) -> dict[str, Any]:
        """The few fields for a one-line summary in a fixed order; values are JSON-ready
        (str, int, float, None, list of str): hex for bytes, names for enumerated values."""
        out: dict[str, Any] = {}
        for entry in self.summary:
            if isinstance(entry, str):
                out[entry] = self._items[entry].describe(getattr(self, entry))
            else:
                label, compute = entry
                out[label] = compute(self)
        return out

    def _header(self) -> bytes:
        if not isinstance(self.mmv, int) or not 0 <= self.mmv <= 255:
            raise MmeError(self.name, f"MMV {self.mmv} is not a byte", "mmv")
        if self.mmv == 0:
            if self.fmi or self.fmsn:
                raise MmeError(self.name, "MMV 0 has no fragmentation fields; fmi and fmsn must be 0", "fmi")
            return struct.pack("<BH", 0, self.mmtype)
        try:
            return struct.pack("<BHBB", self.mmv, self.mmtype, self.fmi, self.fmsn)
        except struct.error:
            raise MmeError(self.name, f"fmi {self.fmi!r} and fmsn {self.fmsn!r} must be bytes", "fmi") from None

    def to_bytes(self) -> bytes:
        """The MME as it follows the ethertype: header, vendor OUI, body (no Ethernet padding)."""
        layout_of_mmv = definition(self.mmtype, self.mmv)
        if layout_of_mmv is not type(self):
            raise MmeError(self.name, f"MMV {self.mmv} uses the {layout_of_mmv.__name__} layout, "
                           f"not {type(self).__name__}", "mmv")
        out = [self._header()]
        if self.oui is not None:
            out.append(self.oui)
        try:
            self.encode(out)
        except LayoutError as exc:
            raise MmeError(self.name, exc.problem, exc.field) from None
        return b"".join(out)

    def build_frame(self, pad: bool = False) -> bytes:
        """Whole Ethernet frame (no FCS); ``pad`` fills it with zeros to the 60-byte minimum."""
        if self.dst is None or self.src is None:
            raise MmeError(self.name, "building a frame needs both dst and src", "dst" if self.dst is None else "src")
        frame = self.dst + self.src + struct.pack("!H", ETHERTYPE_HOMEPLUG_AV) + self.to_bytes()
        if pad and len(frame) < ETHERNET_MIN_FRAME:
            frame += bytes(ETHERNET_MIN_FRAME - len(frame))
        return frame

    def __repr__(self) -> str:
        head = [f"src={self.src}", f"dst={self.dst}", f"mmv={self.mmv}"]
        if self.fmi or self.fmsn:
            head += [f"fmi={self.fmi}", f"fmsn={self.fmsn}"]
        return f"{self.name}({', '.join(head + self._repr_fields())})"


@dataclasses.dataclass(kw_only=True, repr=False)
class GenericMme(Mme):
    """An MME without a definition here: its MMTYPE and the raw bytes after the MME header."""

    mmtype: int = 0  # an instance field here, a class constant in defined messages
    payload: bytes = b""

    @property
    def name(self) -> str:  # type: ignore[override]
        oui = bytes(self.payload[:3]) if self.mmtype >= 0x8000 else None
        return known_name(self.mmtype, oui) or f"MMTYPE_0x{self.mmtype:04X}.{variant_name(self.mmtype)}"

    def layout_values(self) -> dict[str, Any]:
        return {"mmtype": self.mmtype, "payload": self.payload}

    def describe(self) -> dict[str, Any]:
        return {"mmtype": f"0x{self.mmtype:04X}", "payload": self.payload.hex()}

    def key_fields(self) -> dict[str, Any]:
        return {"payload_length": len(self.payload)}

    def to_bytes(self) -> bytes:
        if not 0 <= self.mmtype <= 0xFFFF:
            raise MmeError(self.name, f"MMTYPE {self.mmtype!r} is not 16 bits", "mmtype")
        return self._header() + self.payload


# mmtype -> {mmv or None (any MMV): class}
_REGISTRY: dict[int, dict[int | None, type[Mme]]] = {}


def message(mmtype: int, name: str, *, oui: bytes | None = None, default_mmv: int = 1,
            mmv_only: int | None = None) -> Callable[[type], type]:
    """Class decorator: a Mme subclass with a ``layout`` becomes the definition of ``mmtype``."""
    expected_suffix = "." + variant_name(mmtype)
    if not name.endswith(expected_suffix):
        raise ValueError(f"{name}: MMTYPE 0x{mmtype:04X} is a {expected_suffix[1:]}")

    def register(cls: type) -> type:
        cls.name, cls.mmtype, cls.oui = name, mmtype, oui
        cls.default_mmv = default_mmv if mmv_only is None else mmv_only
        cls.mmv_only = mmv_only
        cls = record(cls)
        by_mmv = _REGISTRY.setdefault(mmtype, {})
        if mmv_only in by_mmv:
            raise ValueError(f"{name} (MMV {mmv_only}) is defined twice")
        by_mmv[mmv_only] = cls
        return cls

    return register


def definitions() -> list[type[Mme]]:
    """Every defined message class, ordered by MMTYPE."""
    return [cls for mmtype in sorted(_REGISTRY) for _, cls in sorted(_REGISTRY[mmtype].items(), key=str)]


def definition(mmtype: int, mmv: int = 1) -> type[Mme] | None:
    """The class that parses ``mmtype`` with ``mmv``, or None."""
    by_mmv = _REGISTRY.get(mmtype)
    if by_mmv is None:
        return None
    return by_mmv.get(mmv) or by_mmv.get(None)


def parse_payload(payload: bytes, src: bytes | None = None, dst: bytes | None = None) -> Mme:
    """The MME in ``payload`` (the bytes after the 0x88E1 ethertype, padding allowed).

    Unknown MMTYPEs (and vendor MMTYPEs with another OUI) give a GenericMme; a known message
    cut short raises MmeError naming the message and the first missing field.
    """
    return _parse(payload, None if src is None else MacAddress(src), None if dst is None else MacAddress(dst))


def _parse(payload: bytes, src: MacAddress | None, dst: MacAddress | None) -> Mme:
    if len(payload) < 3:
        raise MmeError("HomePlug AV MME", f"header needs 3 bytes, got {len(payload)}", "mmtype")
    mmv = payload[0]
    mmtype = payload[1] | payload[2] << 8
    if mmv:
        if len(payload) < 5:
            raise MmeError("HomePlug AV MME", f"MMV {mmv} header needs 5 bytes, got {len(payload)}", "fmi")
        fmi, fmsn, off = payload[3], payload[4], 5
    else:
        fmi = fmsn = 0
        off = 3
    cls = definition(mmtype, mmv)
    if cls is not None and cls.oui is not None:
        if payload[off:off + 3] != cls.oui:
            cls = None
        else:
            off += 3
    if cls is None:
        return GenericMme(dst=dst, src=src, mmv=mmv, fmi=fmi, fmsn=fmsn, mmtype=mmtype, payload=bytes(payload[off:]))
    try:
        msg, _ = cls.decode(payload, off)
    except LayoutError as exc:
        raise MmeError(cls.name, exc.problem, exc.field) from None
    msg.__dict__.update(dst=dst, src=src, mmv=mmv, fmi=fmi, fmsn=fmsn)
    return msg


def parse_frame(frame: bytes) -> Mme:
    """The MME in a whole Ethernet frame (dst, src, ethertype 0x88E1, optionally one 802.1Q tag)."""
    if len(frame) < 14:
        raise MmeError("HomePlug AV MME", f"Ethernet header needs 14 bytes, got {len(frame)}", "ethertype")
    ethertype = frame[12] << 8 | frame[13]
    off = 14
    if ethertype == ETHERTYPE_VLAN and len(frame) >= 18:
        ethertype = frame[16] << 8 | frame[17]
        off = 18
    if ethertype != ETHERTYPE_HOMEPLUG_AV:
        raise MmeError("HomePlug AV MME", f"ethertype 0x{ethertype:04X} is not 0x88E1", "ethertype")
    return _parse(memoryview(frame)[off:], mac_from_wire(frame[6:12]), mac_from_wire(frame[0:6]))
