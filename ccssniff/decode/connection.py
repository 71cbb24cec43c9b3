"""One TCP connection that carries (or may carry) V2G: both directions from segments to events."""
from __future__ import annotations

from typing import Any, Callable

from ccssniff.decode import events as ev
from ccssniff.decode.events import Event
from ccssniff.decode.net import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, TcpSegment, format_address
from ccssniff.decode.schema import APP_HANDSHAKE, PROTOCOL_NAMES, SchemaSelector, protocol_of_namespace
from ccssniff.decode.sequence import SequenceCheck
from ccssniff.decode.tcp import MAX_BUFFERED_BYTES, BufferBudget, Gap, StreamItem, StreamReassembler
from ccssniff.decode.signatures import SignatureChecker, describe_chain
from ccssniff.decode import tls as tls_layer
from ccssniff.decode.keylog import HOW_TO_GET_KEYS, KeyLog
from ccssniff.decode.tls import TlsSession, looks_like_tls
from ccssniff.decode.v2gtp import Pdu, V2gtpFramer, is_header_at

# How the connection's content was recognised.
UNDECIDED = "undecided"
V2GTP = "v2gtp"
TLS = "tls"
OTHER = "other"

# A connection on an unknown port must show a V2GTP header within this many data chunks.
_PROBE_CHUNKS = 8

# A message still arriving may always keep this much, whatever the trace holds elsewhere.
_FRAMER_KEPT_OVER_BUDGET = 8 * 1024
_TLS_DATA = tls_layer.DATA
_CERTIFICATE_MESSAGES = frozenset({"PaymentDetailsReq", "CertificateInstallationReq", "CertificateInstallationRes",
                                   "CertificateUpdateReq", "CertificateUpdateRes", "AuthorizationReq"})
CLIENT, SERVER = 0, 1  # direction index: data sent by the client (EV) or by the server (EVSE)
_DIRECTION_NAMES = (ev.EV_TO_EVSE, ev.EVSE_TO_EV)


# How a connection ended, as the CONNECTION event's name says it.
CLOSED = "TCP connection closed"  # FIN (``by``: who sent the first FIN)
RESET = "TCP connection reset"  # RST (``by``: who sent it)
OPEN_AT_END = "TCP connection open at end of capture"  # no FIN, no RST: the capture stopped
REPLACED = "TCP connection replaced"  # a new SYN on the same port pair without FIN or RST first
EVICTED = "TCP connection evicted"  # too many connections open at once: the oldest is given up


def side_name(direction: int) -> str:
    return "EV" if direction == CLIENT else "EVSE"


