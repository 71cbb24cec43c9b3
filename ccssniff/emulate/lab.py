"""The lab: an EVSE stack and a PEV stack in one process, joined by a virtual wire.

No root, no network: every frame is written as a real wire carries it (Ethernet, HomePlug MMEs,
IPv6 with neighbour discovery, UDP SDP, TCP with handshake, sequence numbers and FIN, V2GTP)
with timestamps from a simulated clock. The stacks are the same sans-IO machines the real
drivers run; the lab only moves bytes between them and advances the physics.
"""

from __future__ import annotations

import ipaddress
import random
import struct
from dataclasses import dataclass, field
from typing import Any, Callable

import openv2gx
from ccssniff.emulate import wire
from ccssniff.emulate.modem import Modem, Powerline
from ccssniff.emulate.physics import DcCircuit, SimulationParams
from ccssniff.emulate.slac import SendFrame, SlacEvse, SlacFailed, SlacMatched, SlacPev
from ccssniff.emulate.sdp import Discovered, SdpClient, SdpServer, SendDatagram
from ccssniff.emulate.v2g_evse import SendMessage, SessionEnded, V2gEvse
from ccssniff.emulate.v2g_pev import V2gPev
from ccssniff.standards import sdp as sdp_std

#: V2GTP payload type by openv2gx schema (ISO 15118-20 names the namespace in the payload type)
PAYLOAD_TYPES = {"appHandshake": 0x8001, "din": 0x8001, "iso2": 0x8001,
                 "iso20_CommonMessages": 0x8002, "iso20_AC": 0x8003, "iso20_DC": 0x8004,
                 "iso20_ACDP": 0x8005, "iso20_WPT": 0x8006}
SECC_PORT = 61851  # chargers announce a port of their own in SDP, rarely 15118
LOOP_MESSAGES = {"CurrentDemandReq", "ChargingStatusReq", "DC_ChargeLoopReq", "AC_ChargeLoopReq"}
PHYSICS_STEP = 0.05  # s
POWERLINE_LATENCY = 0.002  # s from one host through both modems to the other host
DELAYED_ACK = 0.04  # s: a Linux receiver acknowledges on its own after this


def v2gtp(payload_type: int, payload: bytes) -> bytes:
    return struct.pack("!BBHI", 0x01, 0xFE, payload_type, len(payload)) + payload


@dataclass
class LabConfig:
    protocol: str = "din"
    mode: str = "dc"
    params: SimulationParams = field(default_factory=SimulationParams)
    start_time: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    charge_time: float | None = 60.0  # s of charge loop before the EV stops; None: until full
    seed: int = 1
    ev_mac: bytes = bytes.fromhex("02ccee000001")
    evse_mac: bytes = bytes.fromhex("02ccee000002")
    ev_modem_mac: bytes = bytes.fromhex("00b052ee0001")
    evse_modem_mac: bytes = bytes.fromhex("00b052ee0002")
    slac: bool = True
    tls: bool = False  # ISO 15118-2 over TLS 1.2, ISO 15118-20 over TLS 1.3 (mutual)
    pki_dir: Any = None  # a `ccssniff pki create` directory; None: a fresh test PKI
    pnc: bool = False  # ISO 15118-2 Plug & Charge: contract chain, signed AuthorizationReq (needs tls)


@dataclass
class SentMessage:
    time: float
    sender: str  # "EV" or "EVSE"
    schema: str
    name: str
    message: dict[str, Any]


@dataclass
class LabResult:
    ok: bool
    reason: str
    frames: int
    messages: list[SentMessage]
    duration: float
    tls: str | None = None  # "TLSv1.3 TLS_AES_256_GCM_SHA384" when the session ran over TLS
    keylog: str = ""        # the session's keys (NSS key log) when it ran over TLS


