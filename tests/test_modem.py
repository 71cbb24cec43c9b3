"""The software HomePlug modem and powerline (ccssniff.emulate.modem), sans-IO."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccssniff.emulate.modem import QCA7420_FIRMWARE, Modem, Powerline, is_slac_frame
from ccssniff.emulate.slac import LOCAL_MODEM
from ccssniff.homeplug import (
    BROADCAST,
    CmAttenProfileInd,
    CmMnbcSoundInd,
    CmSetKeyCnf,
    CmSetKeyReq,
    CmSlacMatchCnf,
    CmSlacParamReq,
    MacAddress,
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

HOST = {"ev": MacAddress("02:00:00:00:00:01"), "evse": MacAddress("02:00:00:00:00:02"),
        "neighbour": MacAddress("02:00:00:00:00:03"), "sniffer": MacAddress("02:00:00:00:00:04")}
NMK = bytes(range(16))
OTHER_NMK = bytes(range(16, 32))


def ipv6_frame(src: bytes, dst: bytes) -> bytes:
    return bytes(dst) + bytes(src) + b"\x86\xdd" + bytes(40)


def set_key(line: Powerline, station: str, nmk: bytes) -> CmSetKeyCnf:
    request = CmSetKeyReq(dst=LOCAL_MODEM, src=HOST[station], nid=nid_from_nmk(nmk), new_key=nmk)
    [answer] = line.from_host(station, request.build_frame(pad=True))
    assert answer.station == station
    return parse_frame(answer.frame)


@pytest.fixture
def line() -> Powerline:
    wire = Powerline()
    for index, station in enumerate(("ev", "evse", "neighbour")):
        wire.attach(station, Modem(f"00:b0:52:00:00:1{index}", rng=random.Random(index)), attenuation_db=5 + index)
    return wire


def test_set_key_is_confirmed_and_joins_the_network(line):
    answer = set_key(line, "ev", NMK)
    assert isinstance(answer, CmSetKeyCnf) and answer.result == 0 and answer.dst == HOST["ev"]
    assert line.modems["ev"].nid == nid_from_nmk(NMK)
    assert line.members(NMK) == ["ev"]


def test_ip_frames_cross_only_within_one_network(line):
    for station in ("ev", "evse", "neighbour"):
        line.from_host(station, ipv6_frame(HOST[station], BROADCAST))  # hosts announce themselves
    frame = ipv6_frame(HOST["ev"], HOST["evse"])
    assert line.from_host("ev", frame) == []  # nobody shares a key yet
    set_key(line, "ev", NMK)
    set_key(line, "evse", NMK)
    set_key(line, "neighbour", OTHER_NMK)
    deliveries = line.from_host("ev", frame)
    assert [(d.station, d.frame) for d in deliveries] == [("evse", frame)]
    multicast = ipv6_frame(HOST["ev"], bytes.fromhex("333300000001"))
    assert [d.station for d in line.from_host("ev", multicast)] == ["evse"]


def test_slac_frames_cross_between_unpaired_modems(line):
    request = CmSlacParamReq(dst=BROADCAST, src=HOST["ev"], run_id=bytes(8)).build_frame(pad=True)
    assert is_slac_frame(request) and not is_slac_frame(ipv6_frame(HOST["ev"], BROADCAST))
    assert sorted(d.station for d in line.from_host("ev", request)) == ["evse", "neighbour"]


def test_a_filtering_modem_drops_unicast_for_other_hosts(line):
    for station in ("ev", "evse", "neighbour"):
        set_key(line, station, NMK)
    to_neighbour = ipv6_frame(HOST["ev"], HOST["neighbour"])
    assert [d.station for d in line.from_host("ev", to_neighbour)] == ["neighbour"]


def test_a_sniffer_modem_copies_every_frame_on_the_wire(line):
    line.attach("sniffer", Modem("00:b0:52:00:00:99", sniffer=True), attenuation_db=5)
    set_key(line, "ev", NMK)
    set_key(line, "evse", NMK)
    set_key(line, "sniffer", OTHER_NMK)
    frame = ipv6_frame(HOST["ev"], HOST["evse"])
    assert sorted(d.station for d in line.from_host("ev", frame)) == ["evse", "sniffer"]


def test_sounds_give_an_attenuation_profile_after_the_sound(line):
    sound = CmMnbcSoundInd(dst=BROADCAST, src=HOST["ev"], countdown=9, run_id=bytes(8), random=bytes(16))
    line.from_host("evse", ipv6_frame(HOST["evse"], BROADCAST))  # the EVSE modem learns its host
    deliveries = [d for d in line.from_host("ev", sound.build_frame(pad=True)) if d.station == "evse"]
    assert [parse_frame(d.frame).name for d in deliveries] == ["CM_MNBC_SOUND.IND", "CM_ATTEN_PROFILE.IND"]
    profile = parse_frame(deliveries[1].frame)
    assert isinstance(profile, CmAttenProfileInd)
    assert len(deliveries[1].frame) == 85  # 14 + 5 + 66, the size a QCA modem sends
    assert profile.pev_mac == HOST["ev"] and profile.dst == HOST["evse"]
    assert len(profile.aag) == 58 and min(profile.aag) > 0
    assert 8 <= sum(profile.aag) / 58 <= 14  # 5 dB + 6 dB coupling loss


@pytest.mark.parametrize("address", [LOCAL_MODEM, MacAddress("00:b0:52:00:00:10"), BROADCAST])
def test_software_version_is_answered_on_every_management_address(line, address):
    [answer] = line.from_host("ev", VsSwVerReq(dst=address, src=HOST["ev"]).build_frame(pad=True))
    reply = parse_frame(answer.frame)
    assert isinstance(reply, VsSwVerCnf) and answer.station == "ev"
    assert reply.version_text == QCA7420_FIRMWARE and reply.device_id == 0x20


def test_network_info_lists_the_other_members(line):
    for station in ("ev", "evse", "neighbour"):
        line.from_host(station, ipv6_frame(HOST[station], BROADCAST))
    [empty] = line.from_host("ev", VsNwInfoReq(dst=LOCAL_MODEM, src=HOST["ev"]).build_frame(pad=True))
    assert parse_frame(empty.frame).networks == []
    set_key(line, "evse", NMK)
    set_key(line, "ev", NMK)
    [answer] = line.from_host("ev", VsNwInfoReq(dst=LOCAL_MODEM, src=HOST["ev"]).build_frame(pad=True))
    info = parse_frame(answer.frame)
    assert isinstance(info, VsNwInfoCnf)
    [network] = info.networks
    assert network.nid == nid_from_nmk(NMK)
    assert [(s.address, s.bridged_address) for s in network.stations] == [(line.modems["evse"].mac, HOST["evse"])]
    assert network.cco_address == line.modems["evse"].mac  # the first to join coordinates
    assert info.data_length == len(info.to_bytes()) - 12  # the bytes after the field


@settings(max_examples=200, deadline=None)
@given(frame=st.binary(max_size=100), station=st.sampled_from(["ev", "evse"]))
def test_any_bytes_from_a_host_are_handled(frame, station):
    wire = Powerline()
    wire.attach("ev", Modem("00:b0:52:00:00:01", rng=random.Random(0)))
    wire.attach("evse", Modem("00:b0:52:00:00:02", sniffer=True, rng=random.Random(1)))
    for delivery in wire.from_host(station, frame):
        assert delivery.station in ("ev", "evse") and isinstance(delivery.frame, bytes)


# --- restart, full view, sniffer mode, remote answers -------------------------------------------

def test_set_key_restarts_the_modem_for_its_restart_delay():
    wire = Powerline()
    wire.attach("ev", Modem("00:b0:52:00:00:01", restart_delay=6.0))
    wire.attach("evse", Modem("00:b0:52:00:00:02", restart_delay=6.0))
    for station in ("ev", "evse"):
        request = CmSetKeyReq(dst=LOCAL_MODEM, src=HOST[station], nid=nid_from_nmk(NMK), new_key=NMK)
        [answer] = wire.from_host(station, request.build_frame(pad=True), now=100.0)
        assert parse_frame(answer.frame).result == 0  # answered before the restart
    frame = ipv6_frame(HOST["ev"], HOST["evse"])
    version = VsSwVerReq(dst=LOCAL_MODEM, src=HOST["ev"]).build_frame(pad=True)
    assert wire.from_host("ev", frame, now=105.0) == [] and wire.from_host("ev", version, now=105.0) == []
    assert [d.station for d in wire.from_host("ev", frame, now=106.5)] == ["evse"]


def test_reset_device_is_confirmed_then_restarts():
    wire = Powerline()
    wire.attach("ev", Modem("00:b0:52:00:00:01", restart_delay=2.0))
    [answer] = wire.from_host("ev", VsRsDevReq(dst=LOCAL_MODEM, src=HOST["ev"]).build_frame(pad=True), now=1.0)
    assert isinstance(parse_frame(answer.frame), VsRsDevCnf)
    version = VsSwVerReq(dst=LOCAL_MODEM, src=HOST["ev"]).build_frame(pad=True)
    assert wire.from_host("ev", version, now=2.5) == [] and len(wire.from_host("ev", version, now=3.5)) == 1


@pytest.mark.parametrize("view,forwarded", [("filtering", False), ("full", True)])
def test_unicast_between_two_other_stations_reaches_only_a_full_view_modem(view, forwarded):
    wire = Powerline()
    for index, station in enumerate(("ev", "evse")):
        wire.attach(station, Modem(f"00:b0:52:00:00:1{index}"))
    wire.attach("sniffer", Modem("00:b0:52:00:00:99", view=view))
    for station in ("ev", "evse", "sniffer"):
        wire.from_host(station, ipv6_frame(HOST[station], BROADCAST))
        set_key(wire, station, NMK)
    stations = sorted(d.station for d in wire.from_host("ev", ipv6_frame(HOST["ev"], HOST["evse"])))
    assert stations == (["evse", "sniffer"] if forwarded else ["evse"])
    # SLAC reaches every host, unicast or not
    match = CmSlacMatchCnf(dst=HOST["ev"], src=HOST["evse"], nid=nid_from_nmk(OTHER_NMK), nmk=OTHER_NMK)
    assert sorted(d.station for d in wire.from_host("evse", match.build_frame(pad=True))) == ["ev", "sniffer"]
    with pytest.raises(ValueError):
        Modem("00:b0:52:00:00:98", view="everything")


def test_sniffer_mode_reports_the_frames_the_modem_hides_and_the_beacons(line):
    for station in ("ev", "evse", "neighbour"):
        line.from_host(station, ipv6_frame(HOST[station], BROADCAST))
        set_key(line, station, NMK)
    [cnf] = line.from_host("neighbour", VsSnifferReq(dst=LOCAL_MODEM, src=HOST["neighbour"], control=1)
                           .build_frame(pad=True))
    reply = parse_frame(cnf.frame)
    assert isinstance(reply, VsSnifferCnf) and reply.status == 0 and reply.state == 1
    deliveries = line.from_host("ev", ipv6_frame(HOST["ev"], HOST["evse"]))
    [indication] = [parse_frame(d.frame) for d in deliveries if d.station == "neighbour"]
    assert isinstance(indication, VsSnifferInd)  # the frame itself stays hidden, its frame control not
    frame = indication.frame
    assert frame["delimiter"] == "start of frame" and frame["dtei"] != 0xFF and frame["stei"] != frame["dtei"]
    beacons = [parse_frame(d.frame).frame for d in line.tick(now=1.0)]
    assert [b["nid"] for b in beacons] == [":".join(f"{x:02x}" for x in nid_from_nmk(NMK))]
    line.from_host("neighbour", VsSnifferReq(dst=LOCAL_MODEM, src=HOST["neighbour"], control=0).build_frame(pad=True))
    assert line.tick(now=2.0) == []


def test_broadcast_software_version_is_answered_by_every_member_of_the_network(line):
    for station in ("ev", "evse", "neighbour"):
        line.from_host(station, ipv6_frame(HOST[station], BROADCAST))
    set_key(line, "ev", NMK)
    set_key(line, "evse", NMK)
    set_key(line, "neighbour", OTHER_NMK)
    deliveries = line.from_host("ev", VsSwVerReq(dst=BROADCAST, src=HOST["ev"]).build_frame(pad=True))
    answers = [parse_frame(d.frame) for d in deliveries if d.station == "ev"]
    assert sorted(a.src for a in answers) == sorted([line.modems["ev"].mac, line.modems["evse"].mac])
    assert all(isinstance(a, VsSwVerCnf) and a.dst == HOST["ev"] for a in answers)
