"""One TCP connection that carries (or may carry) V2G: both directions from segments to events."""
from __future__ import annotations

from typing import Any

from ccssniff.decode import events as ev
from ccssniff.decode.events import Event
from ccssniff.decode.net import TCP_FIN, TCP_RST, TCP_SYN, TcpSegment, format_address
from ccssniff.decode.schema import APP_HANDSHAKE, PROTOCOL_NAMES, SchemaSelector, protocol_of_namespace
from ccssniff.decode.sequence import SequenceCheck
from ccssniff.decode.tcp import Gap, StreamItem, StreamReassembler
from ccssniff.decode.tls import TlsTracker, looks_like_tls
from ccssniff.decode.v2gtp import Pdu, V2gtpFramer, is_header_at

# How the connection's content was recognised.
UNDECIDED = "undecided"
V2GTP = "v2gtp"
TLS = "tls"
OTHER = "other"

# A connection on an unknown port must show a V2GTP header within this many data chunks.
_PROBE_CHUNKS = 8

CLIENT, SERVER = 0, 1  # direction index: data sent by the client (EV) or by the server (EVSE)
_DIRECTION_NAMES = (ev.EV_TO_EVSE, ev.EVSE_TO_EV)


class V2gConnection:
    """Endpoints: ``client`` is the EV (EVCC opens the TCP connection), ``server`` the EVSE (SECC)."""

    __slots__ = ("id", "client", "server", "known_port", "content", "streams", "framers", "tls",
                 "schema", "sequence", "_probed", "closed", "decode_exi", "messages")

    def __init__(self, connection_id: int, client: tuple[bytes, int], server: tuple[bytes, int],
                 known_port: bool, forced_schema: str | None, decode_exi: bool) -> None:
        self.id = connection_id
        self.client = client
        self.server = server
        self.known_port = known_port  # 15118 or announced by SDP: V2G even if it starts mid-message
        self.content = UNDECIDED
        self.streams = (StreamReassembler(), StreamReassembler())
        self.framers = (V2gtpFramer(), V2gtpFramer())
        self.tls: tuple[TlsTracker, TlsTracker] | None = None
        self.schema = SchemaSelector(forced_schema)
        self.sequence = SequenceCheck()
        self._probed = [0, 0]
        self.closed = [False, False]
        self.decode_exi = decode_exi
        self.messages = 0

    def describe(self) -> dict[str, Any]:
        return {"client": f"[{format_address(self.client[0])}]:{self.client[1]}",
                "server": f"[{format_address(self.server[0])}]:{self.server[1]}"}

    @property
    def finished(self) -> bool:
        return self.closed[0] and self.closed[1]

    def segment(self, direction: int, segment: TcpSegment, time: float, frame: int) -> list[Event]:
        flags = segment.flags
        stream = self.streams[direction]
        out: list[Event] = []
        if flags & TCP_SYN:
            stream.syn(segment.seq)
            if direction == SERVER and not flags & 0x10:
                return out
        if segment.payload or flags & TCP_FIN:
            items = stream.segment(segment.seq, segment.payload, bool(flags & TCP_FIN))
            if items:
                self._stream(direction, items, time, frame, out)
        if flags & 0x10 and not flags & TCP_SYN:
            items = self.streams[1 - direction].acknowledged(segment.ack)
            if items:
                self._stream(1 - direction, items, time, frame, out)
        if flags & TCP_RST:
            out.extend(self.close(time, frame, reset=True, by=direction))
        elif flags & TCP_FIN and not self.closed[direction]:
            self.closed[direction] = True
            if self.finished:
                out.extend(self.close(time, frame))
        return out

    def close(self, time: float, frame: int, reset: bool = False, by: int | None = None) -> list[Event]:
        """The connection ends (FIN both ways, RST, or end of the trace): flush both directions."""
        out: list[Event] = []
        for direction in (CLIENT, SERVER):
            items = self.streams[direction].flush()
            if items:
                self._stream(direction, items, time, frame, out)
            if self.content == V2GTP:
                self._framed(direction, self.framers[direction].flush(), time, frame, out)
        self.closed = [True, True]
        if self.content in (V2GTP, TLS):
            if self.content == TLS:
                out.append(self._tls_summary(time, frame))
            out.extend(self.sequence.finish(self, time, frame))
            what = "reset" if reset else "closed"
            fields = self.describe()
            if by is not None:
                fields["by"] = "EV" if by == CLIENT else "EVSE"
            fields["messages"] = self.messages
            out.append(Event(ev.CONNECTION, time, frame, f"TCP connection {what}", connection=self.id,
                             fields=fields))
        return out

    # --- stream content ------------------------------------------------------------------------

    def _stream(self, direction: int, items: list[StreamItem], time: float, frame: int,
                out: list[Event]) -> None:
        if self.content == UNDECIDED:
            items = self._recognise(direction, items, time, frame, out)
            if not items:
                return
        if self.content == V2GTP:
            self._framed(direction, self.framers[direction].feed(items), time, frame, out)
        elif self.content == TLS:
            for name in self.tls[direction].feed(items):
                out.append(Event(ev.TLS, time, frame, name, connection=self.id,
                                 direction=_DIRECTION_NAMES[direction]))

    def _recognise(self, direction: int, items: list[StreamItem], time: float, frame: int,
                   out: list[Event]) -> list[StreamItem]:
        """Decide from the first data what the connection carries; returns the items to process."""
        for position, item in enumerate(items):
            if isinstance(item, Gap):
                continue
            if is_header_at(item, 0):
                self.content = V2GTP
            elif looks_like_tls(item) and (self.known_port or self._probed[direction] == 0):
                self.content = TLS
                self.tls = (TlsTracker(), TlsTracker())
            elif self.known_port:
                self.content = V2GTP  # mid-message start on a V2G port: the framer resynchronises
            else:
                self._probed[direction] += 1
                if self._probed[direction] >= _PROBE_CHUNKS:
                    self.content = OTHER
                    return []
                continue
            fields = self.describe()
            fields["content"] = "V2GTP" if self.content == V2GTP else "TLS"
            out.append(Event(ev.CONNECTION, time, frame, "TCP connection", connection=self.id,
                             fields=fields))
            return items[position:]
        return []

    def _framed(self, direction: int, items: list, time: float, frame: int, out: list[Event]) -> None:
        direction_name = _DIRECTION_NAMES[direction]
        for item in items:
            if isinstance(item, Pdu):
                self._pdu(direction, direction_name, item, time, frame, out)
            else:
                out.append(Event(ev.ERROR, time, frame, "stream", connection=self.id,
                                 direction=direction_name, fields={"reason": item.reason},
                                 payload=item.data))

    def _pdu(self, direction: int, direction_name: str, pdu: Pdu, time: float, frame: int,
             out: list[Event]) -> None:
        self.messages += 1
        if not self.decode_exi:
            out.append(Event(ev.V2G, time, frame, "", connection=self.id, direction=direction_name,
                             payload=pdu.payload, payload_type=pdu.payload_type))
            return
        outcome = self.schema.decode(pdu.payload_type, pdu.payload)
        if outcome.note:
            out.append(Event(ev.SCHEMA, time, frame, "schema assumed", connection=self.id,
                             fields={"protocol": PROTOCOL_NAMES.get(self.schema.protocol, self.schema.protocol),
                                     "reason": outcome.note}))
        if outcome.message is None:
            out.append(Event(ev.ERROR, time, frame, "EXI", connection=self.id, direction=direction_name,
                             fields={"reason": outcome.error, "grammar": outcome.grammar},
                             payload=pdu.payload, payload_type=pdu.payload_type))
            return
        message = outcome.message
        event = Event(ev.V2G, time, frame, message.name, connection=self.id, direction=direction_name,
                      fields={"grammar": outcome.grammar}, message=message, payload=pdu.payload,
                      payload_type=pdu.payload_type)
        if message.warnings:
            event.fields["warnings"] = list(message.warnings)
        if message.schema_violations:
            event.fields["schema_violations"] = list(message.schema_violations)
        out.append(event)
        if outcome.grammar == APP_HANDSHAKE and message.name == "supportedAppProtocolRes":
            out.append(self._handshake_result(message, time, frame))
        out.extend(self.sequence.message(self, event))

    def _handshake_result(self, message: Any, time: float, frame: int) -> Event:
        namespace = self.schema.chosen_namespace(message)
        content = message["supportedAppProtocolRes"]
        protocol = protocol_of_namespace(namespace)
        fields = {"ResponseCode": content.get("ResponseCode"), "SchemaID": content.get("SchemaID"),
                  "namespace": namespace,
                  "protocol": PROTOCOL_NAMES.get(protocol, "unknown") if namespace else None}
        if self.schema.forced:
            fields["forced"] = self.schema.forced
        return Event(ev.SCHEMA, time, frame, "handshake", connection=self.id, fields=fields)

    def _tls_summary(self, time: float, frame: int) -> Event:
        records: dict[str, int] = {}
        for tracker in self.tls:
            for content_type, count in tracker.records.items():
                records[content_type] = records.get(content_type, 0) + count
        fields = {"records": records, "record_count": sum(records.values()),
                  "version": self.tls[SERVER].version or self.tls[CLIENT].version,
                  "handshake_ev": self.tls[CLIENT].handshake_messages,
                  "handshake_evse": self.tls[SERVER].handshake_messages}
        return Event(ev.TLS, time, frame, "TLS session", connection=self.id, fields=fields)
