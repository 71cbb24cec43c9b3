"""EVSE and PEV V2G machines driven against each other in memory, every message through openv2gx.

A small event loop plays the wire: each SendMessage is encoded to EXI, decoded again and handed
to the peer after a short latency; when nothing is in flight the clock jumps to the earlier
of the two machines' deadlines. The driver steps the DC circuit as the lab does.
"""

from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass, field

import pytest

import openv2gx
from ccssniff.emulate.physics import (
    BatteryParams,
    DcCircuit,
    PowerStageParams,
    SimulationParams,
)
from ccssniff.emulate.v2g_evse import SendMessage, SessionEnded, V2gEvse
from ccssniff.emulate.v2g_din_iso2 import WELDING_DETECTION_LIMIT, WELDING_SAFE_VOLTAGE
from ccssniff.emulate.v2g_messages import (
    LOOP_REQUESTS,
    from_physical,
    from_rational,
    physical_value,
    rational,
    timed_table,
)
from ccssniff.emulate.v2g_pev import V2gPev
from ccssniff.standards import message_parts

SESSIONS = [("din", "dc"), ("iso2", "dc"), ("iso2", "ac"), ("iso20", "dc"), ("iso20", "ac")]
REQUEST_LATENCY = 0.002  # s, EV -> EVSE on the wire
RESPONSE_LATENCY = 0.012  # s, EVSE processing and wire
PHYSICS_STEP = 0.05  # s


def make_circuit(mode: str = "dc") -> DcCircuit:
    # a small battery so a full charge takes seconds; the EVSE's current and power limits sit
    # below what the EV asks for, so the charger limits part of the session
    return DcCircuit(SimulationParams(
        evse=PowerStageParams(max_current=150, max_power=50_000, voltage_ramp=400),
        battery=BatteryParams(capacity_kwh=2.0 if mode == "dc" else 0.5, start_soc=70.0,
                              target_soc=75.0)))


@dataclass
class Logged:
    time: float
    name: str
    content: dict
    schema: str
    message: openv2gx.Message


@dataclass
class Session:
    evse: V2gEvse
    pev: V2gPev
    circuit: DcCircuit
    log: list[Logged] = field(default_factory=list)

    def names(self) -> list[str]:
        return [entry.name for entry in self.log]

    def contents(self, name: str) -> list[dict]:
        return [entry.content for entry in self.log if entry.name == name]


def machines(protocol: str, mode: str, seed: int = 1, pev_protocols=None, evse_protocols=None,
             relaxed_timing: float = 1.0):
    circuit = make_circuit(mode)
    evse = V2gEvse(circuit, protocols=evse_protocols or (protocol,), mode=mode,
                   relaxed_timing=relaxed_timing)
    pev = V2gPev(circuit, protocols=pev_protocols or (protocol,), mode=mode,
                 rng=random.Random(seed), relaxed_timing=relaxed_timing)
    return Session(evse, pev, circuit)


def run(session: Session, tamper=None, limit: float = 600.0,
        response_latency: float = RESPONSE_LATENCY) -> Session:
    """Play the session until both machines are done; ``tamper(name, message)`` returns the
    list of messages to deliver instead (empty to lose it, two to duplicate it)."""
    evse, pev, circuit = session.evse, session.pev, session.circuit
    now, order = 0.0, itertools.count()
    wire: list = []  # (arrival time, order, receiver, schema, bytes)

    def transmit(outputs, sender, receiver):
        for output in outputs:
            if not isinstance(output, SendMessage):
                continue
            name = openv2gx.Message(output.message).name
            copies = tamper(name, output.message) if tamper else [output.message]
            for message in copies:
                data = openv2gx.encode(message, output.schema)  # raises if it does not fit the XSD
                latency = REQUEST_LATENCY if sender is pev else response_latency
                heapq.heappush(wire, (now + latency, next(order), receiver, output.schema, data))

    transmit(pev.start(now), pev, evse)
    while now < limit:
        deadlines = [d for d in (evse.next_deadline(), pev.next_deadline()) if d is not None]
        if wire:
            deadlines.append(wire[0][0])
        if not deadlines:
            break
        due = max(now, min(deadlines))
        while now < due:
            step = min(PHYSICS_STEP, due - now)
            circuit.step(step)
            now += step
        now = due
        if wire and wire[0][0] <= now:
            _, _, receiver, schema, data = heapq.heappop(wire)
            decoded = openv2gx.decode(data, schema)
            name, content = message_parts(decoded)
            session.log.append(Logged(now, name, content, schema, decoded))
            sender = pev if receiver is evse else evse
            transmit(receiver.on_message(decoded, now), receiver, sender)
        else:
            transmit(evse.on_timer(now), evse, pev)
            transmit(pev.on_timer(now), pev, evse)
    return session


