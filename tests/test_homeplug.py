"""ccssniff.homeplug: round trips, field values, truncation, padding, MMV 0, generic MMEs, keys."""

from __future__ import annotations

import dataclasses
import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccssniff.homeplug import (
    BROADCAST, CmAmpMapReq, CmAttenCharInd, CmAttenProfileInd, CmSetKeyReq, CmSlacMatchCnf,
    CmSlacMatchReq, CmSlacParamCnf, CmSlacParamReq, GenericMme, MacAddress, MmeError, NetworkInfo,
    StationInfo, StationInfoV0, NetworkInfoV0, VsNwInfoCnf, VsNwInfoCnfV0, VsSwVerCnf, VsSwVerReq,
    definition, definitions, format_hex, format_mac, nid_from_nmk, nmk_from_passphrase, parse_frame,
    parse_hex, parse_mac, parse_payload, random_nmk,
)
from ccssniff.homeplug.fields import Rest
from ccssniff.homeplug.keys import mask_key
from ccssniff.homeplug.strategies import any_message, messages

ALL = definitions()
PEV = parse_mac("02:00:00:00:00:01")
EVSE = parse_mac("02:00:00:00:00:02")


def ids(cls) -> str:
    return f"{cls.name}-mmv{cls.mmv_only}" if cls.mmv_only is not None else cls.name


def test_every_required_message_is_defined():
    names = {cls.name for cls in ALL}
    assert names == {
        "CM_SLAC_PARAM.REQ", "CM_SLAC_PARAM.CNF", "CM_START_ATTEN_CHAR.IND", "CM_ATTEN_CHAR.IND",
        "CM_ATTEN_CHAR.RSP", "CM_MNBC_SOUND.IND", "CM_ATTEN_PROFILE.IND", "CM_VALIDATE.REQ",
        "CM_VALIDATE.CNF", "CM_SLAC_MATCH.REQ", "CM_SLAC_MATCH.CNF", "CM_SET_KEY.REQ", "CM_SET_KEY.CNF",
        "CM_AMP_MAP.REQ", "CM_AMP_MAP.CNF", "VS_SW_VER.REQ", "VS_SW_VER.CNF", "VS_NW_INFO.REQ",
        "VS_NW_INFO.CNF", "VS_RS_DEV.REQ", "VS_RS_DEV.CNF", "STP_CPSTATE.IND", "DSPACE_SCS_DIAG.IND",
    }
    for cls in ALL:
        assert definition(cls.mmtype, cls.mmv_only if cls.mmv_only is not None else 1) is cls
        assert (cls.oui is not None) == (cls.mmtype >= 0x8000)  # manufacturer and vendor MMEs carry an OUI


# --- round trips -------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", ALL, ids=ids)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_round_trip(cls, data):
    msg = data.draw(messages(cls))
    frame = msg.build_frame()
    assert parse_frame(frame) == msg
    assert parse_frame(frame).build_frame() == frame
    assert parse_payload(msg.to_bytes(), src=msg.src, dst=msg.dst) == msg
    assert frame[12:14] == b"\x88\xe1" and frame[:6] == msg.dst and frame[6:12] == msg.src


@settings(max_examples=200, deadline=None)
@given(msg=any_message(), trailer=st.binary(max_size=40))
def test_padding_and_trailing_bytes_are_ignored(msg, trailer):
    has_rest = any(isinstance(item, Rest) for item in msg.layout)
    padded = msg.build_frame(pad=True)
    assert len(padded) == max(60, len(msg.build_frame()))
    if not has_rest:  # a Rest field owns every byte to the end, by definition
        assert parse_frame(padded) == msg
        assert parse_frame(msg.build_frame() + trailer) == msg


@settings(max_examples=100, deadline=None)
@given(msg=any_message())
def test_summaries_and_descriptions_are_json_ready(msg):
    json.dumps(msg.key_fields())
    json.dumps(msg.describe())
    text = repr(msg)
    assert text.startswith(msg.name + "(") and str(msg.src) in text


# --- MMV 0 / 1 header forms --------------------------------------------------------------------

