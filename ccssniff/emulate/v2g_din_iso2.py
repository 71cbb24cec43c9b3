"""Message contents of DIN 70121 (DC) and ISO 15118-2 (DC and AC, EIM) for both machines.

The two standards differ in a handful of names, collected per protocol in :class:`Dialect`, so
that one EVSE side (:class:`DinIso2Evse`) and one PEV side (:class:`DinIso2Pev`) serve both.
The EVSE side takes its values from the power stage, the PEV side from the battery.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ccssniff.emulate.physics import DcCircuit
from ccssniff.emulate.v2g_messages import (
    as_bool,
    from_physical,
    physical_value,
    says_ongoing,
)

# The EV stops welding detection once the EVSE output is below this (contacts safe to open)
WELDING_SAFE_VOLTAGE = 60.0
# ...or after this long (s) whatever the EVSE reports: no standard bounds the loop, and real EVs
# give up after a few seconds and end the session (leaving the verdict on the contactors to their
# own diagnostics) rather than stay plugged in to a charger whose output never falls
WELDING_DETECTION_LIMIT = 5.0
METER_ID = "CCSSNIFF-METER-1"
# With Plug & Charge the EVSE asks for a signed metering receipt in this charge-loop response.
RECEIPT_AT_LOOP = 5
SCHEDULE_TUPLE_ID = 1

Step = tuple[str, str]  # (request base name, what kind of it: "Start"/"Stop"/"Ongoing"/... or "")


@dataclass(frozen=True)
class Dialect:
    protocol: str
    payment_selection: str  # the request that selects the payment option
    authorization: str
    energy_transfer_field: str  # in ChargeParameterDiscoveryReq
    payment_options_field: str  # in ServiceDiscoveryRes
    wrong_energy_transfer: str  # the response code refusing the requested energy transfer
    evse_id_is_binary: bool

    def energy_transfer(self, mode: str) -> str:
        return "DC_extended" if mode == "dc" else "AC_three_phase_core"


DIALECTS = {
    "din": Dialect("din", "ServicePaymentSelection", "ContractAuthentication",
                   "EVRequestedEnergyTransferType", "PaymentOptions",
                   "FAILED_WrongEnergyTransferType", True),
    "iso2": Dialect("iso2", "PaymentServiceSelection", "Authorization",
                    "RequestedEnergyTransferMode", "PaymentOptionList",
                    "FAILED_WrongEnergyTransferMode", False),
}


def dc_evse_status(protocol: str, isolation: str, status_code: str = "EVSE_Ready",
                   notification: str = "None") -> dict[str, Any]:
    if protocol == "din":
        return {"EVSEIsolationStatus": isolation, "EVSEStatusCode": status_code,
                "NotificationMaxDelay": 0, "EVSENotification": notification}
    return {"NotificationMaxDelay": 0, "EVSENotification": notification,
            "EVSEIsolationStatus": isolation, "EVSEStatusCode": status_code}


def ac_evse_status(notification: str = "None") -> dict[str, Any]:
    return {"NotificationMaxDelay": 0, "EVSENotification": notification, "RCD": False}


def dc_ev_status(soc: float, ready: bool = True) -> dict[str, Any]:
    return {"EVReady": ready, "EVErrorCode": "NO_ERROR", "EVRESSSOC": round(soc)}


def ac_power(circuit: DcCircuit) -> float:
    """The most an AC session can draw: phases x nominal voltage x the lower current limit."""
    stage, battery = circuit.stage.params, circuit.battery.params
    phases = min(stage.ac_phases, battery.ac_phases)
    return phases * stage.ac_nominal_voltage * min(stage.ac_max_current, battery.ac_max_current)


class DinIso2Evse:
    """The SECC's side of DIN 70121 and ISO 15118-2: commands the stage, reports its state."""

    def __init__(self, protocol: str, circuit: DcCircuit, mode: str, evse_id: str, payment: str,
                 verifier: Any = None):
        self.dialect = DIALECTS[protocol]
        self.protocol = protocol
        self.circuit = circuit
        self.mode = mode
        self.evse_id = evse_id
        self.payment = payment
        self.verifier = verifier if protocol == "iso2" else None  # Plug & Charge (emulate/pnc.py)
        self.contract_selected = False
        self.loop_responses = 0

    def check_identification(self, name: str, decoded: Any, content: Mapping[str, Any]) -> str | None:
        """Plug & Charge: a FAILED code for a contract chain or signature that does not verify."""
        if self.verifier is None:
            return None
        if name == "PaymentServiceSelectionReq":
            self.contract_selected = content.get("SelectedPaymentOption") == "Contract"
        elif name == "PaymentDetailsReq":
            code = self.verifier.payment_details(name, content)
            self.verifier.new_challenge()
            return code
        elif name == "AuthorizationReq" and self.contract_selected:
            return self.verifier.authorization(decoded, content.get("GenChallenge"))
        elif name == "MeteringReceiptReq" and self.contract_selected:
            if self.verifier.receipt(decoded) is not None:
                return "FAILED_MeteringSignatureNotValid"
        elif name in ("CurrentDemandReq", "ChargingStatusReq"):
            self.loop_responses += 1
        return None

    def _receipt(self) -> dict[str, Any]:
        """MeterInfo and ReceiptRequired for one charge-loop response of a Plug & Charge session."""
        if not (self.verifier and self.contract_selected and self.loop_responses == RECEIPT_AT_LOOP):
            return {}
        return {"MeterInfo": {"MeterID": METER_ID, "MeterReading": int(self.circuit.battery.energy_charged_wh)},
                "ReceiptRequired": True}

    def serve(self, base: str, content: Mapping[str, Any], now: float) -> str | None:
        """Act on an accepted request; a FAILED response code refuses it instead."""
        stage = self.circuit.stage
        if base == "ChargeParameterDiscovery":
            requested = content.get(self.dialect.energy_transfer_field)
            if requested != self.dialect.energy_transfer(self.mode):
                return self.dialect.wrong_energy_transfer
        elif base == "CableCheck" and stage.mode != stage.CABLE_CHECK:
            stage.start_cable_check(stage.params.max_voltage)
        elif base == "PreCharge":
            stage.start_precharge(from_physical(content["EVTargetVoltage"]),
                                  from_physical(content["EVTargetCurrent"]))
        elif base == "PowerDelivery":
            starting = as_bool(content.get("ReadyToChargeState")) if self.protocol == "din" \
                else content.get("ChargeProgress") == "Start"
            if starting:
                stage.start_charging()
            else:
                stage.stop()
            # AC charges through the on-board charger, never through the DC contactors
            self.circuit.contactors_closed = starting and self.mode == "dc"
        elif base == "CurrentDemand":
            stage.set_targets(from_physical(content["EVTargetVoltage"]),
                              from_physical(content["EVTargetCurrent"]))
        return None

    def report(self, base: str, content: Mapping[str, Any], now: float) -> dict[str, Any]:
        """The response's fields after ResponseCode, from the present state (no side effects)."""
        stage, params, dialect = self.circuit.stage, self.circuit.stage.params, self.dialect
        protocol = self.protocol
        if base == "SessionSetup":
            if dialect.evse_id_is_binary:
                return {"EVSEID": bytes.fromhex("49A89A6360"), "DateTimeNow": int(now)}
            return {"EVSEID": self.evse_id, "EVSETimeStamp": int(now)}
        if base == "ServiceDiscovery":
            transfer = dialect.energy_transfer(self.mode)
            if protocol == "din":
                service = {"ServiceTag": {"ServiceID": 1, "ServiceCategory": "EVCharging"},
                           "FreeService": False, "EnergyTransferType": transfer}
            else:
                service = {"ServiceID": 1, "ServiceCategory": "EVCharging", "FreeService": False,
                           "SupportedEnergyTransferMode": {"EnergyTransferMode": [transfer]}}
            options = ["Contract", self.payment] if self.verifier is not None else [self.payment]
            return {dialect.payment_options_field: {"PaymentOption": options},
                    "ChargeService": service}
        if base == "PaymentDetails":
            return {"GenChallenge": self.verifier.challenge if self.verifier and self.verifier.challenge
                    else bytes(16), "EVSETimeStamp": int(now)}
        if base in (dialect.payment_selection, "SessionStop"):
            return {}
        if base == dialect.authorization:
            return {"EVSEProcessing": "Finished"}
        if base == "ChargeParameterDiscovery":
            return {"EVSEProcessing": "Finished", **self._charge_parameters()}
        if base == "CableCheck":
            done = stage.isolation_valid
            return {"DC_EVSEStatus": self._dc_status(),
                    "EVSEProcessing": "Finished" if done else "Ongoing"}
        if base in ("PreCharge", "WeldingDetection"):
            return {"DC_EVSEStatus": self._dc_status(),
                    "EVSEPresentVoltage": physical_value(stage.present_voltage, "V")}
        if base == "PowerDelivery":
            if self.mode == "ac":
                return {"AC_EVSEStatus": ac_evse_status()}
            return {"DC_EVSEStatus": self._dc_status()}
        if base == "CurrentDemand":
            response = {
                "DC_EVSEStatus": self._dc_status(),
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
                response.update({"EVSEID": self.evse_id, "SAScheduleTupleID": SCHEDULE_TUPLE_ID, **self._receipt()})
            return response
        if base == "MeteringReceipt":
            return {"AC_EVSEStatus": ac_evse_status()} if self.mode == "ac" else {"DC_EVSEStatus": self._dc_status()}
        if base == "ChargingStatus":
            return {"EVSEID": self.evse_id, "SAScheduleTupleID": SCHEDULE_TUPLE_ID,
                    "EVSEMaxCurrent": physical_value(params.ac_max_current, "A"),
                    "MeterInfo": {"MeterID": METER_ID,
                                  "MeterReading": int(self.circuit.battery.energy_charged_wh)},
                    **({"ReceiptRequired": True} if self._receipt() else {}),
                    "AC_EVSEStatus": ac_evse_status()}
        raise LookupError(f"{base} is not emulated")

    def _dc_status(self) -> dict[str, Any]:
        valid = self.circuit.stage.isolation_valid
        return dc_evse_status(self.protocol, "Valid" if valid else "Invalid")

    def _charge_parameters(self) -> dict[str, Any]:
        params = self.circuit.stage.params
        max_power = params.max_power if self.mode == "dc" else ac_power(self.circuit)
        entry = {"RelativeTimeInterval": {"start": 0, "duration": 86400},
                 # DIN's PMax is a bare short; ISO-2's a PhysicalValue
                 "PMax": min(int(max_power), 32767) if self.protocol == "din"
                 else physical_value(max_power, "W")}
        schedule = {"PMaxScheduleID": 0} if self.protocol == "din" else {}
        schedule["PMaxScheduleEntry"] = [entry]
        fields: dict[str, Any] = {"SAScheduleList": {"SAScheduleTuple": [
            {"SAScheduleTupleID": SCHEDULE_TUPLE_ID, "PMaxSchedule": schedule}]}}
        if self.mode == "ac":
            fields["AC_EVSEChargeParameter"] = {
                "AC_EVSEStatus": ac_evse_status(),
                "EVSENominalVoltage": physical_value(params.ac_nominal_voltage, "V"),
                "EVSEMaxCurrent": physical_value(params.ac_max_current, "A")}
        else:
            fields["DC_EVSEChargeParameter"] = {
                "DC_EVSEStatus": self._dc_status(),
                "EVSEMaximumCurrentLimit": physical_value(params.max_current, "A"),
                "EVSEMaximumPowerLimit": physical_value(params.max_power, "W"),
                "EVSEMaximumVoltageLimit": physical_value(params.max_voltage, "V"),
                "EVSEMinimumCurrentLimit": physical_value(params.min_current, "A"),
                "EVSEMinimumVoltageLimit": physical_value(params.min_voltage, "V"),
                "EVSEPeakCurrentRipple": physical_value(params.peak_current_ripple, "A"),
            }
        return fields


class DinIso2Pev:
    """The EVCC's side of DIN 70121 and ISO 15118-2: which request comes next, and its content."""

    first: Step = ("SessionSetup", "")
    stop: Step = ("PowerDelivery", "Stop")
    welding: Step = ("WeldingDetection", "")
    welding_given_up: Step = ("SessionStop", "")  # after WELDING_DETECTION_LIMIT

    def __init__(self, protocol: str, circuit: DcCircuit, mode: str, evcc_id: bytes, contract: Any = None):
        self.dialect = DIALECTS[protocol]
        self.protocol = protocol
        self.circuit = circuit
        self.mode = mode
        self.evcc_id = evcc_id
        self.contract = contract if protocol == "iso2" else None  # Plug & Charge (emulate/pnc.py)
        self.challenge = b""
        self.meter_info: Mapping[str, Any] | None = None  # what a metering receipt confirms
        self.loop: Step = ("CurrentDemand" if mode == "dc" else "ChargingStatus", "")

    def next_step(self, answered: Step, response: Mapping[str, Any]) -> Step | None:
        """The request after the response to ``answered``; None when there is none."""
        base, kind = answered
        dialect, battery = self.dialect, self.circuit.battery
        ongoing = says_ongoing(response)
        if base == "SessionSetup":
            return ("ServiceDiscovery", "")
        if base == "ServiceDiscovery":
            return (dialect.payment_selection, "")
        if base == dialect.payment_selection and self.contract is not None:
            return ("PaymentDetails", "")
        if base == "PaymentDetails":
            self.challenge = response.get("GenChallenge") or b""
            return (dialect.authorization, "")
        if base == dialect.payment_selection or (base == dialect.authorization and ongoing):
            return (dialect.authorization, "")
        if base == dialect.authorization or (base == "ChargeParameterDiscovery" and ongoing):
            return ("ChargeParameterDiscovery", "")
        if base == "ChargeParameterDiscovery":
            return ("CableCheck", "") if self.mode == "dc" else ("PowerDelivery", "Start")
        if base == "CableCheck":
            return ("CableCheck", "") if ongoing else ("PreCharge", "")
        if base == "PreCharge":
            present = from_physical(response["EVSEPresentVoltage"])
            if abs(present - battery.terminal_voltage(0.0)) <= battery.params.precharge_tolerance:
                return ("PowerDelivery", "Start")
            return ("PreCharge", "")
        if base == "PowerDelivery":
            if kind == "Start":
                return self.loop
            return ("WeldingDetection", "") if self.mode == "dc" else ("SessionStop", "")
        if (base, kind) == self.loop:
            if self.contract is not None and as_bool(response.get("ReceiptRequired")):
                self.meter_info = response.get("MeterInfo")
                return ("MeteringReceipt", "")
            return self.loop
        if base == "MeteringReceipt":
            return self.loop
        if base == "WeldingDetection":
            if from_physical(response["EVSEPresentVoltage"]) > WELDING_SAFE_VOLTAGE:
                return ("WeldingDetection", "")
            return ("SessionStop", "")
        return None

    def build(self, step: Step, now: float) -> dict[str, Any]:
        """The content of the request ``step``, from the battery's present state."""
        base, kind = step
        battery, dialect = self.circuit.battery, self.dialect
        p = battery.params
        if base == "SessionSetup":
            return {"EVCCID": self.evcc_id}
        if base == dialect.authorization and self.contract is not None:
            from ccssniff.emulate.pnc import SIGNED_ID
            return {"@Id": SIGNED_ID, "GenChallenge": self.challenge}
        if base in ("ServiceDiscovery", dialect.authorization, "ChargingStatus"):
            return {}
        if base == "PaymentDetails":
            return {"eMAID": self.contract.emaid, "ContractSignatureCertChain": self.contract.chain()}
        if base == "MeteringReceipt":  # SessionID comes from the Header when it is signed (finish)
            return {"@Id": "ID2", "SessionID": b"", "SAScheduleTupleID": SCHEDULE_TUPLE_ID,
                    "MeterInfo": dict(self.meter_info or {"MeterID": METER_ID})}
        if base == dialect.payment_selection:
            return {"SelectedPaymentOption": "Contract" if self.contract is not None else "ExternalPayment",
                    "SelectedServiceList": {"SelectedService": [{"ServiceID": 1}]}}
        if base == "ChargeParameterDiscovery":
            return {dialect.energy_transfer_field: dialect.energy_transfer(self.mode),
                    **self._charge_parameter()}
        if base == "CableCheck":
            return {"DC_EVStatus": dc_ev_status(battery.soc)}
        if base == "PreCharge":
            return {"DC_EVStatus": dc_ev_status(battery.soc),
                    "EVTargetVoltage": physical_value(battery.terminal_voltage(0.0), "V"),
                    "EVTargetCurrent": physical_value(2.0, "A")}
        if base == "PowerDelivery":
            return self._power_delivery(kind == "Start")
        if base == "CurrentDemand":
            return {
                "DC_EVStatus": dc_ev_status(battery.soc),
                "EVTargetCurrent": physical_value(battery.requested_current(), "A"),
                "EVMaximumVoltageLimit": physical_value(p.max_voltage, "V"),
                "EVMaximumCurrentLimit": physical_value(p.max_current, "A"),
                "EVMaximumPowerLimit": physical_value(p.max_power, "W"),
                "BulkChargingComplete": battery.bulk_charging_complete,
                "ChargingComplete": battery.charging_complete,
                "RemainingTimeToFullSoC": _seconds(battery.remaining_time(100.0)),
                "RemainingTimeToBulkSoC": _seconds(battery.remaining_time(p.bulk_soc)),
                "EVTargetVoltage": physical_value(battery.requested_voltage(), "V"),
            }
        if base == "WeldingDetection":
            return {"DC_EVStatus": dc_ev_status(battery.soc)}
        if base == "SessionStop":
            return {} if self.protocol == "din" else {"ChargingSession": "Terminate"}
        raise LookupError(f"{base} is not emulated")

    def finish(self, base: str, message: dict[str, Any]) -> None:
        """Plug & Charge: sign AuthorizationReq over its EXI fragment with the contract key."""
        if self.contract is not None and base in (self.dialect.authorization, "MeteringReceipt"):
            from ccssniff.emulate.pnc import sign
            body = message["V2G_Message"]["Body"][base + "Req"]
            if base == "MeteringReceipt":
                body["SessionID"] = message["V2G_Message"]["Header"]["SessionID"]
            sign(message, "iso2", base + "Req", body, self.contract.key)

    def _charge_parameter(self) -> dict[str, Any]:
        battery = self.circuit.battery
        p = battery.params
        if self.mode == "ac":
            energy = max(0.0, p.target_soc - battery.soc) / 100.0 * p.capacity_kwh * 1000.0
            return {"AC_EVChargeParameter": {
                "DepartureTime": 0,
                "EAmount": physical_value(energy, "Wh"),
                "EVMaxVoltage": physical_value(self.circuit.stage.params.ac_nominal_voltage * 1.1, "V"),
                "EVMaxCurrent": physical_value(p.ac_max_current, "A"),
                "EVMinCurrent": physical_value(1.0, "A")}}
        parameter = {"DC_EVStatus": dc_ev_status(battery.soc),
                     "EVMaximumCurrentLimit": physical_value(p.max_current, "A"),
                     "EVMaximumVoltageLimit": physical_value(p.max_voltage, "V")}
        if self.protocol == "iso2":
            parameter.update({"DepartureTime": 0,
                              "EVMaximumPowerLimit": physical_value(p.max_power, "W"),
                              "FullSOC": int(p.target_soc), "BulkSOC": int(p.bulk_soc)})
        return {"DC_EVChargeParameter": parameter}

    def _power_delivery(self, start: bool) -> dict[str, Any]:
        battery = self.circuit.battery
        if self.mode == "dc":
            # the EV closes its contactors for charging and opens them when it stops
            self.circuit.contactors_closed = start
        parameter = {"DC_EVPowerDeliveryParameter": {
            "DC_EVStatus": dc_ev_status(battery.soc),
            "BulkChargingComplete": battery.bulk_charging_complete,
            "ChargingComplete": battery.charging_complete}} if self.mode == "dc" else {}
        if self.protocol == "din":
            return {"ReadyToChargeState": start, **parameter}
        return {"ChargeProgress": "Start" if start else "Stop",
                "SAScheduleTupleID": SCHEDULE_TUPLE_ID, **parameter}


def _seconds(value: float) -> dict[str, Any]:
    return physical_value(min(value, 172800.0), "s")  # capped: an idle estimate is infinite
