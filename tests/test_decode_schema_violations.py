"""Empty typed values and facet violations (issues 13, 18) through every ccssniff output.

A crafted trace: the DIN, ISO 15118-2 and ISO 15118-20 sessions of ../shared/vectors/sessions.jsonl
with every typed element of every message (the handshake aside) empty, as EXI's non-strict
grammars allow and a bit flip in a real capture produced; and the same sessions with every value
that can break its facets broken (past the range, past the enumeration, too long). Decoding keeps
every message, each reports its schema violations, and the timeline, --summary, --json and --xml
modes finish."""
from __future__ import annotations

import json
import struct

import pytest
from click.testing import CliRunner

import openv2gx
from ccssniff.capture.pcapng import PcapngWriter
from ccssniff.cli import cli
from ccssniff.decode.v2gtp import build_header
from ccssniff.standards.physical import format_physical, physical_value
from ccssniff.ui.values import key_values
from conftest import SHARED_DIR
from openv2gx.leaves import facet_breaking_values, leaves

SESSIONS = SHARED_DIR / "vectors" / "sessions.jsonl"
EV_IP = bytes.fromhex("fe800000000000000000000000000001")
EVSE_IP = bytes.fromhex("fe800000000000000000000000000002")
EV_MAC, EVSE_MAC = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
EV_PORT, EVSE_PORT = 50000, 15118

pytestmark = pytest.mark.skipif(not SESSIONS.exists(), reason=f"{SESSIONS} is absent (shared folder)")


def emptied(record, mode: str) -> tuple[bytes, int]:
    """The record's EXI with every typed element empty ("empty"), or every value that can break
    its facets broken ("facets"); and how many were changed."""
    data = bytes.fromhex(record["payload_hex"])
    if record["grammar"] == "appHandshake":
        return data, 0
    message = openv2gx.decode(data, record["grammar"])
    count = 0
    for leaf in leaves(message):
        if mode == "empty" and leaf.element and leaf.datatype.empty is None:
            leaf.set(message, None)
            count += 1
        elif mode == "facets" and facet_breaking_values(leaf.datatype):
            leaf.set(message, facet_breaking_values(leaf.datatype)[0])
            count += 1
    return openv2gx.encode(message, lenient=True), count


def tcp_frame(seq: int, payload: bytes, from_ev: bool, flags: int = 0x18) -> bytes:
    ports = (EV_PORT, EVSE_PORT) if from_ev else (EVSE_PORT, EV_PORT)
    segment = struct.pack("!HHIIBBHHH", *ports, seq, 0, 5 << 4, flags, 65535, 0, 0) + payload
    src, dst = (EV_IP, EVSE_IP) if from_ev else (EVSE_IP, EV_IP)
    header = struct.pack("!IHBB16s16s", 6 << 28, len(segment), 6, 64, src, dst)
    macs = EVSE_MAC + EV_MAC if from_ev else EV_MAC + EVSE_MAC
    return macs + b"\x86\xdd" + header + segment


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    """{(protocol, mode): (trace path, number of changed elements)}"""
    records = [json.loads(line) for line in SESSIONS.read_text(encoding="utf-8").splitlines()]
    traces = {}
    for protocol, mode in [(p, m) for p in ("din", "iso2", "iso20") for m in ("empty", "facets")]:
        path = tmp_path_factory.mktemp(protocol) / f"{protocol}_{mode}.pcapng"
        total = 0
        with PcapngWriter(path) as writer:
            seq = {True: 1000, False: 5000}
            writer.write(tcp_frame(seq[True] - 1, b"", True, flags=0x02), timestamp=1.0)
            writer.write(tcp_frame(seq[False] - 1, b"", False, flags=0x12), timestamp=1.0)
            for number, record in enumerate(r for r in records if r["protocol"] == protocol and r["transport"] == "TCP"):
                exi, count = emptied(record, mode)
                total += count
                from_ev = record["direction"].startswith("EV")
                pdu = build_header(int(record["payload_type"], 16), len(exi)) + exi
                writer.write(tcp_frame(seq[from_ev], pdu, from_ev), timestamp=2.0 + number * 0.05)
                seq[from_ev] += len(pdu)
        traces[protocol, mode] = (path, total)
    return traces


