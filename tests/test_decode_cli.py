"""``ccssniff decode`` through click: JSON lines, XML, summary, several files, bad input."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ccssniff.cli import cli
from ccssniff.decode.schema import decoder_available

needs_exi = pytest.mark.skipif(not decoder_available(), reason="openv2gx (the EXI decoder) is not importable")


def run(*args):
    return CliRunner().invoke(cli, ["decode", *map(str, args)], prog_name="ccssniff")


@pytest.fixture()
def josev(shared_dir):
    return shared_dir / "captures" / "josev"


@needs_exi
def test_json_lines_parse_and_carry_full_bodies(josev):
    result = run(josev / "din.pcapng", "--json", "--hex")
    assert result.exit_code == 0 and result.stderr == ""
    records = [json.loads(line) for line in result.stdout.splitlines()]
    messages = [r for r in records if r["kind"] == "v2g"]
    assert len(messages) == 58
    demand = next(r for r in messages if r["name"] == "CurrentDemandReq")
    body = demand["body"]["V2G_Message"]["Body"]["CurrentDemandReq"]
    assert set(body["EVTargetVoltage"]) == {"Multiplier", "Unit", "Value"}
    assert demand["direction"] == "EV->EVSE" and demand["schema"] == "din"
    assert bytes.fromhex(demand["payload"])[:1] == b"\x80"
    assert [r["time"] for r in records] == sorted(r["time"] for r in records)


@needs_exi
def test_xml_output_is_one_document_per_message(josev):
    result = run(josev / "iso2.pcapng", "--xml")
    assert result.exit_code == 0
    documents = [line for line in result.stdout.splitlines() if not line.startswith("<!--")]
    assert len(documents) == 60
    assert all("urn:iso:15118:2:2013:MsgDef" in d or "AppProtocol" in d for d in documents)


@needs_exi
def test_timeline_and_summary(josev):
    result = run(josev / "iso20.pcapng")
    assert result.exit_code == 0
    assert "DC_ChargeLoopReq" in result.stdout and "EV -> EVSE" in result.stdout
    summary = run(josev / "iso20.pcapng", "--summary")
    assert summary.exit_code == 0
    assert "ISO 15118-20" in summary.stdout and "charge loop duration" in summary.stdout
    assert "DC_ChargeLoopReq" not in summary.stdout


@needs_exi
def test_several_files_are_decoded_each_on_its_own(josev):
    result = run(josev / "din.pcapng", josev / "iso2.pcapng", "--json", "--summary")
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    summaries = [r for r in records if r["kind"] == "summary"]
    assert [s["file"] for s in summaries] == [str(josev / "din.pcapng"), str(josev / "iso2.pcapng")]
    assert [s["sessions"][0]["protocol"] for s in summaries] == ["DIN SPEC 70121", "ISO 15118-2"]
    connection_ids = {(r["file"], r["connection"]) for r in records if r["kind"] == "v2g"}
    assert connection_ids == {(str(josev / "din.pcapng"), 1), (str(josev / "iso2.pcapng"), 1)}


def test_not_a_capture_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    result = run(path, "--json")
    assert result.exit_code == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: ")


def test_a_bad_file_among_good_ones_still_fails_with_2(tmp_path, josev):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    result = run(path, josev / "din.pcapng", "--json")
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {path} is not a pcap or pcapng capture")
    assert all(json.loads(line) for line in result.stdout.splitlines())


def test_json_and_xml_exclude_each_other(josev):
    result = run(josev / "din.pcapng", "--json", "--xml")
    assert result.exit_code == 2 and "exclude each other" in result.stderr
