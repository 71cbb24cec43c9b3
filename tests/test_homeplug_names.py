"""Our names for HomePlug AV/GP management messages against Wireshark's ``homeplug-av`` dissector
(real tshark) for every MMTYPE it names (the names of every HomePlug frame of the captures in
../shared are compared in test_homeplug_tshark.py, which dissects them anyway); the test-system
diagnostics; the modem vendor from the MAC's OUI; IDs shown as text."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ccssniff.capture.reader import read_packets
from ccssniff.homeplug import parse_payload
from ccssniff.homeplug.mme import known_name
from ccssniff.homeplug.vendor import vendor_of
from ccssniff.ui.values import printable_text, readable_id

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import homeplug_names  # noqa: E402  (the generator: its probe and our spelling rules)


def test_every_mmtype_wireshark_names_has_that_name_here(tshark):
    theirs = homeplug_names.probe(tshark)
    assert len(theirs) > 200  # Wireshark 4.0 names about 230
    wrong = {f"0x{mmtype:04X} {oui.hex() if oui else ''}": (name, known_name(mmtype, oui))
             for (mmtype, oui), name in theirs.items()
             if known_name(mmtype, oui) != homeplug_names.our_name(name, oui)}
    assert wrong == {}
    for name in ("CM_GET_KEY.REQ", "CM_NW_INFO.REQ", "CM_ATTEN_PROFILE.IND", "VS_TONE_MAP_TX.REQ", "STP_CPSTATE.IND"):
        assert name in {known_name(mmtype, oui) for mmtype, oui in theirs}
    # every name ends with the variant its MMTYPE's low bits say
    for mmtype, oui in theirs:
        assert known_name(mmtype, oui).endswith("." + ("REQ", "CNF", "IND", "RSP")[mmtype & 3])


def test_test_system_diagnostics_decode(shared_dir):
    path = shared_dir / "captures" / "dsv2gshark" / "IEC61851_AC_PWM_Basic.pcapng"
    messages = []
    for packet in read_packets(path):
        if packet.data[12:14] == b"\x88\xe1":
            messages.append(parse_payload(packet.data[14:]))
    states = [m.key_fields() for m in messages if m.name == "STP_CPSTATE.IND"]
    assert states[0] == {"cp_state": "A", "pwm_duty": 100, "pwm_frequency": 0, "cp_voltage_v": 12.008}
    assert {s["cp_state"] for s in states} >= {"A", "B", "C"}
    assert any(s["pwm_frequency"] == 1000 and s["pwm_duty"] < 100 for s in states)  # the pilot's PWM
    readings = [m.key_fields() for m in messages if m.name == "DSPACE_SCS_DIAG.IND"]
    assert readings and all(r["source"] == "dSPACE SCS Diag" for r in readings)
    assert {r["values"]["CP State"] for r in readings} >= {"State_A1", "State_B1"}


@pytest.mark.parametrize("mac,vendor", [
    ("00:b0:52:00:00:01", "Atheros Communications"),
    (bytes.fromhex("644d700103bf"), "dSPACE GmbH"),
    ("98-48-27-5A-3C-E4", "TP-LINK TECHNOLOGIES CO.,LTD."),
    ("02:cc:ee:00:00:01", None),   # locally administered (our emulators)
    ("ff:ff:ff:ff:ff:ff", None),   # broadcast
    ("not a mac", None),
    ("00:b0:52", None),
])
def test_vendor_from_the_oui(mac, vendor):
    assert vendor_of(mac) == vendor


@pytest.mark.parametrize("value,text,shown", [
    (b"DE*PNX*E12345*1", "DE*PNX*E12345*1", "DE*PNX*E12345*1 (hex 44452a504e582a4531323334352a31)"),
    (b"ZZ00000", "ZZ00000", "ZZ00000 (hex 5a5a3030303030)"),
    (bytes.fromhex("00010203"), None, "00010203"),
    (b"DE\x00PNX", None, "444500504e58"),
    (b"", None, ""),
    ("DE*PNX*E12345*1", None, "DE*PNX*E12345*1"),  # ISO 15118-2 sends it as a string already
])
def test_ids_as_text_when_printable(value, text, shown):
    assert printable_text(value) == text
    assert readable_id(value) == shown
