"""Schema errors are caught before any byte: EncodeError names the element path and the rule."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import openv2gx
from openv2gx import EncodeError
from openv2gx.build import iso20_message, physical_value, rational_number, supported_app_protocol_req, v2g_message
from openv2gx.strategies import messages

CDR = "V2G_Message/Body/CurrentDemandReq"


def current_demand_req(schema="din"):
    pv = lambda value, unit: physical_value(value, unit, schema)
    return v2g_message(schema, bytes.fromhex("0102030405060708"), "CurrentDemandReq", {
        "DC_EVStatus": {"EVReady": True, "EVErrorCode": "NO_ERROR", "EVRESSSOC": 55},
        "EVTargetCurrent": pv(125.5, "A"), "EVMaximumVoltageLimit": pv(450, "V"),
        "ChargingComplete": False, "EVTargetVoltage": pv(400, "V")})


def charge_loop_req():
    return iso20_message("iso20_DC", "DC_ChargeLoopReq", {
        "MeterInfoRequested": False, "EVPresentVoltage": rational_number(398.7),
        "Scheduled_DC_CLReqControlMode": {"EVTargetCurrent": rational_number(125.5),
                                          "EVTargetVoltage": rational_number(400)}},
        bytes(8), timestamp=1700000000)


def body(message):
    return message["V2G_Message"]["Body"]["CurrentDemandReq"]


def error_of(message, schema=None) -> EncodeError:
    with pytest.raises(EncodeError) as caught:
        openv2gx.encode(message, schema)
    return caught.value


def test_the_unchanged_messages_encode():
    for message in (current_demand_req("din"), current_demand_req("iso2"), charge_loop_req()):
        assert openv2gx.decode(openv2gx.encode(message), message.schema) == message


def change(message, edit):
    changed = copy.deepcopy(message)
    edit(changed)
    return changed


CASES = [
    # a value outside its type: integer range, enumeration, n-bit range, Python types
    ("value outside xs:short", lambda m: body(m)["EVTargetCurrent"].update(Value=40000),
     f"{CDR}/EVTargetCurrent/Value", "value 40000 outside -32768..32767"),
    ("multiplier outside -3..3", lambda m: body(m)["EVTargetCurrent"].update(Multiplier=4),
     f"{CDR}/EVTargetCurrent/Multiplier", "value 4 outside -3..3"),
    ("SOC outside 0..100", lambda m: body(m)["DC_EVStatus"].update(EVRESSSOC=101),
     f"{CDR}/DC_EVStatus/EVRESSSOC", "value 101 outside 0..100"),
    ("unknown enumeration name", lambda m: body(m)["EVTargetCurrent"].update(Unit="kA"),
     f"{CDR}/EVTargetCurrent/Unit", "'kA' is not one of h, m, s, A"),
    ("enumeration given as its index", lambda m: body(m)["DC_EVStatus"].update(EVErrorCode=0),
     f"{CDR}/DC_EVStatus/EVErrorCode", "0 is not one of NO_ERROR"),
    ("bool where an integer belongs", lambda m: body(m)["EVTargetCurrent"].update(Value=True),
     f"{CDR}/EVTargetCurrent/Value", "expected integer -32768..32767, got bool True"),
    ("float where an integer belongs", lambda m: body(m)["EVTargetCurrent"].update(Value=1.5),
     f"{CDR}/EVTargetCurrent/Value", "got float 1.5"),
    ("int where a bool belongs", lambda m: body(m)["DC_EVStatus"].update(EVReady=1),
     f"{CDR}/DC_EVStatus/EVReady", "expected boolean, got int 1"),
    ("None as a value", lambda m: body(m).update(ChargingComplete=None),
     f"{CDR}/ChargingComplete", "empty element, expected boolean"),
    # binary length and type
    ("SessionID longer than 8 bytes", lambda m: m["V2G_Message"]["Header"].update(SessionID=bytes(9)),
     "V2G_Message/Header/SessionID", "length 9 above maximum 8"),
    ("SessionID as hex text", lambda m: m["V2G_Message"]["Header"].update(SessionID="0102"),
     "V2G_Message/Header/SessionID", "expected bytes, got str"),
    # missing required elements, named where they belong
    ("missing Value", lambda m: body(m)["EVTargetCurrent"].pop("Value"),
     f"{CDR}/EVTargetCurrent/Value", "required element missing"),
    ("missing Multiplier", lambda m: body(m)["EVTargetCurrent"].pop("Multiplier"),
     f"{CDR}/EVTargetCurrent/Multiplier", "required element missing (before Unit)"),
    ("missing EVTargetCurrent", lambda m: body(m).pop("EVTargetCurrent"),
     f"{CDR}/EVTargetCurrent", "required element missing (before EVMaximumVoltageLimit)"),
    ("missing last element", lambda m: body(m).pop("EVTargetVoltage"),
     f"{CDR}/EVTargetVoltage", "required element missing"),
    ("missing Header", lambda m: m["V2G_Message"].pop("Header"),
     "V2G_Message/Header", "required element missing (before Body)"),
    # unknown elements and attributes, wrong shapes
    ("unknown element", lambda m: body(m).update(EVTargetPower={"Value": 1}),
     f"{CDR}/EVTargetPower", "unknown element: the schema allows DC_EVStatus, EVTargetCurrent"),
    ("unknown attribute", lambda m: body(m).update({"@Id": "x"}),
     f"{CDR}/@Id", "attribute not allowed here"),
    ("list where one element belongs", lambda m: body(m).update(EVTargetCurrent=[body(m)["EVTargetCurrent"]] * 2),
     f"{CDR}/EVTargetCurrent", "expected a mapping of child elements, got list"),
    ("value where a complex element belongs", lambda m: body(m).update(EVTargetCurrent=125),
     f"{CDR}/EVTargetCurrent", "expected a mapping of child elements, got int"),
]


@pytest.mark.parametrize("schema", ["din", "iso2"])
@pytest.mark.parametrize("label, edit, path, rule", CASES, ids=[case[0] for case in CASES])
def test_rule_broken_names_path_and_rule(schema, label, edit, path, rule):
    error = error_of(change(current_demand_req(schema), edit))
    assert error.path == path
    assert rule in error.rule
    assert str(error) == f"{error.path}: {error.rule}"


def test_din_only_unit_is_refused_by_iso2():
    message = change(current_demand_req("iso2"), lambda m: body(m)["EVTargetCurrent"].update(Unit="Ah"))
    error = error_of(message)
    assert (error.path, error.rule) == (f"{CDR}/EVTargetCurrent/Unit", "'Ah' is not one of h, m, s, A, V, W, Wh")


def test_string_length_bounds():
    response = v2g_message("iso2", bytes(8), "SessionSetupRes", {"ResponseCode": "OK", "EVSEID": "DE*ABC*E1"})
    assert openv2gx.decode(openv2gx.encode(response), "iso2") == response
    for evse_id, rule in (("DE*ABC", "length 6 below minimum 7"), ("D" * 38, "length 38 above maximum 37")):
        error = error_of(change(response, lambda m: m["V2G_Message"]["Body"]["SessionSetupRes"].update(EVSEID=evse_id)))
        assert (error.path, error.rule) == ("V2G_Message/Body/SessionSetupRes/EVSEID", rule)


def test_string_with_a_lone_surrogate_is_refused():
    response = v2g_message("iso2", bytes(8), "SessionSetupRes", {"ResponseCode": "OK", "EVSEID": "DE*ABC\ud800"})
    assert "surrogate" in error_of(response).rule


def test_iso20_rules():
    loop = charge_loop_req()
    error = error_of(change(loop, lambda m: m["DC_ChargeLoopReq"]["Header"].update(TimeStamp=1 << 64)))
    assert error.path == "DC_ChargeLoopReq/Header/TimeStamp"
    assert error.rule == "value 18446744073709551616 outside 0..18446744073709551615"
    error = error_of(change(loop, lambda m: m["DC_ChargeLoopReq"]["EVPresentVoltage"].update(Exponent=-129)))
    assert (error.path, error.rule) == ("DC_ChargeLoopReq/EVPresentVoltage/Exponent", "value -129 outside -128..127")
    error = error_of(change(loop, lambda m: m["DC_ChargeLoopReq"]["Header"].update(SessionID=bytes(7))))
    assert (error.path, error.rule) == ("DC_ChargeLoopReq/Header/SessionID", "length 7 below minimum 8")
    error = error_of(change(loop, lambda m: m["DC_ChargeLoopReq"].pop("Scheduled_DC_CLReqControlMode")))
    assert error.path == "DC_ChargeLoopReq"
    assert "Scheduled_DC_CLReqControlMode" in error.rule and "Dynamic_DC_CLReqControlMode" in error.rule


def test_repeated_more_often_than_the_schema_allows():
    request = supported_app_protocol_req(["din"] * 20)
    assert openv2gx.decode(openv2gx.encode(request), "appHandshake") == request
    request["supportedAppProtocolReq"]["AppProtocol"].append(request["supportedAppProtocolReq"]["AppProtocol"][0])
    error = error_of(request)
    assert error.path == "supportedAppProtocolReq/AppProtocol"
    assert "not allowed here" in error.rule
    request["supportedAppProtocolReq"]["AppProtocol"] = []
    assert "empty list" in error_of(request).rule


def test_unbounded_integers_beyond_64_bits_encode_up_to_what_the_decoder_reads():
    from openv2gx.datatypes import MAX_UNSIGNED_GROUPS
    signed = lambda serial: openv2gx.Message({"X509Data": {"#children": [{"X509IssuerSerial": {
        "X509IssuerName": "CN=x", "X509SerialNumber": serial}}]}}, schema="xmldsig")
    for serial in (1 << 100, -(10 ** 300)):
        assert openv2gx.decode(openv2gx.encode(signed(serial)), "xmldsig") == signed(serial)
    too_long = 1 << (7 * MAX_UNSIGNED_GROUPS)
    error = error_of(signed(too_long))
    assert error.path == "X509Data/X509IssuerSerial/X509SerialNumber"
    assert "longer than the decoder reads" in error.rule


def test_document_level_errors():
    assert error_of({}, "din").path == "/"
    assert "exactly one root" in error_of({"V2G_Message": {}, "CableCheckReq": {}}, "din").rule
    assert error_of({"CurrentDemand": {}}, "din").rule == "not a root element of din"
    assert error_of(openv2gx.Message({"SessionSetupReq": {}})).rule == "no schema given"
    with pytest.raises(openv2gx.UnknownSchemaError):
        openv2gx.encode({"V2G_Message": {}}, "din3")


JUNK = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-(1 << 5000), 1 << 5000),
                 st.floats(), st.text(max_size=50), st.binary(max_size=50),
                 st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


def leaf_paths(content, path=()):
    if isinstance(content, dict):
        for key, value in content.items():
            yield from leaf_paths(value, path + (key,))
    elif isinstance(content, list):
        for index, value in enumerate(content):
            yield from leaf_paths(value, path + (index,))
    else:
        yield path


@st.composite
def damaged(draw, schema, root, body_name=None):
    message = draw(messages(schema, root, body_name))
    paths = list(leaf_paths(message))
    path = draw(st.sampled_from(paths))
    parent = message
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = draw(JUNK)
    return message


@pytest.mark.parametrize("schema, root, body_name", [
    ("din", "V2G_Message", "CurrentDemandReq"), ("iso2", "V2G_Message", "ChargeParameterDiscoveryRes"),
    ("iso20_DC", "DC_ChargeLoopRes", None), ("iso20_CommonMessages", "ScheduleExchangeRes", None),
    ("xmldsig", "Signature", None), ("appHandshake", "supportedAppProtocolReq", None)])
@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_whatever_the_encoder_accepts_the_decoder_reads_back(schema, root, body_name, data):
    message = data.draw(damaged(schema, root, body_name))
    try:
        encoded = openv2gx.encode(message)
    except EncodeError as error:
        assert error.path.split("/")[0] == root
        assert error.rule
        return
    assert openv2gx.decode(encoded, schema) == message


# -- bad keys and huge values (issue 18): EncodeError, never another exception, and short -------

HUGE_TEXT = "x" * 10_000_000


def nested(depth: int, width: int):
    value = list(range(width))
    for _ in range(depth):
        value = [value] * width
    return value


@pytest.mark.parametrize("specialised", [True, False])
@pytest.mark.parametrize("label, edit", [
    ("int key in the body", lambda m: body(m).__setitem__(7, 1)),
    ("tuple key in the body", lambda m: body(m).__setitem__(("EVRESSSOC",), 1)),
    ("bytes attribute-like key", lambda m: m["V2G_Message"]["Header"].__setitem__(b"@Id", "x")),
    ("None key in a nested element", lambda m: body(m)["DC_EVStatus"].__setitem__(None, 1)),
])
def test_a_non_string_key_is_an_encode_error(label, edit, specialised):
    message = current_demand_req()
    edit(message)
    with pytest.raises(EncodeError) as caught:
        openv2gx.encode(message, specialised=specialised)
    assert "element names are strings" in caught.value.rule


def test_a_non_string_root_key_is_an_encode_error():
    with pytest.raises(EncodeError):
        openv2gx.encode({1: {}}, "din")
    with pytest.raises(EncodeError):
        openv2gx.encode({b"V2G_Message": {}}, "din")


@pytest.mark.parametrize("specialised", [True, False])
@pytest.mark.parametrize("label, edit", [
    ("10 MB string as an integer", lambda m: body(m)["DC_EVStatus"].__setitem__("EVRESSSOC", HUGE_TEXT)),
    ("10 MB string as an enumeration", lambda m: body(m)["DC_EVStatus"].__setitem__("EVErrorCode", HUGE_TEXT)),
    ("10 MB bytes as a boolean", lambda m: body(m).__setitem__("ChargingComplete", HUGE_TEXT.encode())),
    ("a 10 MB element name", lambda m: body(m).__setitem__(HUGE_TEXT, 1)),
    ("an integer of a million bits", lambda m: body(m)["DC_EVStatus"].__setitem__("EVRESSSOC", 1 << 1_000_000)),
    ("nested lists of 10^6 items as a boolean", lambda m: body(m).__setitem__("ChargingComplete", nested(5, 16))),
    ("nested lists as an element's content", lambda m: body(m).__setitem__("DC_EVStatus", nested(5, 16))),
    ("10 MB string as a session ID", lambda m: m["V2G_Message"]["Header"].__setitem__("SessionID", HUGE_TEXT)),
])
def test_huge_values_give_short_error_messages(label, edit, specialised):
    message = current_demand_req()
    edit(message)
    for lenient in (False, True):
        with pytest.raises(EncodeError) as caught:
            openv2gx.encode(message, specialised=specialised, lenient=lenient)
        assert len(str(caught.value)) < 700, str(caught.value)[:200]
        assert caught.value.path.startswith("V2G_Message/") and len(caught.value.path) < 200
    with pytest.raises(EncodeError) as caught:
        openv2gx.Message(message, schema="din").to_xml()
    assert len(str(caught.value)) < 700


def test_brief_quotes_the_start_of_a_bad_value():
    message = current_demand_req()
    body(message)["DC_EVStatus"]["EVRESSSOC"] = "fifty-five percent" + HUGE_TEXT
    error = error_of(message)
    assert "'fifty-five percent" in error.rule and "..." in error.rule
