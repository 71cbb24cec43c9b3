"""The HomePlug network key (NMK) never appears in an output or a log unless ``--show-key`` asks.

``decode`` in every output mode and ``emulate evse|pev -v`` (real stacks in network namespaces)
are searched for the key in every spelling a program would print it: plain hex, hex with
separators, upper case, and Python's bytes repr.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ccssniff.capture.reader import read_packets
from ccssniff.cli import cli
from ccssniff.emulate import netns
from ccssniff.homeplug import CmSetKeyReq, CmSlacMatchCnf, parse_frame
from ccssniff.homeplug.keys import NetworkKey, mask_key, render_key, reveal_keys

REPO = Path(__file__).resolve().parents[1]
DIN_DC = REPO / "captures" / "din_dc.pcapng"
MODES = [(), ("--json",), ("--xml",), ("--summary",), ("--json", "--summary"), ("--hex",), ("--json", "--hex")]


def spellings(key: bytes) -> list[str]:
    return [key.hex(), key.hex(":"), key.hex(" "), key.hex().upper(), key.hex(":").upper(), repr(key)[2:-1]]


def leaked(key: bytes, text: str) -> list[str]:
    return [form for form in spellings(key) if form in text]


def keys_in(path: Path) -> set[bytes]:
    """Every NMK the capture carries (CM_SLAC_MATCH.CNF nmk, CM_SET_KEY.REQ new_key), parsed here."""
    found = set()
    for packet in read_packets(path):
        if packet.data[12:14] != b"\x88\xe1":
            continue
        message = parse_frame(packet.data)
        if isinstance(message, CmSlacMatchCnf):
            found.add(bytes(message.nmk))
        elif isinstance(message, CmSetKeyReq):
            found.add(bytes(message.new_key))
    return found


def test_mask_shows_first_and_last_byte_only():
    key = bytes.fromhex("a1" + "00" * 14 + "ff")
    assert mask_key(key) == "a1:" + "**:" * 14 + "ff"
    assert mask_key(key, sep="") == "a1" + "**" * 14 + "ff"
    assert mask_key(b"\x01\x02") == "**:**"
    secret = NetworkKey(key)
    assert secret == mask_key(key) and secret.key == key
    assert leaked(key, repr(secret) + str(secret) + f"{secret}") == []
    assert render_key(secret, False) == mask_key(key) and render_key(secret, True) == key.hex(":")
    assert reveal_keys({"nmk": secret, "n": 1}, True) == {"nmk": key.hex(":"), "n": 1}
    assert reveal_keys({"nmk": secret}, False)["nmk"] == mask_key(key)


def test_parsed_messages_keep_the_key_but_never_print_it():
    key = bytes(range(0xA0, 0xB0))
    message = parse_frame(CmSlacMatchCnf(src=b"\x02" * 6, dst=b"\x04" * 6, nmk=key).build_frame())
    assert message.nmk == key  # the emulators and `listen` use the key itself
    assert leaked(key, repr(message) + str(message.describe()) + str(message.key_fields())) == []


@pytest.mark.parametrize("mode", MODES, ids=lambda m: " ".join(m) or "timeline")
def test_decode_masks_the_key_in_every_mode_unless_asked(mode):
    keys = keys_in(DIN_DC)
    assert len(keys) == 1
    key = keys.pop()
    hidden = CliRunner().invoke(cli, ["decode", str(DIN_DC), *mode])
    assert hidden.exit_code == 0, hidden.output
    assert leaked(key, hidden.output) == []
    shown = CliRunner().invoke(cli, ["decode", str(DIN_DC), *mode, "--show-key"])
    assert shown.exit_code == 0
    if "--summary" in mode and "--json" not in mode:
        assert leaked(key, shown.output) == []  # the text summary lists no HomePlug fields at all
    else:
        assert key.hex(":") in shown.output
        assert mask_key(key) in hidden.output


def emulator(side, interface, record, *extra):
    return [sys.executable, "-c", "from ccssniff.cli import main; main()", "-v", "emulate", side, interface,
            "--modem", "none", "--charge-time", "1", "--timeout", "40", "--seed", "11", "-w", str(record), *extra]


@pytest.mark.skipif(netns.unavailable_reason() is not None, reason=str(netns.unavailable_reason()))
@pytest.mark.parametrize("show", [False, True], ids=["masked", "show-key"])
def test_emulators_log_the_key_masked_unless_asked(tmp_path, monkeypatch, show):
    monkeypatch.setattr(netns, "PREFIX", "ccsK")  # this suite's own namespace and veth names
    extra = ("--show-key",) if show else ()
    with netns.Namespaces(2) as (ev, evse):
        ev_if, evse_if = netns.veth(ev, evse)
        charger = evse.popen(emulator("evse", evse_if, tmp_path / "evse.pcapng", *extra),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        car = ev.popen(emulator("pev", ev_if, tmp_path / "pev.pcapng", *extra),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        car_output, _ = car.communicate(timeout=60)
        charger_output, _ = charger.communicate(timeout=20)
    assert car.returncode == 0 and charger.returncode == 0, car_output + charger_output
    keys = keys_in(tmp_path / "evse.pcapng")
    assert len(keys) == 1
    key = keys.pop()
    for output in (car_output, charger_output):
        assert "SLAC matched" in output  # -v logs the match
        if show:
            assert key.hex(":") in output
        else:
            assert leaked(key, output) == [] and mask_key(key) in output
