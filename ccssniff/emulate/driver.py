"""Asyncio drivers that run the sans-IO stacks on a real interface.

SLAC frames go through libpcap (pcap-ct) on the interface; SDP through a kernel UDP socket on
the interface's link-local address; V2G through kernel TCP. The machines decide everything;
this module only moves bytes, keeps their deadlines, steps the physics and reports progress.

The machines get the wall clock (Unix seconds, ``time.time``) as ``now``: they write it into
EVSETimeStamp, DateTimeNow and the ISO 15118-20 Header TimeStamp and TimeAnchor, which a peer
reads as a date. Their deadlines are on the same clock, so every wait is deadline - time.time().
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import openv2gx
from ccssniff.emulate.lab import PAYLOAD_TYPES, SECC_PORT, v2gtp
from ccssniff.emulate.physics import Battery, DcCircuit, SimulationParams
from ccssniff.emulate.sdp import Discovered, DiscoveryFailed, SdpClient, SdpServer, SendDatagram
from ccssniff.emulate.v2g_evse import SendMessage, SessionEnded, V2gEvse
from ccssniff.emulate.v2g_messages import LOOP_REQUESTS
from ccssniff.emulate.v2g_pev import V2gPev
from ccssniff.homeplug.keys import render_key
from ccssniff.standards import message_parts
from ccssniff.standards import sdp as sdp_std
from ccssniff.standards.physical import physical_value

log = logging.getLogger(__name__)

V2GTP_HEADER = struct.Struct("!BBHI")
MAX_V2GTP_PAYLOAD = 1 << 16  # the largest V2G message (certificate chains) is far below this
SCHEMA_BY_PAYLOAD_TYPE = {0x8002: "iso20_CommonMessages", 0x8003: "iso20_AC", 0x8004: "iso20_DC",
                          0x8005: "iso20_ACDP", 0x8006: "iso20_WPT"}
PHYSICS_PERIOD = 0.05
ETHERTYPE_HOMEPLUG = 0x88E1


class DriverError(RuntimeError):
    """The interface or the peer made the session impossible; the text says why."""


@dataclass
class EmulatorConfig:
    interface: str
    protocols: tuple[str, ...] = ("din",)
    mode: str = "dc"
    params: SimulationParams = field(default_factory=SimulationParams)
    slac: bool = True
    modem: str = "auto"  # "auto": the local QCA modem answers CM_SET_KEY; "none": no modem
    port: int = SECC_PORT
    charge_time: float | None = 60.0
    timeout: float = 120.0
    record: Path | None = None
    seed: int | None = None
    relaxed_timing: float = 1.0  # multiplies the V2G timeouts the machines enforce
    show_key: bool = False  # log the SLAC network key (NMK) in full instead of masked
    peer_port: int = 0  # PEV: connect to this TCP port instead of the one SDP announced (0: that one)


@dataclass
class Progress:
    """What the live view shows; the driver updates it as messages pass."""

    phase: str = "starting"
    protocol: str | None = None
    last_message: str = ""
    messages: int = 0
    voltage: float = 0.0  # V: DC at the cable, AC per phase
    current: float = 0.0  # A: DC at the cable, AC per phase
    soc: float = 0.0
    result: str = ""


# --- interface facts --------------------------------------------------------------------------

def interface_mac(interface: str) -> bytes:
    try:
        text = Path(f"/sys/class/net/{interface}/address").read_text().strip()
    except OSError:
        raise DriverError(f"no network interface named {interface!r}") from None
    return bytes.fromhex(text.replace(":", ""))


def link_local_address(interface: str, wait: float = 5.0) -> str:
    """The interface's fe80:: address once duplicate address detection has finished."""
    deadline = time.monotonic() + wait
    while True:
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            address, _, _, scope, flags, name = line.split()
            tentative = int(flags, 16) & 0x40
            if name == interface and scope == "20" and not tentative:
                return str(ipaddress.IPv6Address(bytes.fromhex(address)))
        if time.monotonic() > deadline:
            raise DriverError(f"{interface} has no usable IPv6 link-local address")
        time.sleep(0.1)


