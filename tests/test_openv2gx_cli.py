"""The `openv2gx decode` / `openv2gx encode` command line, and the JSON -> message converter it uses."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import openv2gx
from conftest import SHARED_DIR
from openv2gx.cli import main
from openv2gx.jsonin import from_json

POWER_DELIVERY_RES = "809a0200000000139faf9bd1400420400000"
HANDSHAKE_RES = "80400040"


def invoke(args, stdin=None):
    return CliRunner().invoke(main, args, input=stdin)


def test_decode_argument_prints_json():
    result = invoke(["decode", "--schema", "din", POWER_DELIVERY_RES])
    assert result.exit_code == 0, result.stderr
    decoded = json.loads(result.stdout)
    assert decoded["V2G_Message"]["Header"]["SessionID"] == "000000004E7EBE6F"
    assert decoded["V2G_Message"]["Body"]["PowerDeliveryRes"]["ResponseCode"] == "OK"


def test_decode_tolerates_whitespace_and_0x():
    spaced = "0x" + " ".join(POWER_DELIVERY_RES[i:i + 2] for i in range(0, len(POWER_DELIVERY_RES), 2))
    plain = invoke(["decode", "--schema", "din", POWER_DELIVERY_RES]).stdout
    assert invoke(["decode", "--schema", "din", spaced]).stdout == plain


def test_decode_output_is_stable():
    first = invoke(["decode", "-s", "din", POWER_DELIVERY_RES]).stdout
    assert first == invoke(["decode", "-s", "din", POWER_DELIVERY_RES]).stdout
    assert first.count("\n") == 1


def test_decode_stdin_lines_continue_after_an_error():
    result = invoke(["decode", "--schema", "appHandshake"], f"{HANDSHAKE_RES}\nnot hex\n\n809a\n{HANDSHAKE_RES}\n")
    assert result.exit_code == 2
    assert [json.loads(line)["supportedAppProtocolRes"]["SchemaID"] for line in result.stdout.splitlines()] == [1, 1]
    errors = result.stderr.splitlines()
    assert len(errors) == 2
    assert errors[0].startswith("error: line 2: not hex") and errors[1].startswith("error: line 4:")


def test_decode_file(tmp_path):
    path = tmp_path / "messages.txt"
    path.write_text(f"{POWER_DELIVERY_RES}\n{POWER_DELIVERY_RES}\n")
    result = invoke(["decode", "--schema", "din", "--file", str(path)])
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 2


def test_decode_xml():
    result = invoke(["decode", "--schema", "din", "--xml", POWER_DELIVERY_RES])
    assert result.exit_code == 0
    assert result.stdout.startswith("<?xml") and "PowerDeliveryRes" in result.stdout


def test_decode_auto_says_which_schema_on_stderr():
    result = invoke(["decode", "--schema", "auto", POWER_DELIVERY_RES])
    assert result.exit_code == 0
    assert "din" in result.stderr
    assert "PowerDeliveryRes" in result.stdout


def test_decode_error_is_one_line_and_exit_2():
    result = invoke(["decode", "--schema", "din", "8000"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: message 1:")


def test_unknown_schema_is_a_usage_error():
    result = invoke(["decode", "--schema", "nope", POWER_DELIVERY_RES])
    assert result.exit_code == 2


def test_help_has_examples():
    for args in (["--help"], ["decode", "--help"], ["encode", "--help"]):
        result = invoke(args)
        assert result.exit_code == 0 and "Examples" in result.stdout


def test_encode_json_and_xml_round_trip(tmp_path):
    decoded = invoke(["decode", "-s", "din", POWER_DELIVERY_RES]).stdout
    assert invoke(["encode", "-s", "din", "-"], decoded).stdout.strip() == POWER_DELIVERY_RES
    xml = invoke(["decode", "-s", "din", "--xml", POWER_DELIVERY_RES]).stdout
    path = tmp_path / "message.xml"
    path.write_text(xml)
    assert invoke(["encode", "-s", "din", str(path)]).stdout.strip() == POWER_DELIVERY_RES


def test_encode_errors_name_the_path():
    result = invoke(["encode", "-s", "din", "-"], '{"V2G_Message": {"Header": {"Nope": 1}}}\n')
    assert result.exit_code == 2
    assert "Nope" in result.stderr and len(result.stderr.splitlines()) == 1
    result = invoke(["encode", "-s", "din", "-"], "{not json\n")
    assert result.exit_code == 2 and "JSON" in result.stderr
    assert invoke(["encode", "-s", "din", "-"], "").exit_code == 2


def vector_records():
    records = []
    for name in ("appHandshake", "din", "iso2", "iso20", "fragments"):
        path = SHARED_DIR / "vectors" / f"{name}.jsonl"
        if path.exists():
            records += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return records


def test_json_of_every_vector_converts_back_to_the_same_message():
    records = vector_records()
    if not records:
        pytest.skip(f"no vectors in {SHARED_DIR}")
    for record in records:
        fragment = record.get("fragment", False)
        data = bytes.fromhex(record["exi_hex"])
        message = openv2gx.decode(data, record["grammar"], fragment=fragment)
        again = from_json(message.to_json(), record["grammar"], fragment=fragment)
        assert again == message, record.get("message")
        assert openv2gx.encode(again, record["grammar"], fragment=fragment) == data


def test_version():
    for flag in ("--version", "-V"):
        result = invoke([flag])
        assert result.exit_code == 0
        assert result.stdout.startswith("openv2gx ") and "din" in result.stdout


@pytest.mark.parametrize("command", ["Q123", "D", "DZ12", "E", "X", "decod", "EZ_1", "1DD80"])
def test_unknown_or_malformed_openv2gx_commands_answer_a_json_error(command):
    result = invoke([command])
    answer = json.loads(result.stdout)  # one JSON object, no usage text
    assert list(answer)[:4] == ["msgName", "info", "error", "result"]
    assert answer["error"] and not answer["result"]
    assert "Usage" not in result.output
    assert result.exit_code == 2


def test_extra_arguments_after_a_command_string_answer_a_json_error():
    result = invoke(["DD809a00605010400000", "extra"])
    assert "one command string expected" in json.loads(result.stdout)["error"]


def test_decode_reports_schema_violations_on_stderr_and_encode_lenient_gives_the_bytes_back():
    message = openv2gx.Message({"V2G_Message": {
        "Header": {"SessionID": b"\x00" * 8},
        "Body": {"SessionSetupReq": {"EVCCID": b"\x01" * 7}}}}, schema="iso2")
    data = openv2gx.encode(message, lenient=True).hex()
    result = invoke(["decode", "-s", "iso2", data])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["V2G_Message"]["Body"]["SessionSetupReq"]["EVCCID"] == "01" * 7
    assert "schema violation (decoded as sent): V2G_Message/Body/SessionSetupReq/EVCCID: length 7" in result.stderr
    assert invoke(["encode", "-s", "iso2", "-"], result.stdout).exit_code == 2  # strict by default
    again = invoke(["encode", "-s", "iso2", "--lenient", "-"], result.stdout)
    assert again.exit_code == 0 and again.stdout.strip() == data
