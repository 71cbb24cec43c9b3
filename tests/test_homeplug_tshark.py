"""Independent check of ccssniff.homeplug against Wireshark's homeplug-av dissector (real tshark).

1. Messages built by ccssniff.homeplug, written to pcapng by our writer, are dissected by tshark
   (through pyshark) with the same field values and no malformed-packet or expert info.
2. Every capture in ../shared/captures reads; its HomePlug frames are exactly the frames tshark's
   ``homeplug-av`` filter shows, each parses (a parse error would be collected, not raised, and
   fails the test by name), and where tshark dissects a message we define, it shows the same
   field values we parsed.

Wireshark 4.0 reads two fragmentation bytes in every public (CM_*) MME, even with MMV 0; old
INT6000 firmware sends MMV 0 without them (as ccssniff.homeplug parses), so built CM_* messages
are compared at MMV 1 and vendor messages at both MMVs. Wireshark dissects the public-key
(security type 1) form of SLAC messages as opaque CMS data, so built messages other than
CM_SLAC_PARAM use security type 0. CM_AMP_MAP has no dissector in Wireshark 4.0: only its header is compared.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyshark
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ccssniff.capture.link import decode_link
from ccssniff.capture.pcapng import PcapngWriter
from ccssniff.capture.reader import read_packets
from ccssniff.homeplug import (
    CmAmpMapCnf, CmAmpMapReq, CmAttenCharInd, CmAttenCharRsp, CmAttenProfileInd, CmMnbcSoundInd,
    CmSetKeyCnf, CmSetKeyReq, CmSlacMatchCnf, CmSlacMatchReq, CmSlacParamCnf, CmSlacParamReq,
    CmStartAttenCharInd, CmValidateCnf, CmValidateReq, GenericMme, Mme, MmeError, VsNwInfoCnf,
    VsNwInfoCnfV0, VsNwInfoReq, VsRsDevCnf, VsRsDevReq, VsSwVerCnf, VsSwVerReq, definitions,
    parse_payload,
)
from ccssniff.homeplug.messages import ST_IOTECHA_OUI, DspaceScsDiagInd, StpCpStateInd
from ccssniff.homeplug.mme import QUALCOMM_OUI, QUALCOMM_TOOLKIT_NAMES, UNDOCUMENTED
from ccssniff.homeplug.strategies import messages

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import homeplug_names  # noqa: E402  (the generator of our name table: its tshark probe and spelling rules)

HP = "homeplug_av."
GP = HP + "gp."
ETHERTYPE_HOMEPLUG_AV = 0x88E1
INSTANCES_PER_MESSAGE = 3

def _header(msg: Mme) -> dict[str, list]:
    vendor_field = {QUALCOMM_OUI: "mmhdr.mmtype.qualcomm", ST_IOTECHA_OUI: "mmhdr.mmtype.st"}
    mmtype_field = HP + (vendor_field[msg.oui] if msg.mmtype >= 0xA000 else "mmhdr.mmtype")
    fields: dict[str, list] = {HP + "mmhdr.mmver": [msg.mmv], mmtype_field: [msg.mmtype]}
    if msg.mmv:
        fields[HP + "public.frag_count"] = [msg.fmi >> 4]
        fields[HP + "public.frag_index"] = [msg.fmi & 0x0F]
        fields[HP + "public.frag_seqnum"] = [msg.fmsn]
    if msg.oui is not None:
        fields[HP + "vendor.oui"] = [int.from_bytes(msg.oui, "big")]
    return fields


def _slac_param(msg: Any, cnf: bool) -> dict[str, list]:
    p = GP + "cm_slac_parm."
    fields = {p + "apptype": [msg.application_type], p + "sectype": [msg.security_type], p + "runid": [msg.run_id]}
    if cnf:
        fields |= {p + "sound_target": [msg.msound_target], p + "sound_count": [msg.num_sounds],
                   p + "time_out": [msg.time_out], p + "resptype": [msg.resp_type],
                   p + "forwarding_sta": [msg.forwarding_sta]}
        if msg.security_type == 1:
            fields[p + "cipher"] = [msg.cipher_suite]
    elif msg.security_type == 1:
        fields[p + "cipher_size"] = [len(msg.cipher_suites)]
        if msg.cipher_suites:
            fields[p + "cipher"] = msg.cipher_suites
    return fields


def _atten_char(msg: Any) -> dict[str, list]:
    p = GP + "cm_atten_char."
    return {p + "apptype": [msg.application_type], p + "sectype": [msg.security_type],
            p + "source_mac": [msg.source_address], p + "runid": [msg.run_id], p + "source_id": [msg.source_id],
            p + "resp_id": [msg.resp_id]}


def _slac_match(msg: Any) -> dict[str, list]:
    p = GP + "cm_slac_match."
    return {p + "apptype": [msg.application_type], p + "sectype": [msg.security_type],
            p + "length": [msg.mvf_length], p + "pev_id": [msg.pev_id], p + "pev_mac": [msg.pev_mac],
            p + "evse_id": [msg.evse_id], p + "evse_mac": [msg.evse_mac], p + "runid": [msg.run_id]}


def _key_exchange(msg: Any) -> dict[str, list]:
    p = HP + "nw_info."
    return {p + "my_nonce": [msg.my_nonce], p + "your_nonce": [msg.your_nonce], p + "pid": [msg.pid],
            p + "prn": [msg.prn], p + "pmn": [msg.pmn], p + "cco_cap": [msg.cco_capability]}


def _nw_info(msg: Any) -> dict[str, list]:
    # Wireshark dissects the first AVLN only (the layout has one per modem in practice).
    fields: dict[str, list] = {HP + "nw_info.num_avlns": [len(msg.networks)]}
    if not msg.networks:
        return fields
    net = msg.networks[0]
    p, c = HP + "nw_info.", HP + "nw_info_cnf."
    stations = net.stations
    fields |= {p + "nid": [net.nid], p + "snid": [net.snid], p + "tei": [net.tei],
               p + "sta_role": [net.station_role], c + "cco_mac": [net.cco_address], c + "cco_tei": [net.cco_tei],
               c + "num_stas": [len(stations)]}
    if stations:
        fields |= {c + "sta_info.da": [s.address for s in stations], c + "sta_indo.tei": [s.tei for s in stations],
                   c + "sta_indo.bda": [s.bridged_address for s in stations],
                   c + "sta_indo.phy_dr_tx": [s.tx_rate for s in stations],
                   c + "sta_indo.phy_dr_rx": [s.rx_rate for s in stations]}
        if isinstance(msg, VsNwInfoCnf):
            fields[c + "sta_info.phy_coupling_tx"] = [s.coupling & 0x0F for s in stations]
            fields[c + "sta_info.phy_coupling_rx"] = [s.coupling >> 4 for s in stations]
    return fields


def _body(msg: Mme) -> dict[str, list]:
    g = GP
    match msg:
        case CmSlacParamReq():
            return _slac_param(msg, cnf=False)
        case CmSlacParamCnf():
            return _slac_param(msg, cnf=True)
        case CmStartAttenCharInd():
            p = g + "cm_start_atten_char."
            return {g + "cm_atten_char.apptype": [msg.application_type],
                    g + "cm_atten_char.sectype": [msg.security_type], p + "sounds_count": [msg.num_sounds],
                    p + "time_out": [msg.time_out], p + "resptype": [msg.resp_type],
                    p + "sound_forwarding_sta": [msg.forwarding_sta], p + "runid": [msg.run_id]}
        case CmAttenCharInd():
            p = g + "cm_atten_char."
            fields = _atten_char(msg) | {p + "sounds_count": [msg.num_sounds], p + "groups_count": [len(msg.aag)]}
            return fields | ({p + "aag": msg.aag} if msg.aag else {})
        case CmAttenCharRsp():
            return _atten_char(msg) | {g + "cm_atten_char.result": [msg.result]}
        case CmMnbcSoundInd():
            p = g + "cm_mnbc_sound."
            return {p + "apptype": [msg.application_type], p + "sectype": [msg.security_type],
                    p + "sender_id": [msg.sender_id], p + "countdown": [msg.countdown], p + "runid": [msg.run_id],
                    p + "rnd": [msg.random]}
        case CmAttenProfileInd():
            p = g + "cm_atten_profile_ind."
            return {p + "pev_mac": [msg.pev_mac], p + "groups_count": [len(msg.aag)]} | \
                ({p + "aag": msg.aag} if msg.aag else {})
        case CmValidateReq():
            p = g + "cm_validate."
            return {p + "signaltype": [msg.signal_type], p + "timer": [msg.timer], p + "result": [msg.result]}
        case CmValidateCnf():
            p = g + "cm_validate."
            return {p + "signaltype": [msg.signal_type], p + "togglenum": [msg.toggle_num], p + "result": [msg.result]}
        case CmSlacMatchReq():
            return _slac_match(msg)
        case CmSlacMatchCnf():
            p = g + "cm_slac_match."
            return _slac_match(msg) | {p + "nid": [msg.nid], p + "nmk": [msg.nmk]}
        case CmSetKeyReq():
            return _key_exchange(msg) | {HP + "nw_info.key_type": [msg.key_type], HP + "nw_info.nid": [msg.nid],
                                         HP + "nw_info.peks": [msg.new_eks & 0x0F],  # a 4-bit field there
                                         HP + "cm_set_key_req.nw_key": [msg.new_key]}
        case CmSetKeyCnf():
            return _key_exchange(msg) | {HP + "cm_set_key_cnf.result": [msg.result]}
        case VsSwVerCnf():
            p = HP + "get_sw_cnf."
            return {p + "status": [msg.status], p + "dev_id": [msg.device_id], p + "ver_len": [msg.version_length],
                    p + "ver_str": [msg.version[:64].split(b"\0")[0].decode("ascii")]}
        case VsRsDevCnf():
            return {HP + "rs_dev_cnf.status": [msg.status]}
        case VsNwInfoCnf() | VsNwInfoCnfV0():
            return _nw_info(msg)
        case StpCpStateInd():
            p = HP + "st_iotecha."
            fields = {p + "mmever": [msg.mme_version], p + "mver": [msg.message_version],
                    p + "cpstate.state": [msg.cp_state], p + "cpstate.pwm_duty": [msg.pwm_duty],
                    p + "cpstate.pwm_freq": [msg.pwm_frequency], p + "cpstate.cp_volatge": [msg.cp_voltage]}
            # Wireshark shows the ADC mask only when set, and each channel only when its bit is
            fields |= {p + "cpstate.adc_bitmask": [msg.adc_channels]} if msg.adc_channels else {}
            for channel in (1, 2, 3):
                if msg.adc_channels & (1 << (channel - 1)):
                    fields[p + f"cpstate.adc_channel_{channel}"] = [getattr(msg, f"adc_channel_{channel}")]
            return fields
        case CmAmpMapReq() | CmAmpMapCnf() | VsSwVerReq() | VsRsDevReq() | VsNwInfoReq() | DspaceScsDiagInd():
            return {}  # no dissector in Wireshark 4.0 for these bodies
    raise AssertionError(f"no tshark expectations for {msg.name}")


def expected_fields(msg: Mme) -> dict[str, list]:
    """What tshark's homeplug-av dissector must show for ``msg``, normalised (ints, bytes, str)."""
    fields = _header(msg) | _body(msg)
    return {name: [bytes(v) if isinstance(v, bytes) else v for v in values] for name, values in fields.items()}


