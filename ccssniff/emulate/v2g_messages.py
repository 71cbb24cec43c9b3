"""Message mappings shared by the EVSE and PEV machines (DIN 70121 and ISO 15118-2, DC).

Mappings follow the message model of openv2gx (element local names as keys, schema order,
enumerations as strings, binary as bytes). The two standards differ in a handful of names,
collected per protocol in :class:`Dialect` so that one machine serves both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from ccssniff.standards import din, iso2

SESSION_ID_NONE = bytes(8)  # the SessionID of a SessionSetupReq that starts a new session


@dataclass(frozen=True)
class Dialect:
    protocol: str
    namespace: str
    version: tuple[int, int]
    payment_selection: str  # the request that selects the payment option
    authorization: str
    energy_transfer_field: str  # in ChargeParameterDiscoveryReq
    energy_transfer: str
    payment_options_field: str  # in ServiceDiscoveryRes
    evse_id_is_binary: bool


DIALECTS = {
    "din": Dialect("din", din.NAMESPACE, din.VERSION, "ServicePaymentSelection",
                   "ContractAuthentication", "EVRequestedEnergyTransferType", "DC_extended",
                   "PaymentOptions", True),
    "iso2": Dialect("iso2", iso2.NAMESPACE, iso2.VERSION, "PaymentServiceSelection",
                    "Authorization", "RequestedEnergyTransferMode", "DC_extended",
                    "PaymentOptionList", False),
}


def physical_value(value: float, unit: str) -> dict[str, Any]:
    """A PhysicalValue whose Value fits a signed 16-bit integer, with as much precision as fits."""
    for multiplier in range(-3, 4):
        scaled = round(value / 10 ** multiplier)
        if -32768 <= scaled <= 32767:
            return {"Multiplier": multiplier, "Unit": unit, "Value": scaled}
    raise ValueError(f"{value} {unit} does not fit a PhysicalValue")


def from_physical(value: Mapping[str, Any]) -> float:
    return float(value["Value"]) * math.pow(10, int(value["Multiplier"]))


def v2g_message(session_id: bytes, name: str, content: Mapping[str, Any]) -> dict[str, Any]:
    return {"V2G_Message": {"Header": {"SessionID": session_id}, "Body": {name: dict(content)}}}


def as_list(value: Any) -> list:
    """A repeated element that may hold one item (a mapping) or several (a list)."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def as_bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() in ("true", "1")


def dc_evse_status(protocol: str, isolation: str, status_code: str = "EVSE_Ready",
                   notification: str = "None") -> dict[str, Any]:
    if protocol == "din":
        return {"EVSEIsolationStatus": isolation, "EVSEStatusCode": status_code,
                "NotificationMaxDelay": 0, "EVSENotification": notification}
    return {"NotificationMaxDelay": 0, "EVSENotification": notification,
            "EVSEIsolationStatus": isolation, "EVSEStatusCode": status_code}


def dc_ev_status(soc: float, ready: bool = True) -> dict[str, Any]:
    return {"EVReady": ready, "EVErrorCode": "NO_ERROR", "EVRESSSOC": int(round(soc))}
