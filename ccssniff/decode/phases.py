"""Which phase of a charging session a V2G message belongs to: one rule for the summary and the report.

The phases follow the standards' sequence; PowerDelivery belongs to the charge loop when it starts
charging and to the stop when it ends it, so the rule keeps that one bit of state per session.
"""
from __future__ import annotations

from typing import Any, Mapping

PHASES = ("SLAC", "SDP", "handshake", "setup", "authorization", "parameter discovery", "cable check",
          "pre-charge", "charge loop", "stop", "welding detection")
# Messages not named here (SessionSetup, ServiceDiscovery, PaymentDetails, ...) are setup.
SETUP = "setup"
_PHASE_OF_MESSAGE = {
    "supportedAppProtocol": "handshake",
    "ContractAuthentication": "authorization", "Authorization": "authorization",
    "ChargeParameterDiscovery": "parameter discovery", "DC_ChargeParameterDiscovery": "parameter discovery",
    "AC_ChargeParameterDiscovery": "parameter discovery", "WPT_ChargeParameterDiscovery": "parameter discovery",
    "ScheduleExchange": "parameter discovery",
    "CableCheck": "cable check", "DC_CableCheck": "cable check",
    "PreCharge": "pre-charge", "DC_PreCharge": "pre-charge",
    "CurrentDemand": "charge loop", "ChargingStatus": "charge loop", "DC_ChargeLoop": "charge loop",
    "AC_ChargeLoop": "charge loop", "WPT_ChargeLoop": "charge loop", "MeteringReceipt": "charge loop",
    "WeldingDetection": "welding detection", "DC_WeldingDetection": "welding detection",
    "SessionStop": "stop",
}


class PhaseRule:
    """The phase of each message of one session, in order."""

    __slots__ = ("_stopping",)

    def __init__(self) -> None:
        self._stopping = False

    def phase(self, base: str, content: Mapping[str, Any]) -> str:
        """``base`` is the message name without Req/Res; ``content`` the message element's mapping."""
        if base == "PowerDelivery":
            # the request says start or stop; its response follows it
            if "ReadyToChargeState" in content:
                self._stopping = content["ReadyToChargeState"] is False
            elif "ChargeProgress" in content:
                self._stopping = content["ChargeProgress"] in ("Stop", "Standby")
            return "stop" if self._stopping else "charge loop"
        return _PHASE_OF_MESSAGE.get(base, SETUP)
