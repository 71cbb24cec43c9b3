"""The command strings of the original OpenV2Gx program, answered with this codec.

Scripts written for OpenV2Gx (pyPLC runs it once per message) pass one argument such as
``DD809a02...`` (decode a DIN message) or ``EDI_0102030405060708_55_10_400`` (encode a DIN
CurrentDemandReq) and read one JSON object: ``msgName``, ``info``, ``error``, ``result``, then flat
string properties. The flat key names follow what OpenV2Gx printed for real messages (the records
of ../shared/vectors/openv2gx/pyplc_decoded.jsonl): one small field list per message below, and a
generic dotted flattening for messages those lists do not cover.

    >>> run_command("DD809a0200000000139faf9bd1400420400000")["ResponseCode"]
    'OK'
"""

from __future__ import annotations

from .decoder import decode
from .encoder import encode
from .errors import DecodeError, EncodeError
from .message import Message
from .tables import load
from .xmlin import _vocabulary_of

#: second character of a decode/encode command -> (our grammar, the "schema" value printed)
SCHEMA_OF_LETTER = {"H": ("appHandshake", "appHandshake"), "h": ("appHandshake", "appHandshake"),
                    "D": ("din", "DIN"), "1": ("iso2", "ISO1"), "2": (None, "ISO2")}
CHARGER_SESSION_ID = bytes.fromhex("0102030405060708")
INVALID_SESSION_ID = bytes.fromhex("DEADBEEFDEADBEEF")
DIN_NAMESPACE = "urn:din:70121:2012:MsgDef"
ISO2_NAMESPACE = "urn:iso:15118:2:2013:MsgDef"

MISSING = object()


def _at(content, path):
    for name in path:
        if not isinstance(content, dict) or name not in content:
            return MISSING
        content = content[name]
    return content


def _text(value) -> str:
    if value is None:  # an empty element, decoded as sent (a schema violation)
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)


# --------------------------------------------------------------------------------------------
# Field definitions: each is a function (body, enums) -> list of (key, value) pairs.
# ``enums(path)`` gives the enumeration values the grammar declares at a body path.
# --------------------------------------------------------------------------------------------

def _position(values: list[str], found) -> str:
    """An enumeration value's position in the schema's list; an index past the list (decoded as
    the int) as it is, an empty element as ""."""
    if isinstance(found, str) and found in values:
        return str(values.index(found))
    return _text(found)


def value(key, *path, default=None):
    """The element's value as text (enumerations by name, booleans 0/1, binary as hex)."""
    def fields(body, enums):
        found = _at(body, path or (key,))
        if found is MISSING:
            return [] if default is None else [(key, default)]
        return [(key, _text(found))]
    return fields


def index(key, *path):
    """An enumeration by its position in the schema's list (0 where the element is absent)."""
    path = path or (key,)

    def fields(body, enums):
        found = _at(body, path)
        return [(key, "0" if found is MISSING else _position(enums(path), found))]
    return fields


def used(key, *path, yes="1"):
    """``<key>_isUsed``: whether an optional element is present."""
    path = path or (key,)
    return lambda body, enums: [(key + "_isUsed", yes if _at(body, path) is not MISSING else "0")]


def binary(key, *path):
    """Binary content as ``<key>.bytesLen`` and lower-case hex."""
    path = path or (key,)

    def fields(body, enums):
        found = _at(body, path)
        found = b"" if found is MISSING else found
        return [(key + ".bytesLen", str(len(found))), (key, found.hex())]
    return fields


def physical(key, *path, always=True):
    """A PhysicalValue as Multiplier, Value, Unit; an absent Unit reads as the first unit (h)."""
    path = path or (key,)

    def fields(body, enums):
        found = _at(body, path)
        if found is MISSING:
            if not always:
                return []
            found = {}
        unit = _text(found.get("Unit", enums(path + ("Unit",))[0]))
        return [(key + ".Multiplier", _text(found.get("Multiplier", 0))),
                (key + ".Value", _text(found.get("Value", 0))), (key + ".Unit", unit)]
    return fields


def optional_physical(key, *path):
    path = path or (key,)
    return group(used(key, *path), physical(key, *path, always=False))


