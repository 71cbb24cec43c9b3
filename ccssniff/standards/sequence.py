"""The shared checker that walks a standard's sequence table (h11's _state.py is the model).

A :class:`SequenceTable` is pure data: which request each state allows and which state follows
its response, plus the timers of the standard. The table does not know which side reads it: the
EVSE machine, the PEV machine and the decoder's sequence check all feed the same
:class:`SequenceTracker`, so no side can drift from what the standard allows.

Messages are named by their XML element names ("SessionSetupReq", "DC_ChargeLoopRes",
"supportedAppProtocolReq"); tables use the base name without the Req/Res suffix. The content,
where given, is the message element's own mapping (as openv2gx decodes it): the tracker reads
only ResponseCode, EVSEProcessing, EVProcessing and the fields the table's variant rules name.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field
from typing import Any, Mapping

ENDED = "Ended"  # the session closed normally (SessionStop answered)
FAILED = "Failed"  # a FAILED response code, a timeout or an unrecoverable violation


@dataclass(frozen=True)
class VariantRule:
    """Splits one request into table keys by a field of its content, e.g. PowerDelivery.Start."""

    field: str
    # maps the field's value (normalised: bools as "true"/"false") to the variant name;
    # None means the value itself is the variant name
    names: Mapping[str, str] | None = None

    def variant(self, content: Mapping[str, Any] | None) -> str | None:
        if not content or self.field not in content:
            return None
        value = content[self.field]
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if self.names is None:
            return text
        return self.names.get(text.lower(), text)


@dataclass(frozen=True)
class SequenceTable:
    """One standard's allowed message sequence and timers, as data."""

    protocol: str
    initial: str
    # state -> {request key -> state after its (successful) response}; a key is a request base
    # name ("CableCheck") or base name and variant ("PowerDelivery.Start")
    transitions: Mapping[str, Mapping[str, str]]
    # request base name -> rule giving the variant part of its key
    variants: Mapping[str, VariantRule] = field(default_factory=dict)
    # V2G_EVCC_Msg_Timeout per request base name (s): the longest wait for the response
    msg_timeouts: Mapping[str, float] = field(default_factory=dict)
    # V2G_SECC_Msg_Performance_Time per request base name (s), where the standard gives it
    performance_times: Mapping[str, float] = field(default_factory=dict)
    # V2G_SECC_Sequence_Timeout (s): the longest wait for the next request after a response
    sequence_timeout: float = 60.0
    # longest total duration (s) of a repeated request: Ongoing loops, CableCheck, PreCharge
    loop_timeouts: Mapping[str, float] = field(default_factory=dict)
    # V2G_EVCC_CommunicationSetup_Timeout (s): from SDP to SessionSetupRes
    communication_setup_timeout: float = 20.0

    def __post_init__(self) -> None:
        targets = {s for row in self.transitions.values() for s in row.values()}
        unknown = targets - set(self.transitions) - {ENDED}
        if unknown or self.initial not in self.transitions:
            raise ValueError(f"{self.protocol}: states without a row: {sorted(unknown)}")

    @property
    def states(self) -> tuple[str, ...]:
        return tuple(self.transitions) + (ENDED, FAILED)

    @functools.cached_property  # asked for every request of every session: computed once per table
    def requests(self) -> frozenset[str]:
        """Every request base name the table knows."""
        return frozenset(key.split(".")[0] for row in self.transitions.values() for key in row)

    @property
    def looping_requests(self) -> frozenset[str]:
        """Requests that may follow themselves whatever the response says (PreCharge, CurrentDemand...)."""
        looping = set()
        for state, row in self.transitions.items():
            for key, target in row.items():
                if key in self.transitions.get(target, {}):
                    looping.add(key.split(".")[0])
        return frozenset(looping)

    def key(self, name: str, content: Mapping[str, Any] | None = None) -> str:
        """Table key of a request: base name, plus ".Variant" where the table splits it."""
        base = base_name(name)
        rule = self.variants.get(base)
        variant = rule.variant(content) if rule else None
        return f"{base}.{variant}" if variant else base

    def msg_timeout(self, name: str) -> float | None:
        return self.msg_timeouts.get(base_name(name))


def base_name(name: str) -> str:
    """'CableCheckReq' -> 'CableCheck' (the names in the tables)."""
    return name[:-3] if name.endswith(("Req", "Res")) else name


def is_request(name: str) -> bool:
    return name.endswith("Req")


def is_response(name: str) -> bool:
    return name.endswith("Res")


