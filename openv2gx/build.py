"""Helpers that build V2G messages in the model encode() takes, so call sites read like the standard.

    >>> from openv2gx import build, encode
    >>> message = build.v2g_message("din", bytes(8), "CableCheckReq",
    ...     {"DC_EVStatus": {"EVReady": False, "EVErrorCode": "NO_ERROR", "EVRESSSOC": 0}})
    >>> encode(message).hex()
    '809a0200000000000000001010400000'

Every helper returns plain mappings (or a Message, which is one), so a message can be built from
them and plain dicts alike; encode() checks the result against the schema. Nothing here fills in
fields the caller did not ask for.
"""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Iterable, Mapping

from .datatypes import Enumeration, NBit
from .errors import EncodeError
from .message import Message
from .tables import AT, ISO20_SCHEMAS, SCHEMAS, SE, load

#: SupportedAppProtocol entries: schema name -> (protocol namespace, major, minor version)
APP_PROTOCOLS = {
    "din": ("urn:din:70121:2012:MsgDef", 2, 0),
    "iso2": ("urn:iso:15118:2:2013:MsgDef", 2, 0),
    "iso20_DC": ("urn:iso:std:iso:15118:-20:DC", 1, 0),
    "iso20_AC": ("urn:iso:std:iso:15118:-20:AC", 1, 0),
    "iso20_WPT": ("urn:iso:std:iso:15118:-20:WPT", 1, 0),
    "iso20_ACDP": ("urn:iso:std:iso:15118:-20:ACDP", 1, 0),
}


def physical_value(value: float, unit: str | None, schema: str, multiplier: int | None = None) -> dict:
    """DIN / ISO 15118-2 PhysicalValue ``{Multiplier, Unit, Value}`` for a float and a unit.

    Picks the multiplier that keeps the most precision while Value still fits its type (xs:short),
    without trailing zeros below 10^0 (230 V is ``{0, V, 230}``, 230.5 V ``{-1, V, 2305}``).
    ISO 15118-20 has no units here: use :func:`rational_number`.
    """
    if schema not in ("din", "iso2"):
        raise ValueError(f"PhysicalValue is a DIN / ISO 15118-2 type; for {schema} use rational_number()")
    low, high = _range_of(schema, "PhysicalValue", "Multiplier")
    if unit is not None and unit not in enum_values(schema, "Unit"):
        raise EncodeError("PhysicalValue/Unit", f"{unit!r} is not one of {', '.join(enum_values(schema, 'Unit'))}")
    exponent, scaled = _scale(value, range(low, high + 1) if multiplier is None else [multiplier],
                              _range_of(schema, "PhysicalValue", "Value"), "PhysicalValue")
    result = {"Multiplier": exponent}
    if unit is not None:
        result["Unit"] = unit
    result["Value"] = scaled
    return result


def rational_number(value: float, exponent: int | None = None) -> dict:
    """ISO 15118-20 RationalNumber ``{Exponent, Value}`` (value = Value * 10^Exponent)."""
    low, high = _range_of("iso20_CommonMessages", "RationalNumber", "Exponent")
    exponent, scaled = _scale(value, range(low, high + 1) if exponent is None else [exponent],
                              _range_of("iso20_CommonMessages", "RationalNumber", "Value"), "RationalNumber")
    return {"Exponent": exponent, "Value": scaled}


def to_float(number: Mapping) -> float:
    """The float of a PhysicalValue or RationalNumber mapping."""
    exponent = number["Multiplier"] if "Multiplier" in number else number["Exponent"]
    return float(Decimal(number["Value"]).scaleb(exponent))


def _scale(value: float, exponents, value_range: tuple[int, int], where: str) -> tuple[int, int]:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise EncodeError(f"{where}/Value", f"expected a number, got {type(value).__name__}")
    exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not exact.is_finite():
        raise EncodeError(f"{where}/Value", f"{value} is not a finite number")
    low, high = value_range
    for exponent in exponents:
        scaled = int(exact.scaleb(-exponent).to_integral_value())
        if low <= scaled <= high:
            while exponent < 0 and scaled % 10 == 0 and exponent + 1 in exponents:
                scaled //= 10
                exponent += 1
            return exponent, scaled
    raise EncodeError(f"{where}/Value", f"{value} does not fit {low}..{high} times 10^{exponents[0]}..{exponents[-1]}")


@lru_cache(maxsize=None)
def _range_of(schema: str, type_name: str, element: str) -> tuple[int, int]:
    """The integer range of a child element of a named complex type, read from the grammar."""
    tables = load(schema)
    for grammar in tables.grammars:
        if grammar.name.rsplit("}", 1)[-1] != type_name + "Type":
            continue
        for state in grammar.states:
            production = state.by_name.get((SE, element))
            if production is not None:
                datatype = production.arg.states[0].characters.arg
                if isinstance(datatype, NBit) and datatype.min is not None and datatype.max is not None:
                    return datatype.min, datatype.max
    raise LookupError(f"{schema} has no integer {type_name}/{element}")