def numbered_physical(key, *path, optional=False):
    """The form ChargeParameterDiscoveryReq prints: Value, Multiplier, Unit_isUsed, Unit as a number;
    printed (as zeros) even when the element is absent."""
    path = path or (key,)

    def fields(body, enums):
        found = _at(body, path)
        found = {} if found is MISSING else found
        unit = found.get("Unit")
        out = [(key + "_isUsed", "0" if not found else "1")] if optional else []
        out += [(key + ".Value", _text(found.get("Value", 0))),
                (key + ".Multiplier", _text(found.get("Multiplier", 0))),
                (key + ".Unit_isUsed", "0" if unit is None else "1"),
                (key + ".Unit", "0" if unit is None else _position(enums(path + ("Unit",)), unit))]
        return out
    return fields


def text_of(key, *path):
    """The name of an enumeration value, under a key of its own (``EVSEStatusCode_text``)."""
    def fields(body, enums):
        found = _at(body, path)
        return [] if found is MISSING else [(key, str(found))]
    return fields


def group(*parts):
    return lambda body, enums: [pair for part in parts for pair in part(body, enums)]


def when(path, *parts):
    """Fields printed only where the element at ``path`` is present."""
    inner = group(*parts)
    return lambda body, enums: inner(body, enums) if _at(body, path) is not MISSING else []


def dc_evse_status(*path):
    path = path or ("DC_EVSEStatus",)
    return group(
        index("DC_EVSEStatus.EVSEIsolationStatus", *path, "EVSEIsolationStatus"),
        used("DC_EVSEStatus.EVSEIsolationStatus", *path, "EVSEIsolationStatus"),
        index("DC_EVSEStatus.EVSEStatusCode", *path, "EVSEStatusCode"),
        text_of("EVSEStatusCode_text", *path, "EVSEStatusCode"),
        value("DC_EVSEStatus.NotificationMaxDelay", *path, "NotificationMaxDelay"),
        index("DC_EVSEStatus.EVSENotification", *path, "EVSENotification"),
    )


def dc_ev_status_with_text(prefix=("DC_EVStatus",), key_prefix="DC_EVStatus."):
    return group(
        value(key_prefix + "EVReady", *prefix, "EVReady"),
        index(key_prefix + "EVErrorCode", *prefix, "EVErrorCode"),
        text_of("DC_EVErrorCodeText", *prefix, "EVErrorCode"),
        value(key_prefix + "EVRESSSOC", *prefix, "EVRESSSOC"),
    )


def service_list(body, enums):
    services = _at(body, ("SelectedServiceList", "SelectedService"))
    services = [] if services is MISSING else services
    listed = ", ".join(f"{i}:{service.get('ServiceID')}" for i, service in enumerate(services))
    return [("SelectedService.arrayLen", str(len(services))), ("SelectedService.array", listed)]


def sa_schedules(body, enums):
    tuples = _at(body, ("SAScheduleList", "SAScheduleTuple"))
    if tuples is MISSING:  # OpenV2Gx prints the schedule block only where there is one
        return []
    out = [("SAScheduleList_isUsed", "1"), ("SAScheduleList.SAScheduleTuple.arrayLen", str(len(tuples)))]
    for number, schedule in enumerate(tuples):
        entries = _at(schedule, ("PMaxSchedule", "PMaxScheduleEntry"))
        entries = [] if entries is MISSING else entries
        prefix = f"SchedTuple{number}.PMaxSchedule.PMaxScheduleEntry"
        out.append((prefix + ".arrayLen", str(len(entries))))
        for position, entry in enumerate(entries):
            item = f"{prefix}.array[{position}]"
            relative = entry.get("RelativeTimeInterval")
            out.append((item + ".TimeInterval_isUsed", "1" if "TimeInterval" in entry else "0"))
            out.append((item + ".RelativeTimeInterval_isUsed", "0" if relative is None else "1"))
            if relative is not None:
                out.append((item + ".RelativeTimeInterval.start", _text(relative.get("start", 0))))
                out.append((item + ".RelativeTimeInterval.duration_isUsed",
                            "1" if "duration" in relative else "0"))
                if "duration" in relative:
                    out.append((item + ".RelativeTimeInterval.duration", _text(relative["duration"])))
            pmax = entry.get("PMax")
            out.append((item + ".PMax", _text(pmax.get("Value") if isinstance(pmax, dict) else pmax)))
    return out


def ready_to_charge_text(body, enums):
    state = body.get("ReadyToChargeState")
    return [] if state is None else [("ReadyToChargeState_Text", "true" if state else "false")]


DC_CHARGE_PARAMETER = ("DC_EVChargeParameter",)
DC_POWER_DELIVERY = ("DC_EVPowerDeliveryParameter",)
DC_EVSE_CHARGE_PARAMETER = ("DC_EVSEChargeParameter",)