# --- recording --------------------------------------------------------------------------------

class Recorder:
    """Every frame on the interface, through libpcap, into a pcapng that is valid at any moment."""

    def __init__(self, interface: str, path: Path):
        import pcap

        from ccssniff.capture.pcapng import PcapngWriter
        self.handle = pcap.pcap(name=interface, promisc=True, immediate=True, timeout_ms=50,
                                timestamp_in_ns=True)
        self.writer = PcapngWriter(path, linktype=self.handle.datalink(), interface_name=interface)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping.is_set():
            for stamp, frame in self.handle.readpkts():
                self.writer.write(bytes(frame), timestamp=stamp / 1e9)

    def close(self):
        self.stopping.set()
        self.thread.join(timeout=2)
        self.writer.close()
        self.handle.close()


# --- SLAC over libpcap ------------------------------------------------------------------------

class HomePlugLink:
    """Raw HomePlug frames on the interface, as the SLAC machines exchange them."""

    def __init__(self, interface: str):
        import pcap
        self.handle = pcap.pcap(name=interface, promisc=True, immediate=True, timeout_ms=10)
        self.handle.setfilter(f"ether proto {ETHERTYPE_HOMEPLUG:#x}")
        self.handle.setnonblock(True)
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        asyncio.get_running_loop().add_reader(self.handle.fileno(), self._readable)

    def _readable(self):
        for _, frame in self.handle.readpkts():
            self.queue.put_nowait(bytes(frame))

    def send(self, frame: bytes) -> None:
        self.handle.sendpacket(frame)

    def close(self):
        asyncio.get_running_loop().remove_reader(self.handle.fileno())
        self.handle.close()


async def run_machine(machine, deliver: Callable[[Any, float], list], inbox: asyncio.Queue,
                      handle: Callable[[list], bool], timeout: float) -> None:
    """Feed a sans-IO machine from ``inbox`` and its deadlines until ``handle`` says done."""
    give_up = time.time() + timeout
    while True:
        deadline = machine.next_deadline()
        wait = min(x for x in (deadline, give_up) if x is not None) - time.time()
        try:
            item = await asyncio.wait_for(inbox.get(), timeout=max(0.0, wait))
        except asyncio.TimeoutError:
            now = time.time()
            if now >= give_up:
                raise DriverError("the session took longer than the timeout") from None
            if handle(machine.on_timer(now)):
                return
            continue
        if handle(deliver(item, time.time())):
            return


async def run_slac(side: str, config: EmulatorConfig, rng: random.Random, progress: Progress) -> None:
    from ccssniff.emulate import slac

    progress.phase = "SLAC"
    mac = interface_mac(config.interface)
    options = {} if config.modem == "auto" else {"modem_mac": None}
    machine = (slac.SlacPev if side == "pev" else slac.SlacEvse)(mac, rng=rng, **options)
    link = HomePlugLink(config.interface)
    outcome: list = []

    def handle(outputs) -> bool:
        for output in outputs:
            if isinstance(output, slac.SendFrame):
                link.send(output.frame)
            elif isinstance(output, slac.SlacMatched):
                outcome.append(output)
                return True
            elif isinstance(output, slac.SlacFailed):
                raise DriverError(f"SLAC failed: {output.code} {output.detail}")
        return False

    try:
        if not handle(machine.start(time.time())):
            await run_machine(machine, machine.receive_frame, link.queue, handle, config.timeout)
    finally:
        link.close()
    progress.phase = "SLAC matched"
    log.info("SLAC matched: %s, NMK %s", outcome[0], render_key(outcome[0].nmk, config.show_key))


# --- V2G over kernel TCP ----------------------------------------------------------------------

