"""The decode pipeline: captured frames in, events out (sans-IO, incremental).

``Pipeline.feed(packet)`` takes one frame (anything with ``index``, ``timestamp``, ``linktype``
and ``data``) and returns the events it completes; ``finish()`` yields, connection by connection,
the events of what is still open at the end of a trace. The offline ``decode`` command and the
live ``listen`` mode drive it alike.
Frames that are neither HomePlug, SDP, neighbour discovery nor V2G TCP cost a few byte
comparisons and no allocation beyond the link layer split.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterator

from ccssniff.capture.link import decode_link
from ccssniff.decode import events as ev
from ccssniff.decode.connection import (CLIENT, EVICTED, OPEN_AT_END, OTHER, REPLACED, SERVER,
                                       V2gConnection)
from ccssniff.decode.events import Event
from ccssniff.decode.net import (ETHERTYPE_IPV4, ETHERTYPE_IPV6, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP,
                                 TCP_ACK, TCP_SYN, format_address, parse_ipv4, parse_ipv6,
                                 parse_neighbor_discovery, parse_tcp, parse_udp)
from ccssniff.decode.tcp import BufferBudget
from ccssniff.decode.sdp import SDP_PORT, V2G_TCP_PORT, SdpError, parse_request, parse_response
from ccssniff.decode.v2gtp import V2gtpError, is_header_at, parse_datagram

try:
    from ccssniff.homeplug import MmeError, parse_frame as parse_mme
except ImportError:  # the HomePlug package is written in parallel; frames then show as raw
    MmeError = ValueError
    parse_mme = None

ETHERTYPE_HOMEPLUG = 0x88E1
_SDP_REQUESTS = (0x9000, 0x9002)
_SDP_RESPONSES = (0x9001, 0x9003)
# Connections we decided carry something else; bounded so a long trace keeps constant memory.
_MAX_IGNORED = 4096
# Open connections tracked at once, and among them those that have sent no data yet (a SYN
# flood); beyond these the oldest is given up and reported. A charging session uses one or two.
MAX_CONNECTIONS = 2048
MAX_HALF_OPEN = 512
# Out-of-order data waiting in all connections of a trace together (payload plus per-segment cost).
MAX_BUFFERED_TOTAL = 32 * 1024 * 1024
# Closed connections remembered, so that a late retransmission is not taken for a new connection.
_MAX_CLOSED = 1024


def format_mac(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return ":".join(f"{b:02x}" for b in value)
    return str(value)


class Pipeline:
    def __init__(self, schema: str | None = None, decode_exi: bool = True) -> None:
        self.forced_schema = schema
        self.decode_exi = decode_exi
        self.v2g_ports = {V2G_TCP_PORT}
        self.frames = 0
        self.start_time: float | None = None
        self.budget = BufferBudget(MAX_BUFFERED_TOTAL)
        self._connections: dict[tuple, tuple[V2gConnection, int]] = {}
        self._open: OrderedDict[int, V2gConnection] = OrderedDict()  # by id(), oldest first
        self._half_open: OrderedDict[int, V2gConnection] = OrderedDict()  # no data yet, oldest first
        self._ignored: dict[tuple, None] = {}
        # (sender, receiver) 4-tuple of a closed connection -> (first sequence number, end offset)
        # of that direction: segments inside that sequence space are late retransmissions.
        self._closed: OrderedDict[tuple, tuple[int | None, int]] = OrderedDict()
        self._next_connection = 1
        self._last_time = 0.0
        self._last_frame = 0
        self.evicted = 0  # connections given up because too many were open at once

    def _number(self) -> int:
        number = self._next_connection
        self._next_connection += 1
        return number

    @property
    def last_time(self) -> float | None:
        """Time of the last frame fed (the capture's end so far), None before the first."""
        return self._last_time if self.frames else None

    # --- input -----------------------------------------------------------------------------

    def feed(self, packet: Any) -> list[Event]:
        self.frames += 1
        time = packet.timestamp
        if self.start_time is None:
            self.start_time = time
        self._last_time = time
        self._last_frame = packet.index
        link = decode_link(packet.linktype, packet.data)
        if link is None:
            return []
        ethertype = link.ethertype
        if ethertype == ETHERTYPE_IPV6:
            ip = parse_ipv6(link.payload)
        elif ethertype == ETHERTYPE_HOMEPLUG:
            return self._homeplug(link, time, packet.index)
        elif ethertype == ETHERTYPE_IPV4:
            ip = parse_ipv4(link.payload)
        else:
            return []
        if ip is None or ip.fragment:
            return []
        protocol = ip.protocol
        if protocol == PROTO_TCP:
            segment = parse_tcp(ip.payload)
            if segment is None:
                return []
            return self._tcp(ip.src, ip.dst, segment, time, packet.index)
        if protocol == PROTO_UDP:
            datagram = parse_udp(ip.payload)
            if datagram is None or SDP_PORT not in (datagram.src_port, datagram.dst_port):
                return []
            return self._sdp(ip, datagram, time, packet.index)
        if protocol == PROTO_ICMPV6:
            discovery = parse_neighbor_discovery(ip.payload)
            if discovery is None:
                return []
            fields = {"src": format_address(ip.src), "target": format_address(discovery.target)}
            if discovery.kind == "NA":
                fields["solicited"] = bool(discovery.flags & 0x40)
            name = "neighbor solicitation" if discovery.kind == "NS" else "neighbor advertisement"
            return [Event(ev.NEIGHBOR, time, packet.index, name, fields=fields)]
        return []

    def finish(self) -> Iterator[Event]:
        """End of the trace: close every open connection, yielding its events as it goes."""
        while self._open:
            _, connection = self._open.popitem(last=False)
            self._forget(connection)
            yield from connection.close(self._last_time, self._last_frame, OPEN_AT_END, capture_end=True)
        if self.evicted:
            yield Event(ev.ERROR, self._last_time, self._last_frame, "TCP limits",
                        fields={"reason": f"{self.evicted} TCP connections evicted in all: more than "
                                          f"{MAX_CONNECTIONS} open or {MAX_HALF_OPEN} without data at once",
                                "evicted": self.evicted})

    # --- HomePlug, SDP ---------------------------------------------------------------------

    def _homeplug(self, link: Any, time: float, frame: int) -> list[Event]:
        fields: dict[str, Any] = {"src": format_mac(link.src), "dst": format_mac(link.dst)}
        if parse_mme is None:
            return [Event(ev.HOMEPLUG, time, frame, "HomePlug MME", fields=fields, payload=link.payload)]
        ethernet = (link.dst or b"\xff" * 6) + link.src + b"\x88\xe1" + link.payload
        try:
            mme = parse_mme(ethernet)
        except MmeError as error:
            fields["reason"] = str(error)
            return [Event(ev.ERROR, time, frame, "HomePlug", fields=fields, payload=link.payload)]
        fields.update(mme.key_fields())
        return [Event(ev.HOMEPLUG, time, frame, mme.name, fields=fields)]

    def _sdp(self, ip: Any, datagram: Any, time: float, frame: int) -> list[Event]:
        fields: dict[str, Any] = {"src": f"[{format_address(ip.src)}]:{datagram.src_port}",
                                  "dst": f"[{format_address(ip.dst)}]:{datagram.dst_port}"}
        try:
            pdu = parse_datagram(datagram.payload)
            if pdu.payload_type in _SDP_REQUESTS:
                fields.update(parse_request(pdu.payload).fields())
                name, direction = "SDP request", ev.EV_TO_EVSE
            elif pdu.payload_type in _SDP_RESPONSES:
                response = parse_response(pdu.payload)
                fields.update(response.fields())
                if response.transport == 0x00:
                    self.v2g_ports.add(response.port)
                name, direction = "SDP response", ev.EVSE_TO_EV
            else:
                raise V2gtpError(f"payload type {pdu.payload_type:#06x} on UDP {SDP_PORT} is not SDP")
        except (V2gtpError, SdpError) as error:
            fields["reason"] = str(error)
            return [Event(ev.ERROR, time, frame, "SDP", fields=fields, payload=datagram.payload)]
        if pdu.payload_type in (0x9002, 0x9003):
            name += " (wireless)"
        return [Event(ev.SDP, time, frame, name, direction=direction, fields=fields,
                      payload=pdu.payload, payload_type=pdu.payload_type)]

    # --- TCP -------------------------------------------------------------------------------

    def _tcp(self, src: bytes, dst: bytes, segment: Any, time: float, frame: int) -> list[Event]:
        key = (src, segment.src_port, dst, segment.dst_port)
        entry = self._connections.get(key)
        flags = segment.flags
        if entry is not None:
            connection, direction = entry
            if flags & TCP_SYN and not flags & TCP_ACK and direction == CLIENT and \
                    connection.streams[CLIENT].started and (connection.messages or connection.closed[CLIENT]):
                # The port pair is reused by a new connection: the old one is over.
                out = self._close(connection, time, frame, REPLACED, CLIENT)
                return out + self._new_connection(key, src, dst, segment, time, frame)
        else:
            if key in self._ignored:
                return []
            if key in self._closed and self._is_late(key, segment):
                return []  # a retransmission or the last ACK of a closed connection
            return self._new_connection(key, src, dst, segment, time, frame)
        had_data = connection.has_data
        out = connection.segment(direction, segment, time, frame)
        if connection.finished or connection.content == OTHER:
            self._forget(connection)
        elif connection.has_data and not had_data:
            self._half_open.pop(id(connection), None)
        return out

    def _is_late(self, key: tuple, segment: Any) -> bool:
        """Whether a segment on a closed connection's 4-tuple belongs to that connection."""
        flags = segment.flags
        if flags & TCP_SYN and not flags & TCP_ACK:
            del self._closed[key]  # a new connection reuses the port pair
            return False
        first_seq, end = self._closed[key]
        if first_seq is None:
            return not segment.payload
        delta = (segment.seq - first_seq) % (1 << 32)
        if delta >= 1 << 31:
            delta -= 1 << 32
        # Inside what was sent (a retransmission, the last ACK) or its SYN (-1): the old connection.
        return -1 <= delta <= end

    def _new_connection(self, key: tuple, src: bytes, dst: bytes, segment: Any, time: float,
                        frame: int) -> list[Event]:
        flags = segment.flags
        ports = self.v2g_ports
        if flags & TCP_SYN:
            sender_is_client = not flags & TCP_ACK
        elif segment.dst_port in ports:
            sender_is_client = True
        elif segment.src_port in ports:
            sender_is_client = False
        elif segment.payload and is_header_at(segment.payload, 0):
            # Mid-session on an unannounced port: most traces start with the EV's request.
            sender_is_client = True
        else:
            return []
        sender = (src, segment.src_port)
        receiver = (dst, segment.dst_port)
        client, server = (sender, receiver) if sender_is_client else (receiver, sender)
        out: list[Event] = []
        if len(self._open) >= MAX_CONNECTIONS:
            out += self._evict(self._open, time, frame)
        connection = V2gConnection(client, server, server[1] in ports, self.forced_schema, self.decode_exi,
                                   self._number, self.budget)
        self._connections[client + server] = (connection, CLIENT)
        self._connections[server + client] = (connection, SERVER)
        self._open[id(connection)] = connection
        direction = CLIENT if sender_is_client else SERVER
        out += connection.segment(direction, segment, time, frame)
        if connection.content == OTHER or connection.finished:
            self._forget(connection)
        elif not connection.has_data:
            if len(self._half_open) >= MAX_HALF_OPEN:
                out += self._evict(self._half_open, time, frame)
            self._half_open[id(connection)] = connection
        return out

    def _evict(self, table: OrderedDict, time: float, frame: int) -> list[Event]:
        _, oldest = next(iter(table.items()))
        self.evicted += 1
        out = self._close(oldest, time, frame, EVICTED)
        if self.evicted == 1:
            out.append(Event(ev.ERROR, time, frame, "TCP limits", connection=oldest.id,
                             fields={"reason": f"too many TCP connections open at once (more than "
                                               f"{MAX_CONNECTIONS}, or {MAX_HALF_OPEN} without data): "
                                               f"the oldest are given up",
                                     "client": oldest.describe()["client"]}))
        return out

    def _close(self, connection: V2gConnection, time: float, frame: int, how: str,
               by: int | None = None) -> list[Event]:
        self._forget(connection)
        return connection.close(time, frame, how, by)

    def _forget(self, connection: V2gConnection) -> None:
        client_key = connection.client + connection.server
        server_key = connection.server + connection.client
        self._connections.pop(client_key, None)
        self._connections.pop(server_key, None)
        self._open.pop(id(connection), None)
        self._half_open.pop(id(connection), None)
        if connection.content == OTHER:
            if len(self._ignored) >= _MAX_IGNORED:
                del self._ignored[next(iter(self._ignored))]
            self._ignored[client_key] = None
            self._ignored[server_key] = None
            return
        for key, stream in ((client_key, connection.streams[CLIENT]), (server_key, connection.streams[SERVER])):
            self._closed[key] = (stream.first_seq, stream.end_offset)
            self._closed.move_to_end(key)
        while len(self._closed) > _MAX_CLOSED:
            self._closed.popitem(last=False)