#: message name -> the flat fields OpenV2Gx printed after the header, in its order
MESSAGE_FIELDS = {
    "SessionSetupReq": group(binary("EVCCID")),
    "SessionSetupRes": group(value("ResponseCode"), binary("EVSEID")),
    "ServiceDiscoveryReq": group(when(("ServiceCategory",), used("ServiceCategory", yes="True"))),
    "ServiceDiscoveryRes": group(value("ResponseCode")),
    "ServicePaymentSelectionReq": group(value("SelectedPaymentOption"), service_list),
    "ServicePaymentSelectionRes": group(value("ResponseCode")),
    "ContractAuthenticationReq": group(),
    "ContractAuthenticationRes": group(value("ResponseCode"), value("EVSEProcessing")),
    "ChargeParameterDiscoveryReq": group(
        index("EVRequestedEnergyTransferType"),
        used("EVChargeParameter"),
        used("DC_EVChargeParameter"),
        when(DC_CHARGE_PARAMETER,
             value("DC_EVStatus.EVRESSSOC", *DC_CHARGE_PARAMETER, "DC_EVStatus", "EVRESSSOC"),
             value("DC_EVStatus.EVReady", *DC_CHARGE_PARAMETER, "DC_EVStatus", "EVReady"),
             used("EVCabinConditioning", *DC_CHARGE_PARAMETER, "DC_EVStatus", "EVCabinConditioning"),
             used("EVRESSConditioning", *DC_CHARGE_PARAMETER, "DC_EVStatus", "EVRESSConditioning"),
             index("EVErrorCode", *DC_CHARGE_PARAMETER, "DC_EVStatus", "EVErrorCode"),
             text_of("DC_EVErrorCodeText", *DC_CHARGE_PARAMETER, "DC_EVStatus", "EVErrorCode"),
             numbered_physical("EVMaximumCurrentLimit", *DC_CHARGE_PARAMETER, "EVMaximumCurrentLimit"),
             numbered_physical("EVMaximumPowerLimit", *DC_CHARGE_PARAMETER, "EVMaximumPowerLimit",
                               optional=True),
             numbered_physical("EVMaximumVoltageLimit", *DC_CHARGE_PARAMETER, "EVMaximumVoltageLimit"),
             numbered_physical("EVEnergyCapacity", *DC_CHARGE_PARAMETER, "EVEnergyCapacity", optional=True),
             numbered_physical("EVEnergyRequest", *DC_CHARGE_PARAMETER, "EVEnergyRequest", optional=True),
             used("FullSOC", *DC_CHARGE_PARAMETER, "FullSOC"),
             value("FullSOC", *DC_CHARGE_PARAMETER, "FullSOC", default="0"),
             used("BulkSOC", *DC_CHARGE_PARAMETER, "BulkSOC"),
             value("BulkSOC", *DC_CHARGE_PARAMETER, "BulkSOC", default="0"))),
    "ChargeParameterDiscoveryRes": group(
        value("ResponseCode"), value("EVSEProcessing"), sa_schedules,
        when(DC_EVSE_CHARGE_PARAMETER,
             dc_evse_status(*DC_EVSE_CHARGE_PARAMETER, "DC_EVSEStatus"),
             physical("EVSEMaximumCurrentLimit", *DC_EVSE_CHARGE_PARAMETER, "EVSEMaximumCurrentLimit"),
             optional_physical("EVSEMaximumPowerLimit", *DC_EVSE_CHARGE_PARAMETER, "EVSEMaximumPowerLimit"),
             physical("EVSEMaximumVoltageLimit", *DC_EVSE_CHARGE_PARAMETER, "EVSEMaximumVoltageLimit"),
             physical("EVSEMinimumCurrentLimit", *DC_EVSE_CHARGE_PARAMETER, "EVSEMinimumCurrentLimit"),
             physical("EVSEMinimumVoltageLimit", *DC_EVSE_CHARGE_PARAMETER, "EVSEMinimumVoltageLimit"))),
    "CableCheckReq": group(value("DC_EVStatus.EVRESSSOC", "DC_EVStatus", "EVRESSSOC"),
                           value("DC_EVStatus.EVReady", "DC_EVStatus", "EVReady")),
    "CableCheckRes": group(value("ResponseCode"), dc_evse_status(), value("EVSEProcessing")),
    "PreChargeReq": group(dc_ev_status_with_text(), physical("EVTargetVoltage"), physical("EVTargetCurrent")),
    "PreChargeRes": group(value("ResponseCode"), dc_evse_status(), physical("EVSEPresentVoltage")),
    "PowerDeliveryReq": group(
        value("ReadyToChargeState"), ready_to_charge_text,
        used("ChargingProfile"), used("EVPowerDeliveryParameter"), used("DC_EVPowerDeliveryParameter"),
        when(DC_POWER_DELIVERY,
             dc_ev_status_with_text(DC_POWER_DELIVERY + ("DC_EVStatus",), ""),
             used("BulkChargingComplete", *DC_POWER_DELIVERY, "BulkChargingComplete"),
             value("BulkChargingComplete", *DC_POWER_DELIVERY, "BulkChargingComplete"),
             value("ChargingComplete", *DC_POWER_DELIVERY, "ChargingComplete"),
             used("EVCabinConditioning", *DC_POWER_DELIVERY, "DC_EVStatus", "EVCabinConditioning"),
             value("EVCabinConditioning", *DC_POWER_DELIVERY, "DC_EVStatus", "EVCabinConditioning"),
             used("EVRESSConditioning", *DC_POWER_DELIVERY, "DC_EVStatus", "EVRESSConditioning"),
             value("EVRESSConditioning", *DC_POWER_DELIVERY, "DC_EVStatus", "EVRESSConditioning"))),
    "PowerDeliveryRes": group(value("ResponseCode"), when(("DC_EVSEStatus",), dc_evse_status())),
    "CurrentDemandReq": group(
        dc_ev_status_with_text(), physical("EVTargetCurrent"),
        optional_physical("EVMaximumVoltageLimit"), optional_physical("EVMaximumCurrentLimit"),
        optional_physical("EVMaximumPowerLimit"), value("ChargingComplete"), physical("EVTargetVoltage")),
    "CurrentDemandRes": group(
        value("ResponseCode"), dc_evse_status(), physical("EVSEPresentVoltage"), physical("EVSEPresentCurrent"),
        value("EVSECurrentLimitAchieved"), value("EVSEVoltageLimitAchieved"), value("EVSEPowerLimitAchieved"),
        physical("EVSEMaximumVoltageLimit"), physical("EVSEMaximumCurrentLimit", always=False),
        physical("EVSEMaximumPowerLimit", always=False)),
    "WeldingDetectionReq": group(value("DC_EVStatus.EVReady", "DC_EVStatus", "EVReady"),
                                 index("DC_EVStatus.EVErrorCode", "DC_EVStatus", "EVErrorCode"),
                                 value("DC_EVStatus.EVRESSSOC", "DC_EVStatus", "EVRESSSOC")),
    "WeldingDetectionRes": group(value("ResponseCode"), dc_evse_status(), physical("EVSEPresentVoltage")),
    "SessionStopReq": group(),
    "SessionStopRes": group(value("ResponseCode")),
}

