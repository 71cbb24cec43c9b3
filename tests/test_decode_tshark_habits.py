"""``ccssniff decode`` with tshark's habits: ``-`` (stdin), ``-c N``, ``-Y EXPR``, ``-o FILE``, ``-w FILE``.

The CLI runs through click's CliRunner on the repository's lab captures, and as a real subprocess
fed through a pipe for stdin (pcap and pcapng streams, which cannot be sought).
"""
from __future__ import annotations

import io
import json
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ccssniff.capture.pcapng import PcapngWriter
from ccssniff.capture.reader import read_packets
from ccssniff.cli import cli
from ccssniff.decode.events import Event
from ccssniff.decode.filter import FilterError, compile_filter
from ccssniff.decode.schema import decoder_available
from ccssniff.emulate import netns
from ccssniff.homeplug import parse_frame

REPO = Path(__file__).resolve().parents[1]
DIN_DC = REPO / "captures" / "din_dc.pcapng"
needs_exi = pytest.mark.skipif(not decoder_available(), reason="openv2gx (the EXI decoder) is not importable")


def run(*args):
    return CliRunner().invoke(cli, ["decode", *map(str, args)], prog_name="ccssniff")


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def all_events() -> list[dict]:
    result = run(DIN_DC, "--json")
    assert result.exit_code == 0, result.output
    return json_lines(result.output)


def physical(value: dict) -> float:
    return value["Value"] * 10.0 ** value.get("Multiplier", 0)


def find(content, name):
    """Every value of element ``name`` at any depth (an independent walk for the checks)."""
    if isinstance(content, dict):
        for key, value in content.items():
            if key == name:
                yield value
            else:
                yield from find(value, name)
    elif isinstance(content, list):
        for item in content:
            yield from find(item, name)


# --- the expression language ------------------------------------------------------------------

def event(kind="v2g", name="CurrentDemandReq", connection=1, direction="EV->EVSE", fields=None, message=None):
    return Event(kind, 0.0, 7, name, connection=connection, direction=direction, fields=fields, message=message)


class FakeMessage(dict):
    """A decoded message as the pipeline carries it: a mapping with root, name and schema."""

    def __init__(self, content, name="CurrentDemandReq"):
        super().__init__({"V2G_Message": {"Header": {"SessionID": bytes.fromhex("06ef0071")},
                                          "Body": {name: content}}})
        self.root, self.name, self.schema = "V2G_Message", name, "din"


@pytest.mark.parametrize("expression,expected", [
    ("CurrentDemand*", True),
    ("CurrentDemandRes", False),
    ("CurrentDemandReq", True),
    ("kind == v2g", True),
    ("kind == sequence", False),
    ("kind != sequence", True),
    ("connection == 1", True),
    ("connection == 2", False),
    ("connection >= 1 and connection < 2", True),
    ("EVTargetCurrent > 100", True),         # 1234 x 10^-1 = 123.4 A
    ("EVTargetCurrent > 123.4", False),
    ("EVTargetCurrent >= 123.4", True),
    ("EVTargetCurrent == 123.4", True),
    ("EVRESSSOC < 50", True),                # an integer element, nested two levels deep
    ("ResponseCode == OK", False),           # absent: false
    ("ResponseCode != OK", False),           # absent: false for != too, as in Wireshark
    ("SessionID == 06ef0071", True),         # binary compares as hex, found in the header
    ("ChargingComplete == false", True),
    ("ChargingComplete == true", False),
    ("direction == EV", True),
    ("direction == EVSE", False),
    ("not kind == error and (CM_* or Current*)", True),
    ("!(CurrentDemand*) || kind == v2g && connection == 1", True),
    ("CM_* or Current*", True),
    ("CM_* and Current*", False),
    ("NOT CM_* AND NOT SDP*", True),
    ("name == 'CurrentDemandReq'", True),
])
def test_expressions_select_what_they_say(expression, expected):
    message = FakeMessage({"DC_EVStatus": {"EVRESSSOC": 42}, "ChargingComplete": False,
                           "EVTargetCurrent": {"Multiplier": -1, "Unit": "A", "Value": 1234}})
    assert compile_filter(expression)(event(message=message)) is expected


