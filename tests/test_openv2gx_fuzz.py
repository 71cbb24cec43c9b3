"""Fuzzing the EXI codec with a fixed budget: random bytes, bit flips and truncations of valid vectors,
and typed elements of valid vectors emptied or given values past their facets (lenient encoder).

For every grammar: decoding anything raises nothing but openv2gx.DecodeError, and whatever decodes
re-encodes to bytes that decode to the same message (the encoder never writes what the decoder
rejects; it may refuse, with EncodeError, what is not schema-valid). A longer run with other seeds is bench/fuzz_exi.py.
"""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import openv2gx
from conftest import SHARED_DIR
from openv2gx.leaves import facet_breaking_values, leaves

BUDGET = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
VECTOR_FILES = ("appHandshake", "din", "iso2", "iso20", "fragments", "sessions")


def load_vectors():
    """grammar -> list of (bytes, fragment) from every vector file; kept small per grammar so one
    example stays quick: the shortest vectors of each message kind first."""
    found = defaultdict(dict)
    for name in VECTOR_FILES:
        path = SHARED_DIR / "vectors" / f"{name}.jsonl"
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if not record.get("grammar"):
                continue
            data = bytes.fromhex(record.get("exi_hex") or record["payload_hex"])
            kind = (record.get("message") or record.get("root"), record.get("fragment", False))
            best = found[record["grammar"]].get(kind)
            if best is None or len(data) < len(best[0]):
                found[record["grammar"]][kind] = (data, record.get("fragment", False))
    return {grammar: sorted(kinds.values()) for grammar, kinds in found.items()}


VECTORS = load_vectors()
GRAMMARS = [g for g in openv2gx.SCHEMAS if g in VECTORS]


def decode_or_none(data: bytes, schema: str, fragment: bool):
    """Decode; None for a DecodeError. Any other exception propagates and fails the test."""
    try:
        return openv2gx.decode(data, schema, fragment=fragment)
    except openv2gx.DecodeError as error:
        assert str(error)
        return None


def check_round_trip(message, schema: str, fragment: bool) -> None:
    # Non-strict EXI lets any element end early (second-level EE), so the decoder accepts
    # messages that lack required content; the encoder refuses to write those, cleanly.
    try:
        encoded = openv2gx.encode(message, schema, fragment=fragment)
    except openv2gx.EncodeError as refusal:
        assert refusal.path and refusal.rule
        return
    again = openv2gx.decode(encoded, schema, fragment=fragment)
    assert again == message
    assert again.schema_violations == message.schema_violations
    assert openv2gx.encode(again, schema, fragment=fragment) == encoded


def fuzz_one(data: bytes, schema: str, fragment: bool) -> None:
    message = decode_or_none(data, schema, fragment)
    if message is not None:
        check_round_trip(message, schema, fragment)


@pytest.mark.parametrize("schema", openv2gx.SCHEMAS)
@BUDGET
@given(tail=st.binary(max_size=256), fragment=st.booleans())
def test_random_bytes_after_header(schema, tail, fragment):
    fuzz_one(b"\x80" + tail, schema, fragment)


@pytest.mark.parametrize("schema", ["auto", "iso20"])
@BUDGET
@given(tail=st.binary(max_size=64))
def test_random_bytes_with_guessed_grammar(schema, tail):
    message = decode_or_none(b"\x80" + tail, schema, False)
    if message is not None:
        assert message.schema in openv2gx.SCHEMAS


@BUDGET
@given(data=st.binary(max_size=64), schema=st.sampled_from(openv2gx.SCHEMAS))
def test_random_bytes_with_any_header(data, schema):
    fuzz_one(data, schema, False)


@pytest.mark.skipif(not VECTORS, reason=f"no vectors in {SHARED_DIR} (shared folder absent)")
@pytest.mark.parametrize("schema", GRAMMARS)
@BUDGET
@given(data=st.data())
def test_bit_flips_of_valid_vectors(schema, data):
    vector, fragment = data.draw(st.sampled_from(VECTORS[schema]))
    flips = data.draw(st.lists(st.integers(8, len(vector) * 8 - 1), min_size=1, max_size=4))
    mutated = bytearray(vector)
    for bit in flips:
        mutated[bit // 8] ^= 0x80 >> (bit % 8)
    fuzz_one(bytes(mutated), schema, fragment)


@pytest.mark.skipif(not VECTORS, reason=f"no vectors in {SHARED_DIR} (shared folder absent)")
@pytest.mark.parametrize("schema", GRAMMARS)
@BUDGET
@given(data=st.data())
def test_truncations_and_extensions_of_valid_vectors(schema, data):
    vector, fragment = data.draw(st.sampled_from(VECTORS[schema]))
    cut = data.draw(st.integers(0, len(vector)))
    tail = data.draw(st.binary(max_size=8))
    fuzz_one(vector[:cut] + tail, schema, fragment)


@pytest.mark.skipif(not VECTORS, reason=f"no vectors in {SHARED_DIR} (shared folder absent)")
def test_every_valid_vector_kind_survives_every_truncation():
    """Deterministic companion of the random truncations: every prefix of the shortest vector of
    each message kind either decodes or raises DecodeError."""
    for schema, vectors in VECTORS.items():
        for vector, fragment in vectors[:12]:
            for cut in range(len(vector)):
                decode_or_none(vector[:cut], schema, fragment)


def test_empty_simple_content_reads_the_same_however_it_was_written():
    """Found by bench/fuzz_exi.py: an empty SignatureValue written as CH of length 0 decoded to
    {'#text': b''}, re-encoded as an early EE, and that decoded to {} instead."""
    written_as_empty_characters = bytes.fromhex("809a00449160812c0000000000002a80")
    message = openv2gx.decode(written_as_empty_characters, "xmldsig")
    assert message == {"SignatureValue": {"#text": b""}}
    check_round_trip(message, "xmldsig", False)
    assert openv2gx.decode(openv2gx.encode(message, "xmldsig"), "xmldsig") == message


def with_typed_content(vector: bytes, schema: str, fragment: bool, data) -> bytes:
    """The "empty typed content" mutation: one typed element of a vector emptied (None) or given a
    value past its facets that its bits carry, written by the lenient encoder."""
    message = openv2gx.decode(vector, schema, fragment=fragment)
    targets = []
    for leaf in leaves(message):
        values = facet_breaking_values(leaf.datatype)
        if leaf.element and leaf.datatype.empty is None:
            values.append(None)
        if values:
            targets.append((leaf, values))
    if not targets:
        return vector
    leaf, values = data.draw(st.sampled_from(targets))
    leaf.set(message, data.draw(st.sampled_from(values)))
    encoded = openv2gx.encode(message, lenient=True)
    assert openv2gx.decode(encoded, schema, fragment=fragment).schema_violations
    return encoded


@pytest.mark.skipif(not VECTORS, reason=f"no vectors in {SHARED_DIR} (shared folder absent)")
@pytest.mark.parametrize("schema", GRAMMARS)
@settings(BUDGET, max_examples=60)
@given(data=st.data())
def test_empty_typed_content_in_valid_vectors(schema, data):
    vector, fragment = data.draw(st.sampled_from(VECTORS[schema]))
    mutated = bytearray(with_typed_content(vector, schema, fragment, data))
    for bit in data.draw(st.lists(st.integers(8, len(mutated) * 8 - 1), max_size=2)):
        mutated[bit // 8] ^= 0x80 >> (bit % 8)
    fuzz_one(bytes(mutated), schema, fragment)
