"""Lenient EXI (issues 13 and 18): what the bits carry decodes, facet violations and empty typed
elements are listed in ``schema_violations``, and encode gives the captured bytes back.

Both decoders (the table interpreter and the generated code of specialise.py) are checked to give
the same message and the same violations.
"""

from __future__ import annotations

import functools
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import openv2gx
from conftest import SHARED_DIR
from openv2gx.leaves import facet_breaking_values, leaves

VECTOR_FILES = ("appHandshake", "din", "iso2", "iso20", "fragments")


def load_vectors():
    found = []
    for name in VECTOR_FILES:
        path = SHARED_DIR / "vectors" / f"{name}.jsonl"
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record.get("grammar"):
                found.append((record["grammar"], bytes.fromhex(record["exi_hex"]), bool(record.get("fragment"))))
    return found


VECTORS = load_vectors()
needs_vectors = pytest.mark.skipif(not VECTORS, reason=f"no vectors in {SHARED_DIR} (shared folder absent)")


def decode_both(data: bytes, schema: str, fragment: bool = False):
    """The message from the generated decoder, after checking the interpreter gives the same."""
    fast = openv2gx.decode(data, schema, fragment=fragment)
    reference = openv2gx.decode(data, schema, fragment=fragment, specialised=False)
    assert fast == reference
    assert fast.schema_violations == reference.schema_violations
    return fast


def power_delivery_req():
    for grammar, data, _ in VECTORS:
        message = openv2gx.decode(data, grammar) if grammar == "iso2" else None
        if message is not None and message.name == "PowerDeliveryReq" and "ProfileEntry" in json.dumps(message, default=str):
            body = message["V2G_Message"]["Body"]["PowerDeliveryReq"]
            if "ChargingProfileEntryMaxNumberOfPhasesInUse" in body["ChargingProfile"]["ProfileEntry"][0]:
                return message
    pytest.skip("no ISO-2 PowerDeliveryReq vector with a number of phases")


@needs_vectors
def test_field_case_four_phases_in_a_1_to_3_facet():
    """ISO-2 PowerDeliveryReq with ChargingProfileEntryMaxNumberOfPhasesInUse = 4: the facet is
    1..3, the 2-bit offset from 1 carries 4. A car sent it and a charger accepted it."""
    message = power_delivery_req()
    entry = message["V2G_Message"]["Body"]["PowerDeliveryReq"]["ChargingProfile"]["ProfileEntry"][0]
    entry["ChargingProfileEntryMaxNumberOfPhasesInUse"] = 4
    with pytest.raises(openv2gx.EncodeError, match="value 4 outside 1..3"):
        openv2gx.encode(message)  # strict by default for messages our code builds
    captured = openv2gx.encode(message, lenient=True)

    decoded = decode_both(captured, "iso2")
    again = decoded["V2G_Message"]["Body"]["PowerDeliveryReq"]["ChargingProfile"]["ProfileEntry"][0]
    assert again["ChargingProfileEntryMaxNumberOfPhasesInUse"] == 4
    assert decoded.schema_violations == [
        "V2G_Message/Body/PowerDeliveryReq/ChargingProfile/ProfileEntry[0]/"
        "ChargingProfileEntryMaxNumberOfPhasesInUse: value 4 outside 1..3"]
    assert decoded.warnings == []
    assert openv2gx.encode(decoded) == captured  # lenient because it carries schema_violations
    assert openv2gx.encode(decoded, specialised=False) == captured
    assert "<ns5:ChargingProfileEntryMaxNumberOfPhasesInUse>4<" in decoded.to_xml() or \
        "ChargingProfileEntryMaxNumberOfPhasesInUse>4</" in decoded.to_xml()
    with pytest.raises(openv2gx.EncodeError):
        openv2gx.encode(decoded, lenient=False)


@needs_vectors
def test_values_beyond_the_bits_are_refused_even_when_lenient():
    message = power_delivery_req()
    entry = message["V2G_Message"]["Body"]["PowerDeliveryReq"]["ChargingProfile"]["ProfileEntry"][0]
    entry["ChargingProfileEntryMaxNumberOfPhasesInUse"] = 5  # 5 - 1 does not fit in 2 bits
    with pytest.raises(openv2gx.EncodeError, match="does not fit in 2 bits"):
        openv2gx.encode(message, lenient=True)
    message["V2G_Message"]["Body"]["PowerDeliveryReq"]["ChargeProgress"] = "Sideways"
    entry["ChargingProfileEntryMaxNumberOfPhasesInUse"] = 3
    with pytest.raises(openv2gx.EncodeError, match="'Sideways' is not one of"):
        openv2gx.encode(message, lenient=True)


@functools.lru_cache(maxsize=None)
def typed_positions():
    """(vector, leaf, value) for every facet-breaking value of every typed position of the vectors."""
    found = []
    for grammar, data, fragment in VECTORS:
        message = openv2gx.decode(data, grammar, fragment=fragment)
        for leaf in leaves(message):
            for value in facet_breaking_values(leaf.datatype):
                found.append((grammar, data, fragment, leaf, value))
    return found


