"""A software HomePlug Green PHY modem and the powerline between modems, sans-IO; plus a raw Ethernet bridge.

What it models of a real QCA7420/AR7420 (the chip of the TP-Link TL-PA4010P and of most chargers):

- one host port (the station behind the modem, an Ethernet cable in reality) and the powerline;
- a network (AVLN) is the set of modems that hold the same NMK; CM_SET_KEY.REQ from the host sets
  the NMK, and with it the network the modem belongs to;
- data frames (IPv6 and any other MME) cross the powerline only between members of one network;
- the SLAC MMEs (CM_SLAC_PARAM ... CM_SLAC_MATCH) cross to every modem on the wire and reach
  every host, unicast ones too: in reality they travel unencrypted before any pairing, which is
  the point of SLAC, and a stock AR7420 hands its host the charger's unicast SLAC answers;
- the modem answers its own host: CM_SET_KEY.REQ, VS_SW_VER.REQ, VS_NW_INFO.REQ, VS_RS_DEV.REQ
  and VS_SNIFFER.REQ, whether sent to its MAC, to the Qualcomm local address 00:b0:52:00:00:01
  or to broadcast; a broadcast request also crosses the wire, and the other members of the
  network answer VS_SW_VER and VS_NW_INFO too (how a host lists the modems of its network);
- CM_SET_KEY and VS_RS_DEV restart the modem: for ``restart_delay`` seconds it passes nothing
  and answers nothing (a TL-PA4010P takes more than 5 s);
- in sniffer mode (VS_SNIFFER on) it reports every PHY frame it hears, of any network and to any
  station, as a VS_SNIFFER.IND to its host: frame control only (source and destination TEI),
  and the beacons of every network with their NID (``Powerline.tick``);
- on each CM_MNBC_SOUND.IND it hears, it passes the sound to its host and then a
  CM_ATTEN_PROFILE.IND with the attenuation it measured (what a charger's modem does);
- a filtering modem (``view="filtering"``, a stock AR7420) hands its host only frames of its
  network addressed to the host (or to a group address); a full-view modem (``view="full"``, a
  patched QCA7005 or a commercial sniffer) every frame of its network; ``sniffer=True`` every
  frame on the wire, of any network.

Sans-IO: ``Powerline.from_host(station, frame)`` returns the ``Delivery`` list (station, frame)
the hosts receive (``now``: the simulated or wall clock, for restarts); ``Powerline.tick(now)``
the beacons sniffer-mode modems report. ``run_modem_bridge`` drives a Powerline over raw
Ethernet links (pcap-ct), one per station (one veth end each), for tests in network namespaces.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ccssniff.homeplug import (
    BROADCAST,
    CmAttenProfileInd,
    CmSetKeyCnf,
    CmSetKeyReq,
    MacAddress,
    Mme,
    MmeError,
    NetworkInfo,
    StationInfo,
    encode_frame_control,
    VsNwInfoCnf,
    VsNwInfoReq,
    VsRsDevCnf,
    VsRsDevReq,
    VsSnifferCnf,
    VsSnifferInd,
    VsSnifferReq,
    VsSwVerCnf,
    VsSwVerReq,
    nid_from_nmk,
    parse_frame,
)
from ccssniff.homeplug.mme import ETHERTYPE_HOMEPLUG_AV

from ccssniff.capture.live import LiveLink

from .rawlink import open_link, receive_frames
from .slac import LOCAL_MODEM, attenuation_groups

# MMTYPE bases (variant bits cleared) of the SLAC family, ISO 15118-3 Table A.1 / HomePlug GP
SLAC_MMTYPES = frozenset({0x6064, 0x6068, 0x606C, 0x6074, 0x6078, 0x607C})
CM_MNBC_SOUND_IND = 0x6076
QCA7420_DEVICE_ID = 0x20
QCA7420_FIRMWARE = "MAC-QCA7420-1.5.0.26-01-20200114-CS"
PHY_RATE_MBITS = 9
BEACON_PAYLOAD = 136  # a Green PHY link, ROBO modes: what VS_NW_INFO reports for a good cable


@dataclass(frozen=True)
class ToHost:
    frame: bytes


@dataclass(frozen=True)
class ToWire:
    frame: bytes


@dataclass(frozen=True)
class PhyFrame:
    """What a sniffing modem reads of a frame on the wire: its network and the TEIs in it."""

    snid: int
    stei: int
    dtei: int
    delimiter: int = 1  # start of frame
    beacon: bytes = b""


@dataclass(frozen=True)
class Delivery:
    """A frame a station receives from its modem."""

    station: str
    frame: bytes


def _is_group(address: bytes) -> bool:
    return bool(address[0] & 1)


def _mme(frame: bytes) -> Mme | None:
    if len(frame) < 14 or int.from_bytes(frame[12:14], "big") != ETHERTYPE_HOMEPLUG_AV:
        return None
    try:
        return parse_frame(frame)
    except (MmeError, ValueError):
        return None


def is_slac_frame(frame: bytes) -> bool:
    """Does the frame carry a SLAC MME (the ones that cross between unpaired modems)?"""
    if len(frame) < 17 or int.from_bytes(frame[12:14], "big") != ETHERTYPE_HOMEPLUG_AV:
        return False
    mmtype = frame[15] | frame[16] << 8
    return mmtype & ~3 in SLAC_MMTYPES


@dataclass
class Peer:
    """Another member of this modem's network, as VS_NW_INFO reports it."""

    mac: MacAddress
    host_mac: MacAddress
    joined_order: int


