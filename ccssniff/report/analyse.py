"""One trace in, what its report shows out: the decode summary plus the collected detail.

The summary (``TraceSession.to_dict()``) is the authority for every number it has (outcomes,
durations, peaks, who limited the power); the collector adds what the summary does not keep.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ccssniff.capture.reader import read_packets
from ccssniff.decode.trace import decode_trace
from ccssniff.report.collect import (PHASE_ORDER, PhaseSpan, SessionData, TraceCollector,
                                     TraceData, Verdict)
from ccssniff.report.plots import PhaseBar
from ccssniff.standards import slac as slac_std

# Loop limits per phase: the request names whose loop timeout bounds the phase, and its name.
_PHASE_LOOP_REQUESTS = {
    "authorization": (("ContractAuthentication", "Authorization"), "V2G_EVCC_Ongoing_Timeout"),
    "parameter discovery": (("ChargeParameterDiscovery", "ScheduleExchange"), "V2G_EVCC_Ongoing_Timeout"),
    "cable check": (("CableCheck", "DC_CableCheck"), "V2G_EVCC_CableCheck_Timeout"),
    "pre-charge": (("PreCharge", "DC_PreCharge"), "V2G_EVCC_PreCharge_Timeout"),
}
COMMUNICATION_SETUP = "communication setup"  # from the first SDP request to SessionSetupRes
SLAC_LIMIT_NAME = "TT_matching_repetition"


@dataclass
class SessionReport:
    summary: dict[str, Any]
    data: SessionData
    bars: list[PhaseBar]
    shares: dict[str, float]  # limiter -> share of charge-loop time (0..1)
    verdict_groups: list[tuple[Verdict, list[Verdict]]]


@dataclass
class FileReport:
    path: str
    summary: dict[str, Any]
    data: TraceData
    sessions: list[SessionReport] = field(default_factory=list)
    trace_bars: list[PhaseBar] = field(default_factory=list)

    @property
    def origin(self) -> float:
        return self.data.start or 0.0


def analyse_file(path: Path | str, on_packet: Callable[[int, Any], None] | None = None) -> FileReport:
    """Decode ``path`` once and gather everything its report shows."""
    collector = TraceCollector(str(path))

    def packet_seen(count: int, packet: Any) -> None:
        collector.on_packet(count, packet)
        if on_packet is not None:
            on_packet(count, packet)

    trace = decode_trace(read_packets(path), on_event=collector.on_event, on_packet=packet_seen)
    summary = trace.to_dict()
    return assemble(str(path), summary, collector.data)


def assemble(path: str, summary: dict[str, Any], data: TraceData) -> FileReport:
    report = FileReport(path, summary, data)
    report.trace_bars = [_bar(phase, span, summary.get("phases", {}), None) for phase, span in data.phases.items()]
    sessions = [s for s in data.sessions.values() if s.messages or s.tls_findings]
    by_connection = {entry.get("connection"): entry for entry in summary.get("sessions", [])}
    for session in sessions:
        entry = by_connection.get(session.connection)
        if entry is None:
            continue
        bars = [_bar(phase, _with_frames(session.phases[phase], (entry.get("phase_frames") or {}).get(phase)),
                     entry.get("phases", {}), session)
                for phase in PHASE_ORDER if phase in session.phases]
        communication = _communication_setup(data.phases.get("SDP"), session)
        if communication is not None:
            bars.insert(0, communication)
        limited = entry.get("limited_by") or {}
        total = sum(limited.values())
        shares = {who: seconds / total for who, seconds in limited.items()} if total > 0 else {}
        groups = _group_verdicts(entry["verdicts"], session, entry["outcome"])
        report.sessions.append(SessionReport(entry, session, bars, shares, groups))
    return report


def _bar(phase: str, span: PhaseSpan, summary_phases: dict[str, float], session: SessionData | None) -> PhaseBar:
    stated = summary_phases.get(phase)  # the phases both name alike are the same span
    duration = float(stated) if stated is not None else round(span.duration, 6)
    limit, limit_name = None, None
    if phase == "SLAC":
        limit, limit_name = slac_std.TT_MATCHING_REPETITION, SLAC_LIMIT_NAME
    elif session is not None and session.table is not None and phase in _PHASE_LOOP_REQUESTS:
        requests, name = _PHASE_LOOP_REQUESTS[phase]
        for request in requests:
            if request in session.table.loop_timeouts:
                limit, limit_name = session.table.loop_timeouts[request], name
                break
    return PhaseBar(phase, span, duration, limit, limit_name)


def _with_frames(span: PhaseSpan, frames: Any) -> PhaseSpan:
    """The span with the decoder's first and last frame of the phase, where it states them."""
    if isinstance(frames, (list, tuple)) and len(frames) == 2 and all(isinstance(f, int) for f in frames):
        return PhaseSpan(span.first_time, span.last_time, frames[0], frames[1])
    return span


