"""EXI stream -> message mapping, driven by the grammar tables."""

from __future__ import annotations

from .bitstream import BitReader, bit_reader
from .errors import DecodeError
from .message import Message, message_name
from .specialise import SpecialisedDecoder
from .tables import AT, CH, EE, ISO20_SCHEMAS, SE, Grammar, Tables, load
from .walk import find_violations

COOKIE = b"$EXI"
#: nesting deeper than any V2G schema allows means a corrupt or hostile stream
MAX_DEPTH = 64


def read_header(reader: BitReader) -> None:
    """EXI header as V2G uses it: optional cookie, then 0x80 (distinguishing bits 10, no options,
    final version 1). Versions a decoder cannot honour are refused, not guessed."""
    if reader.data[:4] == COOKIE:
        reader.pos = 32
    start = reader.pos
    if reader.remaining() < 8:
        raise DecodeError("stream too short for an EXI header", start, "header byte 0x80")
    if reader.bits(2) != 0b10:
        raise DecodeError("not an EXI stream: distinguishing bits are not 10", start, "header byte 0x80")
    if reader.bits(1):
        raise DecodeError("EXI options in the header are not used by V2G and not supported", start + 2,
                          "presence bit 0")
    if reader.bits(1):
        raise DecodeError("EXI preview version (header 0x90) is not supported", start + 3,
                          "final version 1")
    version = reader.bits(4)
    if version != 0:
        raise DecodeError(f"EXI format version {version + 1} is not supported", start + 4,
                          "version 1 (header 0x80)")


class Decoder:
    __slots__ = ("reader", "depth")

    def __init__(self, data: bytes):
        self.reader = bit_reader(data)
        self.depth = 0

    def element(self, grammar: Grammar):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise DecodeError("elements nested too deep", self.reader.pos)
        reader = self.reader
        bits = reader.bits
        states = grammar.states
        state = states[0]
        if grammar.is_simple:
            start = reader.pos
            code = bits(state.width)
            if code != 0:
                self.second_level_end(state, start)
                self.depth -= 1
                return self.empty(state.productions[0].arg)
            value = state.productions[0].arg.read(reader)
            end_state = states[state.productions[0].next]
            start = reader.pos
            if bits(end_state.width) != 0:
                raise DecodeError("second-level event (schema deviation) is not supported", start,
                                  "end of element")
            self.depth -= 1
            return value
        content = {}
        lists = grammar.lists
        interleaved = grammar.interleaved
        while True:
            start = reader.pos
            code = bits(state.width)
            if code >= state.count:
                self.second_level_end(state, start)
                self.depth -= 1
                if grammar.simple_content and "#text" not in content and state.characters is not None:
                    # an empty value ended early reads like an empty CH, as from_xml gives it
                    content["#text"] = self.empty(state.characters.arg)
                return content
            kind, name, arg, nxt = state.fast[code]
            if kind == SE:
                child = self.element(arg)
                if interleaved:
                    content.setdefault("#children", []).append({name: child})
                elif name in lists:
                    bucket = content.get(name)
                    if bucket is None:
                        content[name] = [child]
                    else:
                        bucket.append(child)
                else:
                    content[name] = child
            elif kind == AT:
                content["@" + name] = arg.read(reader)
            elif kind == CH:
                text = arg.read(reader)
                if "#text" in content and isinstance(text, str):
                    content["#text"] += text
                else:
                    content["#text"] = text
            elif kind == EE:
                self.depth -= 1
                return content
            else:
                raise DecodeError("wildcard content (SE(*)/AT(*)) is not supported", start,
                                  state.expected())
            state = states[nxt]

    def empty(self, datatype):
        """The value of an element with no content at all: None for typed ones (non-strict EXI
        allows it, the schema does not), flagged as a violation where the facets forbid it."""
        if datatype.check(datatype.empty) is not None:
            self.reader.violated = True
        return datatype.empty

    def second_level_end(self, state, start):
        """Past the first level only EE is accepted, and only where EXI writes an element with
        no character content that way; the encoder writes exactly the same, so whatever decodes
        encodes again."""
        if self.reader.bits(state.second_width) != state.second_end or state.second_end is None:
            raise DecodeError("second-level event (schema deviation) is not supported", start,
                              state.expected())
        if state.characters is None:
            raise DecodeError("element ends before its required content", start, state.expected())


def _finish(tables: Tables, decoder: Decoder, message: Message) -> Message:
    reader = decoder.reader
    if reader.violated:
        message.schema_violations = find_violations(tables, message, message.fragment)
    pad_bits = (-reader.pos) % 8
    trailing = (reader.limit - reader.pos - pad_bits) // 8
    if trailing > 0:
        message.warnings.append(f"{trailing} trailing byte(s) after the end of the EXI document")
    return message


