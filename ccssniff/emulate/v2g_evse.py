"""The EVSE's V2G application layer, sans-IO (DIN 70121 and ISO 15118-2, DC).

Decoded request mappings and times go in; response mappings (with the schema to encode them
with) and events come out. The sequence is checked by the shared SequenceTracker on the same
table the PEV and the decoder read; the values come from the simulated power stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Union

from ccssniff.emulate.physics import DcCircuit
from ccssniff.emulate.v2g_messages import (DIALECTS, SESSION_ID_NONE, as_bool, as_list,
                                           dc_evse_status, from_physical, physical_value,
                                           v2g_message)
from ccssniff.standards import SequenceTracker, message_parts, session_id_of, table_for_protocol
from ccssniff.standards.apphandshake import PROTOCOL_BY_NAMESPACE


@dataclass(frozen=True)
class SendMessage:
    schema: str  # openv2gx schema that encodes it
    message: dict[str, Any]


@dataclass(frozen=True)
class SessionEnded:
    ok: bool
    reason: str


Output = Union[SendMessage, SessionEnded]


class V2gEvse:
    """One TCP connection's worth of SECC: handshake, then the protocol it picked."""

    def __init__(self, circuit: DcCircuit, protocols: tuple[str, ...] = ("iso2", "din"),
                 evse_id: str = "DE*CCS*E0001", new_session_id: Callable[[], bytes] | None = None,
                 payment: str = "ExternalPayment") -> None:
        self.circuit = circuit
        self.protocols = protocols  # the ones this EVSE speaks
        self.evse_id = evse_id
        self.payment = payment
        self._new_session_id = new_session_id or (lambda: bytes.fromhex("0102030405060708"))
        self.protocol: str | None = None
        self.session_id: bytes | None = None
        self.tracker: SequenceTracker | None = None
        self.ended: SessionEnded | None = None
        self._last_time: float | None = None
        self._handshake = SequenceTracker(table_for_protocol(protocols[0]))  # until one is chosen

    # --- time ---

    def next_deadline(self) -> float | None:
        deadline = (self.tracker or self._handshake).next_deadline()
        return None if self.ended or deadline is None else deadline.at

    def on_timer(self, now: float) -> list[Output]:
        self._advance(now)
        if self.ended:
            return []
        violation = (self.tracker or self._handshake).on_timer(now)
        if violation is None:
            return []
        return self._end(False, str(violation))

    # --- messages ---

    def on_message(self, decoded: Mapping[str, Any], now: float) -> list[Output]:
        self._advance(now)
        if self.ended:
            return []
        name, content = message_parts(decoded)
        if name == "supportedAppProtocolReq":
            return self._handshake_response(content, now)
        if self.tracker is None:
            return self._end(False, f"{name} before the application handshake")
        dialect = DIALECTS[self.protocol]
        violation = self.tracker.on_request(name, content, now)
        base = name[:-3]
        if name != "SessionSetupReq" and session_id_of(decoded) != self.session_id:
            code = "FAILED_UnknownSession"
        elif violation is not None:
            code = "FAILED_SequenceError"
        elif name == "SessionSetupReq":
            offered = session_id_of(decoded)
            if offered and offered != SESSION_ID_NONE and offered == self.session_id:
                code = "OK_OldSessionJoined"
            else:
                code = "OK_NewSessionEstablished"
                self.session_id = self._new_session_id()
        else:
            code = "OK"
        if code.startswith("FAILED"):
            response = {"ResponseCode": code}
        else:
            response = {"ResponseCode": code, **self._respond(base, content, dialect)}
        self.tracker.on_response(base + "Res", response, now)
        outputs: list[Output] = [SendMessage(self.protocol,
                                             v2g_message(self.session_id or SESSION_ID_NONE,
                                                         base + "Res", response))]
        if self.tracker.finished:
            ok = self.tracker.state == "Ended"
            outputs += self._end(ok, "SessionStop" if ok else (self.tracker.reason or code))
        return outputs

    def _handshake_response(self, content: Mapping[str, Any], now: float) -> list[Output]:
        self._handshake.on_request("supportedAppProtocolReq", content, now)
        offers = sorted(as_list(content.get("AppProtocol")), key=lambda p: int(p["Priority"]))
        for offer in offers:
            protocol = PROTOCOL_BY_NAMESPACE.get(offer["ProtocolNamespace"], (None,))[0]
            if protocol in self.protocols and protocol in DIALECTS \
                    and int(offer["VersionNumberMajor"]) == DIALECTS[protocol].version[0]:
                self.protocol = protocol
                self.tracker = SequenceTracker(table_for_protocol(protocol))
                self.tracker.on_request("supportedAppProtocolReq", content, now)
                response = {"ResponseCode": "OK_SuccessfulNegotiation",
                            "SchemaID": int(offer["SchemaID"])}
                self.tracker.on_response("supportedAppProtocolRes", response, now)
                return [SendMessage("appHandshake", {"supportedAppProtocolRes": response})]
        response = {"ResponseCode": "Failed_NoNegotiation"}
        return [SendMessage("appHandshake", {"supportedAppProtocolRes": response}),
                *self._end(False, "no common protocol in the handshake")]

    def _respond(self, base: str, content: Mapping[str, Any], dialect) -> dict[str, Any]:
        stage, params = self.circuit.stage, self.circuit.stage.params
        protocol = dialect.protocol
        status = lambda: dc_evse_status(protocol, "Valid" if stage.isolation_valid else "Invalid")  # noqa: E731
        if base == "SessionSetup":
            evse_id = bytes.fromhex("49A89A6360") if dialect.evse_id_is_binary else self.evse_id
            return {"EVSEID": evse_id}
        if base == "ServiceDiscovery":
            if protocol == "din":
                service = {"ServiceTag": {"ServiceID": 1, "ServiceCategory": "EVCharging"},
                           "FreeService": False, "EnergyTransferType": "DC_extended"}
            else:
                service = {"ServiceID": 1, "ServiceCategory": "EVCharging", "FreeService": False,
                           "SupportedEnergyTransferMode": {"EnergyTransferMode": ["DC_extended"]}}
            return {dialect.payment_options_field: {"PaymentOption": [self.payment]},
                    "ChargeService": service}
        if base == dialect.payment_selection:
            return {}
        if base in (dialect.authorization, "ChargeParameterDiscovery"):
            extra: dict[str, Any] = {"EVSEProcessing": "Finished"}
            if base == "ChargeParameterDiscovery":
                entry = {"RelativeTimeInterval": {"start": 0, "duration": 86400},
                         # DIN's PMax is a bare short; ISO-2's a PhysicalValue
                         "PMax": min(int(params.max_power), 32767) if protocol == "din"
                         else physical_value(params.max_power, "W")}
                schedule = {"PMaxScheduleID": 0} if protocol == "din" else {}
                schedule["PMaxScheduleEntry"] = [entry]
                extra["SAScheduleList"] = {"SAScheduleTuple": [
                    {"SAScheduleTupleID": 1, "PMaxSchedule": schedule}]}
                extra["DC_EVSEChargeParameter"] = {
                    "DC_EVSEStatus": status(),
                    "EVSEMaximumCurrentLimit": physical_value(params.max_current, "A"),
                    "EVSEMaximumPowerLimit": physical_value(params.max_power, "W"),
                    "EVSEMaximumVoltageLimit": physical_value(params.max_voltage, "V"),
                    "EVSEMinimumCurrentLimit": physical_value(params.min_current, "A"),
                    "EVSEMinimumVoltageLimit": physical_value(params.min_voltage, "V"),
                    "EVSEPeakCurrentRipple": physical_value(params.peak_current_ripple, "A"),
                }
            return extra
        if base == "CableCheck":
            if stage.mode != stage.CABLE_CHECK:
                stage.start_cable_check(params.max_voltage)
            done = stage.isolation_valid
            return {"DC_EVSEStatus": status(), "EVSEProcessing": "Finished" if done else "Ongoing"}
        if base == "PreCharge":
            stage.start_precharge(from_physical(content["EVTargetVoltage"]),
                                  from_physical(content["EVTargetCurrent"]))
            return {"DC_EVSEStatus": status(),
                    "EVSEPresentVoltage": physical_value(stage.present_voltage, "V")}
        if base == "PowerDelivery":
            starting = as_bool(content.get("ReadyToChargeState")) if protocol == "din" \
                else content.get("ChargeProgress") == "Start"
            if starting:
                stage.start_charging()
                self.circuit.contactors_closed = True
            else:
                stage.stop()
                self.circuit.contactors_closed = False
            return {"DC_EVSEStatus": status()}
        if base == "CurrentDemand":
            stage.set_targets(from_physical(content["EVTargetVoltage"]),
                              from_physical(content["EVTargetCurrent"]))
            response = {
                "DC_EVSEStatus": status(),
                "EVSEPresentVoltage": physical_value(stage.present_voltage, "V"),
                "EVSEPresentCurrent": physical_value(stage.present_current, "A"),
                "EVSECurrentLimitAchieved": stage.current_limit_achieved,
                "EVSEVoltageLimitAchieved": stage.voltage_limit_achieved,
                "EVSEPowerLimitAchieved": stage.power_limit_achieved,
                "EVSEMaximumVoltageLimit": physical_value(params.max_voltage, "V"),
                "EVSEMaximumCurrentLimit": physical_value(params.max_current, "A"),
                "EVSEMaximumPowerLimit": physical_value(params.max_power, "W"),
            }
            if protocol == "iso2":
                response.update({"EVSEID": self.evse_id, "SAScheduleTupleID": 1})
            return response
        if base == "WeldingDetection":
            return {"DC_EVSEStatus": status(),
                    "EVSEPresentVoltage": physical_value(stage.present_voltage, "V")}
        if base == "SessionStop":
            return {}
        raise NotImplementedError(f"{base} is not emulated")  # the table allowed it, we cannot serve it

    # --- internals ---

    def _advance(self, now: float) -> None:
        if self._last_time is not None and now > self._last_time:
            self.circuit.step(now - self._last_time)
        self._last_time = now if self._last_time is None else max(self._last_time, now)

    def _end(self, ok: bool, reason: str) -> list[Output]:
        self.ended = SessionEnded(ok, reason)
        self.circuit.stage.stop()
        self.circuit.contactors_closed = False
        return [self.ended]