#: ISO 15118-2 messages whose layout matches the DIN one closely enough for the same fields
ISO2_SHARED_FIELDS = ("SessionSetupReq", "CableCheckReq", "CableCheckRes", "PreChargeReq", "PreChargeRes",
                      "CurrentDemandReq", "WeldingDetectionReq", "WeldingDetectionRes", "SessionStopRes",
                      "ServiceDiscoveryRes")


def flatten(content, prefix: str = "") -> list[tuple[str, str]]:
    """The generic form for messages without a field list: dotted paths, lists as
    ``.arrayLen`` and ``.array[i]``, binary as ``.bytesLen`` and hex."""
    out = []
    if isinstance(content, dict):
        for key, item in content.items():
            out += flatten(item, f"{prefix}.{key}" if prefix else key)
    elif isinstance(content, list):
        out.append((prefix + ".arrayLen", str(len(content))))
        for position, item in enumerate(content):
            out += flatten(item, f"{prefix}.array[{position}]")
    elif isinstance(content, (bytes, bytearray)):
        out += [(prefix + ".bytesLen", str(len(content))), (prefix, content.hex())]
    else:
        out.append((prefix, _text(content)))
    return out


class _Enumerations:
    """Enumeration values the grammar declares at a path below the message body, by walking
    the grammar the way xmlin does (child grammars by local name)."""

    def __init__(self, tables, grammar):
        self.tables = tables
        self.grammar = grammar

    def __call__(self, path) -> list[str]:
        grammar = self.grammar
        for name in path:
            children, _, _ = _vocabulary_of(grammar)
            grammar = children[name]
        _, _, text = _vocabulary_of(grammar)
        return text.values