class ViolationKind(str, enum.Enum):
    UNEXPECTED_REQUEST = "unexpected_request"  # not allowed in this state (FAILED_SequenceError)
    UNKNOWN_MESSAGE = "unknown_message"  # not in this standard's table at all
    REQUEST_WHILE_PENDING = "request_while_pending"  # a request before the previous one was answered
    UNEXPECTED_RESPONSE = "unexpected_response"  # no request waiting, or an answer to another one
    ONGOING_NOT_REPEATED = "ongoing_not_repeated"  # moved on although EVSEProcessing was Ongoing
    AFTER_END = "after_end"  # a message after SessionStop or after a FAILED response
    RESPONSE_TIMEOUT = "response_timeout"  # later than V2G_EVCC_Msg_Timeout
    SEQUENCE_TIMEOUT = "sequence_timeout"  # next request later than V2G_SECC_Sequence_Timeout
    LOOP_TIMEOUT = "loop_timeout"  # CableCheck / PreCharge / Ongoing loop longer than allowed


@dataclass(frozen=True)
class Violation:
    kind: ViolationKind
    message: str  # the message name that broke the rule ("" for a timer that fired)
    state: str  # the tracker's state when it happened
    expected: tuple[str, ...]  # the request or response names that would have been fine
    detail: str

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.detail}"


@dataclass(frozen=True)
class Deadline:
    """The time by which the next message must arrive, and which timer runs out otherwise."""

    at: float
    kind: ViolationKind
    waiting_for: tuple[str, ...]