def drop(name_to_lose: str, times: int = 1):
    lost = []

    def tamper(name, message):
        if name == name_to_lose and len(lost) < times:
            lost.append(name)
            return []
        return [message]
    return tamper


# --- full sessions -------------------------------------------------------------------------


EXPECTED = {
    ("din", "dc"): ["SessionSetupReq", "ServiceDiscoveryReq", "ServicePaymentSelectionReq",
                    "ContractAuthenticationReq", "ChargeParameterDiscoveryReq", "CableCheckReq",
                    "PreChargeReq", "PowerDeliveryReq", "CurrentDemandReq", "PowerDeliveryReq",
                    "WeldingDetectionReq", "SessionStopReq"],
    ("iso2", "dc"): ["SessionSetupReq", "ServiceDiscoveryReq", "PaymentServiceSelectionReq",
                     "AuthorizationReq", "ChargeParameterDiscoveryReq", "CableCheckReq",
                     "PreChargeReq", "PowerDeliveryReq", "CurrentDemandReq", "PowerDeliveryReq",
                     "WeldingDetectionReq", "SessionStopReq"],
    ("iso2", "ac"): ["SessionSetupReq", "ServiceDiscoveryReq", "PaymentServiceSelectionReq",
                     "AuthorizationReq", "ChargeParameterDiscoveryReq", "PowerDeliveryReq",
                     "ChargingStatusReq", "PowerDeliveryReq", "SessionStopReq"],
    ("iso20", "dc"): ["SessionSetupReq", "AuthorizationSetupReq", "AuthorizationReq",
                      "ServiceDiscoveryReq", "ServiceDetailReq", "ServiceSelectionReq",
                      "DC_ChargeParameterDiscoveryReq", "ScheduleExchangeReq", "DC_CableCheckReq",
                      "DC_PreChargeReq", "PowerDeliveryReq", "DC_ChargeLoopReq",
                      "PowerDeliveryReq", "DC_WeldingDetectionReq", "SessionStopReq"],
    ("iso20", "ac"): ["SessionSetupReq", "AuthorizationSetupReq", "AuthorizationReq",
                      "ServiceDiscoveryReq", "ServiceDetailReq", "ServiceSelectionReq",
                      "AC_ChargeParameterDiscoveryReq", "ScheduleExchangeReq", "PowerDeliveryReq",
                      "AC_ChargeLoopReq", "PowerDeliveryReq", "SessionStopReq"],
}


def distinct_requests(names: list[str]) -> list[str]:
    """The requests in order with repetitions folded: A A B A -> A B A."""
    requests = [n for n in names if n.endswith("Req") and n != "supportedAppProtocolReq"]
    return [name for name, _ in itertools.groupby(requests)]


@pytest.mark.parametrize("protocol,mode", SESSIONS)
def test_full_session_through_the_codec(protocol, mode):
    session = run(machines(protocol, mode))
    evse, pev = session.evse, session.pev
    assert evse.ended == SessionEnded(True, "SessionStop") and pev.ended == evse.ended
    assert evse.protocol == pev.protocol == protocol
    assert distinct_requests(session.names()) == EXPECTED[protocol, mode]
    # every request was answered by its own response, in turn
    names = session.names()
    assert all(res == req[:-3] + "Res" for req, res in zip(names[::2], names[1::2]))
    assert session.circuit.battery.soc >= 75.0
    loop = next(n for n in names if n[:-3] in LOOP_REQUESTS)
    assert names.count(loop) > 5
    if protocol == "iso20":
        schemas = {entry.name: entry.schema for entry in session.log}
        assert schemas["SessionSetupReq"] == "iso20_CommonMessages"
        assert schemas[loop] == ("iso20_DC" if mode == "dc" else "iso20_AC")
        stamps = [entry.content["Header"]["TimeStamp"] for entry in session.log[2:]]
        assert stamps == sorted(stamps) and stamps[-1] > stamps[0]