@needs_vectors
@settings(max_examples=120, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_values_outside_the_facets_inside_the_bits_round_trip(data):
    """For any message the lenient encoder builds with a value outside the facets but inside the
    bits: decode gives the value back with the violation reported, encode gives the bytes back."""
    grammar, vector, fragment, leaf, value = data.draw(st.sampled_from(typed_positions()))
    maximum = getattr(leaf.datatype, "max", None)
    if leaf.datatype.kind in ("unsigned", "integer") and maximum is not None and value > maximum:
        value += data.draw(st.integers(0, 1 << 70))  # anywhere above: the bits carry any size
    message = openv2gx.decode(vector, grammar, fragment=fragment)
    leaf.set(message, value)
    with pytest.raises(openv2gx.EncodeError):
        openv2gx.encode(message)
    captured = openv2gx.encode(message, lenient=True)

    decoded = decode_both(captured, grammar, fragment)
    assert leaf.get(decoded) == value
    assert decoded == message
    assert any(line.startswith(leaf.path + ": ") for line in decoded.schema_violations), decoded.schema_violations
    assert openv2gx.encode(decoded) == captured
    assert openv2gx.encode(decoded, specialised=False) == captured


@needs_vectors
def test_enumeration_index_past_the_list_decodes_to_the_index():
    grammar_positions = [p for p in typed_positions() if p[3].datatype.kind == "enum"]
    if not grammar_positions:
        pytest.skip("no enumeration with spare indices in the vectors")
    grammar, vector, fragment, leaf, value = grammar_positions[0]
    message = openv2gx.decode(vector, grammar, fragment=fragment)
    leaf.set(message, value)
    decoded = decode_both(openv2gx.encode(message, lenient=True), grammar, fragment)
    assert leaf.get(decoded) == value and isinstance(value, int)
    assert f"enumeration index {value} beyond the {len(leaf.datatype.values)} values" in decoded.schema_violations[0]


def empty_positions():
    """Each typed element position of the vectors (list indices aside), in the shortest vector
    that has it."""
    found = {}
    for grammar, data, fragment in sorted(VECTORS, key=lambda vector: len(vector[1])):
        message = openv2gx.decode(data, grammar, fragment=fragment)
        for leaf in leaves(message):
            if leaf.element and leaf.datatype.empty is None:
                found.setdefault((grammar, fragment, re.sub(r"\[\d+\]", "", leaf.path)), (grammar, data, fragment, leaf))
    return list(found.values())


@needs_vectors
def test_empty_typed_content_in_every_typed_position_of_the_vectors():
    """EXI's non-strict grammars let an integer, boolean or enumeration element end empty (the
    second-level EE). It decodes to None, reported; the encoder writes the EE again; XML gets an
    empty element and JSON null."""
    positions = empty_positions()
    assert len(positions) > 500
    for grammar, vector, fragment, leaf in positions:
        message = openv2gx.decode(vector, grammar, fragment=fragment)
        leaf.set(message, None)
        with pytest.raises(openv2gx.EncodeError, match="empty element, expected"):
            openv2gx.encode(message)
        captured = openv2gx.encode(message, lenient=True)
        decoded = decode_both(captured, grammar, fragment)
        assert leaf.get(decoded) is None
        assert decoded == message
        assert f"{leaf.path}: empty element, expected {leaf.datatype.describe()}" in decoded.schema_violations
        assert openv2gx.encode(decoded) == captured
        name = leaf.path.rsplit("/", 1)[-1].split("[")[0]
        xml = decoded.to_xml()
        assert f":{name}/>" in xml or f"<{name}/>" in xml
        rendered = json.loads(decoded.to_json())
        for key in leaf.keys:
            rendered = rendered[key]
        assert rendered is None


def test_a_string_longer_than_its_facet_is_decoded_and_reported():
    message = openv2gx.Message({"V2G_Message": {
        "Header": {"SessionID": b"\x00" * 8},
        "Body": {"SessionSetupReq": {"EVCCID": b"\x01" * 7}}}}, schema="iso2")
    with pytest.raises(openv2gx.EncodeError, match="length 7 above maximum 6"):
        openv2gx.encode(message)
    captured = openv2gx.encode(message, lenient=True)
    decoded = decode_both(captured, "iso2")
    assert decoded.body["EVCCID"] == b"\x01" * 7
    assert decoded.schema_violations == ["V2G_Message/Body/SessionSetupReq/EVCCID: length 7 above maximum 6"]
    assert openv2gx.encode(decoded) == captured


def test_messages_within_the_facets_carry_no_violations():
    message = openv2gx.decode(bytes.fromhex("809a00605010400000"), "din")
    assert message.schema_violations == []
