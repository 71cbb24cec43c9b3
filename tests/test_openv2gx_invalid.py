"""../shared/vectors/invalid.jsonl handled as its README says, plus header and bound checks."""

from __future__ import annotations

import json

import pytest

import openv2gx
from conftest import SHARED_DIR

INVALID = SHARED_DIR / "vectors" / "invalid.jsonl"
RECORDS = [json.loads(line) for line in INVALID.read_text().splitlines()] if INVALID.exists() else []
pytestmark = pytest.mark.skipif(not RECORDS, reason="../shared/vectors/invalid.jsonl is absent")


def by_description(*words):
    return [pytest.param(r, id=r["description"][:50]) for r in RECORDS
            if all(w in r["description"] for w in words)]


@pytest.mark.parametrize("record", [pytest.param(r, id=r["description"][:50])
                                    for r in RECORDS if r["result"] == "error"])
def test_streams_the_java_codec_refused_raise_decode_error_with_position(record):
    with pytest.raises(openv2gx.DecodeError) as caught:
        openv2gx.decode(bytes.fromhex(record["exi_hex"]), record["grammar"])
    error = caught.value
    if record["exi_hex"]:
        assert error.bit_offset is not None and error.bit_offset >= 0


@pytest.mark.parametrize("record", by_description("0x81") + by_description("0x90"))
def test_header_versions_the_java_codec_wrongly_accepted_are_rejected(record):
    with pytest.raises(openv2gx.DecodeError, match="version"):
        openv2gx.decode(bytes.fromhex(record["exi_hex"]), record["grammar"])


@pytest.mark.parametrize("record", by_description("trailing"))
def test_trailing_bytes_decode_with_a_warning(record):
    message = openv2gx.decode(bytes.fromhex(record["exi_hex"]), record["grammar"])
    assert any("4 trailing byte" in w for w in message.warnings)
    assert message.name


@pytest.mark.parametrize("record", by_description("cookie", "legal"))
def test_exi_cookie_is_legal(record):
    message = openv2gx.decode(bytes.fromhex(record["exi_hex"]), record["grammar"])
    assert message.warnings == []


@pytest.mark.parametrize("record", by_description("wrong") + by_description("all-0xFF"))
def test_wrong_grammar_is_never_presented_as_certain(record):
    try:
        message = openv2gx.decode(bytes.fromhex(record["exi_hex"]), record["grammar"])
    except openv2gx.DecodeError:
        return
    assert message.warnings, "a wrong-grammar decode must at least carry a warning"


def test_huge_length_field_does_not_allocate():
    # DIN SessionSetupReq header, then a SessionID binary length claiming 2**40 bytes
    length = 1 << 40
    groups = []
    while True:
        low, length = length & 0x7F, length >> 7
        groups.append(low | (0x80 if length else 0))
        if not length:
            break
    data = bytes.fromhex("809a00") + bytes(groups)
    with pytest.raises(openv2gx.DecodeError, match="does not fit"):
        openv2gx.decode(data, "din")


def test_unknown_schema_is_refused():
    with pytest.raises(openv2gx.UnknownSchemaError):
        openv2gx.decode(b"\x80\x00", "iso3")