def test_mmv0_has_no_fragmentation_fields():
    common = dict(src=PEV, dst=EVSE, run_id=bytes(range(8)))
    v1 = CmSlacParamReq(mmv=1, fmi=0x21, fmsn=7, **common)
    v0 = CmSlacParamReq(mmv=0, **common)
    assert v1.to_bytes()[:5] == bytes([1, 0x64, 0x60, 0x21, 7])
    assert v0.to_bytes()[:3] == bytes([0, 0x64, 0x60])
    assert v0.to_bytes()[3:] == v1.to_bytes()[5:]
    assert parse_payload(v0.to_bytes()).run_id == bytes(range(8))
    assert parse_frame(v0.build_frame()) == v0
    with pytest.raises(MmeError, match="fmi"):
        CmSlacParamReq(mmv=0, fmi=1, **common).to_bytes()


def test_default_mmv_follows_what_devices_send():
    assert CmSlacMatchCnf().mmv == 1
    assert VsSwVerReq().mmv == 0  # Qualcomm tools send VS_SW_VER with MMV 0
    assert VsNwInfoCnfV0().mmv == 0


def test_vs_nw_info_layout_is_chosen_by_mmv():
    station0 = StationInfoV0(address=PEV, tei=2, bridged_address=EVSE, tx_rate=9, rx_rate=10)
    v0 = VsNwInfoCnfV0(src=PEV, dst=EVSE, networks=[NetworkInfoV0(nid=b"\x01" * 7, snid=14, tei=1,
                                                                   station_role=2, stations=[station0])])
    payload = v0.to_bytes()
    # MMV, MMTYPE, OUI, NumAVLNs, NID, SNID, TEI, role, CCo MAC, CCo TEI, NumSTAs, station
    assert payload == (bytes([0, 0x39, 0xA0]) + bytes.fromhex("00B052") + b"\x01" + b"\x01" * 7
                       + bytes([14, 1, 2]) + bytes(6) + b"\x00" + b"\x01" + PEV + b"\x02" + EVSE + b"\x09\x0a")
    assert type(parse_payload(payload)) is VsNwInfoCnfV0
    v1 = VsNwInfoCnf(src=PEV, dst=EVSE, networks=[NetworkInfo(stations=[StationInfo(tx_rate=300)])])
    parsed = parse_frame(v1.build_frame())
    assert type(parsed) is VsNwInfoCnf and parsed.networks[0].stations[0].tx_rate == 300
    with pytest.raises(MmeError, match="MMV 1 uses the VsNwInfoCnf layout"):
        VsNwInfoCnfV0(mmv=1).to_bytes()
    with pytest.raises(MmeError, match="MMV 0 uses the VsNwInfoCnfV0 layout"):
        VsNwInfoCnf(mmv=0).to_bytes()


# --- field values from hand-made bytes (offsets from ISO 15118-3 / HomePlug GP) -----------------

def test_slac_match_cnf_fields_from_bytes():
    run_id, nid, nmk = bytes.fromhex("c4dee2b3ed230000"), bytes.fromhex("bceac68e7c2d02"), bytes(range(16))
    body = (b"\x00\x00" + struct.pack("<H", 86) + b"P" * 17 + PEV + b"E" * 17 + EVSE + run_id + bytes(8)
            + nid + b"\x00" + nmk)
    frame = PEV + EVSE + b"\x88\xe1" + bytes([1, 0x7D, 0x60, 0, 0]) + body
    msg = parse_frame(frame)
    assert isinstance(msg, CmSlacMatchCnf) and msg.name == "CM_SLAC_MATCH.CNF" and msg.mmtype == 0x607D
    assert msg.variant == "CNF" and msg.mmv == 1 and msg.dst == PEV and msg.src == EVSE
    assert (msg.pev_id, msg.pev_mac, msg.evse_id, msg.evse_mac) == (b"P" * 17, PEV, b"E" * 17, EVSE)
    assert (msg.run_id, msg.nid, msg.nmk, msg.mvf_length) == (run_id, nid, nmk, 86)
    assert msg.key_fields() == {
        "run_id": "c4:de:e2:b3:ed:23:00:00", "pev_mac": "02:00:00:00:00:01", "evse_mac": "02:00:00:00:00:02",
        "nid": "bc:ea:c6:8e:7c:2d:02", "nmk": "00:" + "**:" * 14 + "0f",
    }
    assert msg.key_fields()["nmk"].key == nmk  # masked as text; the renderers may reveal it on request
    assert msg.build_frame() == frame
    assert CmSlacMatchCnf().mvf_length == 86 and CmSlacMatchReq().mvf_length == 62