XSD_ENTRIES = {"appHandshake": "appHandshake/V2G_CI_AppProtocol.xsd",
               "din": "din/V2G_CI_MsgDef.xsd", "iso2": "iso2/V2G_CI_MsgDef.xsd",
               "iso20_CommonMessages": "iso20/V2G_CI_CommonMessages.xsd",
               "iso20_DC": "iso20/V2G_CI_DC.xsd", "iso20_AC": "iso20/V2G_CI_AC.xsd"}


@pytest.fixture(scope="module")
def xsd(shared_dir):
    xmlschema = pytest.importorskip("xmlschema")
    return {schema: xmlschema.XMLSchema10(str(shared_dir / "schemas" / path))
            for schema, path in XSD_ENTRIES.items()}


@pytest.mark.parametrize("protocol,mode", SESSIONS)
def test_every_message_kind_validates_against_its_xsd(protocol, mode, xsd):
    session = run(machines(protocol, mode))
    first_and_last = {}
    for entry in session.log:
        first_and_last.setdefault(entry.name, [entry, entry])[1] = entry
    for first, last in first_and_last.values():
        for entry in {id(first): first, id(last): last}.values():
            xsd[entry.schema].validate(entry.message.to_xml())  # raises on any deviation
    assert len(first_and_last) == len(set(EXPECTED[protocol, mode])) * 2 + 2


@pytest.mark.parametrize("protocol", ["din", "iso2", "iso20"])
def test_dc_loops_repeat_until_done(protocol):
    session = run(machines(protocol, "dc"))
    prefix = "DC_" if protocol == "iso20" else ""
    names = session.names()
    assert names.count(prefix + "CableCheckReq") > 1 and names.count(prefix + "PreChargeReq") > 1
    assert names.count(prefix + "WeldingDetectionReq") > 1
    voltage = from_rational if protocol == "iso20" else from_physical
    precharge = session.contents(prefix + "PreChargeRes")
    # the cable check left the output at its test voltage; precharge brings it to the battery's
    # (70 % SOC: between 372 and 390 V open circuit)
    assert not 372.0 - 10 <= voltage(precharge[0]["EVSEPresentVoltage"]) <= 390.0 + 10
    assert 372.0 - 10 <= voltage(precharge[-1]["EVSEPresentVoltage"]) <= 390.0 + 10
    welding = session.contents(prefix + "WeldingDetectionRes")
    assert voltage(welding[-1]["EVSEPresentVoltage"]) <= 60.0 < voltage(welding[0]["EVSEPresentVoltage"])


def test_iso20_ev_processing_finishes_precharge_and_welding():
    session = run(machines("iso20", "dc"))
    precharge = [c["EVProcessing"] for c in session.contents("DC_PreChargeReq")]
    assert precharge[-1] == "Finished" and set(precharge[:-1]) == {"Ongoing"}
    welding = [c["EVProcessing"] for c in session.contents("DC_WeldingDetectionReq")]
    assert welding[-1] == "Finished" and set(welding[:-1]) == {"Ongoing"}


