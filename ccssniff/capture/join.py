"""Joining the car-charger network (AVLN) from the side, sans-IO: frames and time in, frames to
send and events out.

    machine = JoinMachine(host_mac)               # or JoinMachine(host_mac, nmk=..., nid=...)
    outputs = machine.start(now)                  # [SendFrame(VS_SW_VER.REQ to the local modem), Step]
    outputs = machine.receive_frame(frame, now)   # every HomePlug frame the capture sees
    outputs = machine.on_timer(now)               # at machine.next_deadline()

The steps, each bounded in tries and time and reported as a ``Step``:

1. find the local modem: VS_SW_VER.REQ to the Qualcomm local address; the first answer is the
   modem behind our cable (``ModemFound``). Without an answer, CM_SET_KEY still goes to the local
   address, and the steps say that no modem confirmed;
2. watch: a CM_SLAC_MATCH.CNF carries the session's NID and NMK (``KeyTaken``), unless the key
   was given (``nmk=``) or joining is off (``join=False``: only watch);
3. CM_SET_KEY.REQ with that NMK to the local modem, retried without a CNF. A failure result is
   reported but not final: real modems may answer so and still apply the key;
4. confirm through the network, not through the CNF: VS_NW_INFO.REQ to the local modem and
   VS_SW_VER.REQ to broadcast until the modems of the car and the charger show up in our network
   (``Joined`` with the members), or ``JoinFailed`` after the confirmation time. The modem
   restarts on the new key (more than 5 s on a TL-PA4010P), so the first polls go unanswered.

A later CM_SLAC_MATCH.CNF with another key (the next charging session) starts over at step 3.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Any

from ccssniff.homeplug import (
    BROADCAST,
    CmSetKeyCnf,
    CmSetKeyReq,
    CmSlacMatchCnf,
    MacAddress,
    MmeError,
    VsNwInfoCnf,
    VsNwInfoReq,
    VsSwVerCnf,
    VsSwVerReq,
    nid_from_nmk,
    parse_frame,
)
from ccssniff.homeplug.keys import KEY_SIZE, NID_SIZE
from ccssniff.homeplug.mme import ETHERTYPE_HOMEPLUG_AV
from ccssniff.homeplug.vendor import vendor_of

LOCAL_MODEM = MacAddress("00:b0:52:00:00:01")

FIND_MODEM_TRIES = 3
FIND_MODEM_WAIT = 0.3  # s; the local modem answers within milliseconds
SET_KEY_TRIES = 3
SET_KEY_WAIT = 1.0  # s per CM_SET_KEY.REQ
CONFIRM_POLL = 1.0  # s between VS_NW_INFO / VS_SW_VER polls
CONFIRM_TIME = 30.0  # s; a modem restart takes 5-10 s

# states
FINDING_MODEM = "finding modem"
WATCHING = "watching for CM_SLAC_MATCH.CNF"
SETTING_KEY = "setting key"
CONFIRMING = "confirming join"
JOINED = "joined"
NOT_JOINED = "not joined"


@dataclass(frozen=True)
class SendFrame:
    frame: bytes
    name: str


@dataclass(frozen=True)
class Step:
    """A step of the join, in plain words, for the live view and the log."""

    state: str
    text: str


@dataclass(frozen=True)
class ModemFound:
    mac: MacAddress
    firmware: str
    device: Any
    local: bool


@dataclass(frozen=True)
class KeyTaken:
    nid: bytes
    nmk: bytes
    source: str  # "CM_SLAC_MATCH.CNF", "--nmk", "--passphrase"
    evse_mac: MacAddress | None = None
    pev_mac: MacAddress | None = None
    frame_time: float | None = None


@dataclass
class Member:
    """A modem of the joined network."""

    mac: MacAddress
    host_mac: MacAddress | None = None
    firmware: str | None = None
    vendor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"mac": str(self.mac), "host_mac": str(self.host_mac) if self.host_mac else None,
                "firmware": self.firmware, "vendor": self.vendor}


@dataclass(frozen=True)
class Joined:
    nid: bytes
    members: tuple[Member, ...]


@dataclass(frozen=True)
class JoinFailed:
    nid: bytes
    reason: str


Output = SendFrame | Step | ModemFound | KeyTaken | Joined | JoinFailed


@dataclass
class _Key:
    nid: bytes
    nmk: bytes
    expected_hosts: frozenset  # host MACs of car and charger, when SLAC named them


class JoinMachine:
    def __init__(self, host_mac: bytes, *, modem_mac: bytes | None = None, nmk: bytes | None = None,
                 nid: bytes | None = None, join: bool = True, key_source: str = "--nmk",
                 rng: random.Random | None = None) -> None:
        if nmk is not None and len(nmk) != KEY_SIZE:
            raise ValueError(f"an NMK has {KEY_SIZE} bytes, not {len(nmk)}")
        if nid is not None and len(nid) != NID_SIZE:
            raise ValueError(f"a NID has {NID_SIZE} bytes, not {len(nid)}")
        self.host_mac = MacAddress(host_mac)
        self.modem_mac = MacAddress(modem_mac) if modem_mac is not None else None
        self.modem_confirmed = False
        self.join = join
        self.rng = rng if rng is not None else random.SystemRandom()
        self.state = FINDING_MODEM
        self.key: _Key | None = None
        self._given = (nmk, nid if nid is not None else (nid_from_nmk(nmk) if nmk is not None else None))
        self._key_source = key_source
        self._deadline: float | None = None
        self._tries = 0
        self._confirm_until = 0.0
        self._members: dict[MacAddress, Member] = {}
        self._firmware: dict[MacAddress, tuple[str, Any]] = {}
        self._nonce = 0
        self._pending_match: CmSlacMatchCnf | None = None

    # --- the driver's interface ----------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return self._deadline

    def start(self, now: float) -> list[Output]:
        self._tries = 0
        return self._find_modem(now)

    def receive_frame(self, frame: bytes, now: float) -> list[Output]:
        if len(frame) < 17 or frame[12:14] != ETHERTYPE_HOMEPLUG_AV.to_bytes(2, "big") or \
                frame[6:12] == self.host_mac:
            return []
        try:
            message = parse_frame(frame)
        except (MmeError, ValueError):
            return []  # the pipeline reports what is undecodable; joining just ignores it
        if isinstance(message, CmSlacMatchCnf):
            return self._on_match(message, now)
        if message.dst not in (self.host_mac, BROADCAST):
            return []
        if isinstance(message, VsSwVerCnf):
            return self._on_software_version(message, now)
        if isinstance(message, CmSetKeyCnf) and self.state == SETTING_KEY:
            return self._on_set_key_cnf(message, now)
        if isinstance(message, VsNwInfoCnf) and self.state in (CONFIRMING, JOINED):
            return self._on_network_info(message, now)
        return []

    def on_timer(self, now: float) -> list[Output]:
        if self._deadline is None or now < self._deadline:
            return []
        self._deadline = None
        if self.state == FINDING_MODEM:
            return self._find_modem(now)
        if self.state == SETTING_KEY:
            return self._set_key(now)
        if self.state == CONFIRMING:
            return self._poll(now)
        return []

    # --- step 1: the local modem ---------------------------------------------------------------

    def _find_modem(self, now: float) -> list[Output]:
        if self.modem_mac is not None and self.modem_confirmed:
            return self._after_modem(now)
        if self._tries >= FIND_MODEM_TRIES:
            self.modem_mac = self.modem_mac or LOCAL_MODEM
            return [Step(self.state, f"no modem answered VS_SW_VER after {FIND_MODEM_TRIES} tries; "
                                     f"keys go to {self.modem_mac} unconfirmed")] + self._after_modem(now)
        self._tries += 1
        target = self.modem_mac or LOCAL_MODEM
        self._deadline = now + FIND_MODEM_WAIT
        return [self._send(VsSwVerReq(dst=target, src=self.host_mac)),
                Step(self.state, f"VS_SW_VER.REQ to {target} (try {self._tries}/{FIND_MODEM_TRIES})")]

    def _on_software_version(self, message: VsSwVerCnf, now: float) -> list[Output]:
        mac = message.src
        first = mac not in self._firmware
        self._firmware[mac] = (message.version_text, message.key_fields().get("device_id"))
        if self.state == FINDING_MODEM and (self.modem_mac in (None, LOCAL_MODEM) or mac == self.modem_mac):
            self.modem_mac, self.modem_confirmed = mac, True
            self._deadline = None
            return [ModemFound(mac, message.version_text, self._firmware[mac][1], True),
                    Step(self.state, f"local modem {mac}: {message.version_text}")] + self._after_modem(now)
        out: list[Output] = []
        if first and mac != self.modem_mac:
            out.append(ModemFound(mac, message.version_text, self._firmware[mac][1], False))
        if self.state in (CONFIRMING, JOINED) and mac != self.modem_mac:
            member = self._members.setdefault(mac, Member(mac, vendor=vendor_of(mac)))
            member.firmware = message.version_text
            if self.state == CONFIRMING:
                out += self._maybe_joined(now)
        return out

    def _after_modem(self, now: float) -> list[Output]:
        nmk, nid = self._given
        if not self.join:
            self.state = WATCHING
            return [Step(self.state, "watching only (--no-join)")]
        if nmk is not None:
            self.key = _Key(nid, nmk, frozenset())
            self.state = SETTING_KEY
            self._tries = 0
            return [KeyTaken(nid, nmk, self._key_source)] + self._set_key(now)
        self.state = WATCHING
        pending, self._pending_match = self._pending_match, None
        if pending is not None:
            return self._on_match(pending, now)
        return [Step(self.state, "waiting for the charger's CM_SLAC_MATCH.CNF")]

    # --- step 2: the key from SLAC -------------------------------------------------------------

    def _on_match(self, message: CmSlacMatchCnf, now: float) -> list[Output]:
        if len(message.nmk) != KEY_SIZE or len(message.nid) != NID_SIZE:
            return [Step(self.state, "a CM_SLAC_MATCH.CNF without a whole key; ignored")]
        if self.state == FINDING_MODEM and self.join:
            self._pending_match = message  # joined as soon as the modem is known
            return []
        if not self.join:
            return [KeyTaken(message.nid, message.nmk, "CM_SLAC_MATCH.CNF", message.evse_mac, message.pev_mac, now)]
        if self.key is not None and self.key.nmk == message.nmk:
            return []  # a repeated CNF of the session we are joining or joined
        self.key = _Key(message.nid, message.nmk, frozenset({message.evse_mac, message.pev_mac}))
        self.state = SETTING_KEY
        self._tries = 0
        self._members.clear()
        return [KeyTaken(message.nid, message.nmk, "CM_SLAC_MATCH.CNF", message.evse_mac, message.pev_mac, now)] \
            + self._set_key(now)

    # --- step 3: CM_SET_KEY ---------------------------------------------------------------------

    def _set_key(self, now: float) -> list[Output]:
        if self._tries >= SET_KEY_TRIES:
            return [Step(self.state, f"no CM_SET_KEY.CNF after {SET_KEY_TRIES} tries; "
                                     "confirming through the network anyway")] + self._confirm(now)
        self._tries += 1
        self._nonce = self.rng.getrandbits(32)
        request = CmSetKeyReq(dst=self.modem_mac, src=self.host_mac, key_type=0x01, my_nonce=self._nonce,
                              your_nonce=0, pid=0x04, prn=0, pmn=0, cco_capability=0, nid=self.key.nid,
                              new_eks=0x01, new_key=self.key.nmk)
        self._deadline = now + SET_KEY_WAIT
        return [self._send(request),
                Step(self.state, f"CM_SET_KEY.REQ to {self.modem_mac} (try {self._tries}/{SET_KEY_TRIES})")]

    def _on_set_key_cnf(self, message: CmSetKeyCnf, now: float) -> list[Output]:
        if message.src != self.modem_mac and self.modem_confirmed:
            return []
        if message.result == 0:
            text = "CM_SET_KEY.CNF: success; the modem restarts with the new key"
        else:
            text = "CM_SET_KEY.CNF: failure (some modems say so and apply the key anyway)"
        return [Step(self.state, text)] + self._confirm(now)

    # --- step 4: confirmation through the network ----------------------------------------------

    def _confirm(self, now: float) -> list[Output]:
        self.state = CONFIRMING
        self._confirm_until = now + CONFIRM_TIME
        return self._poll(now)

    def _poll(self, now: float) -> list[Output]:
        if now >= self._confirm_until:
            self.state = NOT_JOINED
            self._deadline = None
            seen = ", ".join(str(mac) for mac in self._members) or "no other modem"
            return [JoinFailed(self.key.nid, f"the network did not confirm the join within {CONFIRM_TIME:.0f} s "
                                             f"(seen: {seen})")]
        self._deadline = now + CONFIRM_POLL
        return [self._send(VsNwInfoReq(dst=self.modem_mac, src=self.host_mac)),
                self._send(VsSwVerReq(dst=BROADCAST, src=self.host_mac))]

    def _on_network_info(self, message: VsNwInfoCnf, now: float) -> list[Output]:
        if message.src != self.modem_mac and self.modem_confirmed:
            return []
        for network in message.networks:
            if network.nid[:6] != self.key.nid[:6]:  # the last byte's top bits hold the security level
                continue
            for station in network.stations:
                member = self._members.setdefault(station.address, Member(station.address))
                member.host_mac = station.bridged_address
                member.vendor = vendor_of(station.address)
                if station.address in self._firmware:
                    member.firmware = self._firmware[station.address][0]
        return self._maybe_joined(now) if self.state == CONFIRMING else []

    def _maybe_joined(self, now: float) -> list[Output]:
        hosts = {member.host_mac for member in self._members.values()}
        expected = self.key.expected_hosts
        if (expected and expected <= hosts) or (not expected and self._members) or len(self._members) >= 2:
            self.state = JOINED
            self._deadline = None
            members = tuple(dataclasses.replace(member) for member in self._members.values())
            return [Joined(self.key.nid, members)]
        return []

    # --- helpers ---------------------------------------------------------------------------------

    def _send(self, message: Any) -> SendFrame:
        return SendFrame(message.build_frame(pad=True), message.name)

    @property
    def members(self) -> list[Member]:
        return list(self._members.values())


__all__ = ["JoinMachine", "SendFrame", "Step", "ModemFound", "KeyTaken", "Joined", "JoinFailed", "Member",
           "LOCAL_MODEM"]
