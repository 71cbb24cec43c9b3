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
# hexBinary IDs that chargers fill with text (DIN 70121 EVSEID: "DE*PNX*E12345*1").
TEXT_IDS = frozenset(("EVSEID",))


def printable_text(value: Any) -> str | None:
    """The bytes as text when every one is printable ASCII (no control codes), else None."""
    if not isinstance(value, (bytes, bytearray)) or not value:
        return None
    if all(0x20 <= byte < 0x7F for byte in value):
        return value.decode("ascii")
    return None


def readable_id(value: Any) -> str:
    """An ID as a person reads it: ``DE*PNX*E12345*1 (hex 44452a...)`` when its bytes are
    printable text, plain hex when they are not, other values (ISO's string EVSEID) as they are."""
    text = printable_text(value)
    if text is not None:
        return f"{text} (hex {value.hex()})"
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)


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
    if name in TEXT_IDS:
        return readable_id(value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return None
    return f"{value}{_SUFFIX.get(name, '')}"


_ID_TEXTS_KEPT = 1024
_id_texts_of: dict[int, tuple[Any, dict[str, str]]] = {}


def id_texts(message: Any) -> dict[str, str]:
    """``{"EVSEID_text": "DE*PNX*E12345*1"}`` for the message's hexBinary IDs that are printable
    text (JSON keeps the hex in the body, which mirrors the XML; this is the reading beside it).
    Charge loops repeat one decoded object per payload, so the answer is kept with the object."""
    kept = _id_texts_of.get(id(message))
    if kept is not None and kept[0] is message:
        return kept[1]
    texts = _find_id_texts(message)
    if len(_id_texts_of) >= _ID_TEXTS_KEPT:
        _id_texts_of.clear()
    _id_texts_of[id(message)] = (message, texts)
    return texts


def _find_id_texts(message: Any) -> dict[str, str]:
    texts = {}
    for name, value in _walk(content_of(message), 3):
        if name in TEXT_IDS:
            text = printable_text(value)
            if text is not None:
                texts[f"{name}_text"] = text
    return texts


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
