"""SDP request/response payloads against the vectors captured between independent stacks."""
from __future__ import annotations

import json

import pytest

from ccssniff.decode.sdp import SdpError, SdpRequest, SdpResponse, parse_request, parse_response


def test_request_fields_and_round_trip():
    request = parse_request(b"\x10\x00")
    assert request.fields() == {"security": "none", "transport": "TCP"}
    assert request.build() == b"\x10\x00"
    assert parse_request(b"\x00\x10").fields() == {"security": "TLS", "transport": "UDP"}
    assert parse_request(b"\x05\x00").fields()["security"] == "reserved (0x05)"


def test_response_fields_and_round_trip():
    address = bytes.fromhex("fe80000000000000c4a98cfffeef4bcd")
    payload = address + (52942).to_bytes(2, "big") + b"\x10\x00"
    response = parse_response(payload)
    assert response == SdpResponse(address, 52942, 0x10, 0x00)
    assert response.fields() == {"address": "fe80::c4a9:8cff:feef:4bcd", "port": 52942,
                                 "security": "none", "transport": "TCP"}
    assert response.build() == payload


@pytest.mark.parametrize("parse, data, message", [
    (parse_request, b"\x10", "SDP request needs 2 bytes"),
    (parse_response, bytes(19), "SDP response needs 20 bytes"),
])
def test_short_payloads_are_rejected(parse, data, message):
    with pytest.raises(SdpError, match=message):
        parse(data)


def test_wireless_request_keeps_its_extra_bytes():
    request = parse_request(b"\x10\x00EVID")
    assert request == SdpRequest(0x10, 0x00, b"EVID") and request.build() == b"\x10\x00EVID"


def test_session_vectors(shared_dir):
    records = [json.loads(line) for line in (shared_dir / "vectors" / "sessions.jsonl").open()]
    sdp = [r for r in records if r["transport"] == "SDP"]
    assert len(sdp) == 6
    for record in sdp:
        payload = bytes.fromhex(record["payload_hex"])
        if record["payload_type"] == "0x9000":
            assert parse_request(payload).build() == payload
        else:
            response = parse_response(payload)
            assert response.build() == payload and response.fields()["address"].startswith("fe80::")
