"""The sequence tables, timers and enumerations of ccssniff.standards."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccssniff.standards import (ENDED, FAILED, TABLES, SequenceTracker, ViolationKind,
                                apphandshake, din, iso2, iso20, message_parts, session_id_of,
                                table_for_namespace)
from ccssniff.standards.sequence import base_name

# --- helpers ---------------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _element_to_mapping(element: ET.Element):
    """The message model for tests: local names as keys, repeated children as lists, text leaves."""
    children = list(element)
    if not children:
        return element.text or ""
    result: dict = {}
    for child in children:
        value = _element_to_mapping(child)
        key = _local(child.tag)
        if key in result:
            if not isinstance(result[key], list):
                result[key] = [result[key]]
            result[key].append(value)
        else:
            result[key] = value
    return result


def _decoded(xml: str) -> dict:
    root = ET.fromstring(xml.split("?>", 1)[1] if xml.startswith("<?xml") else xml)
    return {_local(root.tag): _element_to_mapping(root)}


def _sessions(shared_dir) -> dict[str, list[dict]]:
    sessions: dict[str, list[dict]] = {}
    for line in (shared_dir / "vectors" / "sessions.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("xml"):
            sessions.setdefault(record["protocol"], []).append(_decoded(record["xml"]))
    return sessions


def _xsd_enumerations(path) -> dict[str, list[str]]:
    text = path.read_text()
    result = {}
    for match in re.finditer(r'<xs:simpleType name="(\w+)">(.*?)</xs:simpleType>', text, re.S):
        values = re.findall(r'<xs:enumeration value="([^"]*)"', match.group(2))
        if values:
            result[match.group(1)] = values
    return result


def _xsd_element_names(paths) -> set[str]:
    names = set()
    for path in paths:
        names |= set(re.findall(r'<xs:element name="(\w+)"', path.read_text()))
    return names


def _drive(tracker: SequenceTracker, steps, time=None):
    """Feed (name, content) pairs; return the violations in order."""
    violations = []
    for name, content in steps:
        violation = tracker.on_message(name, content, time)
        if violation is not None:
            violations.append(violation)
    return violations


OK = {"ResponseCode": "OK"}
DIN_HAPPY = [
    ("supportedAppProtocolReq", {}), ("supportedAppProtocolRes", {"ResponseCode": "OK_SuccessfulNegotiation"}),
    ("SessionSetupReq", {}), ("SessionSetupRes", {"ResponseCode": "OK_NewSessionEstablished"}),
    ("ServiceDiscoveryReq", {}), ("ServiceDiscoveryRes", OK),
    ("ServicePaymentSelectionReq", {}), ("ServicePaymentSelectionRes", OK),
    ("ContractAuthenticationReq", {}), ("ContractAuthenticationRes", {**OK, "EVSEProcessing": "Finished"}),
    ("ChargeParameterDiscoveryReq", {}), ("ChargeParameterDiscoveryRes", {**OK, "EVSEProcessing": "Finished"}),
    ("CableCheckReq", {}), ("CableCheckRes", {**OK, "EVSEProcessing": "Finished"}),
    ("PreChargeReq", {}), ("PreChargeRes", OK),
    ("PowerDeliveryReq", {"ReadyToChargeState": True}), ("PowerDeliveryRes", OK),
    ("CurrentDemandReq", {}), ("CurrentDemandRes", OK),
    ("CurrentDemandReq", {}), ("CurrentDemandRes", OK),
    ("PowerDeliveryReq", {"ReadyToChargeState": False}), ("PowerDeliveryRes", OK),
    ("WeldingDetectionReq", {}), ("WeldingDetectionRes", OK),
    ("SessionStopReq", {}), ("SessionStopRes", OK),
]


# --- the real sessions pass --------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["din", "iso2", "iso20"])
def test_recorded_session_follows_the_table(shared_dir, protocol):
    messages = _sessions(shared_dir)[protocol]
    tracker = SequenceTracker(TABLES[protocol])
    names = []
    for decoded in messages:
        name, content = message_parts(decoded)
        names.append(name)
        assert tracker.on_message(name, content) is None, (name, tracker.state)
    assert tracker.state == ENDED
    assert names[0] == "supportedAppProtocolReq" and names[-1] == "SessionStopRes"


def test_message_parts_and_session_id(shared_dir):
    din_setup_res = _sessions(shared_dir)["din"][3]
    name, content = message_parts(din_setup_res)
    assert name == "SessionSetupRes"
    assert content["ResponseCode"] == "OK_NewSessionEstablished"
    assert session_id_of(din_setup_res) == bytes.fromhex("ED49685CE61F5180")
    assert session_id_of({"V2G_Message": {"Header": {"SessionID": b"\x01\x02"}, "Body": {}}}) == b"\x01\x02"
    assert session_id_of({"supportedAppProtocolReq": {"AppProtocol": []}}) is None
    iso20_msg = _sessions(shared_dir)["iso20"][2]
    assert message_parts(iso20_msg)[0] == "SessionSetupReq"
    with pytest.raises(ValueError):
        message_parts({"V2G_Message": {"Header": {}, "Body": {}}})


# --- the tables agree with the schemas ---------------------------------------------------------


@pytest.mark.parametrize("module, folder, files", [
    (din, "din", ["V2G_CI_MsgBody.xsd"]),
    (iso2, "iso2", ["V2G_CI_MsgBody.xsd"]),
    (iso20, "iso20", ["V2G_CI_CommonMessages.xsd", "V2G_CI_DC.xsd", "V2G_CI_AC.xsd"]),
])
def test_every_table_request_is_a_schema_message(shared_dir, module, folder, files):
    elements = _xsd_element_names(shared_dir / "schemas" / folder / f for f in files)
    elements |= {"supportedAppProtocolReq", "supportedAppProtocolRes"}
    for request in module.SEQUENCE.requests:
        assert request + "Req" in elements and request + "Res" in elements, request
    for request in module.MSG_TIMEOUTS:
        assert request + "Req" in elements, request


@pytest.mark.parametrize("module, xsd", [(din, "din/V2G_CI_MsgDataTypes.xsd"),
                                          (iso2, "iso2/V2G_CI_MsgDataTypes.xsd"),
                                          (apphandshake, "appHandshake/V2G_CI_AppProtocol.xsd")])
def test_enumerations_match_the_schema(shared_dir, module, xsd):
    enumerations = _xsd_enumerations(shared_dir / "schemas" / xsd)
    for enum_class, type_name in module.SCHEMA_TYPES.items():
        assert [member.value for member in enum_class] == enumerations[type_name], type_name


def test_iso20_enumerations_match_the_schema(shared_dir):
    for enum_class, (xsd, type_name) in iso20.SCHEMA_TYPES.items():
        enumerations = _xsd_enumerations(shared_dir / "schemas" / "iso20" / xsd)
        assert [member.value for member in enum_class] == enumerations[type_name], type_name


@pytest.mark.parametrize("protocol", sorted(TABLES))
def test_table_has_no_dead_ends(protocol):
    table = TABLES[protocol]
    successors = {state: set(row.values()) for state, row in table.transitions.items()}
    reachable, queue = {table.initial}, deque([table.initial])
    while queue:
        for following in successors.get(queue.popleft(), ()):
            if following not in reachable:
                reachable.add(following)
                queue.append(following)
    assert reachable == set(table.transitions) | {ENDED}
    for state in table.transitions:  # every state can still reach the normal end
        seen, queue = {state}, deque([state])
        while queue:
            for following in successors.get(queue.popleft(), ()):
                if following not in seen:
                    seen.add(following)
                    queue.append(following)
        assert ENDED in seen, state
    for request in table.requests:
        assert table.msg_timeout(request + "Req") is not None, request


def test_looping_requests_are_the_ongoing_loops():
    assert {"PreCharge", "CurrentDemand", "WeldingDetection", "CableCheck"} <= din.SEQUENCE.looping_requests
    assert "ChargingStatus" in iso2.SEQUENCE.looping_requests
    assert {"DC_ChargeLoop", "AC_ChargeLoop", "DC_PreCharge"} <= iso20.SEQUENCE.looping_requests
    assert "SessionSetup" not in iso2.SEQUENCE.looping_requests


def test_namespace_lookup():
    assert table_for_namespace("urn:din:70121:2012:MsgDef") is din.SEQUENCE
    assert table_for_namespace(iso20.NAMESPACE_AC) is iso20.SEQUENCE
    assert table_for_namespace("urn:example") is None
    assert iso20.schema_for_message("DC_ChargeLoopReq") == "iso20_DC"
    assert iso20.schema_for_message("PowerDeliveryRes") == "iso20_CommonMessages"


def test_standard_timer_values():
    assert din.MSG_TIMEOUTS["CurrentDemand"] == 0.25 and din.PERFORMANCE_TIMES["CurrentDemand"] == 0.025
    assert iso2.PERFORMANCE_TIMES["SessionSetup"] == 1.5 and iso2.PERFORMANCE_TIMES["PowerDelivery"] == 4.5
    assert din.SEQUENCE.loop_timeouts["CableCheck"] == 38.0 and iso2.SEQUENCE.loop_timeouts["CableCheck"] == 40.0
    assert iso20.SEQUENCE.loop_timeouts["DC_PreCharge"] == 10.0
    assert iso20.MSG_TIMEOUTS["DC_ChargeLoop"] == 0.5


# --- violations --------------------------------------------------------------------------------


def test_din_happy_path_ends_cleanly():
    tracker = SequenceTracker(din.SEQUENCE)
    assert _drive(tracker, DIN_HAPPY) == []
    assert tracker.state == ENDED and tracker.finished
    assert tracker.next_deadline() is None


def test_repeated_session_setup_is_a_sequence_error_reported_once():
    tracker = SequenceTracker(din.SEQUENCE)
    steps = DIN_HAPPY[:6] + [("SessionSetupReq", {}), ("SessionSetupRes", OK)] + DIN_HAPPY[4:]
    violations = _drive(tracker, steps)
    assert [v.kind for v in violations] == [ViolationKind.UNEXPECTED_REQUEST]
    assert violations[0].message == "SessionSetupReq"
    assert set(violations[0].expected) == {"ServiceDetailReq", "ServicePaymentSelectionReq"}
    assert tracker.state == ENDED  # resynchronised and carried on


def test_request_while_pending_and_wrong_response():
    tracker = SequenceTracker(din.SEQUENCE)
    _drive(tracker, DIN_HAPPY[:4])
    assert tracker.on_request("ServiceDiscoveryReq") is None
    assert tracker.on_request("ServiceDiscoveryReq").kind is ViolationKind.REQUEST_WHILE_PENDING
    assert tracker.on_response("CableCheckRes", OK).kind is ViolationKind.UNEXPECTED_RESPONSE
    assert tracker.on_response("ServiceDiscoveryRes", OK) is None
    assert tracker.on_response("ServiceDiscoveryRes", OK).kind is ViolationKind.UNEXPECTED_RESPONSE


def test_ongoing_must_be_repeated():
    tracker = SequenceTracker(iso2.SEQUENCE)
    steps = [("supportedAppProtocolReq", {}), ("supportedAppProtocolRes", {"ResponseCode": "OK_SuccessfulNegotiation"}),
             ("SessionSetupReq", {}), ("SessionSetupRes", OK), ("ServiceDiscoveryReq", {}),
             ("ServiceDiscoveryRes", OK), ("PaymentServiceSelectionReq", {}), ("PaymentServiceSelectionRes", OK),
             ("AuthorizationReq", {}), ("AuthorizationRes", {**OK, "EVSEProcessing": "Ongoing"})]
    assert _drive(tracker, steps) == []
    assert tracker.allowed_requests() == ("AuthorizationReq",)
    violation = tracker.on_request("ChargeParameterDiscoveryReq")
    assert violation.kind is ViolationKind.ONGOING_NOT_REPEATED


def test_iso20_ev_processing_ongoing_keeps_the_state():
    tracker = SequenceTracker(iso20.SEQUENCE)
    tracker.state = "DCPreCharging"
    assert tracker.on_request("PowerDeliveryReq", {"ChargeProgress": "Start", "EVProcessing": "Ongoing"}) is None
    assert tracker.on_response("PowerDeliveryRes", OK) is None
    assert tracker.state == "DCPreCharging" and tracker.allowed_requests() == ("PowerDeliveryReq",)
    assert tracker.on_request("PowerDeliveryReq", {"ChargeProgress": "Start", "EVProcessing": "Finished"}) is None
    assert tracker.on_response("PowerDeliveryRes", OK) is None
    assert tracker.state == "DCCharging"


def test_failed_response_ends_the_session():
    tracker = SequenceTracker(din.SEQUENCE)
    _drive(tracker, DIN_HAPPY[:4])
    tracker.on_request("ServiceDiscoveryReq")
    assert tracker.on_response("ServiceDiscoveryRes", {"ResponseCode": "FAILED_UnknownSession"}) is None
    assert tracker.state == FAILED and "FAILED_UnknownSession" in tracker.reason
    assert tracker.on_request("ServicePaymentSelectionReq").kind is ViolationKind.AFTER_END
    handshake = SequenceTracker(din.SEQUENCE)
    handshake.on_request("supportedAppProtocolReq")
    handshake.on_response("supportedAppProtocolRes", {"ResponseCode": "Failed_NoNegotiation"})
    assert handshake.state == FAILED


def test_power_delivery_variants_pick_the_path():
    tracker = SequenceTracker(iso2.SEQUENCE)
    tracker.state = "ChargeParametersDiscovered"
    assert tracker.on_request("PowerDeliveryReq", {"ChargeProgress": "Start"}) is None
    tracker.on_response("PowerDeliveryRes", OK)
    assert tracker.state == "ACCharging"
    assert "ChargingStatusReq" in tracker.allowed_requests()
    assert tracker.on_request("CurrentDemandReq").kind is ViolationKind.UNEXPECTED_REQUEST


def test_timing_violations_and_deadlines():
    tracker = SequenceTracker(din.SEQUENCE)
    t = 100.0
    for name, content in DIN_HAPPY[:17]:  # up to PowerDeliveryReq (start)
        assert tracker.on_message(name, content, t) is None
        t += 0.05
    tracker.on_response("PowerDeliveryRes", OK, t)
    deadline = tracker.next_deadline()
    assert deadline.kind is ViolationKind.SEQUENCE_TIMEOUT and deadline.at == pytest.approx(t + 60)
    assert tracker.on_request("CurrentDemandReq", {}, t + 0.1) is None
    deadline = tracker.next_deadline()
    assert deadline.kind is ViolationKind.RESPONSE_TIMEOUT and deadline.at == pytest.approx(t + 0.35)
    late = tracker.on_response("CurrentDemandRes", OK, t + 0.4)
    assert late.kind is ViolationKind.RESPONSE_TIMEOUT and "0.300" in late.detail
    stale = tracker.on_request("CurrentDemandReq", {}, t + 61)
    assert stale.kind is ViolationKind.SEQUENCE_TIMEOUT


def test_on_timer_fires_only_after_the_deadline():
    tracker = SequenceTracker(iso2.SEQUENCE)
    tracker.on_request("supportedAppProtocolReq", {}, 10.0)
    assert tracker.on_timer(11.9) is None and tracker.state == "Connected"
    violation = tracker.on_timer(12.0)
    assert violation.kind is ViolationKind.RESPONSE_TIMEOUT
    assert violation.expected == ("supportedAppProtocolRes",)
    assert tracker.state == FAILED and tracker.on_timer(99.0) is None


def test_cable_check_loop_timeout_reported_once():
    tracker = SequenceTracker(din.SEQUENCE)
    tracker.state = "ChargeParametersDiscovered"
    kinds = []
    for second in range(0, 45, 1):
        v1 = tracker.on_request("CableCheckReq", {}, float(second))
        v2 = tracker.on_response("CableCheckRes", {**OK, "EVSEProcessing": "Ongoing"}, second + 0.1)
        kinds += [v.kind for v in (v1, v2) if v]
    assert kinds == [ViolationKind.LOOP_TIMEOUT]


@settings(max_examples=200, deadline=None)
@given(protocol=st.sampled_from(sorted(TABLES)), data=st.data())
def test_any_message_order_never_raises(protocol, data):
    table = TABLES[protocol]
    names = sorted(table.requests)
    codes = ["OK", "FAILED_SequenceError", "OK_NewSessionEstablished"]
    tracker = SequenceTracker(table)
    steps = data.draw(st.lists(st.tuples(
        st.sampled_from(names + ["Bogus"]), st.sampled_from(["Req", "Res", ""]),
        st.sampled_from(codes), st.sampled_from(["Ongoing", "Finished"]),
        st.sampled_from(["Start", "Stop", "Renegotiate", "Standby", True, False]),
        st.one_of(st.none(), st.floats(0, 1000))), max_size=40))
    for base, suffix, code, processing, progress, time in steps:
        content = {"ResponseCode": code, "EVSEProcessing": processing, "ChargeProgress": progress,
                   "ReadyToChargeState": progress}
        tracker.on_message(base + suffix, content, time)
        assert tracker.state in table.states
        assert tracker.pending is None or base_name(tracker.pending) in table.requests
