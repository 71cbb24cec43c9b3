"""EVSE and PEV V2G machines driven against each other in memory (DIN and ISO-2 DC)."""

from __future__ import annotations

import pytest

from ccssniff.emulate.physics import BatteryParams, DcCircuit, PowerStageParams, SimulationParams
from ccssniff.emulate.v2g_evse import SendMessage, SessionEnded, V2gEvse
from ccssniff.emulate.v2g_pev import V2gPev
from ccssniff.standards import message_parts

STEP = 0.1  # simulated seconds between exchanges


def _circuit() -> DcCircuit:
    return DcCircuit(SimulationParams(
        evse=PowerStageParams(max_current=150, max_power=50_000, voltage_ramp=400),
        battery=BatteryParams(capacity_kwh=2.0, start_soc=70.0, target_soc=75.0)))


def _run(evse: V2gEvse, pev: V2gPev, mutate=None, limit=20_000):
    """Exchange until someone ends; ``mutate(index, output)`` may drop (None) or alter a message."""
    now, log, index = 0.0, [], 0
    in_flight = pev.start(now)
    while limit:
        limit -= 1
        now += STEP
        replies = []
        for output in in_flight:
            if isinstance(output, SessionEnded):
                continue
            index += 1
            message = mutate(index, output.message) if mutate else output.message
            if message is None:
                continue
            log.append(message_parts(message)[0])
            target = evse if "Req" in log[-1] else pev
            replies += target.on_message(message, now)
        if not any(isinstance(r, SendMessage) for r in replies):
            replies += evse.on_timer(now) + pev.on_timer(now)
        in_flight = replies
        if (evse.ended or pev.ended) and not any(isinstance(r, SendMessage) for r in in_flight):
            break
    return log


@pytest.mark.parametrize("protocol", ["din", "iso2"])
def test_full_dc_session(protocol):
    circuit = _circuit()
    evse, pev = V2gEvse(circuit, protocols=(protocol,)), V2gPev(circuit, protocols=("iso2", "din"))
    log = _run(evse, pev)
    assert evse.ended.ok and pev.ended.ok, (evse.ended, pev.ended)
    assert evse.protocol == pev.protocol == protocol
    assert log[0] == "supportedAppProtocolReq" and log[-1] == "SessionStopRes"
    for name in ("CableCheckReq", "PreChargeReq", "CurrentDemandReq", "WeldingDetectionReq"):
        assert name in log
    assert log.count("CableCheckReq") > 1 and log.count("PreChargeReq") > 1  # the loops looped
    assert circuit.battery.soc >= 75.0


def test_values_change_and_flags_show_the_limit():
    circuit = _circuit()
    evse, pev = V2gEvse(circuit, protocols=("iso2",)), V2gPev(circuit)
    seen = []

    def watch(index, message):
        name, content = message_parts(message)
        if name == "CurrentDemandRes":
            seen.append((content["EVSEPresentCurrent"]["Value"], content["EVSEPowerLimitAchieved"],
                         content["EVSECurrentLimitAchieved"]))
        return message
    _run(evse, pev, watch)
    currents = {value for value, _, _ in seen}
    assert len(currents) > 3
    assert any(power or current for _, power, current in seen)


def test_lost_response_times_out_on_the_pev():
    circuit = _circuit()
    evse, pev = V2gEvse(circuit, protocols=("din",)), V2gPev(circuit, protocols=("din",))
    _run(evse, pev, lambda i, m: None if message_parts(m)[0] == "ServiceDiscoveryRes" else m)
    assert not pev.ended.ok and "ServiceDiscoveryRes" in pev.ended.reason


def test_wrong_session_id_is_refused():
    circuit = _circuit()
    evse, pev = V2gEvse(circuit, protocols=("iso2",)), V2gPev(circuit)

    def corrupt(index, message):
        if message_parts(message)[0] == "ServiceDiscoveryReq":
            message["V2G_Message"]["Header"]["SessionID"] = b"\xff" * 8
        return message
    _run(evse, pev, corrupt)
    assert not evse.ended.ok and "FAILED_UnknownSession" in evse.ended.reason
    assert not pev.ended.ok and "FAILED_UnknownSession" in pev.ended.reason


def test_duplicated_request_is_a_sequence_error():
    evse2 = V2gEvse(_circuit(), protocols=("din",))
    pev2 = V2gPev(evse2.circuit, protocols=("din",))
    (hello,) = pev2.start(0.0)
    (answer,) = evse2.on_message(hello.message, 0.1)
    (setup,) = pev2.on_message(answer.message, 0.2)
    assert message_parts(evse2.on_message(setup.message, 0.3)[0].message)[1]["ResponseCode"] == \
        "OK_NewSessionEstablished"
    outputs = evse2.on_message(setup.message, 0.4)  # the same SessionSetupReq again
    response = message_parts(outputs[0].message)[1]
    assert response["ResponseCode"] == "FAILED_SequenceError"
    assert isinstance(outputs[-1], SessionEnded) and not outputs[-1].ok


def test_no_common_protocol():
    circuit = _circuit()
    evse, pev = V2gEvse(circuit, protocols=("din",)), V2gPev(circuit, protocols=("iso2",))
    _run(evse, pev)
    assert not evse.ended.ok and not pev.ended.ok
