"""What the standards say, as data: message sequences, timers and enumerations.

Read by ccssniff.emulate (both stacks) and ccssniff.decode (the sequence check) alike.

Modules
-------
``din``, ``iso2``, ``iso20``
    ``SEQUENCE`` (a :class:`~ccssniff.standards.sequence.SequenceTable`), ``TRANSITIONS`` (the
    table itself: state -> {request key -> state after the response}), ``MSG_TIMEOUTS``
    (V2G_EVCC_Msg_Timeout per request), ``PERFORMANCE_TIMES`` (din/iso2), the sequence and loop
    timers as ``V2G_*`` constants, ``NAMESPACE``/``VERSION`` for the handshake, and the
    enumerations as ``str`` enums (``ResponseCode``, ``EVSEProcessing``/``Processing``, ...).
    ``iso20.schema_for_message(name)`` gives the openv2gx schema of an ISO-20 message.
``apphandshake``
    the SupportedAppProtocol namespace, ``ResponseCode`` and ``PROTOCOL_BY_NAMESPACE``.
``slac``
    ISO 15118-3 timers (``TT_*``, ``TP_*``, seconds) and counts (``C_EV_MATCH_MNBC`` ...).
``sdp``
    port, payload types, ``Security``/``Transport`` codes, the client retry schedule, layouts.
``sequence``
    the shared checker. Typical use, whichever side you are::

        tracker = SequenceTracker(table_for_protocol("iso2"))
        violation = tracker.on_message("SessionSetupReq", content, time=t)   # None if allowed
        tracker.state, tracker.pending, tracker.allowed_requests(), tracker.next_deadline()
        tracker.on_timer(now)    # fires the response / sequence timeout once it has passed

    Names are element names ("CableCheckReq"); ``content`` is the message element's mapping
    (see :func:`message_parts`); ``time`` in seconds is optional (no timing checks without it).
    A violation is a :class:`~ccssniff.standards.sequence.Violation` (``kind``, ``message``,
    ``state``, ``expected``, ``detail``); the tracker never raises on bad traffic.
"""

from __future__ import annotations

from typing import Any, Mapping

from . import apphandshake, din, iso2, iso20, sdp, slac
from .sequence import (ENDED, FAILED, Deadline, SequenceTable, SequenceTracker, Violation,
                       ViolationKind, base_name, is_request, is_response)

TABLES: dict[str, SequenceTable] = {"din": din.SEQUENCE, "iso2": iso2.SEQUENCE,
                                    "iso20": iso20.SEQUENCE}


def table_for_protocol(protocol: str) -> SequenceTable:
    """'din', 'iso2' or 'iso20' -> its sequence table (KeyError otherwise)."""
    return TABLES[protocol]


def table_for_namespace(namespace: str) -> SequenceTable | None:
    """The table of a protocol namespace from the handshake; None for one we do not know."""
    entry = apphandshake.PROTOCOL_BY_NAMESPACE.get(namespace)
    return TABLES[entry[0]] if entry else None


def message_parts(decoded: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """A decoded message mapping -> (message element name, its content mapping).

    DIN and ISO-2 wrap the message in V2G_Message/Body; ISO-20 and the handshake use the
    message as the root element.
    """
    if len(decoded) != 1:
        raise ValueError(f"a decoded message has one root element, got {list(decoded)}")
    ((root, content),) = decoded.items()
    if root == "V2G_Message":
        body = content.get("Body") or {}
        names = [key for key in body if not key.startswith("@")]
        if len(names) != 1:
            raise ValueError(f"V2G_Message Body holds {names or 'nothing'}, expected one message")
        return names[0], body[names[0]] or {}
    return root, content or {}


def session_id_of(decoded: Mapping[str, Any]) -> bytes | None:
    """The header's SessionID as bytes (None for the handshake, which has no header).

    Accepts binary as bytes (openv2gx) or as hex text (XML renderings).
    """
    ((root, content),) = decoded.items()
    header = (content or {}).get("Header") or {}
    session_id = header.get("SessionID")
    if session_id is None:
        return None
    return bytes.fromhex(session_id) if isinstance(session_id, str) else bytes(session_id)


__all__ = [
    "ENDED", "FAILED", "TABLES", "Deadline", "SequenceTable", "SequenceTracker", "Violation",
    "ViolationKind", "apphandshake", "base_name", "din", "is_request", "is_response", "iso2",
    "iso20", "message_parts", "sdp", "session_id_of", "slac", "table_for_namespace",
    "table_for_protocol",
]
