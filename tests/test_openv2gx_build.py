"""openv2gx.build: helpers for building messages, and the README example that uses them."""

from __future__ import annotations

import contextlib
import doctest
import io
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

import openv2gx
from openv2gx import build

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_building_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Building messages", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README section 'Building messages' has no python code block"
    return match.group(1)


def test_readme_example_builds_encodes_and_decodes_all_three_standards():
    code = readme_building_example()
    for name in ("CurrentDemandReq", "DC_ChargeLoopReq", '"din"', '"iso2"'):
        assert name in code
    printed = io.StringIO()
    namespace: dict = {}
    with contextlib.redirect_stdout(printed):
        exec(compile(code, str(README), "exec"), namespace)
    hex_text, _ = printed.getvalue().split(" ", 1)
    decoded = openv2gx.decode(bytes.fromhex(hex_text), "iso20_DC")
    assert decoded.name == "DC_ChargeLoopReq"
    assert decoded.body["EVPresentVoltage"] == {"Exponent": -1, "Value": 3987}
    assert decoded == namespace["loop"]
    assert namespace["request"].schema == "iso2"


def test_module_docstring_example():
    assert doctest.testmod(build).failed == 0


@pytest.mark.parametrize("value, unit, expected", [
    (230, "V", {"Multiplier": 0, "Unit": "V", "Value": 230}),
    (230.5, "V", {"Multiplier": -1, "Unit": "V", "Value": 2305}),
    (12.125, "A", {"Multiplier": -3, "Unit": "A", "Value": 12125}),
    (125.125, "A", {"Multiplier": -2, "Unit": "A", "Value": 12512}),
    (50000, "W", {"Multiplier": 1, "Unit": "W", "Value": 5000}),
    (-1.5, "A", {"Multiplier": -1, "Unit": "A", "Value": -15}),
    (0.1 + 0.2, "A", {"Multiplier": -1, "Unit": "A", "Value": 3}),
    (0, "s", {"Multiplier": 0, "Unit": "s", "Value": 0}),
])
def test_physical_value_keeps_precision_within_xs_short(value, unit, expected):
    assert build.physical_value(value, unit, "din") == expected
    assert build.physical_value(value, unit, "iso2") == expected


def test_physical_value_refuses_what_does_not_fit():
    with pytest.raises(openv2gx.EncodeError) as caught:
        build.physical_value(400_000_000, "W", "din")
    assert caught.value.path == "PhysicalValue/Value"
    with pytest.raises(openv2gx.EncodeError, match="not one of"):
        build.physical_value(1, "Ah", "iso2")  # DIN has Ah, ISO 15118-2 does not
    assert build.physical_value(1, "Ah", "din")["Unit"] == "Ah"
    with pytest.raises(ValueError, match="rational_number"):
        build.physical_value(1, "A", "iso20_DC")
    with pytest.raises(openv2gx.EncodeError, match="finite"):
        build.physical_value(float("nan"), "A", "din")


def test_physical_value_with_a_fixed_multiplier():
    assert build.physical_value(400, "V", "din", multiplier=-1) == {"Multiplier": -1, "Unit": "V", "Value": 4000}


@given(st.floats(min_value=-3.2e7, max_value=3.2e7, allow_nan=False))
def test_physical_value_is_as_close_as_its_multiplier_allows(value):
    result = build.physical_value(value, "V", "iso2")
    assert -3 <= result["Multiplier"] <= 3 and -32768 <= result["Value"] <= 32767
    assert abs(build.to_float(result) - value) <= 0.5 * 10 ** result["Multiplier"] * 1.000001
    message = build.v2g_message("iso2", bytes(8), "PreChargeReq", {
        "DC_EVStatus": {"EVReady": True, "EVErrorCode": "NO_ERROR", "EVRESSSOC": 1},
        "EVTargetVoltage": result, "EVTargetCurrent": build.physical_value(1, "A", "iso2")})
    assert openv2gx.decode(openv2gx.encode(message), "iso2") == message


