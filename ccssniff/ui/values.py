"""The few values of a message worth a glance on a timeline line, as text."""
from __future__ import annotations

from typing import Any, Iterator, Mapping

from ccssniff.decode.body import content_of
from ccssniff.standards.physical import format_physical, is_physical_value

# Element names shown when present, in this order (physical values with their unit).
KEY_ELEMENTS = (
    "ResponseCode", "EVSEProcessing", "EVProcessing",
    "EVCCID", "EVSEID", "SelectedPaymentOption", "SelectedAuthorizationService",
    "EVRequestedEnergyTransferType", "RequestedEnergyTransferMode",
    "ReadyToChargeState", "ChargeProgress", "EVSEIsolationStatus", "EVSEStatusCode",
    "EVTargetVoltage", "EVTargetCurrent", "EVPresentVoltage", "EVSEPresentVoltage", "EVSEPresentCurrent",
    "EVMaximumVoltageLimit", "EVMaximumCurrentLimit", "EVMaximumPowerLimit",
    "EVSEMaximumVoltageLimit", "EVSEMaximumCurrentLimit", "EVSEMaximumPowerLimit",
    "EVMaximumChargePower", "EVMaximumChargeCurrent", "EVMaximumVoltage",
    "EVSEMaximumChargePower", "EVSEMaximumChargeCurrent", "EVSEMaximumVoltage",
    "EVRESSSOC", "PresentSOC",
    "EVSECurrentLimitAchieved", "EVSEVoltageLimitAchieved", "EVSEPowerLimitAchieved",
    "ChargingComplete", "BulkChargingComplete", "EVErrorCode",
)
_WANTED = frozenset(KEY_ELEMENTS)
_ORDER = {name: position for position, name in enumerate(KEY_ELEMENTS)}
# Flags worth showing only when set.
_SHOW_WHEN_TRUE = frozenset(("EVSECurrentLimitAchieved", "EVSEVoltageLimitAchieved", "EVSEPowerLimitAchieved",
                             "ChargingComplete", "BulkChargingComplete"))
_UNINTERESTING = {"EVErrorCode": "NO_ERROR", "EVSEStatusCode": "EVSE_Ready"}
_SUFFIX = {"EVRESSSOC": " %", "PresentSOC": " %"}


def _walk(content: Mapping[str, Any], depth: int) -> Iterator[tuple[str, Any]]:
    for name, value in content.items():
        if name in _WANTED:
            yield name, value
        elif isinstance(value, dict) and depth and not is_physical_value(value):
            yield from _walk(value, depth - 1)


def _text(name: str, value: Any) -> str | None:
    if name in _SHOW_WHEN_TRUE:
        return "yes" if value is True else None
    if value is None:  # an empty element, decoded as sent (a schema violation)
        return "(empty)"
    if _UNINTERESTING.get(name) == value:
        return None
    if is_physical_value(value):
        return format_physical(value, name)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return None
    return f"{value}{_SUFFIX.get(name, '')}"


def key_values(message: Any) -> list[tuple[str, str]]:
    """[(element name, text)] of the message's key elements, in a fixed order."""
    if message.name.startswith("supportedAppProtocol"):
        return _handshake_values(content_of(message))
    found: dict[str, str] = {}
    for name, value in _walk(content_of(message), 3):
        if name not in found:
            text = _text(name, value)
            if text is not None:
                found[name] = text
    return sorted(found.items(), key=lambda item: _ORDER[item[0]])


def _handshake_values(content: Mapping[str, Any]) -> list[tuple[str, str]]:
    if "AppProtocol" in content:
        protocols = content["AppProtocol"]
        if isinstance(protocols, dict):
            protocols = [protocols]
        return [(f"SchemaID {p.get('SchemaID')}", f"{p.get('ProtocolNamespace')} "
                 f"{p.get('VersionNumberMajor')}.{p.get('VersionNumberMinor')} prio {p.get('Priority')}")
                for p in protocols]
    return [(name, str(content[name])) for name in ("ResponseCode", "SchemaID") if name in content]
