"""The generated decoder (openv2gx/specialise.py) against the table interpreter it replaces.

Both must give the same message (same keys in the same order, same value types) or the same
DecodeError (reason, bit offset, expected) for every vector, every mutation the fuzzer makes and
every stream representation (short streams as one integer, long ones as bytes).
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import openv2gx
from conftest import SHARED_DIR
from openv2gx import bitstream, specialise
from openv2gx.bitstream import BitWriter
from openv2gx.decoder import MAX_DEPTH, decode
from openv2gx.tables import AT, SE, load

BUDGET = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
VECTOR_FILES = ("appHandshake", "din", "iso2", "iso20", "fragments", "sessions", "invalid",
                "openv2gx/pyplc_decoded")
PYPLC_SCHEMA = {"DIN": "din", "appHandshake": "appHandshake"}
SMALL_STREAM = bitstream.SMALL_STREAM


def load_vectors():
    """(grammar, bytes, fragment) of every EXI stream in ../shared/vectors, valid or not."""
    found = []
    for name in VECTOR_FILES:
        path = SHARED_DIR / "vectors" / f"{name}.jsonl"
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            grammar = record.get("grammar") or PYPLC_SCHEMA.get(record.get("schema"))
            text = record.get("exi_hex", record.get("payload_hex"))
            if grammar and text is not None:
                found.append((grammar, bytes.fromhex(text), bool(record.get("fragment"))))
    return found


VECTORS = load_vectors()
needs_vectors = pytest.mark.skipif(not VECTORS, reason=f"no vectors in {SHARED_DIR} (shared folder absent)")


def typed(value):
    """The value with its type at every level: dict equality alone takes True for 1, 1 for
    Decimal(1) and ignores key order, all of which the message model keeps."""
    if isinstance(value, dict):
        return ("dict", [(key, typed(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("list", [typed(item) for item in value])
    if isinstance(value, Decimal):
        return ("Decimal", str(value))
    return (type(value).__name__, repr(value))


def outcome(data: bytes, schema: str, fragment: bool, specialised: bool):
    """Everything a caller sees of one decode; any exception but DecodeError fails the test."""
    try:
        message = decode(data, schema, fragment, specialised=specialised)
    except openv2gx.DecodeError as error:
        return ("error", error.reason, error.bit_offset, error.expected, str(error))
    return ("message", typed(dict(message)), message.schema, message.name, message.root, message.namespace,
            message.fragment, message.warnings, message.schema_violations)


def assert_same(data: bytes, schema: str, fragment: bool = False):
    reference = outcome(data, schema, fragment, specialised=False)
    assert outcome(data, schema, fragment, specialised=True) == reference, data.hex()
    return reference


@pytest.fixture(params=["short streams as one integer", "every stream as bytes"])
def representation(request, monkeypatch):
    """Run a test with the usual split, then with every stream read the way long ones are."""
    if request.param == "every stream as bytes":
        monkeypatch.setattr(bitstream, "SMALL_STREAM", -1)
    return request.param


@needs_vectors
def test_every_vector_decodes_the_same(representation):
    results = [assert_same(data, grammar, fragment)[0] for grammar, data, fragment in VECTORS]
    # the comparison covered both outcomes and both stream representations
    assert results.count("message") > 1000 and results.count("error") > 10
    assert any(len(data) > SMALL_STREAM for _, data, _ in VECTORS)


@needs_vectors
def test_every_prefix_of_some_vectors_fails_the_same_way(representation):
    """A stream cut anywhere ends inside an event code, a value or a length: the error must name
    the same bit as the interpreter's."""
    shortest = {}
    for grammar, data, fragment in VECTORS:
        key = (grammar, fragment, data[:6])
        if key not in shortest or len(data) < len(shortest[key][1]):
            shortest[key] = (grammar, data, fragment)
    chosen = sorted(shortest.values(), key=lambda item: len(item[1]))[::9][:40]
    for grammar, data, fragment in chosen:
        for cut in range(len(data)):
            assert_same(data[:cut], grammar, fragment)