def _body_grammar(tables, name):
    _, _, root = tables.document[tables.document_index["V2G_Message"]]
    body = _vocabulary_of(root)[0]["Body"]
    return _vocabulary_of(body)[0][name]


def answer(msg_name="", info="", error="", result="", **more) -> dict:
    out = {"msgName": msg_name, "info": info, "error": error, "result": result}
    out.update(more)
    return out


# --------------------------------------------------------------------------------------------
# Decode commands
# --------------------------------------------------------------------------------------------

def decode_command(letter: str, hex_text: str) -> dict:
    grammar, schema_label = SCHEMA_OF_LETTER[letter]
    try:
        data = bytes.fromhex(hex_text)
    except ValueError:
        return answer(error=f"invalid hex input {hex_text[:40]!r}", schema=schema_label, debug="")
    info = f"{len(data)} bytes to convert"
    if grammar is None:
        return answer(info=info, error="ISO 15118-2:2016 draft (D2) is not supported; use D1 for ISO 15118-2:2013",
                      schema=schema_label, debug="")
    try:
        message = decode(data, grammar)
    except DecodeError as exc:
        return answer(info=info, error=f"runTheDecoder error: {exc}", schema=schema_label, debug="")
    if grammar == "appHandshake":
        return answer(message.name, info, "", handshake_text(message), schema="appHandshake", debug="")
    return answer(message.name, info, "", "", **v2g_fields(message, schema_label), debug="")


def handshake_text(message: Message) -> str:
    content = message[message.root]
    if message.root == "supportedAppProtocolReq":
        entries = content.get("AppProtocol", [])
        text = f"Vehicle supports {len(entries)} protocols. "
        for number, entry in enumerate(entries, 1):
            text += (f"ProtocolEntry#{number} ProtocolNamespace={entry['ProtocolNamespace']} "
                     f"Version={entry['VersionNumberMajor']}.{entry['VersionNumberMinor']} "
                     f"SchemaID={entry['SchemaID']} Priority={entry['Priority']} ")
        return text
    tables = load("appHandshake")
    codes = _Enumerations(tables, tables.document[tables.document_index["supportedAppProtocolRes"]][2])
    response = _position(codes(("ResponseCode",)), content["ResponseCode"])
    schema_id = content.get("SchemaID")
    return (f"ResponseCode {response}, SchemaID_isUsed {0 if schema_id is None else 1}, "
            f"SchemaID {0 if schema_id is None else schema_id}")


def v2g_fields(message: Message, schema_label: str) -> dict:
    header = message["V2G_Message"].get("Header", {})
    out = {"schema": schema_label, "g_errn": "0",
           "header.SessionID": header.get("SessionID", b"").hex(),
           "header.Notification_isUsed": "1" if "Notification" in header else "0",
           "header.Signature_isUsed": "1" if "Signature" in header else "0"}
    body = message.body if isinstance(message.body, dict) else {}
    fields = MESSAGE_FIELDS.get(message.name)
    if fields is not None and (message.schema == "din" or message.name in ISO2_SHARED_FIELDS):
        tables = load(message.schema)
        out.update(fields(body, _Enumerations(tables, _body_grammar(tables, message.name))))
    else:
        out.update(flatten(body))
    return out


# --------------------------------------------------------------------------------------------
# Encode commands
# --------------------------------------------------------------------------------------------

class Parameters:
    """The ``_``-separated parameters of an encode command, read the way OpenV2Gx reads them."""

    def __init__(self, texts: list[str]):
        self.texts = texts
        self.error = ""

    def text(self, position: int) -> str:
        if position >= len(self.texts):
            self.error = self.error or f"Too less parameters to handle getIntParam({position})"
            return ""
        return self.texts[position]

    def integer(self, position: int) -> int:
        return atoi(self.text(position))

    def session_id(self, position: int) -> bytes:
        text = self.text(position)
        try:
            found = bytes.fromhex(text)
        except ValueError:
            found = b""
        return found if 1 <= len(found) <= 8 else INVALID_SESSION_ID

    def echo(self) -> dict:
        return {f"parameter{i}": text for i, text in enumerate(self.texts)}


def atoi(text: str) -> int:
    """C atoi: leading blanks, an optional sign, then digits up to the first other character."""
    text = text.lstrip(" \t\n\r\f\v")
    sign = 1
    if text[:1] in ("+", "-"):
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    digits = ""
    for char in text:
        if not "0" <= char <= "9":
            break
        digits += char
    return sign * int(digits) if digits else 0


def physical_value(value: int, unit: str, multiplier: int = 0) -> dict:
    return {"Multiplier": multiplier, "Unit": unit, "Value": value}