def run(*args):
    return CliRunner().invoke(cli, ["decode", *map(str, args)])


@pytest.mark.parametrize("protocol", ["din", "iso2", "iso20"])
@pytest.mark.parametrize("mode", ["empty", "facets"])
def test_json_keeps_every_message_with_nulls_and_violations(crafted, protocol, mode):
    path, emptied_count = crafted[protocol, mode]
    assert emptied_count > 20
    result = run(path, "--json")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    v2g = [r for r in records if r["kind"] == "v2g"]
    assert not [r for r in records if r["kind"] == "error"]
    assert len(v2g) == sum(1 for line in SESSIONS.read_text().splitlines()
                           if json.loads(line)["protocol"] == protocol and json.loads(line)["transport"] == "TCP")
    violations = [line for r in v2g for line in r.get("schema_violations", [])]
    assert len(violations) == emptied_count
    if mode == "empty":
        assert all("empty element, expected" in line for line in violations)
        assert "null" in result.stdout


@pytest.mark.parametrize("protocol", ["din", "iso2", "iso20"])
def test_xml_renders_empty_elements(crafted, protocol):
    path, _ = crafted[protocol, "empty"]
    result = run(path, "--xml")
    assert result.exit_code == 0, result.output
    assert "<!-- schema violation: " in result.stdout
    assert "/>" in result.stdout


@pytest.mark.parametrize("protocol", ["din", "iso2", "iso20"])
@pytest.mark.parametrize("mode", ["empty", "facets"])
def test_timeline_and_summary_show_the_violations(crafted, protocol, mode):
    path, _ = crafted[protocol, mode]
    result = run(path)
    assert result.exit_code == 0, result.output
    assert "schema violations: " in result.stdout
    if mode == "empty":
        assert "(empty)" in result.stdout
    result = run(path, "--summary", "--json")
    assert result.exit_code == 0, result.output
    (session,) = json.loads(result.stdout.splitlines()[-1])["sessions"]
    # the session model counts them and makes each a schema verdict; no value it keeps is an empty string
    assert session["schema_violations"] >= 1 and session["verdict_counts"].get("schema", 0) >= 1
    assert session["outcome"]["result"] in ("completed", "failed", "incomplete")
    assert "''" not in json.dumps({k: v for k, v in session.items() if k != "verdicts"})


def test_physical_values_with_empty_parts():
    assert physical_value({"Multiplier": None, "Unit": "V", "Value": 4000}) == (None, "V")
    assert physical_value({"Multiplier": 0, "Unit": None, "Value": None}, "EVTargetCurrent") == (None, "A")
    assert physical_value({"Exponent": None, "Value": 12}, "EVSEPresentVoltage") == (None, "V")
    assert physical_value({"Multiplier": 1, "Unit": 7, "Value": 12}, "EVTargetVoltage") == (120.0, "V")
    assert format_physical({"Multiplier": -1, "Unit": "V", "Value": None}) == "(empty) V"


def test_key_values_of_a_message_with_empty_elements():
    data = next(bytes.fromhex(json.loads(line)["payload_hex"]) for line in SESSIONS.read_text().splitlines()
                if json.loads(line).get("message") == "CurrentDemandReq" and json.loads(line)["protocol"] == "din")
    message = openv2gx.decode(data, "din")
    for leaf in leaves(message):
        if leaf.element and leaf.datatype.empty is None:
            leaf.set(message, None)
    message = openv2gx.decode(openv2gx.encode(message, lenient=True), "din")
    shown = dict(key_values(message))
    assert shown["EVTargetVoltage"] == "(empty) V" and shown["EVRESSSOC"] == "(empty)"