def _communication_setup(sdp: PhaseSpan | None, session: SessionData) -> PhaseBar | None:
    """SDP to SessionSetupRes, against V2G_EVCC_CommunicationSetup_Timeout."""
    setup = session.session_setup_response
    if sdp is None or setup is None or session.table is None or sdp.first_time > setup[0]:
        return None
    span = PhaseSpan(sdp.first_time, setup[0], sdp.first_frame, setup[1])
    return PhaseBar(COMMUNICATION_SETUP, span, round(span.duration, 6), session.table.communication_setup_timeout,
                    "V2G_EVCC_CommunicationSetup_Timeout")


def _belongs(verdict: dict[str, Any], session: SessionData) -> bool:
    """A verdict is a session's when it names its connection or, naming none, lies in its frames."""
    for key in ("connection", "session"):
        if isinstance(verdict.get(key), int):
            return verdict[key] == session.connection
    frame = verdict.get("frame")
    return isinstance(frame, int) and session.first_frame is not None and \
        session.first_frame <= frame <= (session.last_frame or frame)


def trace_level_verdicts(summary: dict[str, Any], sessions: list[SessionData]) -> list[dict[str, Any]]:
    """The summary's verdicts that belong to no V2G session (SLAC, SDP, before the first connection)."""
    return [entry for entry in summary.get("verdicts") or [] if not any(_belongs(entry, s) for s in sessions)]


def _group_verdicts(verdicts: list[dict[str, Any]], session: SessionData,
                    outcome: dict[str, Any]) -> list[tuple[Verdict, list[Verdict]]]:
    """The summary's verdicts under their causes (``caused_by``: the frame of the cause).

    A failed session's first cause comes first, also when it is no verdict of its own (a TCP
    reset, a timeout at the end of the capture): it then heads the verdicts that follow from it.
    """
    def as_verdict(entry: dict[str, Any]) -> Verdict:
        return Verdict(str(entry.get("kind", "")), str(entry.get("name", "")), int(entry.get("frame") or 0), 0.0,
                       str(entry.get("text", "")), entry.get("caused_by"))

    mine = [as_verdict(entry) for entry in verdicts if _belongs(entry, session)]
    groups: list[tuple[Verdict, list[Verdict]]] = []
    by_frame: dict[int, list[Verdict]] = {}
    first_frame = outcome.get("frame") if outcome.get("result") == "failed" else None
    if first_frame is not None and not any(v.frame == first_frame and v.caused_by is None for v in mine):
        cause = Verdict("outcome", str(outcome.get("result")), int(first_frame), 0.0, str(outcome.get("cause") or ""))
        groups.append((cause, []))
        by_frame[cause.frame] = groups[-1][1]
    for verdict in mine:
        if verdict.caused_by is None:
            groups.append((verdict, []))
            by_frame.setdefault(verdict.frame, groups[-1][1])
    for verdict in mine:
        if verdict.caused_by is not None:
            followers = by_frame.get(verdict.caused_by)
            if followers is None:  # its cause was not kept: it stands on its own
                groups.append((verdict, []))
            else:
                followers.append(verdict)
    # the first cause first, the others in frame order
    groups.sort(key=lambda group: (group[0].frame != first_frame, group[0].frame))
    return groups
