"""The PEV's V2G application layer, sans-IO (DIN 70121 and ISO 15118-2, DC).

Response mappings and times go in; the next request (with its schema) and events come out.
It walks the same sequence table as the EVSE and the decoder, and takes its values from the
simulated battery; the response timeouts and loop limits of the standard are its deadlines.
"""

from __future__ import annotations

from typing import Any, Mapping

from ccssniff.emulate.physics import DcCircuit
from ccssniff.emulate.v2g_evse import Output, SendMessage, SessionEnded
from ccssniff.emulate.v2g_messages import (DIALECTS, SESSION_ID_NONE, dc_ev_status,
                                           from_physical, physical_value, v2g_message)
from ccssniff.standards import SequenceTracker, message_parts, session_id_of, table_for_protocol

# The EV stops welding detection once the EVSE output is below this (contacts safe to open)
WELDING_SAFE_VOLTAGE = 60.0


class V2gPev:
    def __init__(self, circuit: DcCircuit, protocols: tuple[str, ...] = ("iso2", "din"),
                 evcc_id: bytes = bytes.fromhex("0a1b2c3d4e5f")) -> None:
        self.circuit = circuit
        self.protocols = protocols  # in order of preference (Priority 1 first)
        self.evcc_id = evcc_id
        self.protocol: str | None = None
        self.session_id = SESSION_ID_NONE
        self.tracker: SequenceTracker | None = None
        self.ended: SessionEnded | None = None
        self.stop_requested = False
        self._sent_at: float | None = None
        self._pending: str | None = None
        self._loop_started: dict[str, float] = {}

    # --- time ---

    def next_deadline(self) -> float | None:
        if self.ended or self._pending is None or self._sent_at is None:
            return None
        table = self.tracker.table if self.tracker else table_for_protocol(self.protocols[0])
        return self._sent_at + (table.msg_timeout(self._pending) or 2.0)

    def on_timer(self, now: float) -> list[Output]:
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return []
        return self._end(False, f"no {self._pending}Res within V2G_EVCC_Msg_Timeout")

    def stop(self) -> None:
        """Ask for an orderly end (PowerDelivery stop, SessionStop) at the next response."""
        self.stop_requested = True

    # --- messages ---

    def start(self, now: float) -> list[Output]:
        offers = []
        for priority, protocol in enumerate(self.protocols, start=1):
            dialect = DIALECTS[protocol]
            offers.append({"ProtocolNamespace": dialect.namespace,
                           "VersionNumberMajor": dialect.version[0],
                           "VersionNumberMinor": dialect.version[1],
                           "SchemaID": priority, "Priority": priority})
        self._pending, self._sent_at = "supportedAppProtocol", now
        return [SendMessage("appHandshake", {"supportedAppProtocolReq": {"AppProtocol": offers}})]

    def on_message(self, decoded: Mapping[str, Any], now: float) -> list[Output]:
        if self.ended:
            return []
        name, content = message_parts(decoded)
        if self._pending is None or name != self._pending + "Res":
            return self._end(False, f"unexpected {name}")
        code = str(content.get("ResponseCode", ""))
        if code.lower().startswith("failed"):
            if self.tracker:
                self.tracker.on_response(name, content, now)
            return self._end(False, f"{name}: {code}")
        if name == "supportedAppProtocolRes":
            self.protocol = self.protocols[int(content["SchemaID"]) - 1]
            self.tracker = SequenceTracker(table_for_protocol(self.protocol))
            self.tracker.on_request("supportedAppProtocolReq", None, self._sent_at)
        elif name == "SessionSetupRes":
            self.session_id = session_id_of(decoded) or SESSION_ID_NONE
        elif session_id_of(decoded) != self.session_id:
            return self._end(False, f"{name} carries another SessionID")
        violation = self.tracker.on_response(name, content, now)
        if violation is not None:
            return self._end(False, str(violation))
        if self.tracker.state == "Ended":
            self._pending = None
            return self._end(True, "SessionStop")
        return self._next_request(name[:-3], content, now)

    def _next_request(self, answered: str, content: Mapping[str, Any], now: float) -> list[Output]:
        dialect = DIALECTS[self.protocol]
        battery, stage = self.circuit.battery, self.circuit.stage
        soc = battery.soc
        ongoing = str(content.get("EVSEProcessing", "")).startswith("Ongoing")
        if answered == "supportedAppProtocol":
            return self._send("SessionSetup", {"EVCCID": self.evcc_id}, now)
        if answered == "SessionSetup":
            return self._send("ServiceDiscovery", {}, now)
        if answered == "ServiceDiscovery":
            return self._send(dialect.payment_selection, {
                "SelectedPaymentOption": "ExternalPayment",
                "SelectedServiceList": {"SelectedService": [{"ServiceID": 1}]}}, now)
        if answered == dialect.payment_selection or (answered == dialect.authorization and ongoing):
            return self._send(dialect.authorization, {}, now)
        if answered == dialect.authorization or (answered == "ChargeParameterDiscovery" and ongoing):
            parameter = {"DC_EVStatus": dc_ev_status(soc),
                         "EVMaximumCurrentLimit": physical_value(battery.params.max_current, "A"),
                         "EVMaximumVoltageLimit": physical_value(battery.params.max_voltage, "V")}
            if self.protocol == "iso2":
                parameter = {"DepartureTime": 0, **parameter}
                parameter["EVMaximumPowerLimit"] = physical_value(battery.params.max_power, "W")
                parameter["FullSOC"] = int(battery.params.target_soc)
                parameter["BulkSOC"] = int(battery.params.bulk_soc)
                parameter = {k: parameter[k] for k in ("DepartureTime", "DC_EVStatus",
                             "EVMaximumCurrentLimit", "EVMaximumPowerLimit",
                             "EVMaximumVoltageLimit", "FullSOC", "BulkSOC")}
            return self._send("ChargeParameterDiscovery", {
                dialect.energy_transfer_field: dialect.energy_transfer,
                "DC_EVChargeParameter": parameter}, now)
        if answered == "ChargeParameterDiscovery" or (answered == "CableCheck" and ongoing):
            if self._loop_expired("CableCheck", now):
                return self._end(False, "CableCheck took longer than V2G_EVCC_CableCheck_Timeout")
            return self._send("CableCheck", {"DC_EVStatus": dc_ev_status(soc)}, now)
        if answered in ("CableCheck", "PreCharge"):
            if answered == "PreCharge":
                stage_voltage = from_physical(content["EVSEPresentVoltage"])
                if abs(stage_voltage - battery.terminal_voltage(0.0)) <= battery.params.precharge_tolerance:
                    return self._power_delivery(True, now)
            if self._loop_expired("PreCharge", now):
                return self._end(False, "PreCharge took longer than V2G_EVCC_PreCharge_Timeout")
            return self._send("PreCharge", {
                "DC_EVStatus": dc_ev_status(soc),
                "EVTargetVoltage": physical_value(battery.terminal_voltage(0.0), "V"),
                "EVTargetCurrent": physical_value(2.0, "A")}, now)
        if answered == "PowerDelivery":
            if self.circuit.contactors_closed:
                return self._current_demand(now)
            return self._send("WeldingDetection", {"DC_EVStatus": dc_ev_status(soc)}, now)
        if answered == "CurrentDemand":
            if battery.charging_complete or self.stop_requested:
                return self._power_delivery(False, now)
            return self._current_demand(now)
        if answered == "WeldingDetection":
            if from_physical(content["EVSEPresentVoltage"]) > WELDING_SAFE_VOLTAGE:
                return self._send("WeldingDetection", {"DC_EVStatus": dc_ev_status(soc)}, now)
            stop = {} if self.protocol == "din" else {"ChargingSession": "Terminate"}
            return self._send("SessionStop", stop, now)
        return self._end(False, f"no next request after {answered}Res")

    def _power_delivery(self, start: bool, now: float) -> list[Output]:
        battery = self.circuit.battery
        parameter = {"DC_EVStatus": dc_ev_status(battery.soc),
                     "BulkChargingComplete": battery.bulk_charging_complete,
                     "ChargingComplete": battery.charging_complete}
        if self.protocol == "din":
            content = {"ReadyToChargeState": start, "DC_EVPowerDeliveryParameter": parameter}
        else:
            content = {"ChargeProgress": "Start" if start else "Stop", "SAScheduleTupleID": 1,
                       "DC_EVPowerDeliveryParameter": parameter}
        self.circuit.contactors_closed = start
        return self._send("PowerDelivery", content, now)

    def _current_demand(self, now: float) -> list[Output]:
        battery = self.circuit.battery
        p = battery.params
        return self._send("CurrentDemand", {
            "DC_EVStatus": dc_ev_status(battery.soc),
            "EVTargetCurrent": physical_value(battery.requested_current(), "A"),
            "EVMaximumVoltageLimit": physical_value(p.max_voltage, "V"),
            "EVMaximumCurrentLimit": physical_value(p.max_current, "A"),
            "EVMaximumPowerLimit": physical_value(p.max_power, "W"),
            "BulkChargingComplete": battery.bulk_charging_complete,
            "ChargingComplete": battery.charging_complete,
            "RemainingTimeToFullSoC": physical_value(min(battery.remaining_time(100.0), 172800), "s"),
            "RemainingTimeToBulkSoC": physical_value(min(battery.remaining_time(p.bulk_soc), 172800), "s"),
            "EVTargetVoltage": physical_value(battery.requested_voltage(), "V"),
        }, now)

    # --- internals ---

    def _send(self, base: str, content: dict[str, Any], now: float) -> list[Output]:
        violation = self.tracker.on_request(base + "Req", content, now)
        if violation is not None:  # our own plan broke the table: a bug, end loudly
            return self._end(False, f"PEV sequence bug: {violation}")
        self._pending, self._sent_at = base, now
        return [SendMessage(self.protocol, v2g_message(self.session_id, base + "Req", content))]

    def _loop_expired(self, base: str, now: float) -> bool:
        started = self._loop_started.setdefault(base, now)
        limit = self.tracker.table.loop_timeouts.get(base)
        return limit is not None and now - started > limit

    def _end(self, ok: bool, reason: str) -> list[Output]:
        self.ended = SessionEnded(ok, reason)
        self._pending = None
        return [self.ended]