def ev_status(soc: int) -> dict:
    return {"EVReady": True, "EVErrorCode": "NO_ERROR", "EVRESSSOC": soc}


def evse_status(code: str = "EVSE_Ready") -> dict:
    return {"EVSEIsolationStatus": "Valid", "EVSEStatusCode": code, "NotificationMaxDelay": 0,
            "EVSENotification": "None"}


def evse_status_iso2(code: str = "EVSE_Ready") -> dict:
    return {"NotificationMaxDelay": 0, "EVSENotification": "None", "EVSEIsolationStatus": "Valid",
            "EVSEStatusCode": code}


#: the values encode commands use for fields no parameter sets (documented in README.md)
FIXED = {
    "EVCCID_invalid": bytes(6),
    "EVSEID_din": b"\x00",
    "EVSEID_iso2": "ZZ00000",
    "EVMaximumCurrentLimit": 100,   # A
    "EVMaximumVoltageLimit": 450,   # V
    "PreChargeCurrent": 1,          # A
    "EVSEMaximumCurrentLimit": 200,  # A
    "EVSEMaximumVoltageLimit": 450,  # V
    "EVSEMaximumPowerLimit": 100,   # x 10^3 W
    "EVSEMinimumCurrentLimit": 1,   # A
    "EVSEMinimumVoltageLimit": 200,  # V
    "EVSEPeakCurrentRipple": 5,     # A
    "PMax": 100,                    # x 10^3 W (ISO-2); DIN PMax is a plain short: 32000 W
    "ScheduleDuration": 86400,      # s
}


def _evse_status_code(number: int) -> str:
    codes = load("din").datatypes
    for datatype in codes:
        if getattr(datatype, "values", None) and "EVSE_Shutdown" in datatype.values:
            if 0 <= number < len(datatype.values):
                return datatype.values[number]
    raise EncodeError("EVSEStatusCode", f"status {number} is not an EVSEStatusCode index")


def build_request(letter: str, iso: bool, params: Parameters):
    """(message name, body, session id) of a car-side request."""
    if letter == "A":
        text = params.text(0)
        try:
            evccid = bytes.fromhex(text)
        except ValueError:
            evccid = b""
        if not 1 <= len(evccid) <= (6 if iso else 8):
            params.error = params.error or f"invalid EVCCID {text!r}"
            evccid = FIXED["EVCCID_invalid"]
        return "SessionSetupReq", {"EVCCID": evccid}, bytes(8)
    sid = params.session_id(0)
    soc = params.integer(1) if letter in "EFGHIJ" else 0
    status = ev_status(soc)
    if letter == "B":
        return "ServiceDiscoveryReq", {}, sid
    if letter == "C":
        name = "PaymentServiceSelectionReq" if iso else "ServicePaymentSelectionReq"
        return name, {"SelectedPaymentOption": "ExternalPayment",
                      "SelectedServiceList": {"SelectedService": [{"ServiceID": 1}]}}, sid
    if letter == "E":
        parameter = {"DC_EVStatus": status,
                     "EVMaximumCurrentLimit": physical_value(FIXED["EVMaximumCurrentLimit"], "A"),
                     "EVMaximumVoltageLimit": physical_value(FIXED["EVMaximumVoltageLimit"], "V")}
        key = "RequestedEnergyTransferMode" if iso else "EVRequestedEnergyTransferType"
        return "ChargeParameterDiscoveryReq", {key: "DC_extended", "DC_EVChargeParameter": parameter}, sid
    if letter == "F":
        return "CableCheckReq", {"DC_EVStatus": status}, sid
    if letter == "G":
        return "PreChargeReq", {"DC_EVStatus": status,
                                "EVTargetVoltage": physical_value(params.integer(2), "V"),
                                "EVTargetCurrent": physical_value(FIXED["PreChargeCurrent"], "A")}, sid
    if letter == "H":
        start = params.integer(2) != 0
        delivery = {"DC_EVStatus": status, "ChargingComplete": not start}
        if iso:
            return "PowerDeliveryReq", {"ChargeProgress": "Start" if start else "Stop", "SAScheduleTupleID": 1,
                                        "DC_EVPowerDeliveryParameter": delivery}, sid
        return "PowerDeliveryReq", {"ReadyToChargeState": start, "DC_EVPowerDeliveryParameter": delivery}, sid
    if letter == "I":
        return "CurrentDemandReq", {"DC_EVStatus": status,
                                    "EVTargetCurrent": physical_value(params.integer(2), "A"),
                                    "ChargingComplete": False,
                                    "EVTargetVoltage": physical_value(params.integer(3), "V")}, sid
    if letter == "J":
        return "WeldingDetectionReq", {"DC_EVStatus": status}, sid
    if letter == "K":
        return "SessionStopReq", ({"ChargingSession": "Terminate"} if iso else {}), sid
    if letter == "L":
        return ("AuthorizationReq" if iso else "ContractAuthenticationReq"), {}, sid
    return None


