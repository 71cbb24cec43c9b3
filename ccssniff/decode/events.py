"""What the pipeline reports: one small record per meaningful thing, never one per frame."""
from __future__ import annotations

from typing import Any

# Event kinds
HOMEPLUG = "homeplug"          # a HomePlug management message (SLAC, SET_KEY, vendor)
NEIGHBOR = "neighbor"          # ICMPv6 neighbour solicitation / advertisement
SDP = "sdp"                    # SDP request or response
CONNECTION = "connection"      # a V2G TCP connection opened, closed or reset
SCHEMA = "schema"              # the schema a connection uses: negotiated, assumed or forced
V2G = "v2g"                    # a decoded V2G message
TLS = "tls"                    # TLS seen on a V2G connection
SEQUENCE = "sequence"          # a violation of the standard's message sequence or timing
ERROR = "error"                # something that could not be decoded; decoding goes on

EV_TO_EVSE = "EV->EVSE"
EVSE_TO_EV = "EVSE->EV"


class Event:
    """One line of the timeline. ``fields`` holds the kind-specific values (JSON-ready)."""

    __slots__ = ("kind", "time", "frame", "name", "connection", "direction", "fields", "message",
                 "payload", "payload_type")

    def __init__(self, kind: str, time: float, frame: int, name: str, *, connection: int | None = None,
                 direction: str | None = None, fields: dict[str, Any] | None = None, message: Any = None,
                 payload: bytes | None = None, payload_type: int | None = None) -> None:
        self.kind = kind
        self.time = time
        self.frame = frame
        self.name = name
        self.connection = connection
        self.direction = direction
        self.fields = fields if fields is not None else {}
        self.message = message  # openv2gx.Message for V2G events
        self.payload = payload  # the raw V2GTP payload (V2G, SDP) or the undecodable bytes (ERROR)
        self.payload_type = payload_type

    @property
    def is_problem(self) -> bool:
        return self.kind in (ERROR, SEQUENCE)

    def __repr__(self) -> str:
        return f"Event({self.kind}, {self.name!r}, frame={self.frame}, {self.fields!r})"
