"""`ccssniff listen` end to end: our EVSE and PEV emulators run a whole session through the
powerline simulator process; listen sits on a third port and joins from the sniffed
CM_SLAC_MATCH.CNF.

    [ns ev]  ---veth---+
    [ns evse] --veth---+-- [ns line: python -m ccssniff.emulate.powerline] 
    [ns sniff] --veth--+      (ev, evse: filtering modems; sniff: full view or filtering)
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from ccssniff.capture.reader import read_packets
from ccssniff.decode.events import V2G
from ccssniff.decode.trace import decode_trace
from ccssniff.emulate import netns
from ccssniff.homeplug import parse_frame

pytestmark = pytest.mark.skipif(netns.unavailable_reason() is not None, reason=str(netns.unavailable_reason()))
SESSION_TIMEOUT = 60
CLI = [sys.executable, "-c", "from ccssniff.cli import main; main()"]


def ccssniff(*arguments: str) -> list[str]:
    return CLI + list(arguments)


def wait_for_line(process: subprocess.Popen, text: str, timeout: float = 15.0) -> str:
    end = time.monotonic() + timeout
    seen = []
    while time.monotonic() < end:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return line
    raise AssertionError(f"no {text!r} within {timeout} s: {''.join(seen)}")


def run_session(tmp_path, sniff_view: str, listen_options: list[str], medium_options: tuple = (),
                emulate_options: tuple = ()):
    """Run a DIN session with listen on the third port; return (listen records, pcapng path)."""
    recording = tmp_path / "listen.pcapng"
    with netns.Namespaces(4) as (ev, evse, sniff, line):
        ev_if, line_ev = netns.veth(ev, line, checksum_offload=False)
        evse_if, line_evse = netns.veth(evse, line, checksum_offload=False)
        sniff_if, line_sniff = netns.veth(sniff, line, checksum_offload=False)
        medium = line.popen([sys.executable, "-m", "ccssniff.emulate.powerline", "--port", f"ev={line_ev}",
                             "--port", f"evse={line_evse}", "--port", f"sniff={line_sniff}:{sniff_view}",
                             "--restart-delay", "0.3", *medium_options], stdout=subprocess.PIPE, text=True)
        wait_for_line(medium, "ready")
        with open(tmp_path / "listen.jsonl", "w") as listen_out:
            listener = sniff.popen(ccssniff("listen", sniff_if, "-w", str(recording), "--json", *listen_options),
                                   stdout=listen_out, stderr=subprocess.PIPE, text=True)
            time.sleep(1.5)  # listen has found its modem
            emulate = ["--protocol", "din", "--charge-time", "2", "--timeout", str(SESSION_TIMEOUT), "--seed", "3",
                       *emulate_options]
            charger = evse.popen(ccssniff("emulate", "evse", evse_if, *emulate),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            car = ev.popen(ccssniff("emulate", "pev", ev_if, *emulate),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            car_output, _ = car.communicate(timeout=SESSION_TIMEOUT + 10)
            charger.communicate(timeout=15)
            time.sleep(1.0)
            listener.send_signal(signal.SIGINT)
            _, listen_errors = listener.communicate(timeout=15)
        assert listener.returncode == 0, listen_errors
    assert car.returncode == 0, car_output
    records = [json.loads(line) for line in (tmp_path / "listen.jsonl").read_text().splitlines()]
    return records, recording


def join_records(records, name):
    return [r for r in records if r["kind"] == "listen" and r["name"] == name]


def test_a_full_view_modem_joins_from_slac_and_decodes_the_whole_session_live(tmp_path):
    records, recording = run_session(tmp_path, "full", [])
    [joined] = join_records(records, "Joined")
    assert len(joined["members"]) == 2
    assert any(r["kind"] == "listen" and r["name"] == "KeyTaken" and "CM_SLAC_MATCH.CNF" in r["text"] for r in records)
    live = [r["name"] for r in records if r["kind"] == V2G]
    assert live[0] == "supportedAppProtocolReq" and live[-1] == "SessionStopRes"
    assert "CurrentDemandReq" in live
    # the secret stays masked everywhere
    match = [r for r in records if r.get("name") == "CM_SLAC_MATCH.CNF"]
    assert match and all("**" in r["nmk"] for r in match)
    summary = records[-1]
    assert summary["kind"] == "summary" and summary["listen"]["joined"] is True
    assert "**" in summary["listen"]["nmk"] and summary["listen"]["unicast_hidden"] is False
    assert summary["sessions"] and summary["sessions"][0]["protocol"] == "DIN SPEC 70121"
    # the recording decodes offline to the same messages
    offline = []
    decode_trace(read_packets(recording), on_event=lambda e, _: offline.append(e.name) if e.kind == V2G else None)
    assert offline == live
    # our CM_SET_KEY.REQ (the only one on this port: the others go to their own modems) carried
    # the key of the sniffed CM_SLAC_MATCH.CNF, and is in the recording after it
    names = [parse_frame(p.data) for p in read_packets(recording) if p.data[12:14] == b"\x88\xe1"]
    [match_cnf] = [m for m in names if m.name == "CM_SLAC_MATCH.CNF"]
    set_keys = [m for m in names[names.index(match_cnf):] if m.name == "CM_SET_KEY.REQ"]
    assert [m.new_key for m in set_keys] == [match_cnf.nmk]


def test_a_filtering_modem_joins_lists_both_modems_and_says_unicast_is_hidden(tmp_path):
    records, _ = run_session(tmp_path, "filtering", ["--activity"])
    [joined] = join_records(records, "Joined")
    assert len(joined["members"]) == 2
    assert [r for r in records if r["kind"] == V2G] == []
    summary = records[-1]["listen"]
    assert summary["joined"] and summary["unicast_hidden"]
    assert "hidden by the local modem" in summary["unicast_hidden_text"]
    assert not any(counts.get("TCP") for counts in summary["stations"].values())
    activity = summary["activity"]
    assert activity["unicast_frames"] > 20  # the TCP segments the modem did not forward
    assert activity["beacons_by_nid"]


def test_a_known_key_joins_at_once_for_a_session_without_slac(tmp_path):
    nmk = "00112233445566778899aabbccddeeff"
    records, _ = run_session(tmp_path, "full", ["--nmk", nmk],
                             medium_options=("--nmk", nmk, "--keyed", "ev", "--keyed", "evse"),
                             emulate_options=("--no-slac", "--modem", "none"))
    [taken] = join_records(records, "KeyTaken")
    assert "--nmk" in taken["text"] and nmk not in json.dumps(records)  # masked
    [joined] = join_records(records, "Joined")
    assert len(joined["members"]) == 2
    live = [r["name"] for r in records if r["kind"] == V2G]
    assert live[0] == "supportedAppProtocolReq" and live[-1] == "SessionStopRes"
