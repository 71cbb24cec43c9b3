"""Our PEV and EVSE SLAC in two network namespaces, real AF_PACKET sockets, the modem simulator between.

    [ns ev] veth ==== veth [ns line: Powerline with two Modems] veth ==== veth [ns evse]
"""

from __future__ import annotations

import asyncio
import random
import socket

import pytest

from ccssniff.emulate import netns
from ccssniff.emulate.modem import Modem, Powerline, run_modem_bridge
from ccssniff.emulate.rawlink import open_link, run_machine
from ccssniff.emulate.slac import SlacEvse, SlacFailed, SlacMatched, SlacPev
from ccssniff.homeplug import MacAddress, nid_from_nmk

SESSION_TIMEOUT = 30.0  # seconds of wall time a SLAC run may take at most here (it needs ~1)


@pytest.fixture
def namespaces():
    reason = netns.unavailable_reason()
    if reason:
        pytest.skip(reason)
    with netns.Namespaces(3) as spaces:
        yield spaces


def mac_of(namespace: netns.Namespace, interface: str) -> MacAddress:
    output = namespace.run("cat", f"/sys/class/net/{interface}/address").stdout
    return MacAddress(output.strip())


def test_namespaces_are_removed_at_the_end():
    reason = netns.unavailable_reason()
    if reason:
        pytest.skip(reason)
    with netns.Namespaces(2) as (a, b):
        end_a, end_b = netns.veth(a, b)
        address = a.link_local(end_a)
        assert address.startswith("fe80:")
        # the cable works: a datagram from b reaches a's link-local address
        with a.entered():
            receiver = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            receiver.bind((address, 0, 0, socket.if_nametoindex(end_a)))
        with b.entered():
            sender = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            sender.sendto(b"hello", (address, receiver.getsockname()[1], 0, socket.if_nametoindex(end_b)))
        receiver.settimeout(5)
        assert receiver.recv(16) == b"hello"
        receiver.close()
        sender.close()
        names = (a.name, b.name)
    listed = netns._ip("netns", "list")
    assert not any(name in listed for name in names)


def test_pev_and_evse_match_across_namespaces_through_the_modem_simulator(namespaces):
    ev, evse, line = namespaces
    ev_if, line_ev_if = netns.veth(ev, line)
    evse_if, line_evse_if = netns.veth(evse, line)
    ev_mac, evse_mac = mac_of(ev, ev_if), mac_of(evse, evse_if)
    with ev.entered():
        ev_sock = open_link(ev_if)
    with evse.entered():
        evse_sock = open_link(evse_if)
    with line.entered():
        ports = {"pev": open_link(line_ev_if), "evse": open_link(line_evse_if)}
    powerline = Powerline()
    powerline.attach("pev", Modem("00:b0:52:00:0e:01"), attenuation_db=4)
    powerline.attach("evse", Modem("00:b0:52:00:0c:01"), attenuation_db=6)
    pev = SlacPev(ev_mac, rng=random.Random(11))
    evse_machine = SlacEvse(evse_mac, rng=random.Random(12))

    async def session():
        stop = asyncio.Event()
        bridge = asyncio.create_task(run_modem_bridge(powerline, ports, stop))
        ends = (SlacMatched, SlacFailed)
        try:
            evse_task = asyncio.create_task(run_machine(
                evse_machine, evse_sock, until=lambda o: isinstance(o, ends)))
            await asyncio.sleep(0.05)  # the charger is ready before the car plugs in
            pev_result = await run_machine(pev, ev_sock, until=lambda o: isinstance(o, ends))
            return pev_result, await evse_task
        finally:
            stop.set()
            await bridge

    try:
        pev_result, evse_result = asyncio.run(asyncio.wait_for(session(), SESSION_TIMEOUT))
    finally:
        for sock in [ev_sock, evse_sock, *ports.values()]:
            sock.close()
    assert isinstance(pev_result, SlacMatched), pev_result
    assert isinstance(evse_result, SlacMatched), evse_result
    assert pev_result.nmk == evse_result.nmk and pev_result.nid == evse_result.nid == nid_from_nmk(pev_result.nmk)
    assert pev_result.peer_mac == evse_mac and evse_result.peer_mac == ev_mac
    # both modems joined the session's network: IP between the two hosts may flow now
    assert sorted(powerline.members(pev_result.nmk)) == ["evse", "pev"]
