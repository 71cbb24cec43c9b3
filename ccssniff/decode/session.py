"""The session model: what a trace tells about the charging session(s) in it, built from events.

One ``TraceSession`` per file holds the SLAC runs, the SDP exchange and one ``V2gSession`` per V2G
connection. Each gets an outcome (completed, failed, incomplete) with its first cause and frame;
this is the one place verdicts are made, and decode, listen, report and batch all read it.
It keeps aggregates only (first/last times, ranges, counters, a bounded list of verdicts), so
its size does not grow with the trace.
"""
from __future__ import annotations

from typing import Any, Mapping

from ccssniff.decode import events as ev
from ccssniff.decode.body import content_of, header_of
from ccssniff.decode.events import Event
from ccssniff.decode.link_setup import SdpTracker, SlacTracker, is_slac
from ccssniff.decode.measurements import Measurements, find
from ccssniff.decode.phases import PHASES, PhaseRule
from ccssniff.decode.outcome import COMPLETED, FAILED, INCOMPLETE, Outcome, Verdict, Verdicts
from ccssniff.decode.schema import PROTOCOL_NAMES
from ccssniff.decode.sequence import sequence_table
from ccssniff.homeplug.vendor import vendor_of
from ccssniff.ui.values import printable_text

# ISO 15118-20 Table 204: ServiceID of the energy transfer services.
ISO20_ENERGY_SERVICES = {1: "AC", 2: "DC", 3: "WPT", 4: "DC_ACDP", 5: "AC_BPT", 6: "DC_BPT", 7: "DC_ACDP_BPT",
                         8: "MCS", 9: "MCS_BPT"}
_PROTOCOL_KEYS = {name: key for key, name in PROTOCOL_NAMES.items()}
_TIMING_KINDS = ("response_timeout", "sequence_timeout", "loop_timeout")
# Without a table (unknown protocol): how long a request may wait, and the pause between requests.
_DEFAULT_MSG_TIMEOUT = 2.0
_DEFAULT_SEQUENCE_TIMEOUT = 60.0


def _text(value: Any) -> Any:
    return value.hex() if isinstance(value, (bytes, bytearray)) else value


def _side(value: Any) -> str | None:
    return {"EV": "EV", "EVSE": "EVSE"}.get(value)


