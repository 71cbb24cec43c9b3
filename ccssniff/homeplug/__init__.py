"""HomePlug AV / Green PHY management messages (MMEs, ethertype 0x88E1): parse, build, keys.

Parse::

    parse_frame(frame: bytes) -> Mme                  whole Ethernet frame (dst, src, 0x88E1, MME);
                                                      one 802.1Q tag allowed; padding ignored
    parse_payload(payload, src=None, dst=None) -> Mme the bytes after the ethertype

Every ``Mme`` has ``.name`` ("CM_SLAC_MATCH.CNF"), ``.mmtype``, ``.variant`` ("REQ"/"CNF"/"IND"/
"RSP"), ``.mmv``, ``.fmi``/``.fmsn`` (fragmentation, MMV != 0 only), ``.src``/``.dst``
(MacAddress or None), its layout fields as attributes (keyword-only dataclass: equality,
readable repr), ``key_fields()`` (ordered dict of JSON-ready summary values: RunID, NID, NMK,
counts, average attenuation, enum names), ``describe()`` (all fields, JSON-ready),
``to_bytes()`` (the MME after the ethertype) and ``build_frame(pad=False)`` (whole frame,
``pad=True`` zero-fills to 60 bytes). ``parse_frame(m.build_frame()) == m``.

An unknown MMTYPE (or a vendor MMTYPE with a foreign OUI) parses to ``GenericMme`` (``.mmtype``,
``.payload`` = raw bytes after the MME header). A known message cut short raises ``MmeError``
(a ValueError) with ``.message_name`` and ``.field``.

Messages (class: name, MMTYPE): CmSlacParamReq/Cnf CM_SLAC_PARAM 0x6064/5, CmStartAttenCharInd
0x606A, CmAttenCharInd/Rsp 0x606E/F, CmMnbcSoundInd 0x6076, CmAttenProfileInd 0x6086,
CmValidateReq/Cnf 0x6078/9, CmSlacMatchReq/Cnf 0x607C/D, CmSetKeyReq/Cnf 0x6008/9,
CmAmpMapReq/Cnf 0x601C/D; Qualcomm (OUI 00:B0:52): VsSwVerReq/Cnf 0xA000/1, VsRsDevReq/Cnf
0xA01C/D, VsSnifferReq/Cnf/Ind 0xA034/5/6, VsNwInfoReq/Cnf 0xA038/9 (VsNwInfoCnfV0: the MMV 0 layout of old INT6000 firmware).
Build one with keywords, e.g. ``CmSlacMatchCnf(src=..., dst=..., run_id=..., nid=..., nmk=...)``;
omitted fields take their defaults (zeros, MMV 1 for CM_*, MMV 0 for VS_SW_VER/VS_RS_DEV).
``definitions()`` lists the classes, ``definition(mmtype, mmv)`` finds one.

Keys and notation::

    nmk_from_passphrase(passphrase) -> bytes     16-byte NMK (HomePlug AV PBKDF1, SHA-256)
    nid_from_nmk(nmk, security_level=0) -> bytes 7-byte NID
    random_nmk() -> bytes
    MacAddress(bytes | str), parse_mac(text), format_mac(b), parse_hex(text, size=None), format_hex(b, sep=":")

Defining a message: see ``ccssniff.homeplug.fields`` (layout items) and ``messages.py``.
``ccssniff.homeplug.strategies`` (needs hypothesis) derives test data from the layouts.
"""

from . import messages as _messages  # noqa: F401  (registers the definitions)
from .keys import nid_from_nmk, nmk_from_passphrase, random_nmk
from .messages import (
    CmAmpMapCnf, CmAmpMapReq, CmAttenCharInd, CmAttenCharRsp, CmAttenProfileInd, CmMnbcSoundInd,
    CmSetKeyCnf, CmSetKeyReq, CmSlacMatchCnf, CmSlacMatchReq, CmSlacParamCnf, CmSlacParamReq,
    CmStartAttenCharInd, CmValidateCnf, CmValidateReq, NetworkInfo, NetworkInfoV0, StationInfo,
    StationInfoV0, VsNwInfoCnf, VsNwInfoCnfV0, VsNwInfoReq, VsRsDevCnf, VsRsDevReq, VsSwVerCnf,
    VsSnifferCnf, VsSnifferInd, VsSnifferReq, VsSwVerReq, decode_frame_control, encode_frame_control,
)
from .mme import (
    ETHERTYPE_HOMEPLUG_AV, QUALCOMM_OUI, GenericMme, Mme, MmeError, definition, definitions,
    parse_frame, parse_payload,
)
from .notation import BROADCAST, MacAddress, format_hex, format_mac, parse_hex, parse_mac

__all__ = [
    "BROADCAST", "ETHERTYPE_HOMEPLUG_AV", "QUALCOMM_OUI",
    "CmAmpMapCnf", "CmAmpMapReq", "CmAttenCharInd", "CmAttenCharRsp", "CmAttenProfileInd",
    "CmMnbcSoundInd", "CmSetKeyCnf", "CmSetKeyReq", "CmSlacMatchCnf", "CmSlacMatchReq",
    "CmSlacParamCnf", "CmSlacParamReq", "CmStartAttenCharInd", "CmValidateCnf", "CmValidateReq",
    "GenericMme", "MacAddress", "Mme", "MmeError", "NetworkInfo", "NetworkInfoV0", "StationInfo",
    "StationInfoV0", "VsNwInfoCnf", "VsNwInfoCnfV0", "VsNwInfoReq", "VsRsDevCnf", "VsRsDevReq",
    "VsSnifferCnf", "VsSnifferInd", "VsSnifferReq", "VsSwVerCnf", "VsSwVerReq",
    "decode_frame_control", "definition", "encode_frame_control", "definitions", "format_hex", "format_mac", "nid_from_nmk", "nmk_from_passphrase",
    "parse_frame", "parse_hex", "parse_mac", "parse_payload", "random_nmk",
]