def build_response(letter: str, iso: bool, params: Parameters):
    """(message name, body) of a charger-side response."""
    status = evse_status_iso2() if iso else evse_status()
    if letter == "a":
        evse_id = FIXED["EVSEID_iso2"] if iso else FIXED["EVSEID_din"]
        return "SessionSetupRes", {"ResponseCode": "OK_NewSessionEstablished", "EVSEID": evse_id}
    if letter == "b":
        if iso:
            return "ServiceDiscoveryRes", {
                "ResponseCode": "OK", "PaymentOptionList": {"PaymentOption": ["ExternalPayment"]},
                "ChargeService": {"ServiceID": 1, "ServiceCategory": "EVCharging", "FreeService": False,
                                  "SupportedEnergyTransferMode": {"EnergyTransferMode": ["DC_extended"]}}}
        return "ServiceDiscoveryRes", {
            "ResponseCode": "OK", "PaymentOptions": {"PaymentOption": ["ExternalPayment"]},
            "ChargeService": {"ServiceTag": {"ServiceID": 1, "ServiceCategory": "EVCharging"},
                              "FreeService": False, "EnergyTransferType": "DC_extended"}}
    if letter == "c":
        return ("PaymentServiceSelectionRes" if iso else "ServicePaymentSelectionRes"), {"ResponseCode": "OK"}
    if letter == "e":
        entry = {"RelativeTimeInterval": {"start": 0, "duration": FIXED["ScheduleDuration"]},
                 "PMax": physical_value(FIXED["PMax"], "W", 3) if iso else 32000}
        schedule = {"PMaxScheduleEntry": [entry]}
        if not iso:
            schedule["PMaxScheduleID"] = 1
        parameter = {"DC_EVSEStatus": status,
                     "EVSEMaximumCurrentLimit": physical_value(FIXED["EVSEMaximumCurrentLimit"], "A"),
                     "EVSEMaximumPowerLimit": physical_value(FIXED["EVSEMaximumPowerLimit"], "W", 3),
                     "EVSEMaximumVoltageLimit": physical_value(FIXED["EVSEMaximumVoltageLimit"], "V"),
                     "EVSEMinimumCurrentLimit": physical_value(FIXED["EVSEMinimumCurrentLimit"], "A"),
                     "EVSEMinimumVoltageLimit": physical_value(FIXED["EVSEMinimumVoltageLimit"], "V"),
                     "EVSEPeakCurrentRipple": physical_value(FIXED["EVSEPeakCurrentRipple"], "A")}
        return "ChargeParameterDiscoveryRes", {
            "ResponseCode": "OK", "EVSEProcessing": "Finished",
            "SAScheduleList": {"SAScheduleTuple": [{"SAScheduleTupleID": 1, "PMaxSchedule": schedule}]},
            "DC_EVSEChargeParameter": parameter}
    if letter == "f":
        done = params.integer(0) == 1
        return "CableCheckRes", {"ResponseCode": "OK", "DC_EVSEStatus": status,
                                 "EVSEProcessing": "Finished" if done else "Ongoing"}
    if letter == "g":
        return "PreChargeRes", {"ResponseCode": "OK", "DC_EVSEStatus": status,
                                "EVSEPresentVoltage": physical_value(params.integer(0), "V")}
    if letter == "h":
        return "PowerDeliveryRes", {"ResponseCode": "OK", "DC_EVSEStatus": status}
    if letter == "i":
        volts, amps, code = params.integer(0), params.integer(1), params.integer(2)
        status["EVSEStatusCode"] = _evse_status_code(code)
        body = {"ResponseCode": "OK", "DC_EVSEStatus": status,
                "EVSEPresentVoltage": physical_value(volts, "V"), "EVSEPresentCurrent": physical_value(amps, "A"),
                "EVSECurrentLimitAchieved": False, "EVSEVoltageLimitAchieved": False,
                "EVSEPowerLimitAchieved": False,
                "EVSEMaximumVoltageLimit": physical_value(FIXED["EVSEMaximumVoltageLimit"], "V"),
                "EVSEMaximumCurrentLimit": physical_value(FIXED["EVSEMaximumCurrentLimit"], "A"),
                "EVSEMaximumPowerLimit": physical_value(FIXED["EVSEMaximumPowerLimit"], "W", 3)}
        if iso:
            body.update({"EVSEID": FIXED["EVSEID_iso2"], "SAScheduleTupleID": 1})
        return "CurrentDemandRes", body
    if letter == "j":
        return "WeldingDetectionRes", {"ResponseCode": "OK", "DC_EVSEStatus": status,
                                       "EVSEPresentVoltage": physical_value(params.integer(0), "V")}
    if letter == "k":
        return "SessionStopRes", {"ResponseCode": "OK"}
    if letter == "l":
        done = params.integer(0) == 1
        return ("AuthorizationRes" if iso else "ContractAuthenticationRes"), {
            "ResponseCode": "OK", "EVSEProcessing": "Finished" if done else "Ongoing"}
    return None