def test_fields_of_non_v2g_events_and_wildcards_on_text():
    slac = event(kind="homeplug", name="CM_SLAC_MATCH.CNF", direction=None, connection=None,
                 fields={"run_id": "c4:bb", "num_sounds": 10})
    assert compile_filter("CM_SLAC_MATCH.*")(slac)
    assert compile_filter("num_sounds == 10 and run_id == c4:*")(slac)
    assert not compile_filter("connection == 1")(slac)  # no connection: false
    assert not compile_filter("direction == EV")(slac)
    failed = event(name="ChargeParameterDiscoveryRes",
                   message=FakeMessage({"ResponseCode": "FAILED_WrongChargeParameter"}, "ChargeParameterDiscoveryRes"))
    assert compile_filter("ResponseCode == FAILED*")(failed)
    assert not compile_filter("ResponseCode == OK*")(failed)


@pytest.mark.parametrize("expression,problem", [
    ("", "empty"),
    ("EVTargetCurrent >", "expected a value after '>' at position 18"),
    ("(kind == v2g", "expected ')'"),
    ("kind == v2g)", "expected 'and', 'or' or the end at position 12"),
    ("kind == v2g and", "expected a message name"),
    ("EVTargetCurrent > lots", "needs a number"),
    ("direction == north", "EV or EVSE"),
    ("name == 'open", "never closed"),
    ("a = b", "unexpected '='"),
])
def test_bad_expressions_say_where(expression, problem):
    with pytest.raises(FilterError, match=re.escape(problem)):
        compile_filter(expression)


def test_a_bad_filter_is_one_line_and_exit_2():
    result = run(DIN_DC, "-Y", "EVTargetCurrent >")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --filter: expected a value")


def test_help_documents_the_grammar_with_examples():
    text = CliRunner().invoke(cli, ["decode", "--help"]).output
    for needle in ("-Y, --filter", "CurrentDemand*", "kind == sequence", "EVTargetCurrent > 100",
                   "connection == 2", "decode -", "-c, --count", "-o, --output", "-w, --write", "--show-key"):
        assert needle in text, needle


# --- the CLI on a real capture ------------------------------------------------------------------

@needs_exi
def test_filter_keeps_exactly_the_selected_events():
    events = all_events()
    result = run(DIN_DC, "--json", "-Y", "CurrentDemand* and EVSEPresentCurrent > 100")
    assert result.exit_code == 0, result.output
    kept = [(e["frame"], e["name"]) for e in json_lines(result.output)]
    expected = [(e["frame"], e["name"]) for e in events
                if e["name"].startswith("CurrentDemand")
                and any(physical(v) > 100 for v in find(e.get("body"), "EVSEPresentCurrent"))]
    assert kept == expected
    # the lab's power stage ramps up: some loop responses are below the threshold, some above
    loop = [e for e in events if e["name"] == "CurrentDemandRes"]
    assert 0 < len(expected) < len(loop)

    result = run(DIN_DC, "--json", "-Y", "kind == homeplug and not CM_MNBC_SOUND.IND")
    names = {e["name"] for e in json_lines(result.output)}
    assert "CM_SLAC_MATCH.CNF" in names and "CM_MNBC_SOUND.IND" not in names
    assert {e["kind"] for e in json_lines(result.output)} == {"homeplug"}


@needs_exi
def test_count_stops_after_n_frames():
    result = run(DIN_DC, "--json", "--summary", "-c", "50")
    assert result.exit_code == 0, result.output
    records = json_lines(result.output)
    assert records[-1]["kind"] == "summary" and records[-1]["frames"] == 50
    assert max(r["frame"] for r in records[:-1]) <= 50
    assert run(DIN_DC, "-c", "0").exit_code == 2


@needs_exi
@pytest.mark.parametrize("mode", [(), ("--json",), ("--xml",), ("--summary",)])
def test_output_file_gets_what_stdout_would(tmp_path, mode):
    expected = run(DIN_DC, *mode)
    target = tmp_path / "out.txt"
    result = run(DIN_DC, *mode, "-o", target)
    assert result.exit_code == 0 and result.output == ""
    assert target.read_text() == expected.output and len(expected.output) > 1000


