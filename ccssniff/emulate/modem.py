"""A software HomePlug Green PHY modem and the powerline between modems, sans-IO; plus a raw-socket bridge.

What it models of a real QCA7420/AR7420 (the chip of the TP-Link TL-PA4010P and of most chargers):

- one host port (the station behind the modem, an Ethernet cable in reality) and the powerline;
- a network (AVLN) is the set of modems that hold the same NMK; CM_SET_KEY.REQ from the host sets
  the NMK, and with it the network the modem belongs to;
- data frames (IPv6 and any other MME) cross the powerline only between members of one network;
- the SLAC MMEs (CM_SLAC_PARAM ... CM_SLAC_MATCH) cross to every modem on the wire: in reality
  they travel unencrypted before any pairing, which is the point of SLAC;
- the modem answers its own host: CM_SET_KEY.REQ, VS_SW_VER.REQ and VS_NW_INFO.REQ, whether
  sent to its MAC, to the Qualcomm local address 00:b0:52:00:00:01 or to broadcast;
- on each CM_MNBC_SOUND.IND it hears, it passes the sound to its host and then a
  CM_ATTEN_PROFILE.IND with the attenuation it measured (what a charger's modem does);
- a filtering modem hands its host only frames addressed to the host (or to a group address);
  a sniffer-enabled modem hands its host every frame on the wire, of any network.

Sans-IO: ``Powerline.from_host(station, frame)`` returns the ``Delivery`` list (station, frame)
the hosts receive. ``run_modem_bridge`` drives a Powerline over raw AF_PACKET sockets, one per
station (one veth end each), for tests in network namespaces.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Mapping
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
    VsNwInfoCnf,
    VsNwInfoReq,
    VsSwVerCnf,
    VsSwVerReq,
    nid_from_nmk,
    parse_frame,
)
from ccssniff.homeplug.mme import ETHERTYPE_HOMEPLUG_AV

from .rawlink import open_raw_socket, receive_frames
from .slac import LOCAL_MODEM, attenuation_groups

# MMTYPE bases (variant bits cleared) of the SLAC family, ISO 15118-3 Table A.1 / HomePlug GP
SLAC_MMTYPES = frozenset({0x6064, 0x6068, 0x606C, 0x6074, 0x6078, 0x607C})
CM_MNBC_SOUND_IND = 0x6076
QCA7420_DEVICE_ID = 0x20
QCA7420_FIRMWARE = "MAC-QCA7420-1.5.0.26-01-20200114-CS"
PHY_RATE_MBITS = 9  # a Green PHY link, ROBO modes: what VS_NW_INFO reports for a good cable


@dataclass(frozen=True)
class ToHost:
    frame: bytes


@dataclass(frozen=True)
class ToWire:
    frame: bytes


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

    def __init__(self, mac: bytes, *, sniffer: bool = False, nmk: bytes | None = None,
                 host_mac: bytes | None = None, rng: random.Random | None = None,
                 firmware: str = QCA7420_FIRMWARE, attenuation_profiles: bool = True) -> None:
        self.mac = MacAddress(mac)
        self.sniffer = sniffer
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

    def from_host(self, frame: bytes) -> list[ToHost | ToWire]:
        if len(frame) < 14:
            return []
        self.host_mac = self.host_mac or MacAddress(frame[6:12])
        destination = frame[:6]
        if destination in (self.mac, LOCAL_MODEM, BROADCAST):
            message = _mme(frame)
            answer = self._answer(message) if message is not None else None
            if answer is not None:
                return [ToHost(answer.build_frame(pad=True))]
            if destination != BROADCAST:
                return []  # management we do not implement: a real modem stays silent too
        return [ToWire(frame)]

    def from_wire(self, frame: bytes, *, same_network: bool, attenuation_db: float) -> list[ToHost]:
        """A frame another modem put on the wire; ``same_network``: both hold this modem's NMK."""
        slac = is_slac_frame(frame)
        if self.sniffer:
            return [ToHost(frame)] + self._profile(frame, attenuation_db)
        if not (slac or same_network):
            return []  # encrypted with another network's key: undecodable here
        destination = frame[:6]
        if not (_is_group(destination) or self.host_mac is None or destination == self.host_mac):
            return []
        return [ToHost(frame)] + self._profile(frame, attenuation_db)

    def _profile(self, frame: bytes, attenuation_db: float) -> list[ToHost]:
        if not self.attenuation_profiles or len(frame) < 17 or not is_slac_frame(frame) or \
                (frame[15] | frame[16] << 8) != CM_MNBC_SOUND_IND:
            return []
        profile = CmAttenProfileInd(
            dst=self.host_mac or BROADCAST, src=self.mac, pev_mac=MacAddress(frame[6:12]),
            aag=attenuation_groups(attenuation_db, self.rng))
        return [ToHost(profile.build_frame(pad=True))]

    def _answer(self, message: Mme) -> Mme | None:
        host = message.src
        if isinstance(message, CmSetKeyReq):
            if message.key_type != 0x01:  # only the NMK is set from the host in Green PHY
                return CmSetKeyCnf(dst=host, src=self.mac, result=0x01, my_nonce=message.your_nonce,
                                   your_nonce=message.my_nonce, pid=message.pid, prn=message.prn,
                                   pmn=message.pmn, cco_capability=message.cco_capability)
            self.nmk = bytes(message.new_key)
            return CmSetKeyCnf(dst=host, src=self.mac, result=0x00, my_nonce=message.your_nonce,
                               your_nonce=message.my_nonce, pid=message.pid, prn=message.prn,
                               pmn=message.pmn, cco_capability=message.cco_capability)
        if isinstance(message, VsSwVerReq):
            text = self.firmware.encode("ascii") + b"\0"
            return VsSwVerCnf(dst=host, src=self.mac, status=0, device_id=QCA7420_DEVICE_ID,
                              version_length=len(text), version=text.ljust(254, b"\0"))
        if isinstance(message, VsNwInfoReq):
            return self._network_info(host, message.mmv)
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

    def from_host(self, station: str, frame: bytes) -> list[Delivery]:
        sender = self.modems[station]
        before = (sender.nmk, sender.host_mac)
        deliveries: list[Delivery] = []
        for output in sender.from_host(frame):
            if isinstance(output, ToHost):
                deliveries.append(Delivery(station, output.frame))
                continue
            for other, modem in self.modems.items():
                if modem is sender:
                    continue
                same = sender.nmk is not None and sender.nmk == modem.nmk
                loss = self.attenuation_db[station] + self.attenuation_db[other]
                deliveries += [Delivery(other, out.frame)
                               for out in modem.from_wire(output.frame, same_network=same, attenuation_db=loss)]
        if (sender.nmk, sender.host_mac) != before:
            if sender.nmk != before[0]:
                self._joins += 1
                sender.joined_order = self._joins
            self._refresh_networks()
        return deliveries

    def members(self, nmk: bytes) -> list[str]:
        """The stations whose modems belong to the network of ``nmk``."""
        return [station for station, modem in self.modems.items() if modem.nmk == nmk]

    def _refresh_networks(self) -> None:
        for modem in self.modems.values():
            others = [m for m in self.modems.values() if m is not modem and m.nmk is not None and m.nmk == modem.nmk]
            modem.peers = [Peer(m.mac, m.host_mac or BROADCAST, m.joined_order) for m in others]


async def run_modem_bridge(powerline: Powerline, ports: Mapping[str, str | socket.socket],
                           stop: asyncio.Event) -> None:
    """Attach ``powerline`` to real interfaces until ``stop`` is set.

    ``ports`` maps each station of the powerline to an interface name (opened here, in this
    thread's network namespace) or to an AF_PACKET socket already bound (e.g. one opened inside
    another namespace). Every frame a station's interface receives goes through its modem.
    """
    sockets = {station: open_raw_socket(port) if isinstance(port, str) else port
               for station, port in ports.items()}
    opened = [sockets[s] for s, port in ports.items() if isinstance(port, str)]
    loop = asyncio.get_running_loop()

    def forward(station: str) -> None:
        for frame in receive_frames(sockets[station]):
            for delivery in powerline.from_host(station, frame):
                try:
                    sockets[delivery.station].send(delivery.frame)
                except OSError:
                    pass  # a full queue or a port going down: the wire loses the frame, as wires do

    try:
        for station, sock in sockets.items():
            loop.add_reader(sock.fileno(), forward, station)
        await stop.wait()
    finally:
        for sock in sockets.values():
            loop.remove_reader(sock.fileno())
        for sock in opened:
            sock.close()
