"""What a report draws that the decode summary does not keep: values over time, response times,
phase spans with frame numbers, the SLAC ladder and attenuation groups, verdict details.

A :class:`TraceCollector` sits on ``decode_trace(on_event=..., on_packet=...)``; everything it
keeps is bounded (thinned series, capped lists), so a two-hour trace costs what a short one does.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any, Mapping

from ccssniff.decode import events as ev
from ccssniff.decode.body import content_of
from ccssniff.decode.events import Event
from ccssniff.decode.schema import PROTOCOL_NAMES
from ccssniff.decode.phases import PHASES, PhaseRule
from ccssniff.decode.measurements import limiting_side
from ccssniff.report.series import Series
from ccssniff.standards.physical import is_physical_value, physical_value
from ccssniff.standards import SequenceTable, TABLES, table_for_namespace

# The summary's phases, by the same rule (ccssniff/decode/phases.py); the session model keeps only
# each phase's seconds and frames, the report needs where each one lies in time.
PHASE_ORDER = PHASES

_CHARGE_LOOP_RESPONSES = ("CurrentDemandRes", "DC_ChargeLoopRes")
_SOC_FIELDS = ("EVRESSSOC", "PresentSOC")
# Quantities worth a line: physical values with these units, plus SOC and the meter reading.
_PLOTTED_UNITS = frozenset(("V", "A", "W", "Wh"))
_SKIPPED_WORDS = ("Ripple", "Tolerance", "Regulation", "Nominal", "Minimum", "Min")
_SKIPPED_NAMES: dict[str, bool] = {}  # element name -> skipped, decided once per name
MAX_SERIES_PER_SESSION = 48
MAX_LADDER_MESSAGES = 400
MAX_VERDICTS = 2000
MAX_LIMITER_BANDS = 5000
SLOWEST_COUNT = 5
PRESENT_POWER = "present power (EVSEPresentVoltage x EVSEPresentCurrent)"
TARGET_POWER = "target power (EVTargetVoltage x EVTargetCurrent)"
SOC = "SOC"
METER = "MeterReading"

@dataclass
class PhaseSpan:
    first_time: float
    last_time: float
    first_frame: int
    last_frame: int

    @property
    def duration(self) -> float:
        return self.last_time - self.first_time

    def extend(self, time: float, frame: int) -> None:
        self.last_time = time
        self.last_frame = frame


@dataclass
class Verdict:
    kind: str
    name: str
    frame: int
    time: float
    text: str
    caused_by: Any = None


@dataclass
class ResponseTime:
    seconds: float
    message: str
    time: float
    frame: int
    timeout: float | None

    def __lt__(self, other: "ResponseTime") -> bool:
        return self.seconds < other.seconds


@dataclass
class LadderStep:
    time: float
    frame: int
    name: str
    src: str
    dst: str
    detail: str


def _spans_add(spans: dict[str, PhaseSpan], phase: str, time: float, frame: int) -> None:
    span = spans.get(phase)
    if span is None:
        spans[phase] = PhaseSpan(time, time, frame, frame)
    else:
        span.extend(time, frame)


def _base(name: str) -> str:
    return name[:-3] if name.endswith(("Req", "Res")) else name





@dataclass
class SessionData:
    """What one V2G connection contributes to the report beyond its summary entry."""

    connection: int
    protocol: str | None = None
    table: SequenceTable | None = None
    first_time: float | None = None
    last_time: float | None = None
    first_frame: int | None = None
    last_frame: int | None = None
    phases: dict[str, PhaseSpan] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=dict)
    limiter_bands: list[list] = field(default_factory=list)  # [start, end, limiter]
    response_times: dict[str, Series] = field(default_factory=dict)
    slowest: list[ResponseTime] = field(default_factory=list)  # a min-heap of the slowest few
    schema_violations: list[Verdict] = field(default_factory=list)
    tls_findings: list[Verdict] = field(default_factory=list)
    dropped_verdicts: int = 0
    late_responses: int = 0  # answered later than V2G_EVCC_Msg_Timeout
    messages: int = 0
    session_setup_response: tuple[float, int] | None = None  # (time, frame) of SessionSetupRes
    _pending: tuple[str, float, int] | None = None
    _phase_rule: PhaseRule = field(default_factory=PhaseRule)

    def touch(self, event: Event) -> None:
        if self.first_time is None:
            self.first_time, self.first_frame = event.time, event.frame
        self.last_time, self.last_frame = event.time, event.frame

    # --- V2G messages ---------------------------------------------------------------------

    def message(self, event: Event) -> None:
        self.messages += 1
        name = event.name
        base = _base(name)
        content = content_of(event.message)
        _spans_add(self.phases, self._phase(base, content), event.time, event.frame)
        if name == "SessionSetupRes" and self.session_setup_response is None:
            self.session_setup_response = (event.time, event.frame)
        self._values(name, content, event.time)
        if name.endswith("Req"):
            self._pending = (base, event.time, event.frame)
        elif name.endswith("Res") and self._pending is not None and self._pending[0] == base:
            self._response_time(base, event.time - self._pending[1], event.time, event.frame)
            self._pending = None
        violations = getattr(event.message, "schema_violations", None)
        if violations:
            for text in violations:
                self._keep(self.schema_violations, Verdict("schema", name, event.frame, event.time, str(text)))

    def _phase(self, base: str, content: Mapping[str, Any]) -> str:
        return self._phase_rule.phase(base, content)

    def _response_time(self, base: str, seconds: float, time: float, frame: int) -> None:
        series = self.response_times.get(base)
        if series is None:
            series = self.response_times[base] = Series("s")
        series.add(time, seconds)
        timeout = self.table.msg_timeout(base) if self.table is not None else None
        if timeout is not None and seconds > timeout:
            self.late_responses += 1
        entry = ResponseTime(seconds, base, time, frame, timeout)
        if len(self.slowest) < SLOWEST_COUNT:
            heapq.heappush(self.slowest, entry)
        elif seconds > self.slowest[0].seconds:
            heapq.heapreplace(self.slowest, entry)

    def _series(self, name: str, unit: str | None) -> Series | None:
        series = self.series.get(name)
        if series is None:
            if len(self.series) >= MAX_SERIES_PER_SESSION:
                return None
            series = self.series[name] = Series(unit)
        return series

    def _values(self, name: str, content: Mapping[str, Any], time: float) -> None:
        found: dict[str, tuple[float, str | None]] = {}
        _physical_values(content, found, 4)
        for element, (number, unit) in found.items():
            series = self._series(element, unit)
            if series is not None:
                series.add(time, number)
        if name.endswith("Res"):
            volts, amps = found.get("EVSEPresentVoltage"), found.get("EVSEPresentCurrent")
            if volts is not None and amps is not None:
                series = self._series(PRESENT_POWER, "W")
                if series is not None:
                    series.add(time, volts[0] * amps[0])
            if name in _CHARGE_LOOP_RESPONSES:
                self._limitation(limiting_side(content), time)
        else:
            volts, amps = found.get("EVTargetVoltage"), found.get("EVTargetCurrent")
            if volts is not None and amps is not None:
                series = self._series(TARGET_POWER, "W")
                if series is not None:
                    series.add(time, volts[0] * amps[0])

    def _limitation(self, limiter: str, time: float) -> None:
        bands = self.limiter_bands
        if bands:
            bands[-1][1] = time
            if bands[-1][2] == limiter:
                return
        if len(bands) < MAX_LIMITER_BANDS:
            bands.append([time, time, limiter])

    def use_table(self, table: SequenceTable) -> None:
        """The schema is known (the handshake's response came first): judge what was timed before it."""
        first = self.table is None
        self.table = table
        self.protocol = table.protocol
        if not first:
            return
        for entry in self.slowest:
            entry.timeout = table.msg_timeout(entry.message)
        for message, series in self.response_times.items():
            timeout = table.msg_timeout(message)
            if timeout is not None:
                self.late_responses += sum(1 for seconds in series.values if seconds > timeout)

    # --- other events -----------------------------------------------------------------------

    def tls(self, event: Event) -> None:
        if event.name == "TLS session":
            text = ", ".join(f"{key} {value}" for key, value in event.fields.items())
            self._keep(self.tls_findings, Verdict("tls", event.name, event.frame, event.time, text))
        elif "alert" in event.name.lower() or "fail" in event.name.lower():
            self._keep(self.tls_findings, Verdict("tls", event.name, event.frame, event.time, event.name))

    def _keep(self, into: list[Verdict], verdict: Verdict) -> None:
        if len(into) < MAX_VERDICTS:
            into.append(verdict)
        else:
            self.dropped_verdicts += 1


def _physical_values(content: Mapping[str, Any], found: dict[str, tuple[float, str | None]], depth: int) -> None:
    """Every plotted quantity in the first levels of a message: element name -> (number, unit)."""
    for name, value in content.items():
        if type(value) is dict:
            if "Value" in value and is_physical_value(value):
                skipped = _SKIPPED_NAMES.get(name)
                if skipped is None:
                    skipped = _SKIPPED_NAMES[name] = any(word in name for word in _SKIPPED_WORDS)
                if skipped or name in found:
                    continue
                number, unit = physical_value(value, name)
                if unit in _PLOTTED_UNITS:
                    found[name] = (number, unit)
            elif depth:
                _physical_values(value, found, depth - 1)
        elif name in _SOC_FIELDS and isinstance(value, (int, float)) and not isinstance(value, bool):
            found.setdefault(SOC, (float(value), "%"))
        elif name == METER and isinstance(value, int) and not isinstance(value, bool):
            found.setdefault(METER, (float(value), "Wh"))


@dataclass
class SlacData:
    """The HomePlug side: the ladder, attenuation groups per answering EVSE, SLAC spans."""

    ladder: list[LadderStep] = field(default_factory=list)
    ladder_dropped: int = 0
    attenuation: dict[str, list[int]] = field(default_factory=dict)  # EVSE MAC -> groups (dB)
    attenuation_frames: dict[str, int] = field(default_factory=dict)
    responders: list[str] = field(default_factory=list)  # EVSE MACs answering CM_SLAC_PARAM.REQ
    ev_mac: str | None = None
    matched: bool = False

    def add(self, event: Event, groups: list[int] | None) -> None:
        fields = event.fields
        name = event.name
        src, dst = str(fields.get("src", "?")), str(fields.get("dst", "?"))
        if name == "CM_SLAC_PARAM.REQ" and self.ev_mac is None:
            self.ev_mac = src
        elif name == "CM_SLAC_PARAM.CNF" and src not in self.responders:
            self.responders.append(src)
        elif name == "CM_SLAC_MATCH.CNF":
            self.matched = True
        elif name == "CM_ATTEN_CHAR.IND" and groups is not None:
            self.attenuation[src] = groups
            self.attenuation_frames[src] = event.frame
            if src not in self.responders:
                self.responders.append(src)
        if not name.startswith("CM_"):
            return  # vendor diagnostics (Qualcomm VS_*, unnamed MMTYPEs) are not part of SLAC
        if len(self.ladder) < MAX_LADDER_MESSAGES:
            detail = ", ".join(f"{k} {v}" for k, v in fields.items()
                               if k not in ("src", "dst", "nmk", "new_key", "run_id"))
            self.ladder.append(LadderStep(event.time, event.frame, name, src, dst, detail))
        else:
            self.ladder_dropped += 1


@dataclass
class TraceData:
    path: str
    start: float | None = None
    end: float | None = None
    phases: dict[str, PhaseSpan] = field(default_factory=dict)  # SLAC, SDP
    slac: SlacData = field(default_factory=SlacData)
    sessions: dict[int, SessionData] = field(default_factory=dict)
    trace_verdicts: list[Verdict] = field(default_factory=list)


class TraceCollector:
    """Pass ``collector.on_event`` and ``collector.on_packet`` to ``decode_trace``."""

    def __init__(self, path: str) -> None:
        self.data = TraceData(path)
        self._last_packet: Any = None

    def on_packet(self, count: int, packet: Any) -> None:
        # Kept only so that the events of this packet can reach its bytes (attenuation groups).
        self._last_packet = packet

    def on_event(self, event: Event, start: float | None) -> None:
        data = self.data
        if data.start is None:
            data.start = start if start is not None else event.time
        data.end = event.time
        kind = event.kind
        if event.connection is not None:
            session = data.sessions.get(event.connection)
            if session is None:
                session = data.sessions[event.connection] = SessionData(event.connection)
            session.touch(event)
            if kind == ev.V2G:
                if event.message is not None:
                    session.message(event)
            elif kind == ev.SCHEMA:
                self._schema(session, event)
            elif kind == ev.TLS:
                session.tls(event)
        elif kind == ev.HOMEPLUG:
            if event.name.startswith(("CM_SLAC", "CM_START_ATTEN", "CM_ATTEN", "CM_MNBC")):
                _spans_add(data.phases, "SLAC", event.time, event.frame)
            groups = self._attenuation_groups(event) if event.name == "CM_ATTEN_CHAR.IND" else None
            data.slac.add(event, groups)
        elif kind == ev.SDP:
            _spans_add(data.phases, "SDP", event.time, event.frame)
        elif kind == ev.ERROR and len(data.trace_verdicts) < MAX_VERDICTS:
            data.trace_verdicts.append(Verdict("decode error", event.name, event.frame, event.time,
                                               str(event.fields.get("reason") or event.name)))

    @staticmethod
    def _schema(session: SessionData, event: Event) -> None:
        namespace = event.fields.get("namespace")
        table = table_for_namespace(namespace) if namespace else None
        if table is None:
            protocol = event.fields.get("protocol")
            key = next((key for key, text in PROTOCOL_NAMES.items() if text == protocol), None)
            table = TABLES.get(key) if key else None
        if table is not None:
            session.use_table(table)

    def _attenuation_groups(self, event: Event) -> list[int] | None:
        packet = self._last_packet
        if packet is None or packet.index != event.frame:
            return None
        try:
            from ccssniff.capture.link import decode_link
            from ccssniff.homeplug import parse_frame
            link = decode_link(packet.linktype, packet.data)
            if link is None:
                return None
            mme = parse_frame((link.dst or b"\xff" * 6) + link.src + b"\x88\xe1" + link.payload)
            groups = getattr(mme, "aag", None)
            return [int(value) for value in groups] if groups else None
        except (ImportError, ValueError):
            return None