@pytest.mark.parametrize("schema", openv2gx.SCHEMAS)
@BUDGET
@given(tail=st.binary(max_size=200), fragment=st.booleans())
def test_random_streams_decode_the_same(schema, tail, fragment):
    assert_same(b"\x80" + tail, schema, fragment)


@needs_vectors
@BUDGET
@given(data=st.data())
def test_mutated_vectors_decode_the_same(data):
    grammar, vector, fragment = data.draw(st.sampled_from([v for v in VECTORS if 8 < len(v[1]) < 400]))
    flips = data.draw(st.lists(st.integers(8, len(vector) * 8 - 1), min_size=1, max_size=4))
    mutated = bytearray(vector)
    for bit in flips:
        mutated[bit // 8] ^= 0x80 >> (bit % 8)
    cut = data.draw(st.integers(len(vector) // 2, len(vector)))
    assert_same(bytes(mutated[:cut]), grammar, fragment)


def test_nesting_beyond_the_limit_fails_at_the_same_bit():
    """Only the relaxed ElementFragment grammar (ISO-2 fragments) is recursive: nest it deeper
    than MAX_DEPTH and both decoders refuse the element that crosses the limit."""
    tables = load("iso2")
    code, (name, _, relaxed) = next((i, entry) for i, entry in enumerate(tables.fragment)
                                    if entry[2].name == "ElementFragment")
    start = relaxed.states[0]
    nested = next(p for p in start.productions if p.kind == SE and p.name == name)
    writer = BitWriter()
    writer.bits(8, 0x80)
    writer.bits(tables.fragment_width, code)
    for _ in range(MAX_DEPTH + 3):
        writer.bits(start.width, nested.code)
    result = assert_same(writer.to_bytes(), "iso2", fragment=True)
    assert result[:2] == ("error", "elements nested too deep")


def test_non_ascii_strings_read_the_same():
    """Strings beyond ASCII take a fast path of their own; what it cannot read (a code point in
    four groups, a surrogate, a stream that ends) must fail or succeed as datatypes.py does."""
    tables = load("appHandshake")
    code = tables.document_index["supportedAppProtocolReq"]

    def stream(code_points: list[bytes]) -> tuple[bytes, int]:
        writer = BitWriter()
        writer.bits(8, 0x80)
        writer.bits(tables.document_width, code)
        writer.bits(1, 0)  # AppProtocol
        writer.bits(1, 0)  # ProtocolNamespace
        writer.bits(1, 0)  # its characters
        writer.unsigned(len(code_points) + 2)
        for octets in code_points:
            writer.bits(8 * len(octets), int.from_bytes(octets, "big"))
        return writer.to_bytes(), writer.length

    data, string_end = stream([b"\xe4\x01", b"\x41", b"\x80\x80\x04"])
    accepted = assert_same(data, "appHandshake")
    # the string was read whole; the stream ends later (in the padding or just after it)
    assert accepted[:2] == ("error", "stream ends early") and accepted[2] >= string_end
    for tricky in ([b"\x80\x80\x80\x01"], [b"\x80\xb0\x03"], [b"\xff\xff\xff\x7f"], [b"\xe4"], [b"\x41", b"\x80"]):
        assert_same(stream(tricky)[0], "appHandshake")


@pytest.mark.parametrize("which", ["decoder for integers", "decoder for bytes", "encoder"])
def test_every_grammar_of_every_schema_compiles(which):
    """Grammars are compiled when first used; compile all of them so that none hides an error
    until a rare message needs it, and check that each is then the real function."""
    for schema in openv2gx.SCHEMAS:
        tables = load(schema)
        if which == "encoder":
            generated = specialise.encoders(tables)
        else:
            generated = specialise.decoders(tables, which.endswith("bytes"))
        for grammar in generated.grammars:
            function = generated.compiled(grammar)
            assert function.__name__ == f"{generated.prefix}_{grammar.index}"
            assert generated.functions[grammar.index] is function


@pytest.mark.parametrize("encoder", [False, True], ids=["decoder", "encoder"])
def test_generated_source_is_one_function_per_grammar(encoder):
    tables = load("din")
    text = specialise.source(tables, encoder=encoder)
    compile(text, "<din>", "exec")
    prefix = "encode" if encoder else "element"
    assert [line for line in text.splitlines() if line.startswith("def ")] == [
        f"def {prefix}_{grammar.index}(" + ("w, content, depth, acc, n):" if encoder else "r, v, lim, pos, depth):")
        for grammar in tables.grammars]


# -- the encoder ------------------------------------------------------------------------------------

def encoded(message, schema: str, fragment: bool, specialised: bool):
    """Bytes, or the EncodeError's path and rule, or the type of any other exception."""
    try:
        return ("bytes", openv2gx.encode(message, schema, fragment, specialised=specialised))
    except openv2gx.EncodeError as error:
        return ("error", error.path, error.rule)
    except Exception as error:  # the interpreter's behaviour, whatever it is, is the reference
        return ("exception", type(error).__name__)


def assert_same_encoding(message, schema: str, fragment: bool = False):
    reference = encoded(message, schema, fragment, specialised=False)
    assert encoded(message, schema, fragment, specialised=True) == reference, message
    return reference


def decoded_vectors():
    found = []
    for grammar, data, fragment in VECTORS:
        try:
            found.append((grammar, openv2gx.decode(data, grammar, fragment), fragment))
        except openv2gx.DecodeError:
            continue
    return found


DECODED = decoded_vectors()


@needs_vectors
def test_every_decoded_vector_encodes_the_same_and_on_the_fast_road():
    """Bit for bit the interpreter's bytes; and a message that fits the schema as decoded never
    needs the interpreter (else the generated encoder would be correct but pointless)."""
    encodable = 0
    for grammar, message, fragment in DECODED:
        result = assert_same_encoding(message, grammar, fragment)
        if result[0] == "bytes":
            encodable += 1
            assert specialise.encode_specialised(load(grammar), message, fragment) == result[1]
    assert encodable > 1000


def mutate(data, value, depth: int = 0):
    """A copy of a message mapping with one change somewhere: a key dropped, keys reordered, a
    value replaced by one of another type or range, an unknown key, a list where one item was."""
    if isinstance(value, dict) and value and depth < 12:
        keys = list(value)
        key = data.draw(st.sampled_from(keys))
        action = data.draw(st.sampled_from(["descend", "descend", "descend", "drop", "reverse",
                                            "replace", "unknown", "listify"]))
        copy = dict(value)
        if action == "descend":
            copy[key] = mutate(data, value[key], depth + 1)
        elif action == "drop":
            del copy[key]
        elif action == "reverse":
            copy = dict(reversed(list(value.items())))
        elif action == "replace":
            copy[key] = data.draw(ODD_VALUES)
        elif action == "unknown":
            copy[data.draw(st.sampled_from(["Bogus", "@Bogus", "#text", "#children"]))] = data.draw(ODD_VALUES)
        else:
            copy[key] = data.draw(st.sampled_from([[value[key]], [value[key], value[key]], [], (value[key],)]))
        return copy
    if isinstance(value, list) and value and depth < 12:
        index = data.draw(st.integers(0, len(value) - 1))
        copy = list(value)
        copy[index] = mutate(data, value[index], depth + 1)
        return data.draw(st.sampled_from([copy, copy[:index], copy + copy]))
    return data.draw(ODD_VALUES) if data.draw(st.booleans()) else value


ODD_VALUES = st.one_of(
    st.integers(-(2 ** 70), 2 ** 70), st.sampled_from([0, -1, 1, 127, 128, -129, 2 ** 4200, True, False]),
    st.text(max_size=6), st.sampled_from(["", "\ud800", "€", "x" * 300]), st.binary(max_size=6),
    st.sampled_from([b"", bytearray(b"ab"), None, 1.5, Decimal("1.25"), {}, [], {"Value": 1}]),
)


@needs_vectors
@BUDGET
@given(data=st.data())
def test_mutated_messages_encode_or_fail_the_same(data):
    grammar, message, fragment = data.draw(st.sampled_from(DECODED))
    assert_same_encoding(mutate(data, dict(message)), grammar, fragment)


def test_messages_out_of_schema_order_are_sorted_by_the_interpreter():
    """The generated encoder takes keys in the order given; out of order, the walk sorts them."""
    message = openv2gx.decode(bytes.fromhex("809a00605010400000"), "din")
    header = message["V2G_Message"]["Header"]
    shuffled = {"V2G_Message": {"Body": message["V2G_Message"]["Body"], "Header": header}}
    assert specialise.encode_specialised(load("din"), shuffled, False) is None
    assert assert_same_encoding(shuffled, "din") == ("bytes", bytes.fromhex("809a00605010400000"))


def boundary_values(datatype) -> list:
    """Values at and just beyond the datatype's limits, and of neighbouring types."""
    kind = datatype.kind
    if kind in ("nbit", "unsigned", "integer"):
        found = [True, "1", 1.0, 2 ** 4200, -(2 ** 4200)]
        for bound in (datatype.min, datatype.max):
            if bound is not None:
                found += [bound - 1, bound, bound + 1]
        return found
    if kind in ("string", "binary"):
        unit = "a" if kind == "string" else b"a"
        found = [unit * 0, "é", "\ud800", b"ab", bytearray(b"ab"), 7]
        for length in (datatype.min_length, datatype.max_length):
            if length is not None:
                found += [unit * max(length - 1, 0), unit * length, unit * (length + 1)]
        return found
    if kind == "enum":
        return [datatype.values[0], datatype.values[-1], "bogus", 1, None]
    if kind == "boolean":
        return [True, False, 0, 1, "true", None]
    return [1, "1", 1.5, Decimal("-1.5"), [1], None]


def datatype_at(grammar, key):
    """The datatype of a leaf child or attribute ``key`` of an element of ``grammar``, the child
    grammar for a complex child, or None."""
    kind, name = (AT, key[1:]) if key.startswith("@") else (SE, key)
    for state in grammar.states:
        production = state.by_name.get((kind, name))
        if production is not None:
            if kind == AT:
                return production.arg
            child = production.arg
            return child.states[0].characters.arg if child.is_simple else child
    return None


def variants(grammar, content):
    """Every one-change variant of an element's content, recursively (see boundary_values)."""
    if not isinstance(content, dict):
        return
    yield dict(reversed(list(content.items())))
    yield {**content, "Bogus": 1}
    yield {**content, "#text": ""}
    for key, value in content.items():
        yield {k: v for k, v in content.items() if k != key}
        target = datatype_at(grammar, key)
        items = value if isinstance(value, list) else [value]
        if isinstance(value, list):
            yield {**content, key: []}
            yield {**content, key: value[0]}
            yield {**content, key: value + value}
        else:
            yield {**content, key: [value]}
        if target is None:
            continue
        if hasattr(target, "states"):  # a complex child: change it inside (first and last item)
            for index in sorted({0, len(items) - 1}):
                item = items[index]
                for changed in variants(target, item):
                    replaced = items[:index] + [changed] + items[index + 1:]
                    yield {**content, key: replaced if isinstance(value, list) else changed}
        else:
            for odd in boundary_values(target):
                yield {**content, key: odd}


@needs_vectors
def test_every_single_change_to_some_messages_encodes_or_fails_the_same():
    """Deterministic companion of the random mutations: for the smallest message of each kind and
    the fullest one of moderate size, every key dropped, every value at and beyond its limits,
    keys reversed, unknown keys, lists emptied and doubled, at every level."""
    chosen = {}
    for grammar, message, fragment in DECODED:
        size = len(repr(message))
        if size > 3000:
            continue
        for label, better in (("small", lambda old: size < old), ("full", lambda old: size > old)):
            key = (grammar, message.name, fragment, label)
            if key not in chosen or better(chosen[key][0]):
                chosen[key] = (size, grammar, message, fragment)
    checked = 0
    outcomes = set()
    for _, grammar, message, fragment in chosen.values():
        tables = load(grammar)
        root = message.root
        if fragment:  # the first root element changes, the others stay
            root_grammar = tables.fragment[tables.fragment_index[root]][2]
            content = message[root][0] if isinstance(message[root], list) else message[root]
        else:
            root_grammar = tables.document[tables.document_index[root]][2]
            content = message[root]
        for changed in variants(root_grammar, content):
            result = assert_same_encoding({**message, root: changed}, grammar, fragment)
            outcomes.add(result[0] if result[0] != "error" else result[2].split()[0])
            checked += 1
    assert checked > 10000
    assert {"bytes", "required", "unknown", "value", "length"} <= outcomes, outcomes


TRANSFORM_CHILDREN = [{"XPath": "a"}, {"XPath": "b"}]
X509_CHILDREN = [{"X509SubjectName": "CN=x"}, {"X509Certificate": b"\x30\x01"}]


@pytest.mark.parametrize("message", [
    {"Transform": {"@Algorithm": "x", "#children": TRANSFORM_CHILDREN}},
    {"Transform": {"@Algorithm": "x", "#text": "t", "#children": TRANSFORM_CHILDREN}},
    {"Transform": {"@Algorithm": "x", "#children": TRANSFORM_CHILDREN, "#text": "t"}},
    {"Transform": {"#text": "t", "@Algorithm": "x", "#children": TRANSFORM_CHILDREN}},
    {"Transform": {"@Algorithm": "x", "#text": "", "#children": TRANSFORM_CHILDREN}},
    {"Transform": {"#children": TRANSFORM_CHILDREN, "@Algorithm": "x"}},
    {"Transform": {"@Algorithm": "x", "#children": []}},
    {"Transform": {"@Algorithm": "x", "#children": {"XPath": "a"}}},
    {"Transform": {"@Algorithm": "x", "#children": [{"XPath": "a", "Other": "b"}]}},
    {"Transform": {"@Algorithm": "x", "#children": [["XPath", "a"]]}},
    {"Transform": {"@Algorithm": "x", "XPath": "c", "#children": TRANSFORM_CHILDREN}},
    {"Transform": {"@Algorithm": "x", "#children": TRANSFORM_CHILDREN, "XPath": "c"}},
    {"X509Data": {"#children": X509_CHILDREN}},
    {"X509Data": {"#children": X509_CHILDREN, "#text": ""}},
    {"X509Data": {"#text": "", "#children": X509_CHILDREN}},
    {"X509Data": {"#children": X509_CHILDREN[::-1] + X509_CHILDREN}},
    {"X509Data": {"#children": [{"X509SubjectName": 5}]}},
    {"X509Data": {"#children": [{"X509SubjectName": "CN=x", "X509Certificate": b"\x30\x01"}]}},
    {"SignatureMethod": {"@Algorithm": "x", "#text": "t", "HMACOutputLength": 5}},
    {"SignatureMethod": {"@Algorithm": "x", "HMACOutputLength": 5, "#text": "t"}},
    {"SignatureMethod": {"HMACOutputLength": 5, "@Algorithm": "x"}},
    {"SignatureValue": {"#text": b"\x01", "@Id": "i"}},
    {"SignatureValue": {"@Id": "i", "#text": b"\x01"}},
], ids=lambda message: repr(message)[:60])
def test_mixed_and_interleaved_layouts_encode_or_fail_the_same(message):
    """Mixed content takes text in several places and #children keeps children in stream order;
    the generated encoder takes keys as given only where the walk would put them in that order,
    so every other layout comes out as the walk writes it."""
    result = assert_same_encoding(message, "xmldsig")
    (root, content), = message.items()
    if list(content) in (["@Algorithm", "#children"], ["#children"]) and content["#children"] in (
            TRANSFORM_CHILDREN, X509_CHILDREN):  # the layouts a decoder gives
        assert result[0] == "bytes"
        assert specialise.encode_specialised(load("xmldsig"), message, False) == result[1]