class Modem:
    """One HomePlug modem: a host port, a powerline port, an NMK, and the MMEs it answers itself."""

    VIEWS = ("filtering", "full")

    def __init__(self, mac: bytes, *, sniffer: bool = False, nmk: bytes | None = None,
                 host_mac: bytes | None = None, rng: random.Random | None = None,
                 firmware: str = QCA7420_FIRMWARE, attenuation_profiles: bool = True,
                 view: str = "filtering", restart_delay: float = 0.0) -> None:
        if view not in self.VIEWS:
            raise ValueError(f"a modem's view is one of {', '.join(self.VIEWS)}, not {view!r}")
        self.mac = MacAddress(mac)
        self.sniffer = sniffer
        self.view = view
        self.restart_delay = restart_delay
        self.online_at = 0.0  # restarting until then
        self.sniffing = False  # VS_SNIFFER mode
        self.nmk = bytes(nmk) if nmk is not None else None
        # learned from the first frame the host sends when not given (as a bridge learns it)
        self.host_mac = MacAddress(host_mac) if host_mac is not None else None
        self.rng = rng if rng is not None else random.SystemRandom()
        self.firmware = firmware
        self.attenuation_profiles = attenuation_profiles
        self.peers: list[Peer] = []  # kept up to date by the Powerline
        self.joined_order = 0  # when it joined its network; the first member acts as CCo

    @property
    def nid(self) -> bytes | None:
        return nid_from_nmk(self.nmk) if self.nmk is not None else None

    def online(self, now: float) -> bool:
        return now >= self.online_at

    def from_host(self, frame: bytes, now: float = 0.0) -> list[ToHost | ToWire]:
        if len(frame) < 14 or not self.online(now):
            return []
        self.host_mac = self.host_mac or MacAddress(frame[6:12])
        destination = frame[:6]
        if destination in (self.mac, LOCAL_MODEM, BROADCAST):
            message = _mme(frame)
            answer = self._answer(message, now) if message is not None else None
            if answer is not None:
                if destination == BROADCAST and self.online(now):
                    return [ToHost(answer.build_frame(pad=True)), ToWire(frame)]
                return [ToHost(answer.build_frame(pad=True))]
            if destination != BROADCAST:
                return []  # management we do not implement: a real modem stays silent too
        return [ToWire(frame)]

    def from_wire(self, frame: bytes, *, same_network: bool, attenuation_db: float, now: float = 0.0,
                  phy: PhyFrame | None = None) -> list[ToHost | ToWire]:
        """A frame another modem put on the wire; ``same_network``: both hold this modem's NMK.

        ``ToWire`` outputs are this modem's answers to a management request from another
        member's host, for the wire to carry back.
        """
        if not self.online(now):
            return []
        meter = [ToHost(self._sniffer_indication(phy, now))] if self.sniffing and phy is not None else []
        slac = is_slac_frame(frame)
        if self.sniffer:
            return meter + [ToHost(frame)] + self._profile(frame, attenuation_db)
        if not (slac or same_network):
            return meter  # encrypted with another network's key: undecodable here
        destination = frame[:6]
        if same_network and not slac and destination in (self.mac, BROADCAST):
            message = _mme(frame)
            if isinstance(message, (VsSwVerReq, VsNwInfoReq)):
                answer = self._answer(message, now)
                if destination == self.mac:
                    return meter + ([ToWire(answer.build_frame(pad=True))] if answer else [])
                if answer is not None:
                    meter.append(ToWire(answer.build_frame(pad=True)))
        mine = _is_group(destination) or self.host_mac is None or destination == self.host_mac
        if not (mine or slac or self.view == "full"):
            return meter  # what a stock AR7420 does with unicast between two other stations
        return meter + [ToHost(frame)] + self._profile(frame, attenuation_db)

    def _sniffer_indication(self, phy: PhyFrame, now: float) -> bytes:
        return VsSnifferInd(
            dst=self.host_mac or BROADCAST, src=self.mac, direction=0x01,
            system_time=int(now * 25_000_000) & (1 << 64) - 1,  # a 25 MHz clock
            beacon_time=int(now * 1000) & 0xFFFFFFFF,
            frame_control=encode_frame_control(phy.delimiter, phy.snid, phy.stei, phy.dtei),
            beacon=phy.beacon.ljust(BEACON_PAYLOAD, b"\0")).build_frame(pad=True)

    def _profile(self, frame: bytes, attenuation_db: float) -> list[ToHost]:
        if not self.attenuation_profiles or len(frame) < 17 or not is_slac_frame(frame) or \
                (frame[15] | frame[16] << 8) != CM_MNBC_SOUND_IND:
            return []
        profile = CmAttenProfileInd(
            dst=self.host_mac or BROADCAST, src=self.mac, pev_mac=MacAddress(frame[6:12]),
            aag=attenuation_groups(attenuation_db, self.rng))
        return [ToHost(profile.build_frame(pad=True))]

    def _restart(self, now: float) -> None:
        self.online_at = now + self.restart_delay
        self.sniffing = False

    def _answer(self, message: Mme, now: float) -> Mme | None:
        host = message.src
        if isinstance(message, CmSetKeyReq):
            if message.key_type != 0x01:  # only the NMK is set from the host in Green PHY
                return CmSetKeyCnf(dst=host, src=self.mac, result=0x01, my_nonce=message.your_nonce,
                                   your_nonce=message.my_nonce, pid=message.pid, prn=message.prn,
                                   pmn=message.pmn, cco_capability=message.cco_capability)
            self.nmk = bytes(message.new_key)
            self._restart(now)
            return CmSetKeyCnf(dst=host, src=self.mac, result=0x00, my_nonce=message.your_nonce,
                               your_nonce=message.my_nonce, pid=message.pid, prn=message.prn,
                               pmn=message.pmn, cco_capability=message.cco_capability)
        if isinstance(message, VsSwVerReq):
            text = self.firmware.encode("ascii") + b"\0"
            return VsSwVerCnf(dst=host, src=self.mac, status=0, device_id=QCA7420_DEVICE_ID,
                              version_length=len(text), version=text.ljust(254, b"\0"))
        if isinstance(message, VsNwInfoReq):
            return self._network_info(host, message.mmv)
        if isinstance(message, VsRsDevReq):
            self._restart(now)
            return VsRsDevCnf(dst=host, src=self.mac, status=0)
        if isinstance(message, VsSnifferReq):
            if message.control not in (0, 1):
                return VsSnifferCnf(dst=host, src=self.mac, status=0x01, state=int(self.sniffing))
            self.sniffing = bool(message.control)
            return VsSnifferCnf(dst=host, src=self.mac, status=0, state=int(self.sniffing))
        return None

    def _network_info(self, host: MacAddress, mmv: int) -> Mme | None:
        if mmv != 1:
            return None  # the MMV 0 layout belongs to INT6000 firmware, not to this chip
        networks = []
        if self.nmk is not None:
            me = Peer(self.mac, self.host_mac or BROADCAST, self.joined_order)
            members = sorted([me] + self.peers, key=lambda member: member.mac)
            tei = {member.mac: index + 1 for index, member in enumerate(members)}
            cco = min(members, key=lambda member: member.joined_order)  # the first to join
            stations = [StationInfo(address=p.mac, tei=tei[p.mac], bridged_address=p.host_mac,
                                    tx_rate=PHY_RATE_MBITS, coupling=0, rx_rate=PHY_RATE_MBITS)
                        for p in self.peers]
            networks.append(NetworkInfo(
                nid=self.nid, snid=self.nid[0] & 0x0F, tei=tei[self.mac],
                station_role=0x02 if cco is me else 0x00, cco_address=cco.mac, cco_tei=tei[cco.mac],
                stations=stations))
        answer = VsNwInfoCnf(dst=host, src=self.mac, sub_version=0, networks=networks)
        # data_length counts the bytes after itself: the MME header (8 with the OUI) and 4 bytes
        answer.data_length = len(answer.to_bytes()) - 8 - 4
        return answer