def decode_with(tables: Tables, data: bytes, fragment: bool = False, specialised: bool = True) -> Message:
    """``specialised=False`` runs the table interpreter (Decoder), the reference the generated
    code of specialise.py is tested against."""
    data = bytes(data)
    decoder = SpecialisedDecoder(tables, data) if specialised else Decoder(data)
    reader = decoder.reader
    read_header(reader)
    if fragment:
        return _decode_fragment(tables, decoder)
    start = reader.pos
    code = reader.bits(tables.document_width)
    if code >= len(tables.document):
        raise DecodeError("root element not declared by the schema (SE(*))", start,
                          "one of " + ", ".join(name for name, _, _ in tables.document))
    name, uri, grammar = tables.document[code]
    content = decoder.element(grammar)
    message = Message({name: content}, schema=tables.name, root=name, namespace=uri)
    message.name = message_name(message)
    return _finish(tables, decoder, message)


def _decode_fragment(tables: Tables, decoder) -> Message:
    reader = decoder.reader
    body = {}
    roots = []
    end_code = len(tables.fragment) + 1
    while True:
        start = reader.pos
        code = reader.bits(tables.fragment_width)
        if code == end_code:
            break
        if code >= len(tables.fragment):
            raise DecodeError("fragment element not declared by the schema", start)
        name, uri, grammar = tables.fragment[code]
        if grammar is None:
            raise DecodeError(f"fragment element {name} is declared with several types "
                              "(relaxed element-fragment grammar not supported)", start)
        content = decoder.element(grammar)
        roots.append((name, uri))
        if name not in body:
            body[name] = content
        elif roots.count((name, uri)) == 2:
            body[name] = [body[name], content]
        else:
            body[name].append(content)
    if not roots:
        raise DecodeError("empty fragment", reader.pos)
    message = Message(body, schema=tables.name, root=roots[0][0], namespace=roots[0][1], fragment=True)
    message.name = roots[0][0]
    return _finish(tables, decoder, message)


def decode(data: bytes, schema: str, fragment: bool = False, specialised: bool = True) -> Message:
    """Decode one EXI stream with the named grammar.

    ``schema`` is one of appHandshake, din, iso2, iso20_CommonMessages, iso20_AC, iso20_DC,
    iso20_WPT, iso20_ACDP, xmldsig; ``iso20`` tries the ISO 15118-20 grammars in turn and
    ``auto`` every grammar (the result's ``warnings`` then says which was assumed).
    ``specialised=False`` decodes with the table interpreter instead of the generated code.

    Values that the bits carry but the schema's facets forbid (a number past its range, an
    enumeration index past the list, which decodes to the index, a string of a length the schema
    does not allow, an empty typed element, which decodes to None) are decoded as sent, each
    listed in the message's ``schema_violations`` ("path: rule"); ``encode`` gives such a
    message back bit for bit.
    """
    if schema in ("iso20", "auto"):
        candidates = ISO20_SCHEMAS if schema == "iso20" else ("appHandshake", "din", "iso2") + ISO20_SCHEMAS
        return decode_guess(data, candidates, fragment, specialised)
    tables = load(schema)
    try:
        return decode_with(tables, data, fragment, specialised)
    except DecodeError:
        raise
    except RecursionError as exc:
        raise DecodeError("elements nested too deep") from exc
    except (ValueError, IndexError, KeyError, TypeError, OverflowError, MemoryError) as exc:
        raise DecodeError(f"malformed stream ({type(exc).__name__}: {exc})") from exc


def decode_guess(data: bytes, candidates, fragment: bool = False, specialised: bool = True) -> Message:
    """The first grammar that decodes the stream cleanly; failing that, the first that decodes it
    with schema violations (a wrong grammar often reads values past the facets)."""
    errors = []
    violating = None
    for name in candidates:
        try:
            message = decode(data, name, fragment, specialised)
        except DecodeError as exc:
            errors.append(f"{name}: {exc}")
            continue
        if message.warnings:
            errors.append(f"{name}: {message.warnings[0]}")
            continue
        if message.schema_violations:
            violating = violating or (name, message)
            continue
        message.warnings.append(f"schema assumed: {name} (no handshake or payload type said which)")
        return message
    if violating is not None:
        name, message = violating
        message.warnings.append(f"schema assumed: {name} (no handshake or payload type said which; "
                                "no grammar decodes it without schema violations)")
        return message
    raise DecodeError("no grammar decodes this stream: " + "; ".join(errors))


__all__ = ["decode", "decode_with", "decode_guess"]
