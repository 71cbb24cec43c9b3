"""The session model: what a trace tells about the charging session(s) in it, built from events.

It keeps aggregates only (first/last times, minimum/maximum/last values, counters), so its size
does not grow with the trace. One ``TraceSession`` per file; one ``V2gSession`` per V2G connection.
"""
from __future__ import annotations

from typing import Any, Mapping

from ccssniff.decode import events as ev
from ccssniff.decode.body import content_of, header_of
from ccssniff.decode.events import Event
from ccssniff.standards.physical import is_physical_value, physical_value

PHASES = ("SLAC", "SDP", "handshake", "setup", "cable check", "pre-charge", "charge loop", "stop")

_PHASE_OF_MESSAGE = {
    "supportedAppProtocol": "handshake",
    "CableCheck": "cable check", "DC_CableCheck": "cable check",
    "PreCharge": "pre-charge", "DC_PreCharge": "pre-charge",
    "CurrentDemand": "charge loop", "ChargingStatus": "charge loop", "DC_ChargeLoop": "charge loop",
    "AC_ChargeLoop": "charge loop", "WPT_ChargeLoop": "charge loop", "MeteringReceipt": "charge loop",
    "WeldingDetection": "stop", "DC_WeldingDetection": "stop", "SessionStop": "stop",
}
_CHARGE_LOOP_RESPONSES = ("CurrentDemandRes", "DC_ChargeLoopRes")
# (quantity, element names that carry it, in the order they are preferred)
_MEASURED_VOLTAGE = ("EVSEPresentVoltage",)
_MEASURED_CURRENT = ("EVSEPresentCurrent",)
_SOC_FIELDS = ("EVRESSSOC", "PresentSOC")

LIMITED_BY_EV = "EV request (below the EVSE's offer)"
LIMITED_BY_CURRENT = "EVSE current limit"
LIMITED_BY_VOLTAGE = "EVSE voltage limit"
LIMITED_BY_POWER = "EVSE power limit"


def _text(value: Any) -> Any:
    return value.hex() if isinstance(value, (bytes, bytearray)) else value


def _find(content: Mapping[str, Any], name: str, depth: int = 3) -> Any:
    """The value of element ``name`` anywhere in the first levels of ``content`` (None if absent)."""
    if name in content:
        return content[name]
    if depth:
        for value in content.values():
            if isinstance(value, dict):
                found = _find(value, name, depth - 1)
                if found is not None:
                    return found
    return None


class Range:
    """Minimum, maximum and last of a measured quantity."""

    __slots__ = ("minimum", "maximum", "last", "unit")

    def __init__(self) -> None:
        self.minimum = self.maximum = self.last = None
        self.unit: str | None = None

    def add(self, value: float, unit: str | None = None) -> None:
        self.last = value
        self.unit = unit or self.unit
        self.minimum = value if self.minimum is None else min(self.minimum, value)
        self.maximum = value if self.maximum is None else max(self.maximum, value)

    def to_dict(self) -> dict[str, Any] | None:
        if self.last is None:
            return None
        return {"min": self.minimum, "max": self.maximum, "last": self.last, "unit": self.unit}


class Span:
    __slots__ = ("first", "last")

    def __init__(self, time: float) -> None:
        self.first = self.last = time

    @property
    def duration(self) -> float:
        return self.last - self.first


