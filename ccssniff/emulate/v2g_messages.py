"""What the EVSE and PEV machines share: their outputs, the handshake offers, value helpers.

Mappings follow the message model of openv2gx (element local names as keys, enumerations as
strings, binary as bytes). The message contents of each standard live in their own module
(:mod:`~ccssniff.emulate.v2g_din_iso2`, :mod:`~ccssniff.emulate.v2g_iso20`); this one wraps them
into whole messages: a V2G_Message with Header and Body for DIN and ISO-2, the message element
itself with a Header {SessionID, TimeStamp} in its own schema for ISO-20.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ccssniff.standards import SequenceTable, din, iso2, iso20, table_for_protocol

SESSION_ID_NONE = bytes(8)  # the SessionID of a SessionSetupReq that starts a new session
MODES = ("dc", "ac")
PROTOCOL_MODES = {"din": ("dc",), "iso2": ("dc", "ac"), "iso20": ("dc", "ac")}
#: the requests of the charge loop, paced by the EV's loop interval
LOOP_REQUESTS = frozenset({"CurrentDemand", "ChargingStatus", "DC_ChargeLoop", "AC_ChargeLoop"})


@dataclass(frozen=True)
class SendMessage:
    schema: str  # openv2gx schema that encodes it
    message: dict[str, Any]


@dataclass(frozen=True)
class SessionEnded:
    ok: bool
    reason: str


Output = SendMessage | SessionEnded


def check_options(protocols: tuple[str, ...], mode: str) -> tuple[str, ...]:
    """The protocols that can run in ``mode``, in the given order; ValueError if none or unknown."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    unknown = [p for p in protocols if p not in PROTOCOL_MODES]
    if unknown:
        raise ValueError(f"unknown protocol(s) {unknown}; known: {sorted(PROTOCOL_MODES)}")
    usable = tuple(p for p in protocols if mode in PROTOCOL_MODES[p])
    if not usable:
        raise ValueError(f"none of {list(protocols)} supports {mode.upper()} charging")
    return usable


def timed_table(protocol: str, relaxed_timing: float = 1.0) -> SequenceTable:
    """The sequence table of ``protocol`` with the timeouts a machine enforces (response,
    sequence, loop and communication setup) multiplied by ``relaxed_timing``.

    Above 1 for peers slower than the standard allows (a codec in a JVM on a loaded machine):
    what the peer may take is still the standard's, but we wait longer before giving up."""
    if relaxed_timing <= 0:
        raise ValueError(f"the timing factor must be positive, got {relaxed_timing}")
    table = table_for_protocol(protocol)
    if relaxed_timing == 1.0:
        return table
    return dataclasses.replace(
        table,
        msg_timeouts={name: t * relaxed_timing for name, t in table.msg_timeouts.items()},
        sequence_timeout=table.sequence_timeout * relaxed_timing,
        loop_timeouts={name: t * relaxed_timing for name, t in table.loop_timeouts.items()},
        communication_setup_timeout=table.communication_setup_timeout * relaxed_timing)


def handshake_namespace(protocol: str, mode: str) -> str:
    """The namespace a PEV offers (and an EVSE accepts) for a protocol in a mode."""
    if protocol == "iso20":
        return iso20.NAMESPACE_DC if mode == "dc" else iso20.NAMESPACE_AC
    return {"din": din.NAMESPACE, "iso2": iso2.NAMESPACE}[protocol]


def protocol_version(protocol: str) -> tuple[int, int]:
    return {"din": din.VERSION, "iso2": iso2.VERSION, "iso20": iso20.VERSION}[protocol]


def wrap(protocol: str, session_id: bytes, name: str, content: Mapping[str, Any],
         now: float) -> SendMessage:
    """A whole message of ``protocol`` around the message element's content."""
    if protocol == "iso20":
        header = {"SessionID": session_id, "TimeStamp": max(0, int(now))}
        return SendMessage(iso20.schema_for_message(name), {name: {"Header": header, **content}})
    return SendMessage(protocol, {"V2G_Message": {"Header": {"SessionID": session_id},
                                                  "Body": {name: dict(content)}}})


def physical_value(value: float, unit: str) -> dict[str, Any]:
    """A DIN/ISO-2 PhysicalValue whose Value fits a signed 16-bit integer, as precise as fits."""
    for multiplier in range(-3, 4):
        scaled = round(value / 10 ** multiplier)
        if -32768 <= scaled <= 32767:
            return {"Multiplier": multiplier, "Unit": unit, "Value": scaled}
    raise ValueError(f"{value} {unit} does not fit a PhysicalValue")


def from_physical(value: Mapping[str, Any]) -> float:
    return float(value["Value"]) * math.pow(10, int(value["Multiplier"]))


def rational(value: float) -> dict[str, int]:
    """An ISO-20 RationalNumber (Value a signed 16-bit integer), as precise as fits."""
    for exponent in range(-3, 8):
        scaled = round(value / 10 ** exponent)
        if -32768 <= scaled <= 32767:
            return {"Exponent": exponent, "Value": scaled}
    raise ValueError(f"{value} does not fit a RationalNumber")


def from_rational(value: Mapping[str, Any]) -> float:
    return float(value["Value"]) * math.pow(10, int(value["Exponent"]))


def as_list(value: Any) -> list:
    """A repeated element that may hold one item (a mapping) or several (a list)."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def as_bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() in ("true", "1")


def says_ongoing(content: Mapping[str, Any], field_name: str = "EVSEProcessing") -> bool:
    return str(content.get(field_name, "")).startswith("Ongoing")
