"""Message contents of ISO 15118-20 (DC and AC, EIM, scheduled control mode) for both machines.

Contents only: the machines add the Header {SessionID, TimeStamp} and pick the schema
(iso20_CommonMessages, iso20_DC or iso20_AC) by the message name. Values are RationalNumbers.
The EV takes the first parameter set the EVSE offers for scheduled control; bidirectional
power transfer is not emulated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ccssniff.emulate.physics import DcCircuit
from ccssniff.emulate.v2g_din_iso2 import WELDING_SAFE_VOLTAGE, Step, ac_power
from ccssniff.emulate.v2g_messages import as_list, from_rational, rational, says_ongoing
from ccssniff.standards.iso20 import ServiceID

SCHEDULE_TUPLE_ID = 1
SCHEDULE_DURATION = 86400  # s: one schedule entry for the whole day
CONTROL_MODE_SCHEDULED = 1  # ServiceDetail parameter ControlMode (2 = dynamic)
MOBILITY_NEEDS_BY_EVCC = 1  # ServiceDetail parameter MobilityNeedsMode
NOMINAL_FREQUENCY = 50.0  # Hz
PRICE_SCHEDULE_ID = 1
PRICE_CURRENCY, PRICE_LANGUAGE = "EUR", "eng"  # ISO 4217, ISO 639-2
PRICE_ALGORITHM_POWER = "urn:iso:std:iso:15118:-20:PriceAlgorithm:1-Power"
PRECHARGE_ONGOING, PRECHARGE_DONE = "Ongoing", "Finished"


def service_id(mode: str) -> int:
    return int(ServiceID.DC if mode == "dc" else ServiceID.AC)


class Iso20Evse:
    """The SECC's side of ISO 15118-20: commands the stage, reports its state."""

    def __init__(self, circuit: DcCircuit, mode: str, evse_id: str, verifier: Any = None):
        self.circuit = circuit
        self.mode = mode
        self.evse_id = evse_id
        self.prefix = "DC_" if mode == "dc" else "AC_"
        self.verifier = verifier  # Plug & Charge (emulate/pnc.py)

    def check_identification(self, name: str, decoded: Any, content: Mapping[str, Any]) -> str | None:
        """Plug & Charge: a challenge for AuthorizationSetup; chain, signature and challenge checked."""
        if self.verifier is None:
            return None
        if name == "AuthorizationSetupReq":
            self.verifier.new_challenge()
        elif name == "AuthorizationReq" and content.get("SelectedAuthorizationService") == "PnC":
            mode = content.get("PnC_AReqAuthorizationMode") or {}
            return self.verifier.chain(mode.get("ContractCertificateChain")) or \
                self.verifier.authorization(decoded, mode.get("GenChallenge"), "iso20_CommonMessages")
        return None

    def serve(self, base: str, content: Mapping[str, Any], now: float) -> str | None:
        """Act on an accepted request; a FAILED response code refuses it instead."""
        stage = self.circuit.stage
        if base == "ServiceSelection":
            selected = content.get("SelectedEnergyTransferService") or {}
            if selected.get("ServiceID") != service_id(self.mode):
                return "FAILED_ServiceSelectionInvalid"
        elif base.endswith("_ChargeParameterDiscovery") and not base.startswith(self.prefix):
            return "FAILED_WrongChargeParameter"
        elif base == "DC_CableCheck" and stage.mode != stage.CABLE_CHECK:
            stage.start_cable_check(stage.params.max_voltage)
        elif base == "DC_PreCharge":
            stage.start_precharge(from_rational(content["EVTargetVoltage"]), 2.0)
        elif base == "PowerDelivery":
            starting = content.get("ChargeProgress") == "Start"
            if starting:
                stage.start_charging()
            else:
                stage.stop()
            self.circuit.contactors_closed = starting and self.mode == "dc"
        elif base == "DC_ChargeLoop":
            control = content["Scheduled_DC_CLReqControlMode"]
            stage.set_targets(from_rational(control["EVTargetVoltage"]),
                              from_rational(control["EVTargetCurrent"]))
        return None

    def report(self, base: str, content: Mapping[str, Any], now: float) -> dict[str, Any]:
        """The response's fields after ResponseCode, from the present state (no side effects)."""
        stage, params = self.circuit.stage, self.circuit.stage.params
        if base == "SessionSetup":
            return {"EVSEID": self.evse_id}
        if base == "AuthorizationSetup":
            if self.verifier is not None:
                return {"AuthorizationServices": ["EIM", "PnC"], "CertificateInstallationService": False,
                        "PnC_ASResAuthorizationMode": {"GenChallenge": self.verifier.challenge or bytes(16)}}
            return {"AuthorizationServices": ["EIM"], "CertificateInstallationService": False,
                    "EIM_ASResAuthorizationMode": {}}
        if base == "Authorization":
            return {"EVSEProcessing": "Finished"}
        if base == "ServiceDiscovery":
            return {"ServiceRenegotiationSupported": False,
                    "EnergyTransferServiceList": {"Service": [
                        {"ServiceID": service_id(self.mode), "FreeService": False}]}}
        if base == "ServiceDetail":
            return {"ServiceID": int(content.get("ServiceID", service_id(self.mode))),
                    "ServiceParameterList": {"ParameterSet": [self._parameter_set()]}}
        if base in ("ServiceSelection", "PowerDelivery", "SessionStop"):
            return {}
        if base == "DC_ChargeParameterDiscovery":
            return {"DC_CPDResEnergyTransferMode": {
                "EVSEMaximumChargePower": rational(params.max_power),
                "EVSEMinimumChargePower": rational(0.0),
                "EVSEMaximumChargeCurrent": rational(params.max_current),
                "EVSEMinimumChargeCurrent": rational(params.min_current),
                "EVSEMaximumVoltage": rational(params.max_voltage),
                "EVSEMinimumVoltage": rational(params.min_voltage)}}
        if base == "AC_ChargeParameterDiscovery":
            return {"AC_CPDResEnergyTransferMode": {
                "EVSEMaximumChargePower": rational(self._ac_power()),
                "EVSEMinimumChargePower": rational(0.0),
                "EVSENominalFrequency": rational(NOMINAL_FREQUENCY)}}
        if base == "ScheduleExchange":
            max_power = params.max_power if self.mode == "dc" else self._ac_power()
            anchor = max(0, int(now))
            entry = {"Duration": SCHEDULE_DURATION, "Power": rational(max_power)}
            schedule = {"TimeAnchor": anchor, "PowerScheduleEntries": {"PowerScheduleEntry": [entry]}}
            # The price schedule is optional in the XSD, but EVs (iso15118's EVCC among them)
            # refuse a charging schedule without one: a free day, in the simplest price algorithm
            prices = {"TimeAnchor": anchor, "PriceScheduleID": PRICE_SCHEDULE_ID,
                      "Currency": PRICE_CURRENCY, "Language": PRICE_LANGUAGE,
                      "PriceAlgorithm": PRICE_ALGORITHM_POWER,
                      "PriceRuleStacks": {"PriceRuleStack": [
                          {"Duration": SCHEDULE_DURATION,
                           "PriceRule": [{"EnergyFee": rational(0.0), "PowerRangeStart": rational(0.0)}]}]}}
            return {"EVSEProcessing": "Finished", "Scheduled_SEResControlMode": {"ScheduleTuple": [
                {"ScheduleTupleID": SCHEDULE_TUPLE_ID,
                 "ChargingSchedule": {"PowerSchedule": schedule, "AbsolutePriceSchedule": prices}}]}}
        if base == "DC_CableCheck":
            return {"EVSEProcessing": "Finished" if stage.isolation_valid else "Ongoing"}
        if base in ("DC_PreCharge", "DC_WeldingDetection"):
            return {"EVSEPresentVoltage": rational(stage.present_voltage)}
        if base == "DC_ChargeLoop":
            return {
                "EVSEPresentCurrent": rational(stage.present_current),
                "EVSEPresentVoltage": rational(stage.present_voltage),
                "EVSEPowerLimitAchieved": stage.power_limit_achieved,
                "EVSECurrentLimitAchieved": stage.current_limit_achieved,
                "EVSEVoltageLimitAchieved": stage.voltage_limit_achieved,
                "Scheduled_DC_CLResControlMode": {
                    "EVSEMaximumChargePower": rational(params.max_power),
                    "EVSEMinimumChargePower": rational(0.0),
                    "EVSEMaximumChargeCurrent": rational(params.max_current),
                    "EVSEMaximumVoltage": rational(params.max_voltage)}}
        if base == "AC_ChargeLoop":
            present = self._ac_present_power()
            return {"EVSETargetFrequency": rational(NOMINAL_FREQUENCY),
                    "Scheduled_AC_CLResControlMode": {
                        "EVSETargetActivePower": rational(self._ac_power()),
                        "EVSEPresentActivePower": rational(present)}}
        raise LookupError(f"{base} is not emulated")

    def _parameter_set(self) -> dict[str, Any]:
        params = self.circuit.stage.params
        connector = 2  # DC: extended; AC: three phase
        voltage = params.max_voltage if self.mode == "dc" else params.ac_nominal_voltage
        parameters = [("Connector", connector), ("ControlMode", CONTROL_MODE_SCHEDULED),
                      ("EVSENominalVoltage", int(voltage)),
                      ("MobilityNeedsMode", MOBILITY_NEEDS_BY_EVCC), ("Pricing", 0)]
        return {"ParameterSetID": 1,
                "Parameter": [{"@Name": name, "intValue": value} for name, value in parameters]}

    def _ac_power(self) -> float:
        return ac_power(self.circuit)

    def _ac_present_power(self) -> float:
        stage, battery = self.circuit.stage, self.circuit.battery
        if stage.mode != stage.CHARGE:
            return 0.0
        phases = min(stage.params.ac_phases, battery.params.ac_phases)
        return phases * stage.params.ac_nominal_voltage * stage.ac_current(battery)