class Powerline:
    """The wire: every attached modem hears every frame; each decides what its host receives."""

    def __init__(self) -> None:
        self.modems: dict[str, Modem] = {}
        self.attenuation_db: dict[str, float] = {}
        self._joins = 0

    def attach(self, station: str, modem: Modem, attenuation_db: float = 10.0) -> Modem:
        """Plug ``modem`` (serving ``station``) into the wire; ``attenuation_db``: its coupling loss."""
        if station in self.modems:
            raise ValueError(f"station {station!r} already has a modem on this wire")
        self.modems[station] = modem
        self.attenuation_db[station] = attenuation_db
        self._refresh_networks()
        return modem

    def from_host(self, station: str, frame: bytes, now: float = 0.0) -> list[Delivery]:
        sender = self.modems[station]
        before = (sender.nmk, sender.host_mac)
        deliveries: list[Delivery] = []
        for output in sender.from_host(frame, now):
            if isinstance(output, ToHost):
                deliveries.append(Delivery(station, output.frame))
                continue
            phy = self._phy_frame(sender, output.frame)
            for other, modem in self.modems.items():
                if modem is sender:
                    continue
                same = sender.nmk is not None and sender.nmk == modem.nmk
                loss = self.attenuation_db[station] + self.attenuation_db[other]
                for out in modem.from_wire(output.frame, same_network=same, attenuation_db=loss, now=now, phy=phy):
                    # an answer on the wire goes back to the asking host, if its modem is up
                    target = other if isinstance(out, ToHost) else station
                    if target == station and not sender.online(now):
                        continue
                    deliveries.append(Delivery(target, out.frame))
        if (sender.nmk, sender.host_mac) != before:
            if sender.nmk != before[0]:
                self._joins += 1
                sender.joined_order = self._joins
            self._refresh_networks()
        return deliveries

    def tick(self, now: float) -> list[Delivery]:
        """One beacon per network, from its coordinator, as sniffing modems report it (call it
        a few times a second; real beacons come every 33 or 40 ms)."""
        deliveries: list[Delivery] = []
        coordinators = {}
        for modem in self.modems.values():
            if modem.nmk is not None and modem.online(now):
                first = coordinators.get(modem.nmk)
                if first is None or modem.joined_order < first.joined_order:
                    coordinators[modem.nmk] = modem
        for station, modem in self.modems.items():
            if not (modem.sniffing and modem.online(now)):
                continue
            for coordinator in coordinators.values():
                nid = coordinator.nid
                phy = PhyFrame(snid=nid[0] & 0x0F, stei=self._tei(coordinator), dtei=0xFF, delimiter=0,
                               beacon=nid + bytes(BEACON_PAYLOAD - len(nid)))
                deliveries.append(Delivery(station, modem._sniffer_indication(phy, now)))
        return deliveries

    def _tei(self, modem: Modem) -> int:
        if modem.nmk is None:
            return 0
        members = sorted(m.mac for m in self.modems.values() if m.nmk == modem.nmk)
        return members.index(modem.mac) + 1

    def _phy_frame(self, sender: Modem, frame: bytes) -> PhyFrame:
        destination = frame[:6]
        dtei = 0xFF
        if not _is_group(destination):
            for modem in self.modems.values():
                if modem.nmk == sender.nmk and destination in (modem.host_mac, modem.mac):
                    dtei = self._tei(modem)
        snid = sender.nid[0] & 0x0F if sender.nmk is not None else 0
        return PhyFrame(snid=snid, stei=self._tei(sender), dtei=dtei)

    def members(self, nmk: bytes) -> list[str]:
        """The stations whose modems belong to the network of ``nmk``."""
        return [station for station, modem in self.modems.items() if modem.nmk == nmk]

    def _refresh_networks(self) -> None:
        for modem in self.modems.values():
            others = [m for m in self.modems.values() if m is not modem and m.nmk is not None and m.nmk == modem.nmk]
            modem.peers = [Peer(m.mac, m.host_mac or BROADCAST, m.joined_order) for m in others]