class Lab:
    def __init__(self, config: LabConfig, write: Callable[[bytes, float, str | None], None],
                 write_secrets: Callable[[str], None] | None = None):
        self.config = config
        self.write = write
        self.write_secrets = write_secrets
        self.tls = None
        self.random = random.Random(config.seed)
        self.now = config.start_time
        self.frames = 0
        self.messages: list[SentMessage] = []
        self.ev = wire.Host(config.ev_mac)
        self.evse = wire.Host(config.evse_mac)
        self.circuit = DcCircuit(config.params)
        protocols = (config.protocol,)
        self.pki = None
        contract = verifier = None
        if config.pnc and not config.tls:
            raise ValueError("Plug & Charge runs over TLS: add --tls")
        if config.pnc and config.protocol not in ("iso2", "iso20"):
            raise ValueError("Plug & Charge needs ISO 15118-2 or -20 (--protocol iso2 or iso20)")
        if config.tls:
            from ccssniff.emulate.tls import PkiFiles, check_tls_protocols
            check_tls_protocols(config.protocol)
            self.pki = PkiFiles(config.pki_dir)
            if config.pnc:
                from ccssniff.emulate.pnc import ContractCredentials, ContractVerifier
                contract = ContractCredentials.from_pki(self.pki.directory)
                verifier = ContractVerifier.from_pki(self.pki.directory)
        self.pev = V2gPev(self.circuit, protocols=protocols, mode=config.mode, rng=self.random, contract=contract)
        self.evse_stack = V2gEvse(self.circuit, protocols=protocols, mode=config.mode,
                                  new_session_id=lambda: self.random.randbytes(8), verifier=verifier)
        self.charge_started: float | None = None

    # --- clock and wire ---------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        target = self.now + seconds
        while self.now < target:
            step = min(PHYSICS_STEP, target - self.now)
            self.circuit.step(step)
            self.now += step
        self.now = target

    def emit(self, frame: bytes, comment: str | None = None, gap: float = 0.0002) -> None:
        self.advance(gap)
        self.write(frame, self.now, comment)
        self.frames += 1

    # --- phases -------------------------------------------------------------------------------
    def run(self) -> LabResult:
        if self.config.slac:
            self.match()
        self.discover()
        connection = wire.TcpConnection(self.ev, self.evse, 49152 + self.random.randrange(16000), SECC_PORT)
        for frame in connection.open():
            self.emit(frame, gap=0.0005)
        tls_description, keylog = None, ""
        if self.config.tls:
            keylog = self.start_tls(connection)
            tls_description = f"{self.tls.version} {self.tls.cipher}"
        try:
            ok, reason = self.converse(connection)
            if self.tls is not None:
                self.emit_tls(connection, self.tls.close())
        finally:
            if self.tls is not None:
                self.tls.cleanup()
            if self.pki is not None:
                self.pki.close()
        for frame in connection.close():
            self.emit(frame, gap=0.0005)
        return LabResult(ok, reason, self.frames, self.messages, self.now - self.config.start_time,
                         tls_description, keylog)

    # --- TLS ----------------------------------------------------------------------------------
    def start_tls(self, connection) -> str:
        """The TLS handshake on the open connection; the keys go into the capture before it."""
        from ccssniff.emulate.tls import MemoryTlsPair

        self.tls = MemoryTlsPair(self.pki, self.config.protocol)
        flights = self.tls.handshake()
        keylog = self.tls.keylog()
        if self.write_secrets is not None and keylog:
            self.write_secrets(keylog)
        self.emit_tls(connection, flights)
        return keylog

    def emit_tls(self, connection, flights: list[tuple[bool, bytes]], comment: str | None = None) -> None:
        for from_client, data in flights:
            for number, frame in enumerate(connection.send(from_client, data)):
                self.emit(frame, comment if number == 0 else None, gap=0.0005)
            comment = None

    def match(self) -> None:
        """SLAC between the two hosts through two simulated modems on one powerline. The capture
        shows what the hosts send and what their modems originate (ATTEN_PROFILE, SET_KEY.CNF)."""
        line = Powerline()
        line.attach("EV", Modem(self.config.ev_modem_mac, rng=random.Random(self.random.random())), 3.0)
        line.attach("EVSE", Modem(self.config.evse_modem_mac, rng=random.Random(self.random.random())), 12.0)
        machines = {"EV": SlacPev(self.ev.mac, rng=self.random), "EVSE": SlacEvse(self.evse.mac, rng=self.random)}
        arrivals: list = []
        matched: set[str] = set()

        def handle(station: str, outputs: list) -> None:
            for output in outputs:
                if isinstance(output, SendFrame):
                    self.write(output.frame, self.now, None)
                    self.frames += 1
                    for delivery in line.from_host(station, output.frame):
                        made_by_modem = delivery.frame != output.frame  # not just forwarded
                        arrivals.append((self.now + POWERLINE_LATENCY, len(arrivals), made_by_modem, delivery))
                elif isinstance(output, SlacMatched):
                    matched.add(station)
                elif isinstance(output, SlacFailed):
                    raise RuntimeError(f"SLAC failed in the lab: {output.code} {output.detail}")

        handle("EVSE", machines["EVSE"].start(self.now))
        handle("EV", machines["EV"].start(self.now))
        while matched != {"EV", "EVSE"}:
            timers = [(m.next_deadline(), name) for name, m in machines.items() if m.next_deadline() is not None]
            arrivals.sort()
            next_arrival = arrivals[0][0] if arrivals else None
            next_timer = min(timers) if timers else (None, None)
            if next_arrival is not None and (next_timer[0] is None or next_arrival <= next_timer[0]):
                at, _, made_by_modem, delivery = arrivals.pop(0)
                self.advance(max(0.0, at - self.now))
                if made_by_modem:
                    self.write(delivery.frame, self.now, None)
                    self.frames += 1
                handle(delivery.station, machines[delivery.station].receive_frame(delivery.frame, self.now))
            elif next_timer[0] is not None:
                self.advance(max(0.0, next_timer[0] - self.now))
                handle(next_timer[1], machines[next_timer[1]].on_timer(self.now))
            else:
                raise RuntimeError("SLAC stalled in the lab")
        self.advance(0.5)  # the link comes up before the EV starts SDP

    def discover(self) -> None:
        security = sdp_std.Security.TLS if self.config.tls else sdp_std.Security.NO_TLS
        client = SdpClient(security=security)
        server = SdpServer(ipaddress.IPv6Address(self.evse.ip), SECC_PORT, security_offered=(security,))
        port = 49152 + self.random.randrange(16000)
        for event in client.start(self.now):
            assert isinstance(event, SendDatagram)
            group = ipaddress.IPv6Address(event.destination).packed
            self.emit(wire.ethernet(wire.multicast_mac(group), self.ev.mac, wire.ETHERTYPE_IPV6,
                                    wire.udp(self.ev.ip, group, port, sdp_std.UDP_PORT, event.data)),
                      "EV -> all nodes: SDP request", gap=0.001)
            answers = server.on_datagram(event.data, str(ipaddress.IPv6Address(self.ev.ip)))
            # the EVSE resolves the EV's address before it can answer it
            self.emit(wire.neighbour_solicitation(self.evse.mac, self.evse.ip, self.ev.ip), gap=0.001)
            self.emit(wire.neighbour_advertisement(self.ev.mac, self.ev.ip, self.evse.mac, self.evse.ip))
            for answer in answers:
                self.emit(wire.ethernet(self.ev.mac, self.evse.mac, wire.ETHERTYPE_IPV6,
                                        wire.udp(self.evse.ip, self.ev.ip, sdp_std.UDP_PORT, port, answer.data)),
                          "EVSE -> EV: SDP response", gap=0.002)
                found = client.on_datagram(answer.data, self.now)
                if not any(isinstance(e, Discovered) for e in found):
                    raise RuntimeError(f"SDP failed in the lab: {found}")

    def send(self, connection, from_ev: bool, output: SendMessage) -> bytes:
        data = openv2gx.encode(output.message, output.schema)
        name = openv2gx.decode(data, output.schema).name
        self.messages.append(SentMessage(self.now, "EV" if from_ev else "EVSE", output.schema, name,
                                         output.message))
        direction = "EV -> EVSE" if from_ev else "EVSE -> EV"
        pdu = v2gtp(PAYLOAD_TYPES[output.schema], data)
        if self.tls is not None:
            self.emit_tls(connection, self.tls.send(from_ev, pdu), f"{direction} {name} (TLS)")
            return data
        frames = connection.send(from_ev, pdu)
        for number, frame in enumerate(frames):
            self.emit(frame, f"{direction} {name}" if number == 0 else None)
        return data

    def converse(self, connection) -> tuple[bool, str]:
        """Requests and responses until either side ends the session.

        The PEV paces itself: after a response it may hold its next request back (charge-loop
        interval, ongoing repetition); the lab then sleeps until the PEV's next deadline."""
        outputs = self.pev.start(self.now)
        last_response_at = self.now
        while True:
            ended = [o for o in outputs if isinstance(o, SessionEnded)]
            if ended:
                return ended[0].ok, ended[0].reason
            requests = [o for o in outputs if isinstance(o, SendMessage)]
            if not requests:
                deadline = self.pev.next_deadline()
                if deadline is None:
                    return False, "the EV neither sent a request nor set a deadline"
                if deadline - last_response_at > DELAYED_ACK and self.now < last_response_at + DELAYED_ACK:
                    self.emit(connection.acknowledge(True), gap=last_response_at + DELAYED_ACK - self.now)
                self.advance(max(0.0, deadline - self.now))
                self.maybe_stop()
                outputs = self.pev.on_timer(self.now)
                continue
            request = requests[0]
            data = self.send(connection, True, request)
            self.advance(self.random.uniform(0.004, 0.030))  # EVSE processing time
            replies = self.evse_stack.on_message(openv2gx.decode(data, request.schema), self.now)
            answered = None
            for reply in replies:
                if isinstance(reply, SendMessage):
                    answered = self.send(connection, False, reply)
                    self.track_charge_loop(self.messages[-2].name)
            if answered is None:
                ended = [o for o in replies if isinstance(o, SessionEnded)]
                return False, ended[0].reason if ended else "the EVSE did not answer"
            self.advance(0.0005)  # on the wire
            last_response_at = self.now
            self.maybe_stop()
            outputs = self.pev.on_message(openv2gx.decode(answered, self.messages[-1].schema), self.now)
            if self.messages[-1].name == "SessionStopRes" and not any(isinstance(o, SendMessage) for o in outputs):
                ended = [o for o in outputs if isinstance(o, SessionEnded)]
                return (ended[0].ok, ended[0].reason) if ended else (True, "session stopped")

    def track_charge_loop(self, request_name: str) -> None:
        if request_name in LOOP_MESSAGES and self.charge_started is None:
            self.charge_started = self.now

    def maybe_stop(self) -> None:
        limit = self.config.charge_time
        if limit is not None and self.charge_started is not None and self.now - self.charge_started >= limit:
            self.pev.stop()


def run_lab(config: LabConfig, write: Callable[[bytes, float, str | None], None],
            write_secrets: Callable[[str], None] | None = None) -> LabResult:
    return Lab(config, write, write_secrets).run()
