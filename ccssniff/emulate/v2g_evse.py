"""The EVSE's V2G application layer, sans-IO (DIN 70121 DC, ISO 15118-2 and -20 DC and AC).

Decoded request mappings and times go in; response mappings (with the schema to encode them
with) and events come out. The sequence is checked by the shared SequenceTracker on the same
table the PEV and the decoder read; the values come from the simulated power stage, whose
contents per standard live in v2g_din_iso2 and v2g_iso20.

The driver steps the DC circuit (``DcCircuit.step``) as time passes; AC energy goes through
the car's on-board charger, which this machine accounts for itself with ``PowerStage.step_ac``
over the time between the messages it sees (and whenever ``advance_ac`` is called).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ccssniff.emulate.physics import DcCircuit
from ccssniff.emulate.v2g_din_iso2 import DinIso2Evse
from ccssniff.emulate.v2g_iso20 import Iso20Evse
from ccssniff.emulate.v2g_messages import (
    SESSION_ID_NONE,
    Output,
    SendMessage,
    SessionEnded,
    as_list,
    check_options,
    handshake_namespace,
    protocol_version,
    timed_table,
    wrap,
)
from ccssniff.standards import SequenceTracker, message_parts, session_id_of
from ccssniff.standards.apphandshake import PROTOCOL_BY_NAMESPACE

__all__ = ["Output", "SendMessage", "SessionEnded", "V2gEvse"]

AC_PHYSICS_STEP = 0.05  # s


class V2gEvse:
    """One TCP connection's worth of SECC: handshake, then the protocol it picked."""

    def __init__(self, circuit: DcCircuit, protocols: tuple[str, ...] = ("iso20", "iso2", "din"),
                 mode: str = "dc", evse_id: str = "DE*CCS*E0001",
                 new_session_id: Callable[[], bytes] | None = None,
                 payment: str = "ExternalPayment", relaxed_timing: float = 1.0, verifier: Any = None) -> None:
        self.circuit = circuit
        self.verifier = verifier  # Plug & Charge contract checks (emulate/pnc.py), ISO 15118-2
        self.protocols = check_options(protocols, mode)  # the ones this EVSE speaks
        self.mode = mode
        self.evse_id = evse_id
        self.payment = payment
        self._new_session_id = new_session_id or (lambda: bytes.fromhex("0102030405060708"))
        self.relaxed_timing = relaxed_timing  # multiplies every timeout we enforce (timed_table)
        self.protocol: str | None = None
        self.session_id: bytes | None = None
        self.tracker: SequenceTracker | None = None
        self.ended: SessionEnded | None = None
        self._contents: DinIso2Evse | Iso20Evse | None = None
        # until one is chosen
        self._handshake = SequenceTracker(timed_table(self.protocols[0], relaxed_timing))
        self._ac_time: float | None = None

    # --- time ---

    def next_deadline(self) -> float | None:
        deadline = (self.tracker or self._handshake).next_deadline()
        return None if self.ended or deadline is None else deadline.at

    def on_timer(self, now: float) -> list[Output]:
        if self.ended:
            return []
        self.advance_ac(now)
        violation = (self.tracker or self._handshake).on_timer(now)
        if violation is None:
            return []
        return self._end(False, str(violation))

    # --- messages ---

    def on_message(self, decoded: Mapping[str, Any], now: float) -> list[Output]:
        if self.ended:
            return []
        self.advance_ac(now)
        name, content = message_parts(decoded)
        if name == "supportedAppProtocolReq":
            return self._handshake_response(content, now)
        if self.tracker is None or self._contents is None:
            return self._end(False, f"{name} before the application handshake")
        base = name.removesuffix("Req")
        violation = self.tracker.on_request(name, content, now)
        if name != "SessionSetupReq" and session_id_of(decoded) != self.session_id:
            code = "FAILED_UnknownSession"
        elif violation is not None:
            code = "FAILED_SequenceError"
        elif name == "SessionSetupReq":
            offered = session_id_of(decoded)
            if offered and offered != SESSION_ID_NONE and offered == self.session_id:
                code = "OK_OldSessionJoined"
            else:
                code = "OK_NewSessionEstablished"
                self.session_id = self._new_session_id()
        else:
            check = getattr(self._contents, "check_identification", None)
            code = (check(name, decoded, content) if check else None) or \
                self._contents.serve(base, content, now) or "OK"
        try:
            fields = self._contents.report(base, content, now)
        except LookupError:  # a request of the standard that this EVSE cannot answer at all
            self.tracker.fail(f"{name} is not emulated")
            return self._end(False, f"{name} is not emulated")
        response = {"ResponseCode": code, **fields}
        self.tracker.on_response(base + "Res", response, now)
        outputs: list[Output] = [wrap(self.protocol, self.session_id or SESSION_ID_NONE,
                                      base + "Res", response, now)]
        if self.tracker.finished:
            ok = self.tracker.state == "Ended"
            outputs += self._end(ok, "SessionStop" if ok else (self.tracker.reason or code))
        return outputs

    def _handshake_response(self, content: Mapping[str, Any], now: float) -> list[Output]:
        if self.tracker is not None:  # a second handshake on one connection
            return self._end(False, "supportedAppProtocolReq after the handshake")
        self._handshake.on_request("supportedAppProtocolReq", content, now)
        offers = sorted(as_list(content.get("AppProtocol")), key=lambda p: int(p["Priority"]))
        for offer in offers:
            namespace = offer["ProtocolNamespace"]
            protocol = PROTOCOL_BY_NAMESPACE.get(namespace, (None,))[0]
            if protocol in self.protocols \
                    and namespace == handshake_namespace(protocol, self.mode) \
                    and int(offer["VersionNumberMajor"]) == protocol_version(protocol)[0]:
                self._choose(protocol)
                self.tracker.on_request("supportedAppProtocolReq", content, now)
                response = {"ResponseCode": "OK_SuccessfulNegotiation",
                            "SchemaID": int(offer["SchemaID"])}
                self.tracker.on_response("supportedAppProtocolRes", response, now)
                return [SendMessage("appHandshake", {"supportedAppProtocolRes": response})]
        response = {"ResponseCode": "Failed_NoNegotiation"}
        return [SendMessage("appHandshake", {"supportedAppProtocolRes": response}),
                *self._end(False, "no common protocol in the handshake")]

    def _choose(self, protocol: str) -> None:
        self.protocol = protocol
        self.tracker = SequenceTracker(timed_table(protocol, self.relaxed_timing))
        if protocol == "iso20":
            self._contents = Iso20Evse(self.circuit, self.mode, self.evse_id, self.verifier)
        else:
            self._contents = DinIso2Evse(protocol, self.circuit, self.mode, self.evse_id,
                                         self.payment, self.verifier)

    def advance_ac(self, now: float) -> None:
        """Deliver AC energy for the time since the last event, while charging. Every event
        does this; a driver calls it between events too, to show the power stage's present state."""
        stage = self.circuit.stage
        if self.mode == "ac" and self._ac_time is not None and stage.mode == stage.CHARGE:
            elapsed = now - self._ac_time
            while elapsed > 1e-9:
                step = min(AC_PHYSICS_STEP, elapsed)
                stage.step_ac(step, self.circuit.battery)
                elapsed -= step
        self._ac_time = now if self._ac_time is None else max(self._ac_time, now)

    # --- internals ---

    def _end(self, ok: bool, reason: str) -> list[Output]:
        self.ended = SessionEnded(ok, reason)
        self.circuit.stage.stop()
        self.circuit.contactors_closed = False
        return [self.ended]
