"""The sequence check of the decoder: each V2G connection walks its standard's sequence table.

The tables live in ``ccssniff.standards.<protocol>`` (shared with the emulators); this module only
turns the tracker's violations into events. The handshake is held back until its response names
the protocol, then replayed, so the table sees the whole session from ``supportedAppProtocolReq``.
"""
from __future__ import annotations

import importlib
from typing import Any

from ccssniff.decode import events as ev
from ccssniff.decode.body import content_of
from ccssniff.decode.events import Event
from ccssniff.standards.sequence import SequenceTracker, is_request


def sequence_table(protocol: str | None):
    """The standard's SequenceTable, or None when no table exists for it."""
    if protocol is None:
        return None
    try:
        module = importlib.import_module(f"ccssniff.standards.{protocol}")
    except ImportError:
        return None
    return getattr(module, "SEQUENCE", None)


# Handshake messages kept until the protocol (and so the table) is known; a retrying EV sends few.
_MAX_HELD = 8


class SequenceCheck:
    __slots__ = ("_tracker", "_held", "_mid_session", "_last_time")

    def __init__(self) -> None:
        self._tracker = None
        self._held: list[Event] = []  # handshake messages before the protocol is known
        self._mid_session = False
        self._last_time: float | None = None

    def message(self, connection: Any, event: Event) -> list[Event]:
        self._last_time = event.time
        if self._tracker is None:
            table = sequence_table(connection.schema.protocol)
            if event.name.startswith("supportedAppProtocol"):
                if len(self._held) < _MAX_HELD:
                    self._held.append(event)
                if table is None or not connection.schema.handshake_done:
                    return []
            if table is None:
                return []
            self._tracker = SequenceTracker(table)
            self._mid_session = connection.schema.assumed or not self._held
            replay, self._held = self._held, []
            out: list[Event] = []
            for held in replay:
                out.extend(self._check(connection, held))
            if not any(held is event for held in replay):
                out.extend(self._check(connection, event))
            return out
        return self._check(connection, event)

    def _check(self, connection: Any, event: Event) -> list[Event]:
        violation = self._tracker.on_message(event.name, content_of(event.message), event.time)
        if self._mid_session:
            # The trace starts after the handshake: until the first request has put the tracker
            # in its state, messages are out of order only for us.
            self._mid_session = not is_request(event.name)
            return []
        if violation is None:
            return []
        return [Event(ev.SEQUENCE, event.time, event.frame, violation.kind.value, connection=connection.id,
                      direction=event.direction,
                      fields={"detail": violation.detail, "state": violation.state,
                              "message": violation.message, "expected": list(violation.expected)})]

    def finish(self, connection: Any, time: float, frame: int, capture_ended: bool = False) -> list[Event]:
        """End of the connection: a request still waiting never got its response.

        ``capture_ended``: the connection was still open when the capture stopped at ``time``. A
        request then is a violation only if it had waited longer than the standard allows.
        """
        tracker = self._tracker
        if tracker is None or tracker.pending is None:
            return []
        detail = f"{tracker.pending}Req was never answered"
        if capture_ended:
            deadline = tracker.next_deadline()
            if deadline is None or time <= deadline.at:
                return []  # the capture stopped while the answer could still come
            timeout = tracker.table.msg_timeout(tracker.pending)
            detail = f"{tracker.pending}Req was not answered within {timeout:g} s before the capture ended"
        return [Event(ev.SEQUENCE, time, frame, "missing_response", connection=connection.id,
                      fields={"detail": detail, "state": tracker.state,
                              "message": tracker.pending + "Req",
                              "expected": [tracker.pending + "Res"]})]