class V2gSession:
    """One V2G TCP connection: identity, phases, measurements, verdicts and outcome."""

    def __init__(self, connection: int) -> None:
        self.connection = connection
        self.protocol: str | None = None
        self.protocol_assumed = False
        self.ids: dict[str, Any] = {}
        self.energy_transfer_mode: str | None = None
        self.payment_option: str | None = None
        self.phase_seconds: dict[str, float] = {}
        self.phase_frames: dict[str, list[int]] = {}
        self._phase: str | None = None
        self._phase_since = 0.0
        self.values = Measurements()
        self.verdicts = Verdicts()
        self.messages = 0
        self.errors = 0
        self.schema_violations = 0
        self.sequence_violations = 0
        self.signatures: dict[str, int] = {}  # valid / invalid / unverifiable signed messages
        self.tls: dict[str, Any] | None = None
        self.first_frame: int | None = None
        self.last_frame: int | None = None
        self.start_time: float | None = None
        self.last_message: Event | None = None
        self.pending_request: Event | None = None
        self.stop_exchanged: Event | None = None
        self.first_failed_response: Event | None = None
        self.ending: Event | None = None  # the CONNECTION event that closed it
        self._phase_rule = PhaseRule()
        self._assigned_session_id: str | None = None
        self._cause_of_request: dict[int, Verdict] = {}  # request frame -> verdict it caused

    # --- events ----------------------------------------------------------------------------

    def add(self, event: Event) -> None:
        if self.first_frame is None:
            self.first_frame, self.start_time = event.frame, event.time
        self.last_frame = event.frame
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
            self._verdict("error", event, str(event.fields.get("reason", event.name)))
        elif kind == ev.SEQUENCE:
            self.sequence_violations += 1
            verdict_kind = "timing" if event.name in _TIMING_KINDS else "sequence"
            verdict = self._verdict(verdict_kind, event, str(event.fields.get("detail") or event.name))
            if self.pending_request is not None and event.frame == self.pending_request.frame:
                self._cause_of_request.setdefault(event.frame, verdict)
        elif kind == ev.TLS and event.name == "TLS session":
            self.tls = dict(event.fields)
        elif kind == ev.CONNECTION and event.name != "TCP connection":
            self.ending = event

    def _verdict(self, kind: str, event: Event, text: str) -> Verdict:
        verdict = Verdict(kind, event.name, event.frame, event.time, text)
        self.verdicts.add(verdict)
        return verdict

    def _message(self, event: Event) -> None:
        self.messages += 1
        name = event.name
        base = name[:-3] if name.endswith(("Req", "Res")) else name
        content = content_of(event.message)
        self._enter_phase(self._phase_rule.phase(base, content), event)
        signature = event.fields.get("signature")
        if isinstance(signature, dict) and signature.get("result"):
            result = signature["result"]
            self.signatures[result] = self.signatures.get(result, 0) + 1
            if result != "valid":
                self._verdict("signature", event, f"{name}: signature {result}"
                              + (f" ({signature['signature']})" if signature.get("signature") else ""))
        for violation in getattr(event.message, "schema_violations", None) or ():
            self.schema_violations += 1
            self._verdict("schema", event, f"{name}: {violation}")
        if name.endswith("Req"):
            self.pending_request = event
            self._check_session_id(event)
        elif name.endswith("Res"):
            self._response(event, base, content)
            self.pending_request = None
        self.last_message = event
        if base == "SessionSetup":
            self._identity(name, event.message, content)
        elif name.endswith("Req") and base in ("ChargeParameterDiscovery", "ServiceSelection",
                                                "ServicePaymentSelection", "PaymentServiceSelection"):
            self._energy_transfer(base, content)
        if base in ("ServicePaymentSelection", "PaymentServiceSelection") and name.endswith("Req"):
            self.payment_option = _text(content.get("SelectedPaymentOption"))
        elif base == "Authorization" and name.endswith("Req") and "SelectedAuthorizationService" in content:
            self.payment_option = content["SelectedAuthorizationService"]
        elif base == "AuthorizationSetup" or (base == "ServiceSelection" and name.endswith("Req")):
            selected = content.get("SelectedAuthorizationService")
            if selected:
                self.payment_option = selected
        self.values.add(name, base, content, event.time)

    def _enter_phase(self, phase: str, event: Event) -> None:
        if phase == self._phase:
            self.phase_frames[phase][1] = event.frame
            return
        if self._phase is not None:
            self.phase_seconds[self._phase] += event.time - self._phase_since
        self._phase, self._phase_since = phase, event.time
        self.phase_seconds.setdefault(phase, 0.0)
        frames = self.phase_frames.setdefault(phase, [event.frame, event.frame])
        frames[1] = event.frame

    def _response(self, event: Event, base: str, content: Mapping[str, Any]) -> None:
        code = content.get("ResponseCode")
        if isinstance(code, str) and code.startswith("FAILED"):
            verdict = self._verdict("response_code", event,
                                    f"EVSE answered {event.name} {code} at frame {event.frame}")
            if self.first_failed_response is None:
                self.first_failed_response = event
                request = self.pending_request
                if request is not None and request.frame in self._cause_of_request:
                    self._cause_of_request.setdefault(event.frame, self._cause_of_request[request.frame])
                else:
                    self._cause_of_request.setdefault(event.frame, verdict)
        elif base == "SessionStop" and (code is None or str(code).startswith("OK")):
            self.stop_exchanged = self.stop_exchanged or event

    def _check_session_id(self, event: Event) -> None:
        if self._assigned_session_id is None or event.name in ("SessionSetupReq", "supportedAppProtocolReq"):
            return
        used = header_of(event.message).get("SessionID")
        if used is None:
            return
        used = _text(used)
        if used != self._assigned_session_id:
            verdict = self._verdict("session_id", event,
                                    f"EV used SessionID {used}, EVSE had assigned {self._assigned_session_id}")
            self._cause_of_request.setdefault(event.frame, verdict)

    def _identity(self, name: str, message: Any, content: Mapping[str, Any]) -> None:
        if name.endswith("Req") and "EVCCID" in content:
            self.ids["EVCCID"] = _text(content["EVCCID"])
        if name.endswith("Res"):
            if "EVSEID" in content:
                self.ids["EVSEID"] = _text(content["EVSEID"])
                # DIN's EVSEID is hexBinary, but chargers put their text ID (DE*PNX*E12345*1) there
                self.ids["EVSEID_text"] = printable_text(content["EVSEID"])
            session_id = header_of(message).get("SessionID")
            if session_id is not None:
                self.ids["SessionID"] = self._assigned_session_id = _text(session_id)

    def _energy_transfer(self, base: str, content: Mapping[str, Any]) -> None:
        for field in ("EVRequestedEnergyTransferType", "RequestedEnergyTransferMode"):
            if field in content:
                self.energy_transfer_mode = content[field]
                return
        if base == "ServiceSelection":
            selected = content.get("SelectedEnergyTransferService")
            service = selected.get("ServiceID") if isinstance(selected, dict) else find(content, "ServiceID")
            if isinstance(service, int):
                self.energy_transfer_mode = ISO20_ENERGY_SERVICES.get(service, f"service {service}")

    # --- outcome ---------------------------------------------------------------------------

    def _timeouts(self) -> tuple[float, float]:
        """(V2G_EVCC_Msg_Timeout of the pending request, V2G_SECC_Sequence_Timeout) of this protocol."""
        table = sequence_table(_PROTOCOL_KEYS.get(self.protocol, self.protocol))
        if table is None:
            return _DEFAULT_MSG_TIMEOUT, _DEFAULT_SEQUENCE_TIMEOUT
        pending = self.pending_request
        message = table.msg_timeout(pending.name) if pending is not None else None
        return message or _DEFAULT_MSG_TIMEOUT, table.sequence_timeout

    def _silence(self, until: float) -> tuple[float, float, str] | None:
        """(seconds of silence before ``until``, the timeout allowed, what was awaited) if too long."""
        last = self.last_message
        if last is None:
            return None
        message_timeout, sequence_timeout = self._timeouts()
        silence = until - last.time
        if self.pending_request is not None:
            if silence > message_timeout:
                return silence, message_timeout, f"{self.pending_request.name[:-3]}Res"
        elif silence > sequence_timeout:
            return silence, sequence_timeout, "the next request"
        return None

    def end_text(self, capture_end: float) -> str:
        stopped = "SessionStop exchanged, " if self.stop_exchanged is not None else ""
        if self.ending is None or "end of capture" in self.ending.name:
            if stopped:
                return stopped + "capture ended before the TCP connection closed"
            silence = self._silence(capture_end)
            if silence is not None:
                return f"timeout: no {silence[2]} for {silence[0]:.1f} s before the end of the capture"
            return "capture ended mid-session"
        by = _side(self.ending.fields.get("by"))
        if "reset" in self.ending.name:
            return stopped + (f"RST from {by}" if by else "RST")
        if "replaced" in self.ending.name:
            return stopped + "the EV opened a new connection on the same ports"
        if "evicted" in self.ending.name:
            return stopped + "given up: too many connections in the trace (decoder limit)"
        return stopped + (f"FIN from {by}" if by else "TCP connection closed")

    def outcome(self, capture_end: float, sdp_mismatch: Outcome | None = None) -> Outcome:
        if self.stop_exchanged is not None:
            return Outcome(COMPLETED)
        if self.tls is not None and not self.messages:
            return Outcome(INCOMPLETE, "encrypted (TLS) and no keys for it: the messages are not visible; "
                                       "give the session keys with --keylog", self.first_frame)
        failed = self.first_failed_response
        if failed is not None:
            cause = self._cause_of_request.get(failed.frame)
            if cause is not None and cause.frame != failed.frame:
                return Outcome(FAILED, f"{cause.text} at frame {cause.frame} (EVSE then answered "
                                       f"{failed.name} {content_of(failed.message).get('ResponseCode')})",
                               cause.frame)
            return Outcome(FAILED, cause.text if cause else f"EVSE answered {failed.name}", failed.frame)
        mismatch = self.verdicts.first("session_id")
        ending = self.ending
        if ending is None or "end of capture" in ending.name:
            silence = self._silence(capture_end)
            if silence is None:
                last = self.last_message
                where = f" (last: {last.name} at frame {last.frame})" if last is not None else ""
                return Outcome(INCOMPLETE, f"capture ended mid-session{where}",
                               last.frame if last is not None else self.last_frame)
            seconds, allowed, awaited = silence
            last = self.last_message
            return Outcome(FAILED, f"timeout: no {awaited} for {seconds:.1f} s after {last.name} at frame "
                                   f"{last.frame} (the standard allows {allowed:g} s)", last.frame)
        if sdp_mismatch is not None and self.messages <= 2:
            return Outcome(FAILED, f"{sdp_mismatch.cause}; the connection then ended ({self.end_text(capture_end)})",
                           sdp_mismatch.frame)
        if mismatch is not None:
            return Outcome(FAILED, f"{mismatch.text} at frame {mismatch.frame}", mismatch.frame)
        by = _side(ending.fields.get("by"))
        last = self.last_message
        if "evicted" in ending.name:
            return Outcome(INCOMPLETE, "the decoder gave this connection up: too many connections in the trace",
                           ending.frame)
        if last is not None and last.name == "SessionStopReq":
            return Outcome(COMPLETED, f"EV sent SessionStopReq; the connection ended ({self.end_text(capture_end)}) "
                                      "before SessionStopRes", last.frame)
        what = ("reset the TCP connection (RST)" if "reset" in ending.name else
                "left the connection for a new one on the same ports" if "replaced" in ending.name else
                "closed the TCP connection (FIN)")
        who = by or ("EV" if "replaced" in ending.name else "one side")
        waited = ""
        silence = self._silence(ending.time)
        if silence is not None:
            waited = f" after waiting {silence[0]:.1f} s for {silence[2]} (the standard allows {silence[1]:g} s)"
        before = f" after {last.name}" if last is not None else ""
        return Outcome(FAILED, f"{who} {what} at frame {ending.frame}{before}{waited}, without SessionStop",
                       ending.frame)

    def to_dict(self, capture_end: float, sdp_mismatch: Outcome | None = None) -> dict[str, Any]:
        outcome = self.outcome(capture_end, sdp_mismatch)
        cause_verdict = None
        if outcome.result == FAILED and outcome.frame is not None:
            cause_verdict = next((v for v in self.verdicts.kept if v.frame == outcome.frame), None)
        follow_ons = self.verdicts.group_under(outcome.frame if outcome.result == FAILED else None, cause_verdict)
        phases = dict(self.phase_seconds)
        if self._phase is not None and self.last_message is not None:
            phases[self._phase] += self.last_message.time - self._phase_since
        values = self.values.to_dict()
        return {
            "connection": self.connection,
            "protocol": self.protocol,
            "protocol_assumed": self.protocol_assumed,
            **{key: self.ids.get(key) for key in ("EVCCID", "EVSEID", "EVSEID_text", "SessionID")},
            "energy_transfer_mode": self.energy_transfer_mode,
            "payment_option": self.payment_option,
            "outcome": outcome.to_dict(),
            "end": self.end_text(capture_end),
            "start_time": self.start_time,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "duration": round(self.last_message.time - self.start_time, 6) if self.last_message else 0.0,
            "phases": {phase: round(phases[phase], 6) for phase in PHASES if phase in phases},
            "phase_frames": {phase: list(frames) for phase, frames in self.phase_frames.items()},
            **values,
            "messages": self.messages, "errors": self.errors,
            "sequence_violations": self.sequence_violations,
            "schema_violations": self.schema_violations,
            "signatures": dict(self.signatures),
            "verdict_counts": dict(self.verdicts.counts),
            "follow_on_verdicts": follow_ons,
            "verdicts": self.verdicts.to_list(),
            "tls": self.tls,
        }


