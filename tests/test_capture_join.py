"""The sans-IO listen/join machine, driven directly against the simulated modems and powerline."""

from __future__ import annotations

import random

import pytest

from ccssniff.capture.join import (
    CONFIRM_TIME,
    CONFIRMING,
    JOINED,
    LOCAL_MODEM,
    NOT_JOINED,
    WATCHING,
    Joined,
    JoinFailed,
    JoinMachine,
    KeyTaken,
    ModemFound,
    SendFrame,
    Step,
)
from ccssniff.emulate.modem import QCA7420_FIRMWARE, Modem, Powerline
from ccssniff.homeplug import (
    BROADCAST,
    CmSetKeyCnf,
    CmSetKeyReq,
    CmSlacMatchCnf,
    MacAddress,
    nid_from_nmk,
    parse_frame,
)

HOST = {"ev": MacAddress("02:00:00:00:00:01"), "evse": MacAddress("02:00:00:00:00:02"),
        "sniff": MacAddress("02:00:00:00:00:03")}
MODEM = {"ev": MacAddress("00:b0:52:00:00:e1"), "evse": MacAddress("00:b0:52:00:00:c1"),
         "sniff": MacAddress("00:b0:52:00:00:51")}
NMK = bytes(range(16))
NEXT_NMK = bytes(range(16, 32))
RESTART = 6.0  # s, a TL-PA4010P's restart after CM_SET_KEY


class Bench:
    """A powerline with car, charger and our sniffer, and a clock; runs the machine on it."""

    def __init__(self, machine: JoinMachine, restart_delay: float = RESTART, with_sniff_modem: bool = True):
        self.line = Powerline()
        for station in ("ev", "evse", "sniff"):
            if station == "sniff" and not with_sniff_modem:
                continue
            self.line.attach(station, Modem(MODEM[station], rng=random.Random(station), restart_delay=restart_delay))
        self.machine = machine
        self.now = 1000.0
        self.outputs: list = []
        self.sent: list = []

    def handle(self, outputs) -> None:
        for output in outputs:
            self.outputs.append(output)
            if isinstance(output, SendFrame):
                self.sent.append(parse_frame(output.frame))
                if "sniff" in self.line.modems:
                    for delivery in self.line.from_host("sniff", output.frame, self.now):
                        if delivery.station == "sniff":
                            self.handle(self.machine.receive_frame(delivery.frame, self.now))

    def host_sends(self, station: str, message) -> None:
        frame = message.build_frame(pad=True)
        for delivery in self.line.from_host(station, frame, self.now):
            if delivery.station == "sniff":
                self.handle(self.machine.receive_frame(delivery.frame, self.now))

    def run_until(self, end: float) -> None:
        while True:
            deadline = self.machine.next_deadline()
            if deadline is None or deadline > end:
                self.now = end
                return
            self.now = max(self.now, deadline)
            self.handle(self.machine.on_timer(self.now))

    def session_keys(self, nmk: bytes = NMK) -> None:
        """What car and charger do after SLAC: the charger's CNF to the car, both set the key."""
        self.host_sends("evse", CmSlacMatchCnf(dst=HOST["ev"], src=HOST["evse"], pev_mac=HOST["ev"],
                                               evse_mac=HOST["evse"], run_id=bytes(8), nid=nid_from_nmk(nmk),
                                               nmk=nmk))
        for station in ("ev", "evse"):
            self.host_sends(station, CmSetKeyReq(dst=LOCAL_MODEM, src=HOST[station], nid=nid_from_nmk(nmk),
                                                 new_key=nmk))

    def of(self, kind) -> list:
        return [output for output in self.outputs if isinstance(output, kind)]


