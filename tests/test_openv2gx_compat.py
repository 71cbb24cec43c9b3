"""OpenV2Gx command strings: decode output equals what OpenV2Gx printed for real messages, and every
encode command's hex decodes back to the parameters it was given."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import openv2gx
from conftest import SHARED_DIR
from openv2gx.cli import main
from openv2gx.compat import run_command
from openv2gx.leaves import facet_breaking_values, leaves

RECORDS_PATH = SHARED_DIR / "vectors" / "openv2gx" / "pyplc_decoded.jsonl"
IGNORED = ("debug", "info")  # debug: OpenV2Gx's trace of its own C source lines; info: free text

#: Logs decoded with the newest OpenV2Gx build in the data (from 2023-05 on): compared key for key,
#: in order. The older logs were decoded by earlier builds that printed fewer keys; their keys
#: must all be there with the same values, except these, which later builds renamed or dropped.
NEWEST_BUILD_LOGS = ("RawExiLog.txt.decoded.txt", "results/2023-05", "results/2024-")
RENAMED_SINCE_OLDER_BUILDS = {
    "EVErrorCodeText": "PowerDeliveryReq's error text, printed as DC_EVErrorCodeText since 2023-05",
    "ReadyToChargeState_Text": "a 2022-12-20 build printed START for false; later builds print false",
    "BulkChargingComplete": "a 2022 build printed 0 for it when absent; later builds print _isUsed first",
}


def load_records():
    if not RECORDS_PATH.exists():
        return []
    records = [json.loads(line) for line in RECORDS_PATH.read_text(encoding="utf-8").splitlines()]
    return [pytest.param(r, id=f"{r['source_file'].split('/')[-1][:24]}:{r['line']}:{r['msgName']}")
            for r in records if r["decode_ok"]]


RECORDS = load_records()


def command_for(record) -> str:
    letter = "H" if record["decoded_json"]["schema"] == "appHandshake" else "D"
    return "D" + letter + record["exi_hex"]


def comparable(answer: dict) -> dict:
    return {key: value for key, value in answer.items() if key not in IGNORED}


@pytest.mark.skipif(not RECORDS, reason=f"{RECORDS_PATH} is absent (shared folder beside the repository)")
@pytest.mark.parametrize("record", RECORDS)
def test_decode_prints_what_openv2gx_printed(record):
    expected = comparable(record["decoded_json"])
    got = comparable(run_command(command_for(record)))
    assert all(isinstance(value, str) for value in got.values())
    if record["source_file"].startswith(NEWEST_BUILD_LOGS):
        assert list(got.items()) == list(expected.items())
    else:
        for key, value in expected.items():
            if key not in RENAMED_SINCE_OLDER_BUILDS:
                assert got.get(key) == value, key


def test_records_cover_both_builds_and_many_messages():
    if not RECORDS:
        pytest.skip("no records")
    newest = [r for r in RECORDS if r.values[0]["source_file"].startswith(NEWEST_BUILD_LOGS)]
    assert len(newest) >= 100 and len(RECORDS) >= 960
    assert len({r.values[0]["msgName"] for r in newest}) >= 15


def test_keys_come_in_openv2gx_order():
    answer = run_command("DD809a0200000000139faf9bd1400420400000")
    assert list(answer)[:9] == ["msgName", "info", "error", "result", "schema", "g_errn", "header.SessionID",
                                "header.Notification_isUsed", "header.Signature_isUsed"]
    assert list(answer)[-1] == "debug"
    assert answer["info"] == "18 bytes to convert"


def test_handshake_request_is_described_in_result():
    answer = run_command("DH" + run_command("EH_2")["result"])
    assert answer["msgName"] == "supportedAppProtocolReq"
    assert answer["result"] == (
        "Vehicle supports 2 protocols. "
        "ProtocolEntry#1 ProtocolNamespace=urn:din:70121:2012:MsgDef Version=2.0 SchemaID=0 Priority=2 "
        "ProtocolEntry#2 ProtocolNamespace=urn:iso:15118:2:2013:MsgDef Version=2.0 SchemaID=1 Priority=1 ")


def test_wrong_schema_is_an_error_object():
    answer = run_command("DD80400040" + "ff" * 4)
    assert answer["error"].startswith("runTheDecoder error")
    assert answer["msgName"] == "" and answer["schema"] == "DIN"


@pytest.mark.parametrize("command, error", [
    ("DDzz", "invalid hex"),
    ("D2809a00", "not supported"),
    ("E2A_01", "not supported"),
    ("EDZ_01", "unknown message letter"),
    ("ED", "unknown message letter"),
    ("Q1", "unknown command"),
    ("EDiX_1", "parameters must follow"),
    ("EDi_1_2_99", "not an EVSEStatusCode"),
    ("EDg_99999", "outside"),
])
def test_bad_commands_give_an_error_object(command, error):
    answer = run_command(command)
    assert error in answer["error"]
    assert answer["result"] == ""


def body_of(hex_text: str, schema: str):
    message = openv2gx.decode(bytes.fromhex(hex_text), schema)
    return message, message.body


DIN_STATUS = {"EVReady": True, "EVErrorCode": "NO_ERROR"}


@pytest.mark.parametrize("iso", [False, True], ids=["DIN", "ISO1"])
def test_request_commands_encode_their_parameters(iso):
    schema, s = ("iso2", "1") if iso else ("din", "D")
    sid = "0a0b0c0d0e0f1011"

    def run(command):
        answer = run_command(f"E{s}{command}")
        assert answer["error"] == "", answer
        message, body = body_of(answer["result"], schema)
        assert message["V2G_Message"]["Header"]["SessionID"] == (
            bytes(8) if command[0] == "A" else bytes.fromhex(sid))
        return message.name, body

    assert run("A_dc0ea1116708") == ("SessionSetupReq", {"EVCCID": bytes.fromhex("dc0ea1116708")})
    assert run(f"B_{sid}")[0] == "ServiceDiscoveryReq"
    name, body = run(f"C_{sid}")
    assert name == ("PaymentServiceSelectionReq" if iso else "ServicePaymentSelectionReq")
    name, body = run(f"E_{sid}_42")
    assert body["DC_EVChargeParameter"]["DC_EVStatus"]["EVRESSSOC"] == 42
    assert run(f"F_{sid}_43")[1]["DC_EVStatus"] == dict(DIN_STATUS, EVRESSSOC=43)
    name, body = run(f"G_{sid}_44_355")
    assert (body["DC_EVStatus"]["EVRESSSOC"], body["EVTargetVoltage"]["Value"]) == (44, 355)
    for start in (0, 1):
        name, body = run(f"H_{sid}_45_{start}")
        assert body["DC_EVPowerDeliveryParameter"]["DC_EVStatus"]["EVRESSSOC"] == 45
        if iso:
            assert body["ChargeProgress"] == ("Start" if start else "Stop")
        else:
            assert body["ReadyToChargeState"] is bool(start)
    name, body = run(f"I_{sid}_46_125_390")
    assert (body["DC_EVStatus"]["EVRESSSOC"], body["EVTargetCurrent"]["Value"],
            body["EVTargetVoltage"]["Value"]) == (46, 125, 390)
    assert run(f"J_{sid}_47")[1]["DC_EVStatus"]["EVRESSSOC"] == 47
    assert run(f"K_{sid}")[0] == "SessionStopReq"
    assert run(f"L_{sid}")[0] == ("AuthorizationReq" if iso else "ContractAuthenticationReq")


@pytest.mark.parametrize("iso", [False, True], ids=["DIN", "ISO1"])
def test_response_commands_encode_their_parameters(iso):
    schema, s = ("iso2", "1") if iso else ("din", "D")

    def run(command):
        answer = run_command(f"E{s}{command}")
        assert answer["error"] == "", answer
        message, body = body_of(answer["result"], schema)
        assert message["V2G_Message"]["Header"]["SessionID"] == bytes.fromhex("0102030405060708")
        return message.name, body

    assert run("a")[1]["ResponseCode"] == "OK_NewSessionEstablished"
    assert run("b")[0] == "ServiceDiscoveryRes"
    assert run("c")[1] == {"ResponseCode": "OK"}
    assert run("e")[1]["EVSEProcessing"] == "Finished"
    assert run("f_1")[1]["EVSEProcessing"] == "Finished"
    assert run("f_0")[1]["EVSEProcessing"] == "Ongoing"
    assert run("g_351")[1]["EVSEPresentVoltage"]["Value"] == 351
    assert run("h")[0] == "PowerDeliveryRes"
    for code, text in ((1, "EVSE_Ready"), (2, "EVSE_Shutdown")):
        name, body = run(f"i_352_99_{code}")
        assert (body["EVSEPresentVoltage"]["Value"], body["EVSEPresentCurrent"]["Value"],
                body["DC_EVSEStatus"]["EVSEStatusCode"]) == (352, 99, text)
    assert run("j_12")[1]["EVSEPresentVoltage"]["Value"] == 12
    assert run("k")[1] == {"ResponseCode": "OK"}
    assert run("l_1")[1]["EVSEProcessing"] == "Finished"
    assert run("l_0")[1]["EVSEProcessing"] == "Ongoing"


@pytest.mark.parametrize("command, namespaces, schema_ids", [
    ("EH_0", ["urn:din:70121:2012:MsgDef"], [0]),
    ("EH_1", ["urn:iso:15118:2:2013:MsgDef"], [0]),
    ("EH_7", ["urn:din:70121:2012:MsgDef", "urn:iso:15118:2:2013:MsgDef"], [0, 1]),
])
def test_handshake_request_command(command, namespaces, schema_ids):
    message = openv2gx.decode(bytes.fromhex(run_command(command)["result"]), "appHandshake")
    protocols = message["supportedAppProtocolReq"]["AppProtocol"]
    assert [p["ProtocolNamespace"] for p in protocols] == namespaces
    assert [p["SchemaID"] for p in protocols] == schema_ids


@pytest.mark.parametrize("command", ["Eh__1", "Eh_1", "Eh__3"])
def test_handshake_response_command(command):
    answer = run_command(command)
    message = openv2gx.decode(bytes.fromhex(answer["result"]), "appHandshake")
    assert message["supportedAppProtocolRes"]["SchemaID"] == int(command[-1])
    assert answer["parameter0"] == command[-1]


def test_parameters_are_read_like_atoi_and_missing_ones_are_reported():
    answer = run_command("EDg_ 350V")
    assert openv2gx.decode(bytes.fromhex(answer["result"]), "din").body["EVSEPresentVoltage"]["Value"] == 350
    answer = run_command("EDI_0102030405060708_50")
    assert answer["error"] == "Too less parameters to handle getIntParam(2)"
    body = openv2gx.decode(bytes.fromhex(answer["result"]), "din").body
    assert body["EVTargetCurrent"]["Value"] == 0 and body["DC_EVStatus"]["EVRESSSOC"] == 50


def test_invalid_session_id_becomes_deadbeef():
    answer = run_command("EDF_nothex_20")
    message = openv2gx.decode(bytes.fromhex(answer["result"]), "din")
    assert message["V2G_Message"]["Header"]["SessionID"] == bytes.fromhex("DEADBEEFDEADBEEF")


def test_command_line_answers_command_strings():
    runner = CliRunner()
    result = runner.invoke(main, ["EDI_0102030405060708_55_120_380"])
    assert result.exit_code == 0
    answer = json.loads(result.output)
    assert list(answer)[:4] == ["msgName", "info", "error", "result"]
    assert answer["msgName"] == "CurrentDemandReq"
    result = runner.invoke(main, ["DD" + answer["result"]])
    decoded = json.loads(result.output)
    assert (decoded["EVTargetCurrent.Value"], decoded["EVTargetVoltage.Value"]) == ("120", "380")
    assert decoded["DC_EVStatus.EVRESSSOC"] == "55"


def test_command_line_exits_2_when_a_command_gives_nothing():
    result = CliRunner().invoke(main, ["DD00"])
    assert result.exit_code == 2
    assert json.loads(result.output)["error"]


@pytest.mark.skipif(not (SHARED_DIR / "vectors" / "din.jsonl").exists(), reason="../shared/vectors absent")
@pytest.mark.parametrize("schema, letter", [("din", "D"), ("iso2", "1"), ("appHandshake", "H")])
@pytest.mark.parametrize("mode", ["empty", "facets"])
def test_decode_commands_answer_messages_that_break_the_schema(schema, letter, mode):
    """Empty typed elements and values past the facets (decoded as sent) still give one JSON
    object of strings: an empty element as "", an enumeration index past the list as the number."""
    answered = 0
    for line in (SHARED_DIR / "vectors" / f"{schema}.jsonl").read_text().splitlines():
        record = json.loads(line)
        message = openv2gx.decode(bytes.fromhex(record["exi_hex"]), schema)
        for leaf in leaves(message):
            if mode == "empty" and leaf.element and leaf.datatype.empty is None:
                leaf.set(message, None)
            elif mode == "facets" and facet_breaking_values(leaf.datatype):
                leaf.set(message, facet_breaking_values(leaf.datatype)[0])
        answer = run_command("D" + letter + openv2gx.encode(message, lenient=True).hex())
        assert answer["msgName"] == message.name and not answer["error"]
        assert all(isinstance(value, str) for value in answer.values()), answer
        answered += 1
    assert answered >= 28
