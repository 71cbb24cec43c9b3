"""V2GTP header checks and datagram parsing."""
from __future__ import annotations

import pytest

from ccssniff.decode.v2gtp import (MAX_PAYLOAD_LENGTH, PAYLOAD_TYPES, V2gtpError, build_header, is_header_at,
                                   parse_datagram, parse_header)


@pytest.mark.parametrize("payload_type", sorted(PAYLOAD_TYPES))
def test_every_known_payload_type_round_trips(payload_type):
    header = parse_header(build_header(payload_type, 1234))
    assert (header.payload_type, header.payload_length) == (payload_type, 1234)


def test_iso20_payload_types_name_their_grammar():
    assert [PAYLOAD_TYPES[t][1] for t in range(0x8002, 0x8007)] == [
        "iso20_CommonMessages", "iso20_AC", "iso20_DC", "iso20_ACDP", "iso20_WPT"]


@pytest.mark.parametrize("data, reason", [
    (b"\x02\xfe\x80\x01\x00\x00\x00\x00", "V2GTP version 0x02 / inverse 0xfe, expected 0x01 / 0xfe"),
    (b"\x01\xfd\x80\x01\x00\x00\x00\x00", "V2GTP version 0x01 / inverse 0xfd, expected 0x01 / 0xfe"),
    (b"\x01\xfe\x80\x07\x00\x00\x00\x00", "unknown V2GTP payload type 0x8007"),
    (b"\x01\xfe\x80\x01\x00\x04\x00\x01", f"V2GTP payload length 262145 exceeds {MAX_PAYLOAD_LENGTH}"),
    (b"\x01\xfe\x80", "V2GTP header needs 8 bytes, got 3"),
])
def test_bad_headers_say_which_field_is_wrong(data, reason):
    with pytest.raises(V2gtpError) as caught:
        parse_header(data)
    assert str(caught.value) == reason
    assert not is_header_at(data, 0)


def test_is_header_at_an_offset():
    data = b"xx" + build_header(0x9000, 2) + b"\x10\x00"
    assert is_header_at(data, 2) and not is_header_at(data, 0) and not is_header_at(data, 5)


def test_datagram_with_trailing_bytes_keeps_only_the_declared_payload():
    pdu = parse_datagram(build_header(0x9000, 2) + b"\x10\x00\xff")
    assert pdu == (0x9000, b"\x10\x00")


def test_datagram_shorter_than_declared_is_rejected():
    with pytest.raises(V2gtpError, match="payload length 20, datagram holds 2"):
        parse_datagram(build_header(0x9001, 20) + b"\x10\x00")