def test_output_file_that_cannot_be_written_is_exit_2(tmp_path):
    result = run(DIN_DC, "-o", tmp_path / "missing" / "out.txt")
    assert result.exit_code == 2 and "cannot write" in result.output


@needs_exi
def test_write_keeps_the_frames_of_the_selected_events(tmp_path):
    original = {p.index: p for p in read_packets(DIN_DC)}
    target = tmp_path / "selected.pcapng"
    result = run(DIN_DC, "--json", "-Y", "CM_SLAC_MATCH* or SessionSetup* or kind == sdp", "-w", target)
    assert result.exit_code == 0, result.output
    frames = sorted({e["frame"] for e in json_lines(result.output)})
    written = list(read_packets(target))
    assert len(frames) >= 6 and len(written) == len(frames)
    for packet, number in zip(written, frames):
        assert packet.data == original[number].data
        assert packet.timestamp == pytest.approx(original[number].timestamp, abs=1e-6)
    # the written file decodes to the same selected messages
    again = run(target, "--json", "-Y", "CM_SLAC_MATCH* or SessionSetup* or kind == sdp")
    assert [e["name"] for e in json_lines(again.output)] == [e["name"] for e in json_lines(result.output)]


def test_write_without_filter_copies_every_frame(tmp_path):
    target = tmp_path / "all.pcapng"
    assert run(DIN_DC, "--summary", "-w", target, "-c", "300").exit_code == 0
    original = [p.data for p in read_packets(DIN_DC)][:300]
    assert [p.data for p in read_packets(target)] == original


def test_write_with_nothing_selected_is_a_valid_empty_capture(tmp_path):
    target = tmp_path / "none.pcapng"
    assert run(DIN_DC, "-Y", "NoSuchMessage", "-w", target).exit_code == 0
    assert list(read_packets(target)) == []


# --- stdin through a real pipe ----------------------------------------------------------------

def as_pcap(path: Path) -> bytes:
    """The capture as classic pcap (microseconds), written here independently of our writer."""
    packets = list(read_packets(path))
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, packets[0].linktype)]
    for p in packets:
        seconds = int(p.timestamp)
        micros = round((p.timestamp - seconds) * 1e6)
        out.append(struct.pack("<IIII", seconds, micros, len(p.data), p.orig_len) + p.data)
    return b"".join(out)


def decode_from_pipe(data: bytes, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "from ccssniff.cli import main; main()", "decode", "-", *args]
    # cat feeds a real pipe: stdin cannot be sought or its size known
    cat = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    decoder = subprocess.Popen(command, stdin=cat.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               cwd=REPO)
    cat.stdout.close()
    try:
        cat.stdin.write(data)
        cat.stdin.close()
    except BrokenPipeError:  # -c N: the decoder may stop reading early
        pass
    out, err = decoder.communicate(timeout=120)
    cat.wait(timeout=10)
    return subprocess.CompletedProcess(command, decoder.returncode, out.decode(), err.decode())


@needs_exi
@pytest.mark.parametrize("form", ["pcapng", "pcap"])
def test_stdin_pipe_decodes_like_the_file(form):
    data = DIN_DC.read_bytes() if form == "pcapng" else as_pcap(DIN_DC)
    piped = decode_from_pipe(data, "--json", "-Y", "kind == v2g")
    assert piped.returncode == 0, piped.stderr
    from_file = run(DIN_DC, "--json", "-Y", "kind == v2g")
    strip = lambda records: [{k: v for k, v in r.items() if k not in ("time", "timestamp")} for r in records]  # noqa: E731
    assert strip(json_lines(piped.stdout)) == strip(json_lines(from_file.output))
    assert len(json_lines(piped.stdout)) > 100


