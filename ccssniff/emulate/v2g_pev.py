"""The PEV's V2G application layer, sans-IO (DIN 70121 DC, ISO 15118-2 and -20 DC and AC).

Response mappings and times go in; requests (with their schema) and events come out. A
response never produces the next request at once: the EV thinks first, and the request is
due at a deadline (charge loop every ``loop_interval``, repetitions of an ongoing step every
``repeat_interval``, anything else after ``think_interval``, each drawn from the injected
``random.Random``). ``next_deadline()`` is the earlier of that send time and the response
timeout of the request in flight; ``on_timer(now)`` sends what is due, so each request's own
timeout is measured from when it really left.

It walks the same sequence table as the EVSE and the decoder, and takes its values from the
simulated battery (contents per standard in v2g_din_iso2 and v2g_iso20).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from ccssniff.emulate.physics import DcCircuit
from ccssniff.emulate.v2g_din_iso2 import WELDING_DETECTION_LIMIT, DinIso2Pev, Step
from ccssniff.emulate.v2g_iso20 import Iso20Pev
from ccssniff.emulate.v2g_messages import (
    LOOP_REQUESTS,
    SESSION_ID_NONE,
    Output,
    SendMessage,
    SessionEnded,
    check_options,
    handshake_namespace,
    protocol_version,
    timed_table,
    wrap,
)
from ccssniff.standards import (
    ENDED,
    SequenceTracker,
    message_parts,
    session_id_of,
)

Interval = tuple[float, float]  # seconds, (shortest, longest)
HANDSHAKE: Step = ("supportedAppProtocol", "")
# the EV's MAC address; ISO-20 carries it as text (its EVCCID is an identifierType string)
DEFAULT_EVCC_ID = bytes.fromhex("0a1b2c3d4e5f")


class V2gPev:
    def __init__(self, circuit: DcCircuit, protocols: tuple[str, ...] = ("iso20", "iso2", "din"),
                 mode: str = "dc", evcc_id: bytes = DEFAULT_EVCC_ID,
                 rng: random.Random | None = None,
                 loop_interval: Interval = (0.1, 0.25), repeat_interval: Interval = (0.1, 0.2),
                 think_interval: Interval = (0.01, 0.06), relaxed_timing: float = 1.0,
                 contract: Any = None) -> None:
        self.circuit = circuit
        self.contract = contract  # Plug & Charge credentials (emulate/pnc.py), ISO 15118-2
        self.protocols = check_options(protocols, mode)  # in order of preference (Priority 1 first)
        self.mode = mode
        self.evcc_id = evcc_id
        self.rng = rng or random.Random()
        self.loop_interval = loop_interval
        self.repeat_interval = repeat_interval
        self.think_interval = think_interval
        self.relaxed_timing = relaxed_timing  # multiplies every timeout we enforce (timed_table)
        self._handshake_table = timed_table(self.protocols[0], relaxed_timing)  # until one is chosen
        self.protocol: str | None = None
        self.session_id = SESSION_ID_NONE
        self.tracker: SequenceTracker | None = None
        self.ended: SessionEnded | None = None
        self.stop_requested = False
        self._contents: DinIso2Pev | Iso20Pev | None = None
        self._in_flight: Step | None = None  # the request waiting for its response
        self._sent_at: float | None = None
        self._next: Step | None = None  # the request to send at _next_at
        self._next_at: float | None = None
        self._last_sent: Step | None = None
        self._repeating_since: float | None = None

    # --- time ---

    def next_deadline(self) -> float | None:
        """When on_timer has something to do: a response timeout or the next request."""
        if self.ended:
            return None
        if self._in_flight is not None and self._sent_at is not None:
            return self._sent_at + self._response_timeout(self._in_flight[0])
        return self._next_at

    def on_timer(self, now: float) -> list[Output]:
        if self.ended:
            return []
        if self._in_flight is not None:
            if now < self._sent_at + self._response_timeout(self._in_flight[0]):
                return []
            if self.tracker is not None:
                self.tracker.fail(f"no {self._in_flight[0]}Res within V2G_EVCC_Msg_Timeout")
            return self._end(False, f"no {self._in_flight[0]}Res within V2G_EVCC_Msg_Timeout")
        if self._next is None or now < self._next_at:
            return []
        step, self._next, self._next_at = self._next, None, None
        return self._send(step, now)

    def stop(self) -> None:
        """Ask for an orderly end (PowerDelivery stop, SessionStop) instead of the next charge loop."""
        self.stop_requested = True

    # --- messages ---

    def start(self, now: float) -> list[Output]:
        """The handshake request, at once: the EV offers its protocols, best first."""
        offers = []
        for priority, protocol in enumerate(self.protocols, start=1):
            major, minor = protocol_version(protocol)
            offers.append({"ProtocolNamespace": handshake_namespace(protocol, self.mode),
                           "VersionNumberMajor": major, "VersionNumberMinor": minor,
                           "SchemaID": priority, "Priority": priority})
        self._in_flight, self._sent_at = HANDSHAKE, now
        return [SendMessage("appHandshake", {"supportedAppProtocolReq": {"AppProtocol": offers}})]

    def on_message(self, decoded: Mapping[str, Any], now: float) -> list[Output]:
        if self.ended:
            return []
        name, content = message_parts(decoded)
        code = str(content.get("ResponseCode", ""))
        if self._in_flight is None or name != self._in_flight[0] + "Res":
            detail = f": {code}" if code.lower().startswith("failed") else ""
            return self._end(False, f"unexpected {name}{detail}")
        if code.lower().startswith("failed"):
            if self.tracker:
                self.tracker.on_response(name, content, now)
            return self._end(False, f"{name}: {code}")
        if name == "supportedAppProtocolRes":
            self._choose(self.protocols[int(content["SchemaID"]) - 1])
            self.tracker.on_request("supportedAppProtocolReq", None, self._sent_at)
        elif name == "SessionSetupRes":
            self.session_id = session_id_of(decoded) or SESSION_ID_NONE
        elif session_id_of(decoded) != self.session_id:
            return self._end(False, f"{name} carries another SessionID")
        violation = self.tracker.on_response(name, content, now)
        if violation is not None:
            return self._end(False, str(violation))
        answered, self._in_flight, self._sent_at = self._in_flight, None, None
        if self.tracker.state == ENDED:
            return self._end(True, "SessionStop")
        step = self._contents.first if answered == HANDSHAKE \
            else self._contents.next_step(answered, content)
        if step is None:
            return self._end(False, f"no next request after {name}")
        self._next, self._next_at = step, now + self._think_time(step, answered)
        return []

    # --- internals ---

    def _choose(self, protocol: str) -> None:
        self.protocol = protocol
        self.tracker = SequenceTracker(timed_table(protocol, self.relaxed_timing))
        if protocol == "iso20":
            self._contents = Iso20Pev(self.circuit, self.mode, self.evcc_id.hex().upper(), self.contract)
        else:
            self._contents = DinIso2Pev(protocol, self.circuit, self.mode, self.evcc_id, self.contract)

    def _think_time(self, step: Step, answered: Step) -> float:
        if step[0] in LOOP_REQUESTS:
            low, high = self.loop_interval
        elif step[0] == answered[0]:
            low, high = self.repeat_interval
        else:
            low, high = self.think_interval
        return self.rng.uniform(low, high)

    def _response_timeout(self, base: str) -> float:
        table = self.tracker.table if self.tracker else self._handshake_table
        return table.msg_timeout(base) or 2.0 * self.relaxed_timing

    def _send(self, step: Step, now: float) -> list[Output]:
        if step[0] in LOOP_REQUESTS and (self.stop_requested or self.circuit.battery.charging_complete):
            step = self._contents.stop
        if step == self._contents.welding == self._last_sent \
                and now - self._repeating_since >= WELDING_DETECTION_LIMIT:
            step = self._contents.welding_given_up
        base = step[0]
        if self._last_sent is None or self._last_sent[0] != base:
            self._repeating_since = now
        else:
            limit = self.tracker.table.loop_timeouts.get(base)
            if limit is not None and now - self._repeating_since > limit:
                self.tracker.fail(f"{base} repeated for longer than {limit:g} s")
                return self._end(False, f"{base} repeated for longer than its {limit:g} s limit")
        content = self._contents.build(step, now)
        violation = self.tracker.on_request(base + "Req", content, now)
        if violation is not None:  # our own plan broke the table: a bug, end loudly
            return self._end(False, f"PEV sequence bug: {violation}")
        self._in_flight, self._sent_at, self._last_sent = step, now, step
        output = wrap(self.protocol, self.session_id, base + "Req", content, now)
        finish = getattr(self._contents, "finish", None)
        if finish is not None:
            finish(base, output.message)
        return [output]

    def _end(self, ok: bool, reason: str) -> list[Output]:
        self.ended = SessionEnded(ok, reason)
        self._in_flight = self._next = self._next_at = None
        return [self.ended]