def test_atten_char_ind_groups_and_average():
    aag = [10, 20, 33]
    body = (b"\x00\x00" + PEV + b"R" * 8 + b"S" * 17 + b"T" * 17 + bytes([10, len(aag)]) + bytes(aag))
    msg = parse_payload(bytes([1, 0x6E, 0x60, 0, 0]) + body + bytes(9), src=EVSE, dst=PEV)
    assert isinstance(msg, CmAttenCharInd)
    assert (msg.source_address, msg.run_id, msg.num_sounds, msg.aag) == (PEV, b"R" * 8, 10, aag)
    assert msg.key_fields()["num_groups"] == 3
    assert msg.key_fields()["attenuation_avg_db"] == 21.0
    profile = CmAttenProfileInd(pev_mac=PEV, aag=[1, 2])
    assert profile.to_bytes()[5:] == PEV + bytes([2, 0, 1, 2])


def test_set_key_req_fields_and_enum_names():
    nmk = nmk_from_passphrase("HomePlugAV")
    msg = CmSetKeyReq(src=PEV, dst=BROADCAST, my_nonce=0xAAAAAAAA, nid=nid_from_nmk(nmk), new_key=nmk)
    payload = msg.to_bytes()
    assert payload[5:] == (bytes([1]) + b"\xaa" * 4 + bytes(4) + bytes([4]) + bytes(2) + bytes(2)
                           + nid_from_nmk(nmk) + bytes([1]) + nmk)
    assert msg.key_fields() == {"key_type": "NMK", "nid": "b0:f2:e6:95:66:6b:03", "new_key": mask_key(nmk)}
    assert format_hex(nmk) not in repr(msg) + str(msg.describe()) + str(msg.key_fields())
    assert msg.describe()["new_key"].key == nmk
    assert msg.describe()["pid"] == "HLE protocol"


def test_slac_param_cipher_suites_only_with_public_key_security():
    plain = CmSlacParamReq(run_id=b"\x01" * 8)
    assert len(plain.to_bytes()) == 5 + 10
    signed = CmSlacParamReq(run_id=b"\x01" * 8, security_type=1, cipher_suites=[0x0001, 0x0102])
    assert signed.to_bytes()[15:] == bytes([2, 0x01, 0x00, 0x02, 0x01])
    assert parse_payload(signed.to_bytes()).cipher_suites == [1, 0x0102]
    with pytest.raises(MmeError, match="cipher_suites"):
        CmSlacParamReq(cipher_suites=[1]).to_bytes()
    assert CmSlacParamCnf().cipher_suite is None
    with pytest.raises(MmeError, match="cipher_suite"):
        CmSlacParamCnf(security_type=1).to_bytes()


def test_amp_map_nibbles_low_first():
    msg = CmAmpMapReq(amplitudes=[1, 2, 3])
    assert msg.to_bytes()[5:] == bytes([3, 0, 0x21, 0x03])
    assert parse_payload(msg.to_bytes()).amplitudes == [1, 2, 3]


def test_sw_ver_cnf_version_text():
    version = b"MAC-QCA7420-1.3.1.2141-00-20160428-CS\0"
    msg = VsSwVerCnf(device_id=0x20, version_length=len(version), version=version.ljust(254, b"\xff"),
                     extension=bytes(20))
    parsed = parse_payload(msg.to_bytes())
    assert parsed.version_text == "MAC-QCA7420-1.3.1.2141-00-20160428-CS"
    assert parsed.key_fields() == {"device_id": "QCA7420", "version": "MAC-QCA7420-1.3.1.2141-00-20160428-CS"}
    assert msg.to_bytes()[:6] == bytes([0, 0x01, 0xA0, 0x00, 0xB0, 0x52])