async def run_modem_bridge(powerline: Powerline, ports: Mapping[str, str | LiveLink],
                           stop: asyncio.Event, clock: Callable[[], float] = time.monotonic,
                           tick: float | None = None) -> None:
    """Attach ``powerline`` to real interfaces until ``stop`` is set.

    ``ports`` maps each station of the powerline to an interface name (opened here, in this
    thread's network namespace) or to a link already open (e.g. one opened inside another
    namespace). Every frame a station's interface receives goes through its modem;
    every ``tick`` seconds the sniffing modems report the beacons (``Powerline.tick``).
    """
    links = {station: open_link(port) if isinstance(port, str) else port
               for station, port in ports.items()}
    opened = [links[s] for s, port in ports.items() if isinstance(port, str)]
    loop = asyncio.get_running_loop()

    def deliver(deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            try:
                links[delivery.station].send(delivery.frame)
            except OSError:
                pass  # a full queue or a port going down: the wire loses the frame, as wires do

    def forward(station: str) -> None:
        for frame in receive_frames(links[station]):
            deliver(powerline.from_host(station, frame, clock()))

    try:
        for station, link in links.items():
            loop.add_reader(link.fileno(), forward, station)
        while tick is not None and not stop.is_set():
            deliver(powerline.tick(clock()))
            try:
                await asyncio.wait_for(stop.wait(), tick)
            except TimeoutError:
                pass
        await stop.wait()
    finally:
        for link in links.values():
            loop.remove_reader(link.fileno())
        for link in opened:
            link.close()