async def read_pdu(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    header = await reader.readexactly(V2GTP_HEADER.size)
    version, inverse, payload_type, length = V2GTP_HEADER.unpack(header)
    if version != 0x01 or inverse != 0xFE:
        raise DriverError(f"peer sent a V2GTP header with version {version:#04x}/{inverse:#04x}")
    if length > MAX_V2GTP_PAYLOAD:
        raise DriverError(f"peer announced a {length}-byte V2GTP payload")
    return payload_type, await reader.readexactly(length)


def find_value(content, *path: str) -> float | None:
    """A PhysicalValue / RationalNumber inside a message's content, as a float; None if absent."""
    for name in path:
        if not isinstance(content, dict):
            return None
        content = content.get(name)
    if not isinstance(content, dict):
        return None
    try:
        return physical_value(content)[0]
    except (KeyError, TypeError, ValueError):
        return None


class Supply:
    """What the charger says it delivers, as the car's side reads it from the responses: the car
    has no power stage of its own, so its battery charges with this and the live view shows it.

    DC: EVSEPresentVoltage and EVSEPresentCurrent (PhysicalValue or ISO-20 RationalNumber).
    AC: the per-phase current the on-board charger draws, at the nominal voltage. ISO 15118-2
    ChargingStatusRes reports no present current: the car draws its own maximum within the EVSE's
    maximum current (when it names one). ISO 15118-20 AC_ChargeLoopRes reports the present active
    power. Only charge loop responses carry a charging current; any other means none flows.
    """

    def __init__(self, mode: str, params: SimulationParams):
        self.mode = mode
        self.phases = max(1, min(params.evse.ac_phases, params.battery.ac_phases))
        self.nominal_voltage = params.evse.ac_nominal_voltage  # until the EVSE names its own
        self.ev_max_current = params.battery.ac_max_current
        self.evse_max_current: float | None = None  # A per phase, from ChargeParameterDiscoveryRes
        self.voltage = 0.0  # V: DC at the inlet, AC per phase
        self.current = 0.0  # A: DC into the battery, AC per phase

    def read(self, name: str, content) -> None:
        charging = name.removesuffix("Res") in LOOP_REQUESTS
        if self.mode == "dc":
            voltage = find_value(content, "EVSEPresentVoltage")
            self.voltage = self.voltage if voltage is None else voltage
            self.current = (find_value(content, "EVSEPresentCurrent") or 0.0) if charging else 0.0
            return
        offered = "AC_EVSEChargeParameter"  # in ISO 15118-2 ChargeParameterDiscoveryRes
        self.nominal_voltage = find_value(content, offered, "EVSENominalVoltage") or self.nominal_voltage
        self.evse_max_current = find_value(content, offered, "EVSEMaxCurrent") or self.evse_max_current
        current = 0.0
        if charging:
            power = find_value(content, "Scheduled_AC_CLResControlMode", "EVSEPresentActivePower")
            if power is not None:
                current = power / (self.phases * self.nominal_voltage)
            else:  # no present value: the car draws its own maximum, within the EVSE's
                evse_max = find_value(content, "EVSEMaxCurrent") or self.evse_max_current
                current = min(self.ev_max_current, evse_max or self.ev_max_current)
        self.current = current
        self.voltage = self.nominal_voltage if current > 0 else 0.0

    def battery_current(self, battery: Battery) -> float:
        """DC amperes into the battery (AC through an on-board charger taken as lossless)."""
        if self.mode == "dc":
            return self.current
        if battery.charging_complete:
            return 0.0
        return self.phases * self.voltage * self.current / max(battery.terminal_voltage(0.0), 1.0)


def schema_for(payload_type: int, protocol: str | None) -> str:
    if payload_type in SCHEMA_BY_PAYLOAD_TYPE:
        return SCHEMA_BY_PAYLOAD_TYPE[payload_type]
    return protocol if protocol in ("din", "iso2") else "appHandshake"


async def converse(machine, reader, writer, circuit: DcCircuit, progress: Progress, is_pev: bool,
                   config: EmulatorConfig) -> SessionEnded:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue = asyncio.Queue()
    supply = Supply(config.mode, config.params)
    ended: list[SessionEnded] = []
    charge_started: list[float] = []

    async def receive():
        try:
            while True:
                inbox.put_nowait(await read_pdu(reader))
        except (asyncio.IncompleteReadError, ConnectionError):
            inbox.put_nowait(None)

    async def physics():
        stage = circuit.stage
        while True:
            await asyncio.sleep(PHYSICS_PERIOD)
            if is_pev:
                # the car's own battery takes what the remote charger says it delivers
                circuit.battery.step(PHYSICS_PERIOD, supply.battery_current(circuit.battery))
                progress.voltage, progress.current = supply.voltage, supply.current
            elif config.mode == "ac":
                # AC bypasses the DC circuit: the machine charges through the on-board charger
                machine.advance_ac(time.time())
                charging = stage.mode == stage.CHARGE
                progress.voltage = stage.present_voltage if charging else 0.0
                progress.current = stage.present_current if charging else 0.0
            else:
                circuit.step(PHYSICS_PERIOD)
                progress.voltage, progress.current = stage.present_voltage, stage.present_current
            progress.soc = circuit.battery.soc

    def handle(outputs) -> bool:
        for output in outputs:
            if isinstance(output, SendMessage):
                data = openv2gx.encode(output.message, output.schema)
                writer.write(v2gtp(PAYLOAD_TYPES[output.schema], data))
                note(output.message)
            elif isinstance(output, SessionEnded):
                ended.append(output)
                return True
        return False

    def note(message):
        progress.messages += 1
        progress.last_message = openv2gx.Message(message).name or "?"
        progress.protocol = getattr(machine, "protocol", None) or progress.protocol
        if progress.last_message.removesuffix("Req") in LOOP_REQUESTS and not charge_started:
            charge_started.append(time.time())
        if is_pev and charge_started and config.charge_time is not None \
                and time.time() - charge_started[0] >= config.charge_time:
            machine.stop()

    def deliver(item, now):
        if item is None:
            return [SessionEnded(False, "the peer closed the TCP connection")]
        payload_type, payload = item
        try:
            message = openv2gx.decode(payload, schema_for(payload_type, getattr(machine, "protocol", None)))
        except openv2gx.DecodeError as exc:
            return [SessionEnded(False, f"undecodable message from the peer: {exc}")]
        note(message)
        if is_pev:
            supply.read(*message_parts(message))
        return machine.on_message(message, now)

    tasks = [asyncio.create_task(receive()), asyncio.create_task(physics())]
    progress.phase = "V2G"
    if is_pev:
        interrupt(loop, machine.stop)
    try:
        if is_pev:
            handle(machine.start(time.time()))
        if not ended:
            await run_machine(machine, deliver, inbox, handle, config.timeout)
        await writer.drain()
    finally:
        for task in tasks:
            task.cancel()
        writer.close()
        progress.soc = circuit.battery.soc
    return ended[0]


def interrupt(loop, stop: Callable[[], None]) -> None:
    """First Ctrl-C: end the session the way the protocol allows (PowerDelivery stop,
    SessionStop); a second one aborts."""
    import signal

    def first():
        log.warning("stopping the session (Ctrl-C again to abort)")
        stop()
        loop.add_signal_handler(signal.SIGINT, second)

    def second():
        for task in asyncio.all_tasks(loop):
            task.cancel()

    try:
        loop.add_signal_handler(signal.SIGINT, first)
    except (NotImplementedError, RuntimeError):  # not the main thread (tests)
        pass


async def listen_v2g(accept, host: str, port: int, rng: random.Random) -> asyncio.AbstractServer:
    """The SECC's TCP server; port 0 picks a free one from the dynamic range 49152-65535 that SDP
    may announce ([V2G2-642]): the kernel's own ephemeral range starts lower, and EVs (iso15118's
    EVCC among them) drop an SDP response outside it."""
    if port:
        return await asyncio.start_server(accept, host=host, port=port)
    for _ in range(50):
        try:
            return await asyncio.start_server(accept, host=host,
                                              port=rng.randint(sdp_std.TCP_PORT_MIN, sdp_std.TCP_PORT_MAX))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
    raise DriverError("no free TCP port in 49152-65535")


async def run_evse(config: EmulatorConfig, progress: Progress) -> SessionEnded:
    rng = random.Random(config.seed)
    if config.slac:
        await run_slac("evse", config, rng, progress)
    address = link_local_address(config.interface)
    scope = socket.if_nametoindex(config.interface)
    circuit = DcCircuit(config.params)
    sessions: asyncio.Queue = asyncio.Queue()

    async def accept(reader, writer):
        sessions.put_nowait((reader, writer))

    server = await listen_v2g(accept, f"{address}%{config.interface}", config.port, rng)
    port = server.sockets[0].getsockname()[1]
    sdp = SdpServer(ipaddress.IPv6Address(address), port)
    udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, config.interface.encode())
    udp.bind(("::", sdp_std.UDP_PORT, 0, 0))
    udp.setblocking(False)
    loop = asyncio.get_running_loop()

    def on_datagram():
        data, source = udp.recvfrom(2048)
        for output in sdp.on_datagram(data, source[0].split("%")[0]):
            if isinstance(output, SendDatagram):
                udp.sendto(output.data, (source[0].split("%")[0], source[1], 0, scope))
                progress.phase = "SDP answered"

    loop.add_reader(udp.fileno(), on_datagram)
    progress.phase = "waiting for SDP / TCP"
    try:
        reader, writer = await asyncio.wait_for(sessions.get(), timeout=config.timeout)
    except asyncio.TimeoutError:
        raise DriverError("no EV connected before the timeout") from None
    finally:
        loop.remove_reader(udp.fileno())
        udp.close()
    machine = V2gEvse(circuit, protocols=config.protocols, mode=config.mode,
                      new_session_id=lambda: rng.randbytes(8), relaxed_timing=config.relaxed_timing)
    try:
        return await converse(machine, reader, writer, circuit, progress, False, config)
    finally:
        server.close()