# --- unknown and truncated ---------------------------------------------------------------------

def test_unknown_mmtype_is_generic():
    payload = bytes([1, 0x10, 0x00, 0, 0]) + b"\x01\x02\x03"  # 0x0010: named by nobody
    msg = parse_payload(payload, src=PEV, dst=EVSE)
    assert isinstance(msg, GenericMme)
    assert (msg.mmtype, msg.payload, msg.name) == (0x0010, b"\x01\x02\x03", "MMTYPE_0x0010.REQ")
    assert msg.to_bytes() == payload and parse_frame(msg.build_frame()) == msg
    foreign_vendor = bytes([0, 0x01, 0xA0]) + bytes.fromhex("0013D7") + b"\x00"
    assert isinstance(parse_payload(foreign_vendor), GenericMme)
    assert parse_payload(foreign_vendor).name == "MMTYPE_0xA001.CNF"


def test_generic_messages_wireshark_names_get_their_names():
    def named(mmtype, after=b""):
        return parse_payload(bytes([1]) + mmtype.to_bytes(2, "little") + bytes(2) + after).name
    assert named(0x0014) == "CC_DISCOVER_LIST.REQ"
    assert named(0x600C) == "CM_GET_KEY.REQ" and named(0x600D) == "CM_GET_KEY.CNF"
    assert named(0x6038) == "CM_NW_INFO.REQ" and named(0x6062) == "CM_STA_IDENTIFY.IND"
    assert named(0xA070, bytes.fromhex("00B052")) == "VS_TONE_MAP_TX.REQ"
    assert named(0xA14E, bytes.fromhex("00B052")) == "VS_DIAG_A14E.IND"
    assert named(0xA0B1, bytes.fromhex("00B052")) == "VS_MODULE_OPERATION.CNF"  # Qualcomm's toolkit's name
    assert named(0xA0B1, bytes.fromhex("0080E1")) == "MMTYPE_0xA0B1.CNF"  # not for another vendor
    assert named(0xA000, bytes.fromhex("0080E1")) == "STP_DISCOVER.REQ"  # the same MMTYPE, another vendor


@pytest.mark.parametrize("cls", ALL, ids=ids)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_every_cut_of_a_known_message_names_message_and_field(cls, data):
    msg = data.draw(messages(cls))
    rest = {item.name: b"" for item in cls.layout if isinstance(item, Rest)}
    if rest:  # trailing free bytes: any cut there is a shorter message, not a damaged one
        msg = dataclasses.replace(msg, **rest)
    payload = msg.to_bytes()
    header = 3 + (2 if msg.mmv else 0) + (3 if cls.oui else 0)
    top_level = {item.name for item in cls.layout}
    for cut in range(header, len(payload)):
        with pytest.raises(MmeError) as failure:
            parse_payload(payload[:cut])
        assert failure.value.message_name == cls.name
        assert failure.value.field.split("[")[0] in top_level
        assert cls.name in str(failure.value) and failure.value.field in str(failure.value)


def test_truncation_names_the_exact_field():
    cnf = CmSlacMatchCnf(src=EVSE, dst=PEV).to_bytes()
    with pytest.raises(MmeError, match=r"CM_SLAC_MATCH.CNF: field 'nmk'") as failure:
        parse_payload(cnf[:-3])
    assert isinstance(failure.value, ValueError) and failure.value.field == "nmk"
    with pytest.raises(MmeError, match="'run_id'"):
        parse_payload(cnf[:5 + 2 + 2 + 17 + 6 + 17 + 6 + 4])
    ind = CmAttenCharInd(aag=[1, 2, 3, 4]).to_bytes()
    with pytest.raises(MmeError, match="CM_ATTEN_CHAR.IND: field 'aag'"):
        parse_payload(ind[:-1])
    info = VsNwInfoCnf(networks=[NetworkInfo(stations=[StationInfo(), StationInfo()])]).to_bytes()
    with pytest.raises(MmeError) as failure:
        parse_payload(info[:-14])  # 10 of the 24 bytes of station 1 left
    assert failure.value.field == "networks[0].stations[1].bridged_address"
    with pytest.raises(MmeError, match="header"):
        parse_payload(b"\x01\x64")
    with pytest.raises(MmeError, match="ethertype"):
        parse_frame(bytes(12) + b"\x08\x00" + bytes(46))