# --- values --------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["din", "iso2", "iso20"])
def test_dc_values_follow_physics_and_flags_show_the_limit(protocol):
    session = run(machines(protocol, "dc"))
    if protocol == "iso20":
        responses = session.contents("DC_ChargeLoopRes")
        current = [from_rational(r["EVSEPresentCurrent"]) for r in responses]
        soc = [r["DisplayParameters"]["PresentSOC"] for r in session.contents("DC_ChargeLoopReq")]
    else:
        responses = session.contents("CurrentDemandRes")
        current = [from_physical(r["EVSEPresentCurrent"]) for r in responses]
        soc = [r["DC_EVStatus"]["EVRESSSOC"] for r in session.contents("CurrentDemandReq")]
    assert current[0] < current[len(current) // 2]  # ramps up from zero
    assert max(current) <= 150.0 + 1e-6  # never above the EVSE's current limit
    assert len(set(current)) > 3
    assert soc == sorted(soc) and soc[-1] > soc[0]
    limited = [r["EVSECurrentLimitAchieved"] or r["EVSEPowerLimitAchieved"] for r in responses]
    assert any(limited)  # the EV asks 250 A; the EVSE gives at most 150 A and 50 kW


def test_ev_limits_when_it_asks_for_less():
    circuit = DcCircuit(SimulationParams(
        evse=PowerStageParams(voltage_ramp=400),
        battery=BatteryParams(capacity_kwh=2.0, start_soc=70.0, target_soc=75.0, max_current=50.0)))
    session = Session(V2gEvse(circuit, protocols=("iso2",)),
                      V2gPev(circuit, protocols=("iso2",), rng=random.Random(3)), circuit)
    run(session)
    responses = session.contents("CurrentDemandRes")[5:]
    assert not any(r["EVSECurrentLimitAchieved"] or r["EVSEPowerLimitAchieved"] for r in responses)
    assert max(from_physical(r["EVSEPresentCurrent"]) for r in responses) <= 50.0 + 1e-6


def test_iso2_ac_values():
    session = run(machines("iso2", "ac"))
    statuses = session.contents("ChargingStatusRes")
    readings = [s["MeterInfo"]["MeterReading"] for s in statuses]
    assert readings == sorted(readings) and readings[-1] > readings[0]
    assert {from_physical(s["EVSEMaxCurrent"]) for s in statuses} == {32.0}
    discovery = session.contents("ChargeParameterDiscoveryRes")[0]
    assert from_physical(discovery["AC_EVSEChargeParameter"]["EVSENominalVoltage"]) == 230.0
    request = session.contents("ChargeParameterDiscoveryReq")[0]
    assert request["RequestedEnergyTransferMode"] == "AC_three_phase_core"
    assert "AC_EVChargeParameter" in request


def test_iso20_ac_values():
    session = run(machines("iso20", "ac"))
    requests = session.contents("AC_ChargeLoopReq")
    soc = [r["DisplayParameters"]["PresentSOC"] for r in requests]
    assert soc == sorted(soc) and soc[-1] > soc[0]
    control = [r["Scheduled_AC_CLReqControlMode"] for r in requests]
    energy = [from_rational(c["EVTargetEnergyRequest"]) for c in control]
    assert energy == sorted(energy, reverse=True) and energy[-1] < energy[0]
    powers = [from_rational(c["EVPresentActivePower"]) for c in control]
    assert min(powers) > 10_000  # 3 x 230 V x 16 A, as the battery sees it
    responses = session.contents("AC_ChargeLoopRes")
    present = [from_rational(r["Scheduled_AC_CLResControlMode"]["EVSEPresentActivePower"])
               for r in responses]
    assert max(present) == pytest.approx(3 * 230 * 16, rel=0.01)


# --- pacing --------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol,mode", [("iso2", "dc"), ("iso20", "ac")])
def test_requests_are_paced_by_deadlines(protocol, mode):
    session = run(machines(protocol, mode))
    requests = [e for e in session.log if e.name.endswith("Req")]
    responses = [e for e in session.log if e.name.endswith("Res")]
    for response, request in zip(responses, requests[1:]):
        think = request.time - REQUEST_LATENCY - response.time
        if response.name[:-3] in LOOP_REQUESTS:  # the next loop tick, or the stop at that tick
            assert 0.1 - 1e-9 <= think <= 0.25 + 1e-9
        elif request.name == response.name[:-3] + "Req":
            assert 0.1 - 1e-9 <= think <= 0.2 + 1e-9
        elif request.name[:-3] not in LOOP_REQUESTS:
            assert 0.01 - 1e-9 <= think <= 0.06 + 1e-9


def test_on_message_never_sends_at_once():
    circuit = make_circuit()
    evse, pev = V2gEvse(circuit, protocols=("din",)), V2gPev(circuit, protocols=("din",))
    (hello,) = pev.start(0.0)
    (answer,) = evse.on_message(hello.message, 0.01)
    assert pev.on_message(answer.message, 0.02) == []
    due = pev.next_deadline()
    assert 0.03 <= due <= 0.08
    assert pev.on_timer(due - 0.001) == []
    (setup,) = pev.on_timer(due)
    assert message_parts(setup.message)[0] == "SessionSetupReq"
    # from now on the deadline is SessionSetupReq's response timeout, counted from its sending
    assert pev.next_deadline() == pytest.approx(due + 2.0)


def test_same_seed_same_session():
    first = run(machines("iso20", "dc", seed=7))
    second = run(machines("iso20", "dc", seed=7))
    third = run(machines("iso20", "dc", seed=8))
    assert [(e.time, e.name) for e in first.log] == [(e.time, e.name) for e in second.log]
    assert [e.time for e in first.log] != [e.time for e in third.log]


def test_custom_loop_interval():
    circuit = make_circuit()
    session = Session(V2gEvse(circuit, protocols=("din",)),
                      V2gPev(circuit, protocols=("din",), rng=random.Random(1),
                             loop_interval=(0.2, 0.2)), circuit)
    run(session)
    times = [e.time for e in session.log if e.name == "CurrentDemandReq"]
    gaps = {round(b - a, 6) for a, b in itertools.pairwise(times)}
    assert gaps == {round(0.2 + REQUEST_LATENCY + RESPONSE_LATENCY, 6)}


# --- handshake -----------------------------------------------------------------------------


def test_evse_chooses_by_the_pevs_priorities():
    session = run(machines("iso2", "dc", pev_protocols=("iso20", "iso2", "din"),
                           evse_protocols=("din", "iso2")))
    assert session.evse.protocol == session.pev.protocol == "iso2"
    assert session.pev.ended.ok
    offers = session.contents("supportedAppProtocolReq")[0]["AppProtocol"]
    assert [o["ProtocolNamespace"] for o in offers] == [
        "urn:iso:std:iso:15118:-20:DC", "urn:iso:15118:2:2013:MsgDef", "urn:din:70121:2012:MsgDef"]
    assert session.contents("supportedAppProtocolRes")[0]["SchemaID"] == 2


def test_iso20_ac_offer_uses_the_ac_namespace_and_ac_evse_refuses_dc():
    session = run(machines("iso20", "ac", pev_protocols=("iso20", "iso2", "din")))
    offers = session.contents("supportedAppProtocolReq")[0]["AppProtocol"]
    assert [o["ProtocolNamespace"] for o in offers] == [
        "urn:iso:std:iso:15118:-20:AC", "urn:iso:15118:2:2013:MsgDef"]  # DIN has no AC
    assert session.pev.ended.ok
    dc_pev = V2gPev(make_circuit(), protocols=("iso20",), mode="dc")
    ac_evse = V2gEvse(make_circuit(), protocols=("iso20",), mode="ac")
    (hello,) = dc_pev.start(0.0)
    outputs = ac_evse.on_message(hello.message, 0.01)
    assert outputs[0].message["supportedAppProtocolRes"]["ResponseCode"] == "Failed_NoNegotiation"
    assert not ac_evse.ended.ok


def test_no_common_protocol():
    session = run(machines("din", "dc", pev_protocols=("iso2",), evse_protocols=("din",)))
    assert not session.evse.ended.ok and not session.pev.ended.ok
    assert "Failed_NoNegotiation" in session.pev.ended.reason


def test_options_are_checked():
    with pytest.raises(ValueError, match="AC"):
        V2gPev(make_circuit(), protocols=("din",), mode="ac")
    with pytest.raises(ValueError, match="mode"):
        V2gEvse(make_circuit(), mode="wireless")
    with pytest.raises(ValueError, match="unknown protocol"):
        V2gEvse(make_circuit(), protocols=("iso3",))


def test_ac_pev_against_dc_only_iso2_evse_is_refused():
    circuit = make_circuit("ac")
    session = Session(V2gEvse(circuit, protocols=("iso2",), mode="dc"),
                      V2gPev(circuit, protocols=("iso2",), mode="ac", rng=random.Random(1)), circuit)
    run(session)
    assert "FAILED_WrongEnergyTransferMode" in session.pev.ended.reason
    assert not session.evse.ended.ok


# --- faults --------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol,mode", SESSIONS)
def test_lost_request_times_out(protocol, mode):
    session = run(machines(protocol, mode), drop("ServiceDiscoveryReq"))
    assert session.pev.ended.ok is False
    assert session.pev.ended.reason == "no ServiceDiscoveryRes within V2G_EVCC_Msg_Timeout"
    # the EVSE, never asked again, gives up after its sequence timeout
    assert not session.evse.ended.ok and "sequence_timeout" in session.evse.ended.reason
    assert session.circuit.stage.mode == "off"


@pytest.mark.parametrize("protocol,mode", SESSIONS)
def test_lost_charge_loop_response_times_out(protocol, mode):
    loop = {"din": "CurrentDemand", "iso2": "CurrentDemand" if mode == "dc" else "ChargingStatus",
            "iso20": "DC_ChargeLoop" if mode == "dc" else "AC_ChargeLoop"}[protocol]
    session = run(machines(protocol, mode), drop(loop + "Res"))
    assert session.pev.ended == SessionEnded(False, f"no {loop}Res within V2G_EVCC_Msg_Timeout")
    assert session.log[-1].name == loop + "Req"
    assert not session.evse.ended.ok and session.circuit.stage.mode == "off"


@pytest.mark.parametrize("protocol", ["din", "iso2", "iso20"])
def test_duplicated_request_is_a_sequence_error(protocol):
    def duplicate(name, message):
        return [message, message] if name == "ServiceDiscoveryReq" else [message]
    session = run(machines(protocol, "dc"), duplicate)
    codes = [c["ResponseCode"] for c in session.contents("ServiceDiscoveryRes")]
    assert codes == ["OK", "FAILED_SequenceError"]
    assert not session.evse.ended.ok and not session.pev.ended.ok
    assert "FAILED_SequenceError" in session.pev.ended.reason


@pytest.mark.parametrize("protocol", ["din", "iso2", "iso20"])
def test_duplicated_charge_loop_request_is_answered_twice(protocol):
    loop = "DC_ChargeLoopReq" if protocol == "iso20" else "CurrentDemandReq"
    seen = []

    def duplicate(name, message):
        if name == loop and not seen:
            seen.append(name)
            return [message, message]
        return [message]
    session = run(machines(protocol, "dc"), duplicate)
    assert session.names().count(loop) == session.names().count(loop[:-3] + "Res") == 2
    assert {c["ResponseCode"] for c in session.contents(loop[:-3] + "Res")} == {"OK"}
    # the repeated loop request is allowed by the table; the EV did not ask for a second
    # answer and ends on it instead of mistaking it for the next one
    assert session.pev.ended.ok is False and "unexpected" in session.pev.ended.reason


@pytest.mark.parametrize("protocol,mode", SESSIONS)
def test_wrong_session_id_is_refused(protocol, mode):
    def corrupt(name, message):
        if name == "ServiceDiscoveryReq":
            ((_, content),) = message.items()  # the Header sits in the root for every standard
            content["Header"]["SessionID"] = b"\xff" * 8
        return [message]
    session = run(machines(protocol, mode), corrupt)
    assert session.contents("ServiceDiscoveryRes")[0]["ResponseCode"] == "FAILED_UnknownSession"
    assert not session.evse.ended.ok and "FAILED_UnknownSession" in session.evse.ended.reason
    assert not session.pev.ended.ok and "FAILED_UnknownSession" in session.pev.ended.reason


@pytest.mark.parametrize("protocol,mode", [("iso2", "dc"), ("iso20", "ac")])
def test_evse_that_stops_answering(protocol, mode):
    answering = []

    def silence(name, message):
        if name.endswith("Res") and name[:-3] in LOOP_REQUESTS:
            answering.append(name)
            if len(answering) > 5:
                return []
        return [message]
    session = run(machines(protocol, mode), silence)
    assert not session.pev.ended.ok and "within V2G_EVCC_Msg_Timeout" in session.pev.ended.reason
    assert not session.evse.ended.ok


@pytest.mark.parametrize("protocol,mode", [("din", "dc"), ("iso20", "dc")])
def test_pev_that_stops_asking(protocol, mode):
    def silence(name, message):
        return [] if name.endswith("Req") and "PreCharge" in name else [message]
    session = run(machines(protocol, mode), silence)
    assert "sequence_timeout" in session.evse.ended.reason
    assert session.log[-1].name.endswith("CableCheckRes")
    assert session.log[-1].time + 60.0 <= 600.0


def test_cable_check_that_never_finishes_hits_the_loop_timeout():
    circuit = DcCircuit(SimulationParams(evse=PowerStageParams(isolation_check_duration=1e6)))
    session = Session(V2gEvse(circuit, protocols=("iso2",)),
                      V2gPev(circuit, protocols=("iso2",), rng=random.Random(1)), circuit)
    run(session, limit=100.0)
    assert not session.pev.ended.ok and "CableCheck repeated" in session.pev.ended.reason
    assert "sequence_timeout" in session.evse.ended.reason  # then the EVSE gives up waiting


def test_stop_ends_the_charge_loop_early():
    session = machines("iso20", "dc")
    stopped = []

    def stop_after_ten(name, message):
        if name == "DC_ChargeLoopRes" and len(stopped) < 10:
            stopped.append(name)
            if len(stopped) == 10:
                session.pev.stop()
        return [message]
    run(session, stop_after_ten)
    assert session.pev.ended.ok and session.names().count("DC_ChargeLoopReq") == 10
    assert session.circuit.battery.soc < 75.0


@pytest.mark.parametrize("protocol", ["din", "iso2", "iso20"])
def test_welding_detection_gives_up_when_the_voltage_never_falls(protocol):
    welding = "DC_WeldingDetectionRes" if protocol == "iso20" else "WeldingDetectionRes"

    def stuck_output(name, message):
        if name == welding:  # a charger whose output stays at battery voltage
            content = message[welding] if protocol == "iso20" else message["V2G_Message"]["Body"][welding]
            content["EVSEPresentVoltage"] = rational(400.0) if protocol == "iso20" \
                else physical_value(400.0, "V")
        return [message]
    session = run(machines(protocol, "dc"), stuck_output)
    assert session.pev.ended == session.evse.ended == SessionEnded(True, "SessionStop")
    requests = [e for e in session.log if e.name == welding[:-3] + "Req"]
    assert len(requests) > 3
    assert requests[-1].time - requests[0].time <= WELDING_DETECTION_LIMIT + 0.2 + 0.02
    voltage = from_rational if protocol == "iso20" else from_physical
    assert all(voltage(c["EVSEPresentVoltage"]) > WELDING_SAFE_VOLTAGE for c in session.contents(welding))
    if protocol == "iso20":
        kinds = [r.content["EVProcessing"] for r in requests]
        assert kinds[-1] == "Finished" and set(kinds[:-1]) == {"Ongoing"}
    assert session.names()[-2:] == ["SessionStopReq", "SessionStopRes"]


# --- relaxed timing ------------------------------------------------------------------------


def test_timed_table_scales_every_timeout_we_enforce():
    standard, relaxed = timed_table("iso2"), timed_table("iso2", 2.5)
    assert relaxed.sequence_timeout == 2.5 * standard.sequence_timeout
    assert relaxed.communication_setup_timeout == 2.5 * standard.communication_setup_timeout
    assert relaxed.msg_timeouts == {k: 2.5 * v for k, v in standard.msg_timeouts.items()}
    assert relaxed.loop_timeouts == {k: 2.5 * v for k, v in standard.loop_timeouts.items()}
    assert relaxed.transitions == standard.transitions
    assert timed_table("din", 1.0) is timed_table("din")
    with pytest.raises(ValueError, match="positive"):
        timed_table("din", 0.0)


@pytest.mark.parametrize("protocol,mode", SESSIONS)
def test_relaxed_timing_waits_for_a_slow_evse(protocol, mode):
    # every response 2.2 s late: beyond every V2G_EVCC_Msg_Timeout of the session's requests
    strict = run(machines(protocol, mode), response_latency=2.2)
    assert strict.pev.ended == SessionEnded(False, "no supportedAppProtocolRes within V2G_EVCC_Msg_Timeout")
    relaxed = run(machines(protocol, mode, relaxed_timing=10.0), response_latency=2.2, limit=3600.0)
    assert relaxed.pev.ended == relaxed.evse.ended == SessionEnded(True, "SessionStop")
    assert distinct_requests(relaxed.names()) == EXPECTED[protocol, mode]


def test_relaxed_timing_scales_the_evses_sequence_timeout():
    circuit = make_circuit()
    evse, pev = V2gEvse(circuit, protocols=("din",), relaxed_timing=2.0), V2gPev(circuit, protocols=("din",))
    (hello,) = pev.start(0.0)
    evse.on_message(hello.message, 0.01)
    patience = 2.0 * timed_table("din").sequence_timeout
    assert evse.next_deadline() == pytest.approx(0.01 + patience)
    assert evse.on_timer(0.01 + patience * 0.9) == [] and evse.ended is None
    (ended,) = evse.on_timer(0.01 + patience)
    assert not ended.ok and "sequence_timeout" in ended.reason


@pytest.mark.parametrize("mode", ["dc", "ac"])
def test_iso20_schedule_carries_a_free_absolute_price_schedule(mode, xsd):
    session = run(machines("iso20", mode))
    (entry,) = [e for e in session.log if e.name == "ScheduleExchangeRes"]
    xsd[entry.schema].validate(entry.message.to_xml())
    (schedule_tuple,) = entry.content["Scheduled_SEResControlMode"]["ScheduleTuple"]
    schedule = schedule_tuple["ChargingSchedule"]
    prices = schedule["AbsolutePriceSchedule"]
    assert prices["TimeAnchor"] == schedule["PowerSchedule"]["TimeAnchor"]
    assert prices["PriceAlgorithm"] == "urn:iso:std:iso:15118:-20:PriceAlgorithm:1-Power"
    assert len(prices["Currency"]) == len(prices["Language"]) == 3
    rules = [rule for stack in prices["PriceRuleStacks"]["PriceRuleStack"] for rule in stack["PriceRule"]]
    assert rules and all(from_rational(rule["EnergyFee"]) == 0.0 for rule in rules)


# --- the car's side of a real-interface driver ---------------------------------------------


@pytest.mark.parametrize("protocol,mode", SESSIONS)
def test_supply_charges_the_cars_battery_with_what_the_evse_reports(protocol, mode):
    from ccssniff.emulate.driver import Supply
    from ccssniff.emulate.physics import Battery

    session = run(machines(protocol, mode))
    params = SimulationParams(battery=session.circuit.battery.params)
    supply, battery = Supply(mode, params), Battery(params.battery)
    loop_response = next(n for n in session.names() if n[:-3] in LOOP_REQUESTS and n.endswith("Res"))
    currents, previous = {}, 0.0
    for entry in session.log:
        battery.step(entry.time - previous, supply.battery_current(battery))
        previous = entry.time
        if entry.name.endswith("Res"):
            supply.read(entry.name, entry.content)
            currents.setdefault(entry.name, []).append(supply.current)
    assert battery.soc > battery.params.start_soc + 1.0
    assert max(currents[loop_response]) > 0.0
    assert currents["PowerDeliveryRes"][-1] == currents["SessionStopRes"][-1] == 0.0
    if mode == "ac":  # the car's on-board charger takes 16 A per phase of the EVSE's 32 A
        assert max(currents[loop_response]) == pytest.approx(16.0, rel=0.01)
        assert supply.battery_current(Battery(params.battery)) == 0.0
    else:
        reported = [from_rational(c["EVSEPresentCurrent"]) if protocol == "iso20"
                    else from_physical(c["EVSEPresentCurrent"]) for c in session.contents(loop_response)]
        assert currents[loop_response] == pytest.approx(reported)