async def discover(config: EmulatorConfig, progress: Progress) -> tuple[str, int]:
    progress.phase = "SDP"
    scope = socket.if_nametoindex(config.interface)
    client = SdpClient()
    udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, scope)
    udp.bind((link_local_address(config.interface), 0, 0, scope))
    udp.setblocking(False)
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue = asyncio.Queue()
    loop.add_reader(udp.fileno(), lambda: inbox.put_nowait(udp.recvfrom(2048)[0]))
    found: list = []

    def handle(outputs) -> bool:
        for output in outputs:
            if isinstance(output, SendDatagram):
                udp.sendto(output.data, (output.destination, sdp_std.UDP_PORT, 0, scope))
            elif isinstance(output, Discovered):
                found.append(output.response)
                return True
            elif isinstance(output, DiscoveryFailed):
                raise DriverError(output.reason)
        return False

    try:
        if not handle(client.start(time.time())):
            await run_machine(client, client.on_datagram, inbox, handle, config.timeout)
    finally:
        loop.remove_reader(udp.fileno())
        udp.close()
    return str(found[0].address), found[0].port


async def run_pev(config: EmulatorConfig, progress: Progress) -> SessionEnded:
    rng = random.Random(config.seed)
    if config.slac:
        await run_slac("pev", config, rng, progress)
    address, port = await discover(config, progress)
    port = config.peer_port or port
    progress.phase = f"TCP to [{address}]:{port}"
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(f"{address}%{config.interface}", port), timeout=config.timeout)
    except OSError as exc:
        raise DriverError(f"cannot connect to the charger at [{address}]:{port}: {exc.strerror or exc}") from None
    circuit = DcCircuit(config.params)
    machine = V2gPev(circuit, protocols=config.protocols, mode=config.mode, rng=rng,
                     relaxed_timing=config.relaxed_timing)
    return await converse(machine, reader, writer, circuit, progress, True, config)


async def run_side(side: str, config: EmulatorConfig, progress: Progress) -> SessionEnded:
    interface_mac(config.interface)  # a missing interface is one clear line, before any capture opens
    recorder = Recorder(config.interface, config.record) if config.record else None
    try:
        if side == "evse":
            return await run_evse(config, progress)
        return await run_pev(config, progress)
    finally:
        if recorder:
            await asyncio.sleep(0.2)  # let the last frames reach the file
            recorder.close()