def test_finds_the_local_modem_then_watches():
    bench = Bench(JoinMachine(HOST["sniff"]))
    bench.handle(bench.machine.start(bench.now))
    [found] = bench.of(ModemFound)
    assert found.local and found.mac == MODEM["sniff"] and found.firmware == QCA7420_FIRMWARE
    assert bench.machine.state == WATCHING and bench.machine.next_deadline() is None
    assert bench.sent[0].name == "VS_SW_VER.REQ" and bench.sent[0].dst == LOCAL_MODEM


def test_joins_from_the_sniffed_match_cnf_and_confirms_through_the_network():
    bench = Bench(JoinMachine(HOST["sniff"]))
    bench.handle(bench.machine.start(bench.now))
    bench.session_keys()
    [taken] = bench.of(KeyTaken)
    assert taken.nmk == NMK and taken.evse_mac == HOST["evse"] and taken.pev_mac == HOST["ev"]
    set_key = [m for m in bench.sent if isinstance(m, CmSetKeyReq)]
    assert len(set_key) == 1 and set_key[0].new_key == NMK and set_key[0].dst == MODEM["sniff"]
    assert bench.machine.state == CONFIRMING
    assert bench.line.modems["sniff"].nmk == NMK
    bench.run_until(bench.now + RESTART - 1)
    assert bench.machine.state == CONFIRMING  # the modem is still restarting: no answers yet
    bench.run_until(bench.now + 3)
    [joined] = bench.of(Joined)
    assert bench.machine.state == JOINED
    assert joined.nid == nid_from_nmk(NMK)
    assert {(m.mac, m.host_mac) for m in joined.members} == {(MODEM["ev"], HOST["ev"]), (MODEM["evse"], HOST["evse"])}
    assert all(m.vendor == "Atheros Communications" for m in joined.members)
    polls = [m.name for m in bench.sent if m.name in ("VS_NW_INFO.REQ", "VS_SW_VER.REQ") and m.dst != LOCAL_MODEM]
    assert len(polls) >= 2 * (RESTART - 1)  # kept asking while the modem restarted
    assert bench.machine.next_deadline() is None


def test_the_next_session_key_joins_again():
    bench = Bench(JoinMachine(HOST["sniff"]), restart_delay=0.0)
    bench.handle(bench.machine.start(bench.now))
    bench.session_keys(NMK)
    bench.run_until(bench.now + 2)
    bench.session_keys(NMK)  # a repeated CNF of the same session changes nothing
    assert len([m for m in bench.sent if isinstance(m, CmSetKeyReq)]) == 1
    bench.session_keys(NEXT_NMK)
    bench.run_until(bench.now + 2)
    assert [joined.nid for joined in bench.of(Joined)] == [nid_from_nmk(NMK), nid_from_nmk(NEXT_NMK)]
    assert bench.line.modems["sniff"].nmk == NEXT_NMK


def test_a_given_key_is_set_at_once():
    bench = Bench(JoinMachine(HOST["sniff"], nmk=NMK), restart_delay=0.5)
    for station in ("ev", "evse"):
        bench.host_sends(station, CmSetKeyReq(dst=LOCAL_MODEM, src=HOST[station], nid=nid_from_nmk(NMK), new_key=NMK))
    bench.run_until(bench.now + 1)
    bench.handle(bench.machine.start(bench.now))
    [taken] = bench.of(KeyTaken)
    assert taken.source == "--nmk" and taken.nid == nid_from_nmk(NMK)
    bench.run_until(bench.now + 3)
    assert bench.machine.state == JOINED
    assert {m.mac for m in bench.of(Joined)[0].members} == {MODEM["ev"], MODEM["evse"]}


def test_no_join_only_watches():
    bench = Bench(JoinMachine(HOST["sniff"], join=False))
    bench.handle(bench.machine.start(bench.now))
    bench.session_keys()
    bench.run_until(bench.now + 60)
    assert [k.nmk for k in bench.of(KeyTaken)] == [NMK]
    assert not any(isinstance(m, CmSetKeyReq) for m in bench.sent)
    assert bench.machine.state == WATCHING and bench.line.modems["sniff"].nmk is None