def normalise(text: str, like: Any) -> Any:
    """tshark's text of a field read as the type of our value: bytes (hex, any separator), int, str."""
    if isinstance(like, bytes):
        return bytes.fromhex(text.replace(":", "").replace(" ", ""))
    if isinstance(like, int):
        return int(text, 16) if text.startswith("0x") else int(text)
    return text


def compare(msg: Mme, expected: dict[str, list], shown: dict[str, list[str]], where: str) -> None:
    for name, values in expected.items():
        assert name in shown, f"{where}: {msg.name}: tshark does not show {name}"
        seen = [normalise(text, value) for text, value in zip(shown[name], values)]
        assert len(shown[name]) == len(values) and seen == values, f"{where}: {msg.name}: {name}"


# --- 1. built messages through our pcapng writer and pyshark --------------------------------------

def _tshark_friendly(msg: Mme, version_text: str) -> Mme:
    changes: dict[str, Any] = {}
    if hasattr(msg, "security_type") and not isinstance(msg, (CmSlacParamReq, CmSlacParamCnf)):
        changes["security_type"] = 0
    if isinstance(msg, VsSwVerCnf):
        text = version_text.encode("ascii") + b"\0"
        changes |= {"version": text.ljust(254, b"\0"), "version_length": len(text)}
    return dataclasses.replace(msg, **changes) if changes else msg