@given(st.floats(min_value=-1e30, max_value=1e30, allow_nan=False))
def test_rational_number_round_trips_with_five_significant_digits(value):
    result = build.rational_number(value)
    assert -128 <= result["Exponent"] <= 127 and -32768 <= result["Value"] <= 32767
    assert abs(build.to_float(result) - value) <= 0.5 * 10 ** result["Exponent"] * 1.000001 + 1e-300


def test_rational_number_examples():
    assert build.rational_number(400.5) == {"Exponent": -1, "Value": 4005}
    assert build.rational_number(1e-9) == {"Exponent": -9, "Value": 1}
    assert build.rational_number(123456789) == {"Exponent": 4, "Value": 12346}
    assert build.rational_number(7, exponent=-2) == {"Exponent": -2, "Value": 700}


def test_enum_values_read_the_grammar_tables():
    assert build.enum_values("din", "Unit") == ("h", "m", "s", "A", "Ah", "V", "VA", "W", "W/s", "Wh")
    assert build.enum_values("iso2", "Unit") == ("h", "m", "s", "A", "V", "W", "Wh")
    codes = build.enum_values("din", "ResponseCode")
    assert codes[0] == "OK" and "FAILED_SequenceError" in codes
    assert "OK_SuccessfulNegotiation" in build.enum_values("appHandshake", "ResponseCode")
    assert "FAILED" in build.enum_values("iso20", "ResponseCode")
    assert build.enum_values("din", "@ValueType")  # attributes are asked for with their @
    with pytest.raises(LookupError):
        build.enum_values("din", "EVRESSSOC")
    with pytest.raises(openv2gx.UnknownSchemaError):
        build.enum_values("iso3", "Unit")


def test_v2g_message_envelope():
    message = build.v2g_message("din", b"\x01" * 8, "SessionStopReq", {})
    assert message == {"V2G_Message": {"Header": {"SessionID": b"\x01" * 8}, "Body": {"SessionStopReq": {}}}}
    assert message.schema == "din" and message.name == "SessionStopReq"
    assert openv2gx.decode(openv2gx.encode(message), "din") == message
    with pytest.raises(ValueError):
        build.v2g_message("iso20_DC", bytes(8), "SessionStopReq", {})


def test_iso20_header_timestamps():
    assert build.iso20_header(bytes(8), 1700000000.9) == {"SessionID": bytes(8), "TimeStamp": 1700000000}
    moment = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert build.iso20_header(bytes(8), moment)["TimeStamp"] == int(moment.timestamp())
    now = build.iso20_header(bytes(8))["TimeStamp"]
    assert now > 1_700_000_000


def test_iso20_message_encodes():
    message = build.iso20_message("iso20_CommonMessages", "SessionStopReq",
                                  {"ChargingSession": "Terminate"}, bytes(8), timestamp=5)
    assert list(message["SessionStopReq"]) == ["Header", "ChargingSession"]
    assert openv2gx.decode(openv2gx.encode(message), "iso20_CommonMessages") == message
    with pytest.raises(ValueError):
        build.iso20_message("din", "SessionStopReq", {}, bytes(8))


def test_supported_app_protocol_handshake():
    request = build.supported_app_protocol_req(["iso20_DC", "iso2", ("urn:din:70121:2012:MsgDef", 2, 0)])
    entries = request["supportedAppProtocolReq"]["AppProtocol"]
    assert [e["Priority"] for e in entries] == [1, 2, 3] and [e["SchemaID"] for e in entries] == [1, 2, 3]
    assert entries[0]["ProtocolNamespace"] == "urn:iso:std:iso:15118:-20:DC"
    assert openv2gx.decode(openv2gx.encode(request), "appHandshake") == request
    response = build.supported_app_protocol_res(schema_id=2)
    assert openv2gx.encode(response).hex() == "80400080"
    failed = build.supported_app_protocol_res("Failed_NoNegotiation")
    assert openv2gx.decode(openv2gx.encode(failed), "appHandshake") == failed


def test_app_protocol_namespaces_are_those_of_the_grammars():
    from openv2gx.tables import load
    for schema, (namespace, _, _) in build.APP_PROTOCOLS.items():
        assert namespace in load(schema).uris
