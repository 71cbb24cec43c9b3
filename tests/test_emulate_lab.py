"""`emulate lab`: complete sessions whose capture decodes to exactly what the stacks sent."""

from __future__ import annotations

import subprocess

import pytest
from click.testing import CliRunner

import openv2gx
from ccssniff.capture.pcapng import PcapngWriter
from ccssniff.capture.reader import read_packets
from ccssniff.cli import cli
from ccssniff.decode.events import ERROR, EV_TO_EVSE, HOMEPLUG, NEIGHBOR, SDP, SEQUENCE, V2G
from ccssniff.decode.pipeline import Pipeline
from ccssniff.emulate.lab import LabConfig, run_lab

LAB_CASES = [("din", "dc"), ("iso2", "dc"), ("iso2", "ac"), ("iso20", "dc"), ("iso20", "ac")]


def record(tmp_path, protocol, mode, charge_time=5.0):
    path = tmp_path / f"{protocol}_{mode}.pcapng"
    with PcapngWriter(path) as writer:
        result = run_lab(LabConfig(protocol=protocol, mode=mode, charge_time=charge_time),
                         lambda frame, at, comment: writer.write(frame, timestamp=at, comment=comment))
    return path, result


def decoded_events(path):
    pipeline = Pipeline()
    events = []
    for packet in read_packets(path):
        events += pipeline.feed(packet)
    return events + list(pipeline.finish())


@pytest.mark.parametrize("protocol,mode", LAB_CASES)
def test_lab_session_completes_and_decodes_to_what_was_sent(tmp_path, protocol, mode):
    path, result = record(tmp_path, protocol, mode)
    assert result.ok, result.reason
    names = [m.name for m in result.messages]
    assert names[0] == "supportedAppProtocolReq" and names[-1] == "SessionStopRes"
    loop = {"CurrentDemandReq", "ChargingStatusReq", "DC_ChargeLoopReq", "AC_ChargeLoopReq"}
    assert len([n for n in names if n in loop]) > 5
    events = decoded_events(path)
    assert [e for e in events if e.kind in (ERROR, SEQUENCE)] == []
    slac = [e.name for e in events if e.kind == HOMEPLUG]
    assert slac[0] == "CM_SLAC_PARAM.REQ" and slac.count("CM_MNBC_SOUND.IND") == 10
    assert slac.count("CM_SET_KEY.CNF") == 2 and "CM_SLAC_MATCH.CNF" in slac
    assert any(e.kind == NEIGHBOR for e in events) and len([e for e in events if e.kind == SDP]) == 2
    v2g = [e for e in events if e.kind == V2G]
    assert [e.message.name for e in v2g] == names
    assert [("EV" if e.direction == EV_TO_EVSE else "EVSE") for e in v2g] == [m.sender for m in result.messages]
    for event, sent in zip(v2g, result.messages):
        assert event.message == openv2gx.decode(openv2gx.encode(sent.message, sent.schema), sent.schema)


@pytest.mark.parametrize("protocol,mode", LAB_CASES)
def test_lab_capture_has_no_expert_warnings_in_tshark(tmp_path, tshark, protocol, mode):
    path, _ = record(tmp_path, protocol, mode, charge_time=2.0)
    flagged = subprocess.run(
        [tshark, "-r", str(path), "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
         "-Y", "_ws.malformed || _ws.expert.severity >= 6291456 || tcp.checksum.status == 0 "
               "|| udp.checksum.status == 0 || icmpv6.checksum.status == 0"],
        capture_output=True, text=True, check=True).stdout
    assert flagged.strip() == ""
    total = subprocess.run([tshark, "-r", str(path), "-T", "fields", "-e", "frame.number"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert len(total) > 50


def test_charge_loop_values_change_realistically(tmp_path):
    _, result = record(tmp_path, "din", "dc", charge_time=20.0)
    demands = [m.message["V2G_Message"]["Body"]["CurrentDemandReq"] for m in result.messages
               if m.name == "CurrentDemandReq"]
    socs = [d["DC_EVStatus"]["EVRESSSOC"] for d in demands]
    assert socs == sorted(socs)
    presents = [m.message["V2G_Message"]["Body"]["CurrentDemandRes"]["EVSEPresentCurrent"]["Value"]
                for m in result.messages if m.name == "CurrentDemandRes"]
    assert len(set(presents)) > 3  # the current ramps, it is not a constant


def test_lab_timestamps_are_realistic(tmp_path):
    path, result = record(tmp_path, "din", "dc", charge_time=10.0)
    times = [m.time for m in result.messages if m.name == "CurrentDemandReq"]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= 0.1 - 1e-6 and max(gaps) <= 0.25 + 0.05
    stamps = [p.timestamp for p in read_packets(path)]
    assert stamps == sorted(stamps)
    assert result.duration > 10.0


def test_emulate_lab_command_writes_a_capture(tmp_path):
    out = tmp_path / "lab.pcapng"
    run = CliRunner().invoke(cli, ["emulate", "lab", "-w", str(out), "--charge-time", "1"])
    assert run.exit_code == 0, run.output
    assert "session completed" in run.output
    assert sum(1 for _ in read_packets(out)) > 50


def test_emulate_lab_refuses_din_ac(tmp_path):
    run = CliRunner().invoke(cli, ["emulate", "lab", "-w", str(tmp_path / "x.pcapng"), "--protocol", "din",
                                   "--mode", "ac"])
    assert run.exit_code == 2
    assert "AC" in run.output


def test_emulate_lab_rejects_a_bad_config_file(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[battery]\nstart_soc = 150\n")
    run = CliRunner().invoke(cli, ["emulate", "lab", "-w", str(tmp_path / "x.pcapng"), "--config", str(config)])
    assert run.exit_code == 2
    assert "error" in run.output.lower()