class Iso20Pev:
    """The EVCC's side of ISO 15118-20: which request comes next, and its content."""

    first: Step = ("SessionSetup", "")
    stop: Step = ("PowerDelivery", "Stop")
    welding: Step = ("DC_WeldingDetection", "Ongoing")
    # after WELDING_DETECTION_LIMIT: EVProcessing=Ongoing obliges one more request, so say Finished
    welding_given_up: Step = ("DC_WeldingDetection", "Finished")

    def __init__(self, circuit: DcCircuit, mode: str, evcc_id: str, contract: Any = None):
        self.circuit = circuit
        self.mode = mode
        self.evcc_id = evcc_id
        self.contract = contract  # Plug & Charge credentials (emulate/pnc.py)
        self.challenge: bytes | None = None  # set when the EVSE offers PnC
        self.prefix = "DC_" if mode == "dc" else "AC_"
        self.loop: Step = (self.prefix + "ChargeLoop", "")
        self.parameter_set_id = 1
        self.schedule_tuple_id = SCHEDULE_TUPLE_ID

    def next_step(self, answered: Step, response: Mapping[str, Any]) -> Step | None:
        """The request after the response to ``answered``; None when there is none."""
        base, kind = answered
        battery = self.circuit.battery
        ongoing = says_ongoing(response)
        following = {"SessionSetup": "AuthorizationSetup", "AuthorizationSetup": "Authorization",
                     "ServiceDetail": "ServiceSelection",
                     "ServiceSelection": self.prefix + "ChargeParameterDiscovery",
                     self.prefix + "ChargeParameterDiscovery": "ScheduleExchange"}
        if base in ("Authorization", "ScheduleExchange") and ongoing:
            return answered
        if base in following:
            if base == "AuthorizationSetup" and self.contract is not None \
                    and "PnC" in as_list(response.get("AuthorizationServices")):
                self.challenge = (response.get("PnC_ASResAuthorizationMode") or {}).get("GenChallenge")
            if base == "ServiceDetail":
                self.parameter_set_id = _scheduled_parameter_set(response)
            return (following[base], "")
        if base == "Authorization":
            return ("ServiceDiscovery", "")
        if base == "ServiceDiscovery":
            offered = [s.get("ServiceID") for s in as_list(
                (response.get("EnergyTransferServiceList") or {}).get("Service"))]
            return ("ServiceDetail", "") if service_id(self.mode) in offered else None
        if base == "ScheduleExchange":
            self.schedule_tuple_id = _first_schedule_tuple(response)
            return ("DC_CableCheck", "") if self.mode == "dc" else ("PowerDelivery", "Start")
        if base == "DC_CableCheck":
            return answered if ongoing else ("DC_PreCharge", PRECHARGE_ONGOING)
        if base == "DC_PreCharge":
            # EVProcessing=Ongoing obliges another DC_PreChargeReq; the EV says Finished once
            # the EVSE's voltage is within tolerance, and moves on after that one's answer
            if kind == PRECHARGE_DONE:
                return ("PowerDelivery", "Start")
            present = from_rational(response["EVSEPresentVoltage"])
            near = abs(present - battery.terminal_voltage(0.0)) <= battery.params.precharge_tolerance
            return ("DC_PreCharge", PRECHARGE_DONE if near else PRECHARGE_ONGOING)
        if base == "PowerDelivery":
            if kind == "Start":
                return self.loop
            return ("DC_WeldingDetection", "Ongoing") if self.mode == "dc" else ("SessionStop", "")
        if (base, kind) == self.loop:
            return self.loop
        if base == "DC_WeldingDetection":
            if kind == "Finished":
                return ("SessionStop", "")
            safe = from_rational(response["EVSEPresentVoltage"]) <= WELDING_SAFE_VOLTAGE
            return ("DC_WeldingDetection", "Finished" if safe else "Ongoing")
        return None

    def finish(self, base: str, message: dict[str, Any]) -> None:
        """Plug & Charge: sign PnC_AReqAuthorizationMode with the contract key."""
        if base == "Authorization" and self.challenge is not None:
            from ccssniff.emulate.pnc import sign
            mode = message["AuthorizationReq"]["PnC_AReqAuthorizationMode"]
            sign(message, "iso20_CommonMessages", "PnC_AReqAuthorizationMode", mode, self.contract.key)

    def build(self, step: Step, now: float) -> dict[str, Any]:
        """The content of the request ``step``, from the battery's present state."""
        base, kind = step
        battery = self.circuit.battery
        p = battery.params
        if base == "SessionSetup":
            return {"EVCCID": self.evcc_id}
        if base in ("AuthorizationSetup", "ServiceDiscovery", "DC_CableCheck"):
            return {}
        if base == "Authorization":
            if self.challenge is not None:
                from ccssniff.emulate.pnc import SIGNED_ID
                return {"SelectedAuthorizationService": "PnC",
                        "PnC_AReqAuthorizationMode": {"@Id": SIGNED_ID, "GenChallenge": self.challenge,
                                                      "ContractCertificateChain": self.contract.chain()}}
            return {"SelectedAuthorizationService": "EIM", "EIM_AReqAuthorizationMode": {}}
        if base == "ServiceDetail":
            return {"ServiceID": service_id(self.mode)}
        if base == "ServiceSelection":
            return {"SelectedEnergyTransferService": {"ServiceID": service_id(self.mode),
                                                      "ParameterSetID": self.parameter_set_id}}
        if base == "DC_ChargeParameterDiscovery":
            return {"DC_CPDReqEnergyTransferMode": {
                "EVMaximumChargePower": rational(p.max_power),
                "EVMinimumChargePower": rational(0.0),
                "EVMaximumChargeCurrent": rational(p.max_current),
                "EVMinimumChargeCurrent": rational(0.0),
                "EVMaximumVoltage": rational(p.max_voltage),
                "EVMinimumVoltage": rational(p.ocv_curve[0][1]),
                "TargetSOC": int(p.target_soc)}}
        if base == "AC_ChargeParameterDiscovery":
            return {"AC_CPDReqEnergyTransferMode": {
                "EVMaximumChargePower": rational(self._ac_max_power()),
                "EVMinimumChargePower": rational(0.0)}}
        if base == "ScheduleExchange":
            return {"MaximumSupportingPoints": 1024, "Scheduled_SEReqControlMode": {
                "EVTargetEnergyRequest": rational(self._energy_to(p.target_soc)),
                "EVMaximumEnergyRequest": rational(self._energy_to(100.0)),
                "EVMinimumEnergyRequest": rational(0.0)}}
        if base == "DC_PreCharge":
            voltage = rational(battery.terminal_voltage(0.0))
            return {"EVProcessing": kind, "EVPresentVoltage": voltage, "EVTargetVoltage": voltage}
        if base == "PowerDelivery":
            if self.mode == "dc":
                self.circuit.contactors_closed = kind == "Start"
            request = {"EVProcessing": "Finished", "ChargeProgress": kind}
            if kind == "Start":
                # Both optional in the XSD, but SECCs (iso15118 among them) refuse a Start without
                # the EV's power profile for the schedule it picked, or without its tolerance answer
                request["EVPowerProfile"] = {
                    "TimeAnchor": max(0, int(now)),
                    "Scheduled_EVPPTControlMode": {"SelectedScheduleTupleID": self.schedule_tuple_id,
                                                   "PowerToleranceAcceptance": "PowerToleranceNotConfirmed"},
                    "EVPowerProfileEntries": {"EVPowerProfileEntry": [
                        {"Duration": 86400, "Power": rational(p.max_power)}]}}
            return request
        if base == "DC_ChargeLoop":
            return {**self._loop_common(),
                    "EVPresentVoltage": rational(battery.terminal_voltage()),
                    "Scheduled_DC_CLReqControlMode": {
                        "EVTargetEnergyRequest": rational(self._energy_to(p.target_soc)),
                        "EVTargetCurrent": rational(battery.requested_current()),
                        "EVTargetVoltage": rational(battery.requested_voltage()),
                        "EVMaximumChargePower": rational(p.max_power),
                        "EVMaximumChargeCurrent": rational(p.max_current),
                        "EVMaximumVoltage": rational(p.max_voltage)}}
        if base == "AC_ChargeLoop":
            present = battery.current * battery.terminal_voltage()  # what the charger takes in
            return {**self._loop_common(), "Scheduled_AC_CLReqControlMode": {
                "EVTargetEnergyRequest": rational(self._energy_to(p.target_soc)),
                "EVMaximumChargePower": rational(self._ac_max_power()),
                "EVPresentActivePower": rational(present)}}
        if base == "DC_WeldingDetection":
            return {"EVProcessing": kind}
        if base == "SessionStop":
            return {"ChargingSession": "Terminate"}
        raise LookupError(f"{base} is not emulated")

    def _loop_common(self) -> dict[str, Any]:
        battery = self.circuit.battery
        remaining = battery.remaining_time()
        display = {"PresentSOC": int(battery.soc), "TargetSOC": int(battery.params.target_soc),
                   "ChargingComplete": battery.charging_complete}
        if remaining < 2 ** 32:
            display["RemainingTimeToTargetSOC"] = int(remaining)
        return {"DisplayParameters": display, "MeterInfoRequested": False}

    def _energy_to(self, soc: float) -> float:
        battery = self.circuit.battery
        return max(0.0, soc - battery.soc) / 100.0 * battery.params.capacity_kwh * 1000.0

    def _ac_max_power(self) -> float:
        p = self.circuit.battery.params
        return p.ac_phases * self.circuit.stage.params.ac_nominal_voltage * p.ac_max_current


def _first_schedule_tuple(response: Mapping[str, Any]) -> int:
    tuples = as_list((response.get("Scheduled_SEResControlMode") or {}).get("ScheduleTuple"))
    return int(tuples[0].get("ScheduleTupleID", SCHEDULE_TUPLE_ID)) if tuples else SCHEDULE_TUPLE_ID


def _scheduled_parameter_set(response: Mapping[str, Any]) -> int:
    """The first offered parameter set for scheduled control (the first set if none says so)."""
    sets = as_list((response.get("ServiceParameterList") or {}).get("ParameterSet"))
    for parameter_set in sets:
        for parameter in as_list(parameter_set.get("Parameter")):
            if parameter.get("@Name") == "ControlMode" \
                    and parameter.get("intValue") == CONTROL_MODE_SCHEDULED:
                return int(parameter_set["ParameterSetID"])
    return int(sets[0]["ParameterSetID"]) if sets else 1