class TraceSession:
    """Everything one trace holds: the SLAC runs, SDP, and a V2gSession per V2G connection."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.end: float | None = None
        self.frames = 0
        self.slac = SlacTracker()
        self.sdp = SdpTracker()
        self.homeplug_messages = 0
        self.errors = 0
        self.sessions: dict[int, V2gSession] = {}

    def add(self, event: Event) -> None:
        if self.start is None:
            self.start = event.time
        self.end = event.time if self.end is None else max(self.end, event.time)
        kind = event.kind
        if event.connection is not None:
            session = self.sessions.get(event.connection)
            if session is None:
                session = self.sessions[event.connection] = V2gSession(event.connection)
            session.add(event)
        elif kind == ev.HOMEPLUG:
            self.homeplug_messages += 1
            if is_slac(event.name):
                self.slac.add(event)
        elif kind == ev.SDP:
            self.sdp.add(event)
        elif kind == ev.ERROR:
            self.errors += 1

    def finish(self, pipeline: Any) -> None:
        """The trace is over: take the pipeline's totals (the capture may go on after the last event)."""
        self.frames = pipeline.frames
        last = getattr(pipeline, "last_time", None)
        if last is not None:
            self.end = last if self.end is None else max(self.end, last)

    @property
    def reported_sessions(self) -> list[V2gSession]:
        return [s for s in self.sessions.values() if s.messages or s.tls]

    def to_dict(self) -> dict[str, Any]:
        capture_end = self.end if self.end is not None else 0.0
        slac = self.slac.to_dict(capture_end)
        sdp = self.sdp.to_dict(capture_end)
        phases = {}
        if slac is not None:
            phases["SLAC"] = slac["duration"]
        if sdp is not None and sdp["duration"] is not None:
            phases["SDP"] = sdp["duration"]
        mismatch = self.sdp.security_mismatch
        return {
            "frames": self.frames,
            "start_time": self.start,
            "homeplug_messages": self.homeplug_messages,
            "ev_mac": slac["ev_mac"] if slac else None,
            "evse_mac": slac["evse_mac"] if slac else None,
            "ev_vendor": vendor_of(slac["ev_mac"]) if slac and slac["ev_mac"] else None,
            "evse_vendor": vendor_of(slac["evse_mac"]) if slac and slac["evse_mac"] else None,
            "phases": phases,
            "slac": slac,
            "sdp": sdp,
            "sdp_security_requested": sdp["security_requested"] if sdp else [],
            "errors": self.errors,
            "sessions": [s.to_dict(capture_end, mismatch) for s in self.reported_sessions],
        }
