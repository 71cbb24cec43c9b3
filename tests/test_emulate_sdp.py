"""The sans-IO SDP client and server (ccssniff.emulate.sdp)."""

from __future__ import annotations

import ipaddress
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccssniff.emulate.sdp import (Discovered, DiscoveryFailed, Ignored, SdpClient, SdpError,
                                  SdpRequest, SdpResponse, SdpServer, SendDatagram, parse)
from ccssniff.standards.sdp import MAX_REQUESTS, MULTICAST_ADDRESS, Security, Transport

EVSE_ADDRESS = "fe80::c4a9:8cff:feef:4bcd"


def test_recorded_sdp_messages_parse_and_rebuild(shared_dir):
    records = [json.loads(line) for line in (shared_dir / "vectors" / "sessions.jsonl").read_text().splitlines()]
    sdp = [r for r in records if r["transport"] == "SDP"]
    assert len(sdp) == 6
    for record in sdp:
        datagram = bytes.fromhex(record["v2gtp_header"] + record["payload_hex"])
        message = parse(datagram)
        assert message.to_bytes() == datagram
        if record["payload_type"] == "0x9000":
            assert message == SdpRequest(Security.NO_TLS, Transport.TCP)
        else:
            assert isinstance(message, SdpResponse) and message.address.is_link_local
            assert message.security is Security.NO_TLS and message.transport is Transport.TCP
    din_response = parse(bytes.fromhex(sdp[1]["v2gtp_header"] + sdp[1]["payload_hex"]))
    assert din_response.address == ipaddress.IPv6Address(EVSE_ADDRESS) and din_response.port == 0xCECE


@pytest.mark.parametrize("datagram, reason", [
    (b"\x01\xfe\x90", "shorter than a V2GTP header"),
    (bytes.fromhex("02fd9000000000021000"), "version"),
    (bytes.fromhex("01fe9000000000031000"), "length field"),
    (bytes.fromhex("01fe900000000003100000"), "expected 2"),
    (bytes.fromhex("01fe8001000000021000"), "not SDP"),
    (bytes.fromhex("01fe90000000000255aa"), "unknown SDP security"),
])
def test_malformed_datagrams_are_rejected_with_a_reason(datagram, reason):
    with pytest.raises(SdpError, match=reason):
        parse(datagram)


@given(st.binary(max_size=40))
def test_parse_only_ever_raises_sdp_error(data):
    try:
        message = parse(data)
    except SdpError:
        return
    assert message.to_bytes() == data


def _exchange(client: SdpClient, server: SdpServer, now: float, deliver_request=True, deliver_response=True):
    """Send what the client emits to the server and back; return the client's events."""
    events = []
    for item in client.start(now) if client.state == client.IDLE else client.on_timer(now):
        assert isinstance(item, SendDatagram) and item.destination == MULTICAST_ADDRESS
        if not deliver_request:
            continue
        for reply in server.on_datagram(item.data, "fe80::1"):
            assert reply.destination == "fe80::1"
            if deliver_response:
                events += client.on_datagram(reply.data, now + 0.01)
    return events


def test_client_and_server_agree():
    client = SdpClient()
    server = SdpServer(EVSE_ADDRESS, 50000)
    events = _exchange(client, server, 0.0)
    assert events == [Discovered(SdpResponse(ipaddress.IPv6Address(EVSE_ADDRESS), 50000))]
    assert client.state == client.DISCOVERED and client.next_deadline() is None
    assert client.on_timer(10.0) == []


def test_lost_requests_are_retried_on_the_schedule():
    client = SdpClient()
    server = SdpServer(EVSE_ADDRESS, 50000)
    assert _exchange(client, server, 0.0, deliver_request=False) == []
    assert client.next_deadline() == pytest.approx(0.25)
    assert client.on_timer(0.2) == []  # not yet
    assert _exchange(client, server, 0.25, deliver_response=False) == []
    assert client.requests_sent == 2 and client.next_deadline() == pytest.approx(0.5)
    events = _exchange(client, server, 0.5)
    assert isinstance(events[0], Discovered) and client.requests_sent == 3


def test_client_gives_up_after_the_maximum_number_of_requests():
    client = SdpClient()
    client.start(0.0)
    now, failures = 0.0, []
    while client.next_deadline() is not None:
        now = client.next_deadline()
        failures += [e for e in client.on_timer(now) if isinstance(e, DiscoveryFailed)]
    assert client.requests_sent == MAX_REQUESTS
    assert now == pytest.approx(MAX_REQUESTS * 0.25)
    assert len(failures) == 1 and client.state == client.FAILED


def test_security_negotiation():
    tls_only = SdpServer(EVSE_ADDRESS, 50001, security_offered=[Security.TLS])
    strict = SdpClient(Security.NO_TLS, acceptable_security=[Security.NO_TLS])
    events = _exchange(strict, tls_only, 0.0)
    assert isinstance(events[0], Ignored) and "TLS" in events[0].reason
    assert strict.state == strict.WAITING
    lenient = SdpClient(Security.NO_TLS)
    events = _exchange(lenient, tls_only, 0.0)
    assert events[0].response.security is Security.TLS
    both = SdpServer(EVSE_ADDRESS, 50001, security_offered=[Security.NO_TLS, Security.TLS])
    assert both.response_for(SdpRequest(Security.TLS)).security is Security.TLS


def test_server_ignores_responses_garbage_and_udp_requests():
    server = SdpServer(EVSE_ADDRESS, 50000)
    response = SdpResponse(ipaddress.IPv6Address("fe80::2"), 1234).to_bytes()
    assert isinstance(server.on_datagram(response, "fe80::2")[0], Ignored)
    assert isinstance(server.on_datagram(b"junk", "fe80::2")[0], Ignored)
    udp = SdpRequest(Security.NO_TLS, Transport.UDP).to_bytes()
    assert isinstance(server.on_datagram(udp, "fe80::2")[0], Ignored)
    assert server.requests_answered == 0
    with pytest.raises(ValueError):
        SdpServer(EVSE_ADDRESS, 0)


def test_client_ignores_its_own_multicast_echo():
    client = SdpClient()
    (send,) = client.start(0.0)
    assert isinstance(client.on_datagram(send.data, 0.001)[0], Ignored)
    assert client.state == client.WAITING