class V2gSession:
    """One V2G TCP connection: identity, phases, measurements, who limited the power."""

    def __init__(self, connection: int) -> None:
        self.connection = connection
        self.protocol: str | None = None
        self.protocol_assumed = False
        self.ids: dict[str, Any] = {}
        self.energy_transfer_mode: str | None = None
        self.payment_option: str | None = None
        self.phases: dict[str, Span] = {}
        self.voltage, self.current, self.power, self.soc = Range(), Range(), Range(), Range()
        self.limited_by: dict[str, float] = {}
        self.messages = 0
        self.errors = 0
        self.sequence_violations = 0
        self.tls: dict[str, Any] | None = None
        self.end: str | None = None
        self._stopping = False
        self._last_loop_response: tuple[float, str] | None = None

    def add(self, event: Event) -> None:
        kind = event.kind
        if kind == ev.V2G and event.message is not None:
            self._message(event)
        elif kind == ev.SCHEMA:
            protocol = event.fields.get("protocol")
            if protocol:
                self.protocol = protocol
                self.protocol_assumed = event.name == "schema assumed"
        elif kind == ev.ERROR:
            self.errors += 1
        elif kind == ev.SEQUENCE:
            self.sequence_violations += 1
        elif kind == ev.TLS and event.name == "TLS session":
            self.tls = dict(event.fields)
        elif kind == ev.CONNECTION and event.name != "TCP connection":
            self.end = event.name

    def _message(self, event: Event) -> None:
        self.messages += 1
        name = event.name
        base = name[:-3] if name.endswith(("Req", "Res")) else name
        content = content_of(event.message)
        phase = self._phase(base, content)
        span = self.phases.get(phase)
        if span is None:
            self.phases[phase] = Span(event.time)
        else:
            span.last = event.time
        if base == "SessionSetup":
            self._identity(name, event.message, content)
        elif base in ("ChargeParameterDiscovery", "ServiceSelection") and name.endswith("Req"):
            self._energy_transfer(base, content)
        if base in ("ServicePaymentSelection", "PaymentServiceSelection") and name.endswith("Req"):
            self.payment_option = _text(content.get("SelectedPaymentOption"))
        elif base == "Authorization" and name.endswith("Req") and "SelectedAuthorizationService" in content:
            self.payment_option = content["SelectedAuthorizationService"]
        self._measurements(name, content, event.time)

    def _phase(self, base: str, content: Mapping[str, Any]) -> str:
        if base == "PowerDelivery":
            if "ReadyToChargeState" in content:
                self._stopping = not content["ReadyToChargeState"]
            elif "ChargeProgress" in content:
                self._stopping = content["ChargeProgress"] in ("Stop", "Standby")
            return "stop" if self._stopping else "charge loop"
        return _PHASE_OF_MESSAGE.get(base, "setup")

    def _identity(self, name: str, message: Any, content: Mapping[str, Any]) -> None:
        if name.endswith("Req") and "EVCCID" in content:
            self.ids["EVCCID"] = _text(content["EVCCID"])
        if name.endswith("Res"):
            if "EVSEID" in content:
                self.ids["EVSEID"] = _text(content["EVSEID"])
            session_id = header_of(message).get("SessionID")
            if session_id is not None:
                self.ids["SessionID"] = _text(session_id)

    def _energy_transfer(self, base: str, content: Mapping[str, Any]) -> None:
        for field in ("EVRequestedEnergyTransferType", "RequestedEnergyTransferMode"):
            if field in content:
                self.energy_transfer_mode = content[field]
                return
        if base == "ServiceSelection":
            service = _find(content, "ServiceID")
            if service is not None:
                self.energy_transfer_mode = f"service {service}"

    def _measurements(self, name: str, content: Mapping[str, Any], time: float) -> None:
        soc = None
        for field in _SOC_FIELDS:
            soc = _find(content, field)
            if soc is not None:
                self.soc.add(float(soc), "%")
                break
        if not name.endswith("Res"):
            return
        voltage = _find(content, _MEASURED_VOLTAGE[0], 1)
        current = _find(content, _MEASURED_CURRENT[0], 1)
        volts = amps = None
        if is_physical_value(voltage):
            volts, unit = physical_value(voltage, "Voltage")
            self.voltage.add(volts, unit)
        if is_physical_value(current):
            amps, unit = physical_value(current, "Current")
            self.current.add(amps, unit)
        if volts is not None and amps is not None:
            self.power.add(volts * amps, "W")
        if name in _CHARGE_LOOP_RESPONSES:
            self._limitation(content, time)

    def _limitation(self, content: Mapping[str, Any], time: float) -> None:
        if content.get("EVSECurrentLimitAchieved"):
            limiter = LIMITED_BY_CURRENT
        elif content.get("EVSEVoltageLimitAchieved"):
            limiter = LIMITED_BY_VOLTAGE
        elif content.get("EVSEPowerLimitAchieved"):
            limiter = LIMITED_BY_POWER
        else:
            limiter = LIMITED_BY_EV
        if self._last_loop_response is not None:
            since, previous = self._last_loop_response
            self.limited_by[previous] = self.limited_by.get(previous, 0.0) + (time - since)
        else:
            self.limited_by.setdefault(limiter, 0.0)
        self._last_loop_response = (time, limiter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "protocol": self.protocol,
            "protocol_assumed": self.protocol_assumed,
            **{key: self.ids.get(key) for key in ("EVCCID", "EVSEID", "SessionID")},
            "energy_transfer_mode": self.energy_transfer_mode,
            "payment_option": self.payment_option,
            "phases": {phase: round(span.duration, 6) for phase, span in self.phases.items()},
            "voltage": self.voltage.to_dict(), "current": self.current.to_dict(),
            "power": self.power.to_dict(), "soc": self.soc.to_dict(),
            "limited_by": {who: round(seconds, 6) for who, seconds in self.limited_by.items()},
            "messages": self.messages, "errors": self.errors,
            "sequence_violations": self.sequence_violations,
            "tls": self.tls, "end": self.end,
        }


class TraceSession:
    """Everything one trace holds: the SLAC run, SDP, and a V2gSession per V2G connection."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.frames = 0
        self.phases: dict[str, Span] = {}
        self.sdp_security: list[str] = []
        self.homeplug_messages = 0
        self.errors = 0
        self.sessions: dict[int, V2gSession] = {}

    def add(self, event: Event) -> None:
        if self.start is None:
            self.start = event.time
        kind = event.kind
        if event.connection is not None:
            session = self.sessions.get(event.connection)
            if session is None:
                session = self.sessions[event.connection] = V2gSession(event.connection)
            session.add(event)
        elif kind == ev.HOMEPLUG:
            self.homeplug_messages += 1
            if event.name.startswith("CM_SLAC") or event.name.startswith(("CM_START_ATTEN", "CM_ATTEN", "CM_MNBC")):
                self._span("SLAC", event.time)
        elif kind == ev.SDP:
            self._span("SDP", event.time)
            if event.name.startswith("SDP request"):
                security = event.fields.get("security")
                if security not in self.sdp_security:
                    self.sdp_security.append(security)
        elif kind == ev.ERROR:
            self.errors += 1

    def finish(self, pipeline: Any) -> None:
        """The trace is over: take the pipeline's totals."""
        self.frames = pipeline.frames

    def _span(self, phase: str, time: float) -> None:
        span = self.phases.get(phase)
        if span is None:
            self.phases[phase] = Span(time)
        else:
            span.last = time

    def to_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "homeplug_messages": self.homeplug_messages,
            "phases": {phase: round(span.duration, 6) for phase, span in self.phases.items()},
            "sdp_security_requested": self.sdp_security,
            "errors": self.errors,
            "sessions": [s.to_dict() for s in self.sessions.values() if s.messages or s.tls],
        }