def enum_values(schema: str, name: str) -> tuple[str, ...]:
    """The names an enumeration element (or ``@attribute``) allows, in schema order.

    ``schema`` is a grammar name (``din``, ``iso2``, ``iso20_DC``, ...) or ``iso20`` for the types
    every ISO 15118-20 grammar shares. Raises LookupError if the name is no enumeration there, and
    when several enumerations share the name.
    """
    found = {}
    for grammar_name in ISO20_SCHEMAS if schema == "iso20" else [schema]:
        for values in _enumerations(grammar_name).get(name, ()):
            found[values] = None
    if not found:
        raise LookupError(f"{name} is no enumeration of {schema}")
    if len(found) > 1:
        raise LookupError(f"{name} names {len(found)} different enumerations in {schema}")
    return next(iter(found))


@lru_cache(maxsize=None)
def _enumerations(schema: str) -> dict[str, set[tuple[str, ...]]]:
    if schema not in SCHEMAS:
        load(schema)  # raises UnknownSchemaError with the list of names
    by_name: dict[str, set] = {}
    for grammar in load(schema).grammars:
        for state in grammar.states:
            for production in state.productions:
                if production.kind == SE and production.arg.is_simple:
                    datatype, key = production.arg.states[0].characters.arg, production.name
                elif production.kind == AT:
                    datatype, key = production.arg, "@" + production.name
                else:
                    continue
                if isinstance(datatype, Enumeration):
                    by_name.setdefault(key, set()).add(tuple(datatype.values))
    return by_name


def v2g_message(schema: str, session_id: bytes, body_name: str, body: Mapping) -> Message:
    """A DIN / ISO 15118-2 ``V2G_Message`` with its Header (SessionID) and one Body member."""
    if schema not in ("din", "iso2"):
        raise ValueError(f"V2G_Message is the DIN / ISO 15118-2 envelope; for {schema} use iso20_message()")
    return Message({"V2G_Message": {"Header": {"SessionID": bytes(session_id)},
                                    "Body": {body_name: dict(body)}}}, schema=schema)


def iso20_header(session_id: bytes, timestamp: int | float | datetime | None = None) -> dict:
    """ISO 15118-20 MessageHeader: SessionID and TimeStamp (seconds since 1970, now if None)."""
    if timestamp is None:
        timestamp = time.time()
    elif isinstance(timestamp, datetime):
        timestamp = timestamp.timestamp()
    return {"SessionID": bytes(session_id), "TimeStamp": int(timestamp)}


def iso20_message(schema: str, name: str, body: Mapping, session_id: bytes,
                  timestamp: int | float | datetime | None = None) -> Message:
    """An ISO 15118-20 message: the message element itself is the root, its Header first."""
    if schema not in ISO20_SCHEMAS:
        raise ValueError(f"{schema} is not an ISO 15118-20 grammar ({', '.join(ISO20_SCHEMAS)})")
    return Message({name: {"Header": iso20_header(session_id, timestamp), **body}}, schema=schema)


def supported_app_protocol_req(protocols: Iterable[str | tuple[str, int, int]]) -> Message:
    """The handshake request offering ``protocols`` in order of preference (Priority 1 first).

    Each protocol is a schema name of :data:`APP_PROTOCOLS` or a (namespace, major, minor) tuple;
    SchemaIDs are numbered from 1 in the same order.
    """
    entries = []
    for number, protocol in enumerate(protocols, 1):
        namespace, major, minor = APP_PROTOCOLS[protocol] if isinstance(protocol, str) else protocol
        entries.append({"ProtocolNamespace": namespace, "VersionNumberMajor": major,
                        "VersionNumberMinor": minor, "SchemaID": number, "Priority": number})
    return Message({"supportedAppProtocolReq": {"AppProtocol": entries}}, schema="appHandshake")


def supported_app_protocol_res(response_code: str = "OK_SuccessfulNegotiation",
                               schema_id: int | None = None) -> Message:
    """The handshake response: the result and, unless negotiation failed, the chosen SchemaID."""
    content = {"ResponseCode": response_code}
    if schema_id is not None:
        content["SchemaID"] = schema_id
    return Message({"supportedAppProtocolRes": content}, schema="appHandshake")


__all__ = ["APP_PROTOCOLS", "physical_value", "rational_number", "to_float", "enum_values", "v2g_message",
           "iso20_header", "iso20_message", "supported_app_protocol_req", "supported_app_protocol_res"]