class V2gConnection:
    """Endpoints: ``client`` is the EV (EVCC opens the TCP connection), ``server`` the EVSE (SECC).

    ``id`` is None until the connection shows V2GTP or TLS; then ``numbers()`` gives it the next
    connection number, so the numbers users see count V2G connections only.
    """

    __slots__ = ("id", "client", "server", "known_port", "content", "streams", "framers", "tls",
                 "schema", "sequence", "_probed", "closed", "decode_exi", "messages", "_numbers",
                 "first_fin", "last_time", "last_frame", "has_data", "_budget", "_framer_bytes", "keys", "signatures")

    def __init__(self, client: tuple[bytes, int], server: tuple[bytes, int], known_port: bool,
                 forced_schema: str | None, decode_exi: bool, numbers: Callable[[], int],
                 budget: BufferBudget | None = None, keys: KeyLog | None = None) -> None:
        self.id: int | None = None
        self._numbers = numbers
        self.client = client
        self.server = server
        self.known_port = known_port  # 15118 or announced by SDP: V2G even if it starts mid-message
        self.content = UNDECIDED
        self.streams = (StreamReassembler(budget), StreamReassembler(budget))
        self.keys = keys
        self.signatures = SignatureChecker()
        self.schema = SchemaSelector(forced_schema)
        accept = self.schema.could_decode if decode_exi else None
        self.framers = (V2gtpFramer(accept), V2gtpFramer(accept))
        self.tls: TlsSession | None = None
        self.sequence = SequenceCheck()
        self._probed = [0, 0]
        self.closed = [False, False]
        self.decode_exi = decode_exi
        self.messages = 0
        self.first_fin: int | None = None  # direction that sent the first FIN
        self.last_time: float | None = None  # time of this connection's latest segment
        self.last_frame: int | None = None
        self.has_data = False  # a segment with payload was seen (not just a handshake)
        self._budget = budget
        self._framer_bytes = [0, 0]  # bytes each framer holds, as counted in the budget

    def describe(self) -> dict[str, Any]:
        return {"client": f"[{format_address(self.client[0])}]:{self.client[1]}",
                "server": f"[{format_address(self.server[0])}]:{self.server[1]}"}

    @property
    def finished(self) -> bool:
        return self.closed[0] and self.closed[1]

    def segment(self, direction: int, segment: TcpSegment, time: float, frame: int) -> list[Event]:
        flags = segment.flags
        stream = self.streams[direction]
        self.last_time = time
        self.last_frame = frame
        out: list[Event] = []
        if flags & TCP_SYN:
            stream.syn(segment.seq)
            if direction == SERVER and not flags & TCP_ACK:
                return out
        if segment.payload or flags & TCP_FIN:
            if segment.payload:
                self.has_data = True
            overflows = stream.overflows
            items = stream.segment(segment.seq, segment.payload, bool(flags & TCP_FIN), frame)
            if stream.overflows != overflows and self.content != OTHER:
                out.append(Event(ev.ERROR, time, frame, "TCP buffer", connection=self.id,
                                 direction=_DIRECTION_NAMES[direction],
                                 fields={"reason": self._overflow_reason()}))
            if items:
                self._stream(direction, items, time, frame, out)
            if stream.conflicts:
                self._conflicts(direction, time, frame, out)
        if flags & TCP_ACK and not flags & TCP_SYN:
            items = self.streams[1 - direction].acknowledged(segment.ack)
            if items:
                self._stream(1 - direction, items, time, frame, out)
        if flags & TCP_RST:
            out.extend(self.close(time, frame, RESET, by=direction))
        elif flags & TCP_FIN and not self.closed[direction]:
            self.closed[direction] = True
            if self.first_fin is None:
                self.first_fin = direction
            if self.finished:
                out.extend(self.close(time, frame, CLOSED, by=self.first_fin))
        return out

    def close(self, time: float, frame: int, how: str = CLOSED, by: int | None = None,
              capture_end: bool = False) -> list[Event]:
        """The connection ends (FIN both ways, RST, end of the trace, eviction): flush both directions.

        ``capture_end``: the trace ends here with the connection still open (``how`` is then
        decided from the FINs seen so far), ``time``/``frame`` are the capture's last frame.
        """
        if capture_end and self.first_fin is not None:
            how, by = CLOSED, self.first_fin
        out: list[Event] = []
        for direction in (CLIENT, SERVER):
            items = self.streams[direction].flush()
            if items:
                self._stream(direction, items, time, frame, out)
            if self.content == V2GTP or (self.content == TLS and self.tls.decrypted_records):
                self._framed(direction, self.framers[direction].flush(), time, frame, out)
                self._account_framer(direction, time, frame, out)
            self.streams[direction].release()
        self.closed = [True, True]
        if self.content == TLS:
            for direction, problem in self.tls.finish():
                out.append(Event(ev.ERROR, time, frame, "TLS", connection=self.id,
                                 direction=_DIRECTION_NAMES[direction], fields={"reason": problem.value}))
        if self.content in (V2GTP, TLS):
            if self.content == TLS:
                out.append(self._tls_summary(time, frame))
            out.extend(self.sequence.finish(self, time, frame, capture_ended=how == OPEN_AT_END))
            fields = self.describe()
            if by is not None:
                fields["by"] = side_name(by)
            if how == CLOSED and not (self.streams[CLIENT].fin_seen and self.streams[SERVER].fin_seen):
                fields["half_closed"] = True  # only one side's FIN before the capture ended
            fields["messages"] = self.messages
            if capture_end:
                fields["last_frame_time"] = time  # the capture's last frame
                fields["last_frame"] = frame
            fields["connection_last_time"] = self.last_time
            fields["connection_last_frame"] = self.last_frame
            out.append(Event(ev.CONNECTION, time, frame, how, connection=self.id, fields=fields))
        return out

    def _conflicts(self, direction: int, time: float, frame: int, out: list[Event]) -> None:
        stream = self.streams[direction]
        conflicts, stream.conflicts = stream.conflicts, []
        if self.content == OTHER:
            return
        for conflict in conflicts:
            out.append(Event(
                ev.ERROR, time, frame, "TCP overlap", connection=self.id, direction=_DIRECTION_NAMES[direction],
                fields={"reason": f"segment of frame {conflict.dropped_frame} overlaps data of frame "
                                  f"{conflict.kept_frame} with different bytes (stream offset {conflict.offset}, "
                                  f"{conflict.length} bytes); the first data is kept",
                        "kept_frame": conflict.kept_frame, "conflicting_frame": conflict.dropped_frame,
                        "offset": conflict.offset, "length": conflict.length}))

    # --- stream content ------------------------------------------------------------------------

    def _stream(self, direction: int, items: list[StreamItem], time: float, frame: int,
                out: list[Event]) -> None:
        if self.content == UNDECIDED:
            items = self._recognise(direction, items, time, frame, out)
            if not items:
                return
        if self.content == V2GTP:
            self._framed(direction, self.framers[direction].feed(items), time, frame, out)
            self._account_framer(direction, time, frame, out)
        elif self.content == TLS:
            self._tls_stream(direction, items, time, frame, out)

    def _overflow_reason(self) -> str:
        bounds = f"{MAX_BUFFERED_BYTES // 1024} kB per direction"
        if self._budget is not None:
            bounds += f", {self._budget.limit // (1024 * 1024)} MiB per trace"
        return f"out-of-order data beyond the bound ({bounds}): the missing bytes are taken as lost"

    def _account_framer(self, direction: int, time: float, frame: int, out: list[Event]) -> None:
        """Count a message still arriving against the trace's memory bound; past it, drop the message."""
        budget = self._budget
        if budget is None:
            return
        framer = self.framers[direction]
        held = framer.buffered
        budget.used += held - self._framer_bytes[direction]
        self._framer_bytes[direction] = held
        if budget.used > budget.limit and held > _FRAMER_KEPT_OVER_BUDGET:
            problem = framer.drop(f"the trace holds more than {budget.limit // (1024 * 1024)} MiB of "
                                  "unfinished data; looking for the next V2GTP header")
            budget.used -= held
            self._framer_bytes[direction] = 0
            self._framed(direction, [problem], time, frame, out)

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
                self.tls = TlsSession(self.keys)
            elif self.known_port:
                self.content = V2GTP  # mid-message start on a V2G port: the framer resynchronises
            else:
                self._probed[direction] += 1
                if self._probed[direction] >= _PROBE_CHUNKS:
                    self.content = OTHER
                    return []
                continue
            self.id = self._numbers()
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
                             fields={"decrypted": True} if self.content == TLS else {},
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
        if self.content == TLS:
            event.fields["decrypted"] = True
        self._signed(message, outcome.grammar, event)
        if message.warnings:
            event.fields["warnings"] = list(message.warnings)
        if message.schema_violations:
            event.fields["schema_violations"] = list(message.schema_violations)
        out.append(event)
        if outcome.grammar == APP_HANDSHAKE and message.name == "supportedAppProtocolRes":
            out.append(self._handshake_result(message, time, frame))
        out.extend(self.sequence.message(self, event))

    def _signed(self, message: Any, grammar: str, event: Event) -> None:
        """Certificates a message carries and the verdict on its signature (decode/signatures.py)."""
        if message.name in _CERTIFICATE_MESSAGES:
            certificates = self.signatures.certificates(message.name, message.body)
            if certificates:
                event.fields["certificates"] = certificates
        verdict = self.signatures.check(message, grammar)
        if verdict is not None:
            event.fields["signature"] = verdict

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

    # --- TLS (ccssniff/decode/tls.py does the record layer; here only what it hands back) ------

    def _tls_stream(self, direction: int, items: list[StreamItem], time: float, frame: int,
                    out: list[Event]) -> None:
        outputs = self.tls.feed(direction, items)
        if len(outputs) == 1 and outputs[0][0] is _TLS_DATA:
            self._framed(direction, self.framers[direction].feed([outputs[0][1]]), time, frame, out)
            return
        direction_name = _DIRECTION_NAMES[direction]
        plain: list[StreamItem] = []
        for output in outputs:
            kind = output[0]
            if kind is _TLS_DATA:
                plain.append(output[1])
            elif kind == tls_layer.GAP:
                if self.tls.key_status == "found":
                    plain.append(Gap(output.value))
            elif kind == tls_layer.HANDSHAKE:
                fields = {"decrypted": True} if output.encrypted else {}
                if output.value == "Certificate" and self.tls.certificates:
                    fields["certificates"] = describe_chain(self.tls.certificates[-1][1],
                                                            "SECC" if direction == SERVER else "EVCC")
                out.append(Event(ev.TLS, time, frame, output.value, connection=self.id, direction=direction_name,
                                 fields=fields))
            elif kind == tls_layer.ALERT:
                out.append(Event(ev.TLS, time, frame, "alert", connection=self.id, direction=direction_name,
                                 fields={"alert": output.value, "decrypted": output.encrypted}))
            elif kind == tls_layer.KEYS:
                fields = {"version": self.tls.version_name,
                          "cipher_suite": self.tls.suite.name if self.tls.suite else self.tls.suite_id}
                if output.value == "found":
                    out.append(Event(ev.TLS, time, frame, "keys found: decrypting", connection=self.id,
                                     fields=fields))
                else:
                    fields["hint"] = HOW_TO_GET_KEYS
                    out.append(Event(ev.TLS, time, frame, "no keys", connection=self.id, fields=fields))
            else:
                out.append(Event(ev.ERROR, time, frame, "TLS", connection=self.id, direction=direction_name,
                                 fields={"reason": output.value}))
        if plain:
            self._framed(direction, self.framers[direction].feed(plain), time, frame, out)

    def _tls_summary(self, time: float, frame: int) -> Event:
        records: dict[str, int] = {}
        session = self.tls
        for tracker in session.directions:
            for content_type, count in tracker.records.items():
                records[content_type] = records.get(content_type, 0) + count
        fields = {"records": records, "record_count": sum(records.values()),
                  "version": session.version_name,
                  "cipher_suite": session.suite.name if session.suite else session.suite_id,
                  "handshake_ev": session.directions[CLIENT].handshake_messages,
                  "handshake_evse": session.directions[SERVER].handshake_messages,
                  "keys": session.key_status or "not needed",
                  "decrypted_records": session.decrypted_records, "failed_records": session.failed_records,
                  "undecrypted_records": session.undecrypted_records}
        if session.alerts:
            fields["alerts"] = list(session.alerts)
        if session.key_status == "missing":
            fields["hint"] = HOW_TO_GET_KEYS
        return Event(ev.TLS, time, frame, "TLS session", connection=self.id, fields=fields)
