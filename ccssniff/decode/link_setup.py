"""What happens before V2G: the SLAC runs (ISO 15118-3) and the SDP exchange, with outcomes.

Both read the pipeline's HomePlug and SDP events; their outcome says whether the car and the
charger matched / found each other, and if not, where it stopped. A sniffing modem may see only
one side (a stock modem sees only the charger's SLAC frames), so a run starts at whichever of its
messages is seen first.
"""
from __future__ import annotations

from typing import Any

from ccssniff.decode.events import Event
from ccssniff.decode.outcome import COMPLETED, FAILED, INCOMPLETE, Outcome
from ccssniff.standards import slac as timers

_SLAC_PREFIXES = ("CM_SLAC_", "CM_START_ATTEN_CHAR", "CM_ATTEN_CHAR", "CM_MNBC_SOUND", "CM_VALIDATE")
# How long after a request the capture must go on before a missing answer means failure.
_SLAC_ANSWER_WAIT = timers.TT_MATCH_RESPONSE * (timers.C_EV_MATCH_RETRY + 1)
_MAX_RUNS = 64
# ISO 15118-2 SDP: the EV waits TT_SDP (250 ms) per request and repeats it.
_SDP_ANSWER_WAIT = 0.25 * 3


def is_slac(name: str) -> bool:
    return name.startswith(_SLAC_PREFIXES)


class SlacRun:
    """One matching attempt, identified by its RunID."""

    __slots__ = ("run_id", "first_frame", "start", "param_requests", "param_confirms", "evse_macs",
                 "ev_mac", "evse_mac", "match_request", "match_confirm", "last_name", "last_frame", "last_time",
                 "attenuation_db", "nid")

    def __init__(self, run_id: str | None, event: Event) -> None:
        self.run_id = run_id
        self.first_frame = event.frame
        self.start = event.time
        self.param_requests = 0
        self.param_confirms = 0
        self.evse_macs: list[str] = []  # every EVSE that answered CM_SLAC_PARAM (cross-coupling)
        self.ev_mac: str | None = None
        self.evse_mac: str | None = None
        self.match_request: Event | None = None
        self.match_confirm: Event | None = None
        self.last_name = event.name
        self.last_frame = event.frame
        self.last_time = event.time
        self.attenuation_db: float | None = None
        self.nid: str | None = None

    @property
    def matched(self) -> bool:
        return self.match_confirm is not None

    @property
    def duration(self) -> float:
        end = self.match_confirm.time if self.match_confirm is not None else self.last_time
        return end - self.start

    def outcome(self, capture_end: float) -> Outcome:
        if self.matched:
            return Outcome(COMPLETED)
        waited = capture_end - self.last_time
        if self.param_requests and not self.param_confirms:
            if waited < _SLAC_ANSWER_WAIT and self.param_requests <= timers.C_EV_MATCH_RETRY:
                return Outcome(INCOMPLETE, "capture ended while the EV waited for CM_SLAC_PARAM.CNF",
                               self.last_frame)
            return Outcome(FAILED, f"SLAC did not match: {self.param_requests} CM_SLAC_PARAM.REQ, no CNF",
                           self.first_frame)
        if self.match_request is not None:
            if waited < _SLAC_ANSWER_WAIT:
                return Outcome(INCOMPLETE, "capture ended while the EV waited for CM_SLAC_MATCH.CNF",
                               self.match_request.frame)
            return Outcome(FAILED, f"EV sent CM_SLAC_MATCH.REQ at frame {self.match_request.frame}, "
                                   "no CM_SLAC_MATCH.CNF", self.match_request.frame)
        if waited < timers.TT_EVSE_MATCH_SESSION:
            return Outcome(INCOMPLETE, f"capture ended during SLAC (last: {self.last_name})", self.last_frame)
        return Outcome(FAILED, f"SLAC did not match: stopped after {self.last_name} at frame "
                               f"{self.last_frame}, no CM_SLAC_MATCH", self.last_frame)

    def add(self, event: Event) -> None:
        name, fields = event.name, event.fields
        self.last_name, self.last_frame, self.last_time = name, event.frame, event.time
        if name == "CM_SLAC_PARAM.REQ":
            self.param_requests += 1
            if not self.param_confirms:
                # An EV may repeat the request for a minute before a charger answers: the
                # matching time counts from the attempt that was answered.
                self.start = event.time
            self.ev_mac = self.ev_mac or fields.get("src")
        elif name == "CM_SLAC_PARAM.CNF":
            self.param_confirms += 1
            mac = fields.get("src")
            if mac and mac not in self.evse_macs:
                self.evse_macs.append(mac)
            self.ev_mac = self.ev_mac or fields.get("dst")
        elif name == "CM_ATTEN_CHAR.IND":
            average = fields.get("attenuation_avg_db")
            if average is not None:
                self.attenuation_db = average
        elif name == "CM_SLAC_MATCH.REQ":
            self.match_request = self.match_request or event
        elif name == "CM_SLAC_MATCH.CNF" and self.match_confirm is None:
            self.match_confirm = event
            self.evse_mac = fields.get("evse_mac") or fields.get("src")
            self.ev_mac = fields.get("pev_mac") or self.ev_mac or fields.get("dst")
            self.nid = fields.get("nid")

    def to_dict(self, capture_end: float) -> dict[str, Any]:
        return {"run_id": self.run_id, "first_frame": self.first_frame, "last_frame": self.last_frame,
                "start_time": self.start,
                "match_frame": self.match_confirm.frame if self.match_confirm is not None else None,
                "duration": round(self.duration, 6), "param_requests": self.param_requests,
                "evse_macs": list(self.evse_macs), "ev_mac": self.ev_mac, "evse_mac": self.evse_mac,
                "attenuation_db": self.attenuation_db, "nid": self.nid,
                "outcome": self.outcome(capture_end).to_dict()}