def _message_batch():
    per_class = [st.lists(messages(cls, enums_only=True, mmv=1 if cls.mmtype < 0xA000 else None),
                          min_size=INSTANCES_PER_MESSAGE, max_size=INSTANCES_PER_MESSAGE)
                 for cls in definitions()]
    return st.tuples(*per_class).map(lambda groups: [msg for group in groups for msg in group])


def _pyshark_fields(packet) -> dict[str, list[str]]:
    shown: dict[str, list[str]] = {}
    for layer in [packet.frame_info, *packet.layers]:  # pyshark keeps the comment layer in frame_info
        for name in layer.field_names:
            shown.setdefault(name, []).extend(str(field.show) for field in layer.get_field(name).all_fields)
    return shown


@settings(max_examples=3, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(batch=_message_batch(), version_text=st.text(st.sampled_from("ABCQ0123456789-._"), min_size=1, max_size=60))
def test_built_messages_dissect_identically_in_tshark(tmp_path, tshark, batch, version_text):
    batch = [_tshark_friendly(msg, version_text) for msg in batch]
    path = tmp_path / "built.pcapng"
    with PcapngWriter(path) as writer:
        for number, msg in enumerate(batch, 1):
            writer.write(msg.build_frame(), timestamp=1_700_000_000 + number, comment=f"{number} {msg.name}")
    # pyshark runs tshark on the current event loop; an earlier asyncio.run() in the same
    # process (the emulator tests) leaves none, so give it one
    asyncio.set_event_loop(asyncio.new_event_loop())
    capture = pyshark.FileCapture(str(path), tshark_path=tshark)
    try:
        packets = list(capture)
    finally:
        capture.close()
    assert len(packets) == len(batch)
    for number, (msg, packet) in enumerate(zip(batch, packets, strict=True), 1):
        where = f"frame {number}"
        layer_names = [layer.layer_name for layer in packet.layers]
        assert "homeplug-av" in layer_names and "_ws.malformed" not in layer_names, f"{where}: {msg.name}"
        assert packet.eth.src == str(msg.src) and packet.eth.dst == str(msg.dst), where
        shown = _pyshark_fields(packet)
        comment = f"{number} {msg.name}"
        assert shown["frame_comment"] == [comment], where
        # The comment is itself an expert item (group Comment); nothing else may be.
        experts = shown.get("_ws_expert_message", [])
        assert set(experts) == {comment}, f"{where}: {msg.name}: {experts}"
        assert not any(name.startswith("_ws_malformed") for name in shown), f"{where}: {msg.name}"
        # pyshark names fields with underscores for dots (homeplug_av_gp_cm_slac_match_nmk).
        expected = {name.replace(".", "_"): values for name, values in expected_fields(msg).items()}
        compare(msg, expected, shown, where)


# --- 2. real captures -----------------------------------------------------------------------------

def _capture_files(shared_dir: Path) -> list[Path]:
    root = shared_dir / "captures"
    return sorted(p for p in root.rglob("*") if p.suffix in {".pcap", ".pcapng", ".dump"})


@pytest.fixture(scope="module")
def homeplug_field_names(tshark) -> list[str]:
    """Every field of Wireshark's homeplug-av dissector, from tshark's own registry."""
    listing = subprocess.run([tshark, "-G", "fields"], capture_output=True, text=True, check=True).stdout
    names = [line.split("\t")[2] for line in listing.splitlines() if line.startswith("F\t")]
    return [name for name in names if name.startswith(HP)]


def _tshark_homeplug(tshark: str, fields: list[str], path: Path) -> dict[int, dict[str, list[str]]]:
    command = [tshark, "-n", "-r", str(path), "-Y", "homeplug-av", "-T", "json", "-e", "frame.number",
               "-e", "_ws.malformed", "-e", "_ws.expert"]
    for name in fields:
        command += ["-e", name]
    # tshark exits 2 on a capture cut short, after printing every frame before the cut.
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    frames = json.loads(result.stdout or "[]")
    return {int(frame["_source"]["layers"]["frame.number"][0]): frame["_source"]["layers"] for frame in frames}


def _our_homeplug(path: Path) -> dict[int, Mme | MmeError]:
    found: dict[int, Mme | MmeError] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cut-short files warn; the frames before the cut still count
        for packet in read_packets(path):
            frame = decode_link(packet.linktype, packet.data)
            if frame is None or frame.ethertype != ETHERTYPE_HOMEPLUG_AV:
                continue
            try:
                found[packet.index] = parse_payload(frame.payload, src=frame.src, dst=frame.dst)
            except MmeError as error:
                found[packet.index] = error
    return found


def _wireshark_name(shown: dict[str, list[str]], wireshark_names: dict) -> tuple[str | None, int, bytes | None]:
    """(Wireshark's name for the frame's MMTYPE in our spelling or None, MMTYPE, vendor OUI or None)."""
    for field in ("mmhdr.mmtype", "mmhdr.mmtype.qualcomm", "mmhdr.mmtype.st"):
        if HP + field in shown:
            mmtype = int(shown[HP + field][0], 16)
            break
    else:
        raise AssertionError(f"tshark shows no MMTYPE in {sorted(shown)}")
    oui = bytes.fromhex(shown[HP + "vendor.oui"][0][2:]) if HP + "vendor.oui" in shown and mmtype >= 0x8000 else None
    name = wireshark_names.get((mmtype, oui))
    return (homeplug_names.our_name(name, oui) if name is not None else None), mmtype, oui


def test_real_captures_match_tshark(shared_dir, tshark, homeplug_field_names):
    files = _capture_files(shared_dir)
    assert len(files) > 90
    wireshark_names = homeplug_names.probe(tshark)  # {(MMTYPE, OUI): the name Wireshark gives it}
    with ThreadPoolExecutor(max_workers=2) as pool:
        theirs_by_file = list(pool.map(lambda path: _tshark_homeplug(tshark, homeplug_field_names, path), files))
    errors, known, total, named, seen = {}, 0, 0, 0, set()
    for path, theirs in zip(files, theirs_by_file, strict=True):
        relative = path.relative_to(shared_dir / "captures").as_posix()
        ours = _our_homeplug(path)
        assert sorted(ours) == sorted(theirs), relative
        total += len(ours)
        for number, result in ours.items():
            if isinstance(result, MmeError):
                errors[(relative, number)] = (result.message_name, result.field)
                continue
            shown = theirs[number]
            # names: Wireshark's wherever it names the MMTYPE, ours for the diagnostics it leaves unnamed
            expected_name, mmtype, oui = _wireshark_name(shown, wireshark_names)
            seen.add(result.name)
            if expected_name is not None:
                assert result.name == expected_name, f"{relative} frame {number}"
                named += 1
            elif oui == QUALCOMM_OUI and mmtype & ~3 in QUALCOMM_TOOLKIT_NAMES:
                assert result.name.startswith(QUALCOMM_TOOLKIT_NAMES[mmtype & ~3] + "."), f"{relative} {number}"
            elif (mmtype, oui) not in UNDOCUMENTED and mmtype != 0x8002:
                assert result.name.startswith("MMTYPE_0x"), f"{relative} frame {number}: {result.name}"
            if isinstance(result, GenericMme) or "_ws.malformed" in shown:
                continue
            if getattr(result, "security_type", 0) != 0 or (result.mmv == 0 and result.mmtype < 0xA000):
                continue
            compare(result, expected_fields(result), shown, f"{relative} frame {number}")
            known += 1
    # Decided by reading the bytes: every complete HomePlug frame in these captures is a valid MME
    # (some carry vendor bytes after the message, which parsing ignores like padding); the one
    # truncated ATTEN_PROFILE frame dpkt shows is a packet cut by the end of the file, which the
    # reader (like tshark) drops.
    assert errors == {}
    assert total > 7000  # the captures' README lists about 7400 HomePlug frames
    assert known > 4000  # frames whose fields were compared (the rest are vendor MMEs we do not define)
    assert named > 6000  # frames whose names were compared (the rest are vendor MMEs Wireshark does not name)
    assert {"CM_GET_KEY.REQ", "CM_NW_INFO.CNF", "CM_ATTEN_PROFILE.IND", "VS_TONE_MAP_TX.REQ", "VS_DIAG_A14E.IND",
            "VS_MODULE_OPERATION.REQ", "STP_CPSTATE.IND", "DSPACE_SCS_DIAG.IND", "CC_DISCOVER_LIST.REQ"} <= seen
    assert not {name for name in seen if name.startswith("MMTYPE_0x6")}  # every CM_* in them has its name