def handshake_message(letter: str, params: Parameters) -> Message:
    if letter == "H":
        selection = params.integer(0)
        din = {"ProtocolNamespace": DIN_NAMESPACE, "VersionNumberMajor": 2, "VersionNumberMinor": 0,
               "SchemaID": 0, "Priority": 1}
        iso = {"ProtocolNamespace": ISO2_NAMESPACE, "VersionNumberMajor": 2, "VersionNumberMinor": 0,
               "SchemaID": 0, "Priority": 1}
        if selection == 0:
            protocols = [din]
        elif selection == 1:
            protocols = [iso]
        else:
            protocols = [dict(din, Priority=2), dict(iso, SchemaID=1)]
        return Message({"supportedAppProtocolReq": {"AppProtocol": protocols}}, schema="appHandshake")
    return Message({"supportedAppProtocolRes": {"ResponseCode": "OK_SuccessfulNegotiation",
                                                "SchemaID": params.integer(0)}}, schema="appHandshake")


def encode_command(schema_letter: str, rest: str) -> dict:
    grammar, schema_label = SCHEMA_OF_LETTER[schema_letter]
    if grammar == "appHandshake":
        # "EH_1" and "Eh__1" both occur: the handshake has no message letter, "_" may stand in for it
        letter = schema_letter
        if rest.startswith("__"):
            rest = rest[1:]
    else:
        letter, rest = rest[:1], rest[1:]
    if rest and not rest.startswith("_"):
        return answer(error=f"parameters must follow '_', got {rest[:20]!r}")
    params = Parameters(rest[1:].split("_") if rest else [])
    if grammar is None:
        return answer(error="ISO 15118-2:2016 draft (E2) is not supported; use E1 for ISO 15118-2:2013",
                      **params.echo())
    try:
        if grammar == "appHandshake":
            message = handshake_message(letter, params)
        else:
            iso = grammar == "iso2"
            built = build_request(letter, iso, params) if letter.isupper() else None
            if built is not None:
                name, body, sid = built
            else:
                response = build_response(letter, iso, params) if letter.islower() else None
                if response is None:
                    return answer(error=f"unknown message letter {letter!r}", **params.echo())
                (name, body), sid = response, CHARGER_SESSION_ID
            namespace = ISO2_NAMESPACE if iso else DIN_NAMESPACE
            message = Message({"V2G_Message": {"Header": {"SessionID": sid}, "Body": {name: body}}},
                              schema=grammar, namespace=namespace)
        data = encode(message, message.schema)
    except EncodeError as exc:
        return answer(error=f"encoder error: {exc}", **params.echo())
    return answer(message.name, "", params.error,
                  data.hex(), schema=schema_label, **params.echo())


def looks_like_command(argument: str) -> bool:
    """Whether an argument is an OpenV2Gx command string (as opposed to a subcommand name)."""
    return len(argument) >= 2 and argument[0] in "DE" and argument[1] in SCHEMA_OF_LETTER


def run_command(argument: str) -> dict:
    """Answer one OpenV2Gx command string with the JSON object OpenV2Gx printed (keys in order)."""
    argument = argument.strip()
    if not looks_like_command(argument):
        return answer(error=f"unknown command {argument[:20]!r}: expected D or E, then H, h, D, 1 or 2")
    if argument[0] == "D":
        return decode_command(argument[1], argument[2:])
    return encode_command(argument[1], argument[2:])


__all__ = ["run_command", "looks_like_command", "MESSAGE_FIELDS", "FIXED"]