class SequenceTracker:
    """Follows one V2G session through a :class:`SequenceTable`.

    ``on_request`` / ``on_response`` (or ``on_message``, which picks by the name's suffix) return
    None when the message is allowed, otherwise a :class:`Violation`; they never raise on bad
    traffic, so a decoder can keep going. After an out-of-order request the tracker resynchronises
    on the state in which that request is allowed, so one error is reported once. Times are
    optional floats in seconds from any origin; without them no timer is checked.
    """

    def __init__(self, table: SequenceTable) -> None:
        self.table = table
        self.state = table.initial
        self.pending: str | None = None  # request base name waiting for its response
        self.reason: str | None = None  # why the session ended in FAILED
        self._pending_key: str | None = None
        self._pending_since: float | None = None
        self._last_response_at: float | None = None
        self._must_repeat: str | None = None  # request that Ongoing processing obliges next
        self._ev_ongoing = False  # the pending request said EVProcessing=Ongoing (ISO 15118-20)
        self._loop_name: str | None = None
        self._loop_started: float | None = None
        self._loop_reported = False

    # --- queries ---------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.state in (ENDED, FAILED)

    def allowed_requests(self) -> tuple[str, ...]:
        """Request element names the next request may have (empty while one is pending)."""
        if self.pending is not None or self.finished:
            return ()
        if self._must_repeat is not None:
            return (self._must_repeat + "Req",)
        names = dict.fromkeys(k.split(".")[0] + "Req" for k in self.table.transitions[self.state])
        return tuple(names)

    def expected_response(self) -> str | None:
        return self.pending + "Res" if self.pending is not None else None

    def next_deadline(self) -> Deadline | None:
        """When the peer must have sent its next message; the machines turn this into timers."""
        if self.finished:
            return None
        if self.pending is not None:
            timeout = self.table.msg_timeouts.get(self.pending)
            if timeout is None or self._pending_since is None:
                return None
            return Deadline(self._pending_since + timeout, ViolationKind.RESPONSE_TIMEOUT,
                            (self.pending + "Res",))
        if self._last_response_at is None:
            return None
        return Deadline(self._last_response_at + self.table.sequence_timeout,
                        ViolationKind.SEQUENCE_TIMEOUT, self.allowed_requests())

    # --- events ----------------------------------------------------------------------------

    def on_message(self, name: str, content: Mapping[str, Any] | None = None,
                   time: float | None = None) -> Violation | None:
        if is_request(name):
            return self.on_request(name, content, time)
        if is_response(name):
            return self.on_response(name, content, time)
        return self._violation(ViolationKind.UNKNOWN_MESSAGE, name, (),
                               f"{name} is neither a request nor a response")

    def on_request(self, name: str, content: Mapping[str, Any] | None = None,
                   time: float | None = None) -> Violation | None:
        base = base_name(name)
        if self.finished:
            return self._violation(ViolationKind.AFTER_END, name, (),
                                   f"{name} after the session {self.state.lower()}")
        if base not in self.table.requests:
            return self._violation(ViolationKind.UNKNOWN_MESSAGE, name, self.allowed_requests(),
                                   f"{name} is not a {self.table.protocol} request")
        violation = None
        if self.pending is not None:
            violation = self._violation(
                ViolationKind.REQUEST_WHILE_PENDING, name, (self.pending + "Res",),
                f"{name} while {self.pending}Req still waits for its response")
        elif time is not None and self._last_response_at is not None \
                and time - self._last_response_at > self.table.sequence_timeout:
            violation = self._violation(
                ViolationKind.SEQUENCE_TIMEOUT, name, self.allowed_requests(),
                f"{name} came {time - self._last_response_at:.3f} s after the previous response "
                f"(V2G_SECC_Sequence_Timeout {self.table.sequence_timeout:g} s)")
        key = self.table.key(name, content)
        row = self.table.transitions[self.state]
        if self._must_repeat is not None and base != self._must_repeat:
            violation = violation or self._violation(
                ViolationKind.ONGOING_NOT_REPEATED, name, (self._must_repeat + "Req",),
                f"{name} although the last {self._must_repeat}Res said Ongoing")
        if key not in row and base in row:
            key = base  # a variant the table does not split on in this state
        if key not in row:
            violation = violation or self._violation(
                ViolationKind.UNEXPECTED_REQUEST, name, self.allowed_requests(),
                f"{name} is not allowed in state {self.state}")
            self._resynchronise(key)
        loop_violation = self._track_loop(base, time, name)
        self._must_repeat = None
        self._ev_ongoing = _says_ongoing(content, "EVProcessing")
        self.pending = base
        self._pending_key = key
        self._pending_since = time
        return violation or loop_violation

    def on_response(self, name: str, content: Mapping[str, Any] | None = None,
                    time: float | None = None) -> Violation | None:
        base = base_name(name)
        if self.pending is None:
            kind = ViolationKind.AFTER_END if self.finished else ViolationKind.UNEXPECTED_RESPONSE
            return self._violation(kind, name, (), f"{name} with no request waiting")
        if base != self.pending:
            return self._violation(ViolationKind.UNEXPECTED_RESPONSE, name, (self.pending + "Res",),
                                   f"{name} answers {self.pending}Req")
        violation = None
        timeout = self.table.msg_timeouts.get(base)
        if time is not None and self._pending_since is not None and timeout is not None \
                and time - self._pending_since > timeout:
            violation = self._violation(
                ViolationKind.RESPONSE_TIMEOUT, name, (name,),
                f"{name} came {time - self._pending_since:.3f} s after the request "
                f"(V2G_EVCC_Msg_Timeout {timeout:g} s)")
        loop_violation = self._track_loop(base, time, name)
        key = self._pending_key
        self.pending = self._pending_key = self._pending_since = None
        self._last_response_at = time
        code = str((content or {}).get("ResponseCode", ""))
        if code.lower().startswith("failed"):
            self.state = FAILED
            self.reason = f"{name}: {code}"
        elif _says_ongoing(content, "EVSEProcessing") or self._ev_ongoing:
            self._must_repeat = base
        else:
            # a request let through while out of step has no transition here: stay put
            self.state = self.table.transitions.get(self.state, {}).get(key, self.state)
        return violation or loop_violation

    def on_timer(self, now: float) -> Violation | None:
        """Fire the deadline if it has passed: the session then ends in FAILED."""
        deadline = self.next_deadline()
        if deadline is None or now < deadline.at:
            return None
        what = " or ".join(deadline.waiting_for) or "a message"
        violation = self._violation(deadline.kind, "", deadline.waiting_for,
                                    f"no {what} by {deadline.at:.3f} s")
        self.state = FAILED
        self.reason = str(violation)
        self.pending = None
        return violation

    def fail(self, reason: str) -> None:
        """End the session because the side reading the table gave up (e.g. a loop timeout)."""
        self.state = FAILED
        self.reason = reason
        self.pending = None

    # --- internals -------------------------------------------------------------------------

    def _violation(self, kind: ViolationKind, name: str, expected: tuple[str, ...],
                   detail: str) -> Violation:
        return Violation(kind, name, self.state, tuple(expected), detail)

    def _resynchronise(self, key: str) -> None:
        base = key.split(".")[0]
        for state, row in self.table.transitions.items():
            if key in row or base in row:
                self.state = state
                return

    def _track_loop(self, base: str, time: float | None, name: str) -> Violation | None:
        """Measure how long a request has been repeated; report once when it overruns."""
        if base != self._loop_name:
            self._loop_name, self._loop_started, self._loop_reported = base, time, False
            return None
        limit = self.table.loop_timeouts.get(base)
        if limit is None or time is None or self._loop_started is None or self._loop_reported:
            return None
        if time - self._loop_started > limit:
            self._loop_reported = True
            return self._violation(ViolationKind.LOOP_TIMEOUT, name, (),
                                   f"{base} repeated for {time - self._loop_started:.3f} s "
                                   f"(limit {limit:g} s)")
        return None


def _says_ongoing(content: Mapping[str, Any] | None, field_name: str) -> bool:
    return bool(content) and str(content.get(field_name, "")).startswith("Ongoing")