class SlacTracker:
    """Every SLAC run of a trace; a CNF whose RunID no request had is a failure of its own."""

    def __init__(self) -> None:
        self.runs: dict[str | None, SlacRun] = {}
        self.run_id_mismatch: Outcome | None = None
        self.messages = 0

    def add(self, event: Event) -> None:
        self.messages += 1
        run_id = event.fields.get("run_id")
        run = self.runs.get(run_id)
        if run is None:
            if event.name == "CM_SLAC_PARAM.CNF" and self._mismatch(event, run_id):
                return
            if len(self.runs) >= _MAX_RUNS:
                del self.runs[next(iter(self.runs))]
            run = self.runs[run_id] = SlacRun(run_id, event)
        run.add(event)

    def _mismatch(self, event: Event, run_id: str | None) -> bool:
        """A CNF for a RunID nobody asked about while a request of the same EV waits."""
        ev_mac = event.fields.get("dst")
        for run in reversed(list(self.runs.values())):
            if run.param_requests and not run.param_confirms and run.ev_mac == ev_mac:
                if self.run_id_mismatch is None:
                    self.run_id_mismatch = Outcome(
                        FAILED, f"CM_SLAC_PARAM.CNF at frame {event.frame} carries RunID {run_id}, "
                                f"the EV's CM_SLAC_PARAM.REQ had {run.run_id}", event.frame)
                return True
        return False

    @property
    def matched_run(self) -> SlacRun | None:
        for run in self.runs.values():
            if run.matched:
                return run
        return None

    def outcome(self, capture_end: float) -> Outcome | None:
        if not self.runs:
            return self.run_id_mismatch
        matched = self.matched_run
        if matched is not None:
            return Outcome(COMPLETED)
        last = next(reversed(self.runs.values()))
        outcome = last.outcome(capture_end)
        if self.run_id_mismatch is not None and outcome.result != COMPLETED:
            return self.run_id_mismatch
        if outcome.result == FAILED and len(self.runs) > 1:
            outcome.cause = f"{outcome.cause} ({len(self.runs)} runs, none matched)"
        return outcome

    def to_dict(self, capture_end: float) -> dict[str, Any] | None:
        outcome = self.outcome(capture_end)
        if outcome is None:
            return None
        # an outcome needs a run: a mismatching RunID is only noticed while a request waits
        chosen = self.matched_run or next(reversed(self.runs.values()))
        return {
            "outcome": outcome.to_dict(),
            "duration": round(chosen.duration, 6),
            "runs": len(self.runs),
            "messages": self.messages,
            "ev_mac": chosen.ev_mac,
            "evse_mac": chosen.evse_mac or next(iter(chosen.evse_macs), None),
            "evse_macs": list(chosen.evse_macs),
            "nid": chosen.nid,
            "attenuation_db": chosen.attenuation_db,
            "run_list": [run.to_dict(capture_end) for run in self.runs.values()],
        }


class SdpTracker:
    """SDP requests and responses: did the EV find the charger, and on the security it asked for?"""

    def __init__(self) -> None:
        self.requests = 0
        self.responses = 0
        self.first_request: Event | None = None
        self.last_request: Event | None = None
        self.first_response: Event | None = None
        self.requested_security: list[str] = []
        self.security_mismatch: Outcome | None = None

    def add(self, event: Event) -> None:
        security = event.fields.get("security")
        if event.name.startswith("SDP request"):
            self.requests += 1
            self.first_request = self.first_request or event
            self.last_request = event
            if security not in self.requested_security:
                self.requested_security.append(security)
        elif event.name.startswith("SDP response"):
            self.responses += 1
            self.first_response = self.first_response or event
            asked = self.last_request.fields.get("security") if self.last_request is not None else None
            # An EV asking for TLS must accept a charger without it; the reverse cannot work.
            if asked == "none" and security == "TLS" and self.security_mismatch is None:
                self.security_mismatch = Outcome(
                    FAILED, f"EVSE offered TLS in its SDP response at frame {event.frame} "
                            "although the EV asked for none", event.frame)

    @property
    def start(self) -> float | None:
        first = self.first_request or self.first_response
        return first.time if first is not None else None

    def outcome(self, capture_end: float) -> Outcome | None:
        if not self.requests and not self.responses:
            return None
        if self.security_mismatch is not None:
            return self.security_mismatch
        if self.responses:
            return Outcome(COMPLETED)
        if capture_end - self.last_request.time < _SDP_ANSWER_WAIT:
            return Outcome(INCOMPLETE, "capture ended while the EV waited for an SDP response",
                           self.last_request.frame)
        return Outcome(FAILED, f"SDP: {self.requests} request(s), no response", self.first_request.frame)

    def to_dict(self, capture_end: float) -> dict[str, Any] | None:
        outcome = self.outcome(capture_end)
        if outcome is None:
            return None
        duration = None
        if self.first_request is not None and self.first_response is not None:
            duration = round(self.first_response.time - self.first_request.time, 6)
        return {"outcome": outcome.to_dict(), "requests": self.requests, "responses": self.responses,
                "security_requested": list(self.requested_security),
                "security_offered": self.first_response.fields.get("security") if self.first_response else None,
                "port": self.first_response.fields.get("port") if self.first_response else None,
                "duration": duration}