def test_stdin_with_count_and_bad_input():
    piped = decode_from_pipe(DIN_DC.read_bytes(), "--json", "--summary", "-c", "20")
    assert piped.returncode == 0, piped.stderr
    assert json_lines(piped.stdout)[-1]["frames"] == 20
    garbage = decode_from_pipe(b"this is not a capture at all", "--json")
    assert garbage.returncode == 2
    assert garbage.stderr.strip().splitlines() == ["error: <stdin> is not a pcap or pcapng capture "
                                                   "(it starts with 74 68 69 73)"]


# --- a live capture piped in: dumpcap writes to stdout as tcpdump -w - does -------------------

@pytest.mark.skipif(shutil.which("dumpcap") is None, reason="dumpcap (Debian package tshark) is not installed")
@pytest.mark.skipif(netns.unavailable_reason() is not None, reason=str(netns.unavailable_reason()))
@pytest.mark.parametrize("form", ["pcapng", "pcap"])
def test_live_capture_piped_into_decode(monkeypatch, form):
    """``dumpcap -w - | ccssniff decode - -c N`` on a veth that carries the SLAC frames of a session:
    the decoder reads the stream as it comes and stops by itself after N frames."""
    monkeypatch.setattr(netns, "PREFIX", "ccsK")  # this suite's own namespace and veth names
    slac = [p.data for p in read_packets(DIN_DC) if p.data[12:14] == b"\x88\xe1"][:40]
    limit = 30
    with netns.Namespaces(2) as (sender, sniffer):
        sending_if, sniffing_if = netns.veth(sender, sniffer)
        capture = sniffer.popen(["dumpcap", "-i", sniffing_if, "-w", "-", *(["-P"] if form == "pcap" else [])],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        decoder = sniffer.popen([sys.executable, "-c", "from ccssniff.cli import main; main()", "decode", "-",
                                 "-c", str(limit), "--json"], stdin=capture.stdout, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=REPO)
        capture.stdout.close()  # the decoder holds the pipe now
        deadline = time.monotonic() + 20
        started = b""
        while b"Capturing on" not in started and time.monotonic() < deadline:
            ready, _, _ = select.select([capture.stderr], [], [], 0.5)
            if ready:
                started += os.read(capture.stderr.fileno(), 4096)
        assert b"Capturing on" in started, started
        time.sleep(0.5)  # dumpcap says so just before its capture is armed; frames before that are lost
        with sender.entered():
            raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        with raw:
            raw.bind((sending_if, 0))
            for frame in slac:
                raw.send(frame)
                time.sleep(0.01)
        out, err = decoder.communicate(timeout=60)
        capture.kill()
        capture.wait(10)
    assert decoder.returncode == 0, err.decode()
    records = json_lines(out.decode())
    homeplug = [r["name"] for r in records if r["kind"] == "homeplug"]
    sent = [parse_frame(frame).name for frame in slac]
    assert len(homeplug) >= limit - 5 and max(r["frame"] for r in records) <= limit
    # in order, none lost between, none invented (the capture may arm after the first frames went out)
    assert any(sent[first:first + len(homeplug)] == homeplug for first in range(len(sent) - len(homeplug) + 1))


def test_events_from_a_live_stdin_reach_the_pipe_before_the_capture_ends():
    """With stdin still open (a capture still running), decoded events already flow out line by line."""
    command = [sys.executable, "-c", "from ccssniff.cli import main; main()", "decode", "-", "--json"]
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as a user's shell has it
    decoder = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               cwd=REPO, env=environment)
    try:
        # two frames (far less output than a pipe buffer holds), then the capture "goes on": stdin stays open
        head = io.BytesIO()
        with PcapngWriter(head) as writer:
            for packet in list(read_packets(DIN_DC))[:2]:
                writer.write(packet.data, timestamp=packet.timestamp)
        decoder.stdin.write(head.getvalue())
        decoder.stdin.flush()
        ready, _, _ = select.select([decoder.stdout], [], [], 30)
        assert ready, "no event came out while the capture was still running"
        first = json.loads(decoder.stdout.readline())
        assert first["kind"] == "homeplug" and first["name"] == "CM_SLAC_PARAM.REQ"
    finally:
        decoder.stdin.close()  # the capture ends
        decoder.stdout.read()
        decoder.stderr.read()
        decoder.wait(timeout=60)