def test_without_a_modem_the_key_goes_to_the_local_address_and_the_join_fails_in_bounded_time():
    bench = Bench(JoinMachine(HOST["sniff"]), with_sniff_modem=False)
    bench.handle(bench.machine.start(bench.now))
    bench.run_until(bench.now + 5)
    assert bench.machine.state == WATCHING and bench.machine.modem_mac == LOCAL_MODEM
    assert any("no modem answered" in step.text for step in bench.of(Step))
    bench.handle(bench.machine.receive_frame(CmSlacMatchCnf(
        dst=HOST["ev"], src=HOST["evse"], pev_mac=HOST["ev"], evse_mac=HOST["evse"], nid=nid_from_nmk(NMK),
        nmk=NMK).build_frame(pad=True), bench.now))
    start = bench.now
    bench.run_until(start + 120)
    set_keys = [m for m in bench.sent if isinstance(m, CmSetKeyReq)]
    assert len(set_keys) == 3 and all(m.dst == LOCAL_MODEM for m in set_keys)
    [failed] = bench.of(JoinFailed)
    assert bench.machine.state == NOT_JOINED and bench.machine.next_deadline() is None
    assert "did not confirm" in failed.reason
    assert len([m for m in bench.sent if m.name == "VS_NW_INFO.REQ"]) <= CONFIRM_TIME + 1


def test_a_failure_answer_to_set_key_still_goes_on_to_confirm():
    machine = JoinMachine(HOST["sniff"], modem_mac=MODEM["sniff"])
    outputs = machine.start(0.0)
    [request] = [o for o in outputs if isinstance(o, SendFrame)]
    assert parse_frame(request.frame).name == "VS_SW_VER.REQ"
    machine.receive_frame(_software_version(MODEM["sniff"], HOST["sniff"]), 0.01)
    machine.receive_frame(CmSlacMatchCnf(dst=HOST["ev"], src=HOST["evse"], pev_mac=HOST["ev"],
                                         evse_mac=HOST["evse"], nid=nid_from_nmk(NMK), nmk=NMK)
                          .build_frame(pad=True), 1.0)
    outputs = machine.receive_frame(CmSetKeyCnf(dst=HOST["sniff"], src=MODEM["sniff"], result=1)
                                    .build_frame(pad=True), 1.1)
    assert any(isinstance(o, Step) and "failure" in o.text for o in outputs)
    assert machine.state == CONFIRMING
    assert [parse_frame(o.frame).name for o in outputs if isinstance(o, SendFrame)] == \
        ["VS_NW_INFO.REQ", "VS_SW_VER.REQ"]


def _software_version(modem: MacAddress, host: MacAddress) -> bytes:
    from ccssniff.homeplug import VsSwVerCnf

    text = QCA7420_FIRMWARE.encode() + b"\0"
    return VsSwVerCnf(dst=host, src=modem, device_id=0x20, version_length=len(text),
                      version=text.ljust(254, b"\0")).build_frame(pad=True)


@pytest.mark.parametrize("frame", [
    CmSlacMatchCnf(dst=BROADCAST, src=HOST["evse"], nid=bytes(7), nmk=NMK).build_frame()[:40],  # cut short
    bytes(12) + b"\x88\xe1" + b"\x01\x7d\x60",  # only a header
    b"\x88\xe1",
    bytes(100),
])
def test_bad_frames_are_ignored(frame):
    machine = JoinMachine(HOST["sniff"], modem_mac=MODEM["sniff"])
    machine.start(0.0)
    assert machine.receive_frame(frame, 0.1) == []


def test_keys_of_the_wrong_size_are_refused():
    with pytest.raises(ValueError):
        JoinMachine(HOST["sniff"], nmk=bytes(15))
    with pytest.raises(ValueError):
        JoinMachine(HOST["sniff"], nmk=NMK, nid=bytes(6))