def test_build_rejects_values_that_do_not_fit():
    with pytest.raises(MmeError, match="'run_id'.*8 bytes"):
        CmSlacMatchReq(run_id=b"short").to_bytes()
    with pytest.raises(MmeError, match="'num_sounds'"):
        CmSlacParamCnf(num_sounds=256).to_bytes()
    with pytest.raises(MmeError, match=r"'aag\[1\]': 256"):
        CmAttenProfileInd(aag=[1, 256]).to_bytes()
    with pytest.raises(MmeError, match=r"'amplitudes'"):
        CmAmpMapReq(amplitudes=[16]).to_bytes()
    with pytest.raises(MmeError, match="src"):
        CmSlacMatchReq(dst=PEV).build_frame()
    with pytest.raises(MmeError, match=r"networks\[0\]"):
        VsNwInfoCnf(networks=["not a record"]).to_bytes()


def test_vlan_tagged_frame():
    msg = CmSlacParamReq(src=PEV, dst=BROADCAST, run_id=b"\x05" * 8)
    frame = msg.build_frame()
    tagged = frame[:12] + b"\x81\x00\x00\x05" + frame[12:]
    assert parse_frame(tagged) == msg


# --- keys and notation -------------------------------------------------------------------------

def test_nmk_and_nid_from_homeplug_spec_fact():
    nmk = nmk_from_passphrase("HomePlugAV")
    assert nmk == parse_hex("50:D3:E4:93:3F:85:5B:70:40:78:4D:F8:15:AA:8D:B7")
    assert nid_from_nmk(nmk) == parse_hex("B0:F2:E6:95:66:6B:03")
    assert nmk_from_passphrase(b"HomePlugAV") == nmk


@given(nmk=st.binary(min_size=16, max_size=16), level=st.integers(0, 3))
def test_nid_security_level_sits_in_bits_4_and_5(nmk, level):
    nid = nid_from_nmk(nmk, level)
    base = nid_from_nmk(nmk, 0)
    assert len(nid) == 7 and nid[:6] == base[:6]
    assert nid[6] & 0x0F == base[6] and nid[6] >> 4 == level and base[6] >> 4 == 0


def test_key_helper_errors_and_random_nmk():
    with pytest.raises(ValueError):
        nid_from_nmk(bytes(15))
    with pytest.raises(ValueError):
        nid_from_nmk(bytes(16), 4)
    keys = {random_nmk() for _ in range(8)}
    assert len(keys) == 8 and all(len(key) == 16 for key in keys)


def test_mac_and_hex_notation():
    mac = parse_mac("AA-BB-cc-dd-ee-ff")
    assert mac == bytes.fromhex("aabbccddeeff") and isinstance(mac, MacAddress)
    assert str(mac) == format_mac(mac) == "aa:bb:cc:dd:ee:ff"
    assert repr(mac) == "MacAddress('aa:bb:cc:dd:ee:ff')"
    assert parse_mac("aabb.ccdd.eeff") == mac == MacAddress("aa:bb:cc:dd:ee:ff")
    assert parse_hex("0x0102") == b"\x01\x02" and format_hex(b"\x01\xab") == "01:ab"
    assert format_hex(b"\x01\xab", sep="") == "01ab"
    for bad in ("aa:bb", "zz:bb:cc:dd:ee:ff"):
        with pytest.raises(ValueError):
            parse_mac(bad)
    with pytest.raises(ValueError, match="expected 16 bytes"):
        parse_hex("0102", 16)
