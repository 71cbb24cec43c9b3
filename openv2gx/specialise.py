"""Grammar tables -> specialised Python decoder and encoder functions, generated at load time.

The table interpreters (`decoder.Decoder.element`, `walk.walk_element`) pay, per event, for
looking up the state, the production and the datatype, and for a method call per bit. Here each
grammar becomes Python functions whose code is the grammar itself: event-code widths, masks,
child calls, value ranges and enumeration values are constants; bit reads of short streams are a
shift and a mask on a local integer, and bits written gather in a local integer. The tables stay
the one source of truth: the source is generated from the loaded `Tables`, compiled when a grammar
is first used and kept in memory (never written out), and the interpreters stay the reference the
tests compare with, message for message and error for error.

Decoder functions: ``element_N(r, v, lim, pos, depth) -> (content, pos)``, ``r`` the BitReader
(for the rare values read by the datatype objects themselves), ``v`` the stream (one integer for
short streams, the bytes for long ones), ``lim`` its length in bits, ``pos`` the bit position where
the element's content starts, ``depth`` its nesting level (the root is 1).

Encoder functions: ``encode_N(w, content, depth, acc, n) -> (acc, n)``, ``w`` the BitWriter,
``acc`` the ``n`` bits not yet handed to it, ``depth`` as walk.py counts it (the root is 0).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from functools import lru_cache

from .bitstream import BitWriter, SmallBitReader, bit_reader
from .datatypes import MAX_UNSIGNED_GROUPS, SURROGATES, read_characters
from .errors import DecodeError, EncodeError
from .tables import AT, CH, EE, SE, Grammar, Tables
from .walk import MAX_DEPTH as WALK_MAX_DEPTH
from .walk import Sink, walk_element, walk_leaf

#: the header byte the encoder writes (distinguishing bits 10, no options, version 1)
HEADER = 0x80
#: integers longer than this the decoder refuses to read, so the encoder refuses to write them
MAGNITUDE_BITS = 7 * MAX_UNSIGNED_GROUPS - 8

DEVIATION = "second-level event (schema deviation) is not supported"


def _early(start: int, n: int) -> DecodeError:
    """The error BitReader.bits raises when the stream ends inside a read."""
    return DecodeError("stream ends early", start, f"{n} more bits")


def _characters(r, pos: int, length: int, start: int):
    """A string with characters beyond ASCII: ``length`` code points, each an Unsigned Integer.

    Decoded from the stream's octets in one go rather than octet by octet through the reader.
    What this fast path does not cover (the stream ending inside, an invalid code point, a code
    point written in more than three 7-bit groups) goes to datatypes.read_characters, so the
    value or the error is always the reference's."""
    octets = min((r.limit - pos) >> 3, 3 * length)
    offset = pos & 7
    first = pos >> 3
    window = int.from_bytes(r.data[first:first + octets + (1 if offset else 0)], "big")
    chunk = (window >> ((8 - offset) & 7) & ((1 << 8 * octets) - 1)).to_bytes(octets, "big")
    decoded = _code_points(chunk, length)
    if decoded is None:
        r.pos = pos
        return read_characters(r, length, start), r.pos
    text, used = decoded
    return text, pos + 8 * used


def _code_points(chunk: bytes, length: int):
    """(text, octets used) for ``length`` code points of one to three groups, or None."""
    chars = []
    i = 0
    end = len(chunk)
    for _ in range(length):
        if i >= end:
            return None
        octet = chunk[i]
        if octet < 0x80:
            code = octet
            i += 1
        elif i + 1 < end and chunk[i + 1] < 0x80:
            code = (octet & 0x7F) | chunk[i + 1] << 7
            i += 2
        elif i + 2 < end and chunk[i + 2] < 0x80:
            code = (octet & 0x7F) | (chunk[i + 1] & 0x7F) << 7 | chunk[i + 2] << 14
            i += 3
        else:
            return None
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return None
        chars.append(chr(code))
    return "".join(chars), i


class _Source:
    """Lines of Python with indentation, for the generator."""

    def __init__(self):
        self.lines: list[str] = []
        self.indent = 0

    def __call__(self, text: str) -> None:
        self.lines.append("    " * self.indent + text)

    @contextmanager
    def block(self, header: str):
        self(header)
        self.indent += 1
        yield
        self.indent -= 1


class _CodeWriter:
    """What both generators share: the lines, the constants the code refers to by name
    (datatype objects, enumeration values, tables), and the grouping of states."""

    def __init__(self, tables: Tables, max_depth: int):
        self.tables = tables
        self.max_depth = max_depth
        self.out = _Source()
        self.constants: dict[str, object] = {}
        self.constant_names: dict[int, str] = {}

    def constant(self, prefix: str, value) -> str:
        # by identity: the objects named are kept in self.constants, so ids are not reused
        name = self.constant_names.get(id(value))
        if name is None:
            name = f"{prefix}_{len(self.constant_names)}"
            self.constant_names[id(value)] = name
            self.constants[name] = value
        return name

    def blocks(self, grammar: Grammar) -> list[tuple[int, int]]:
        """States grouped into runs of consecutive states of the same shape (the generator unrolls
        maxOccurs="1024" into 1024 such states), so the code stays proportional to the schema."""
        def shape(number):
            state = grammar.states[number]
            return (tuple((p.kind, p.name, id(p.arg), "+1" if p.next == number + 1 else p.next)
                          for p in state.productions), state.second_width, state.second_end)

        runs = []
        first = 0
        for number in range(1, len(grammar.states) + 1):
            if number == len(grammar.states) or shape(number) != shape(first):
                runs.append((first, number - 1))
                first = number
        return runs

    def element(self, grammar: Grammar) -> None:
        raise NotImplementedError

    def source(self, grammar: Grammar) -> str:
        self.out = _Source()
        self.element(grammar)
        return "\n".join(self.out.lines) + "\n"


class _DecoderGenerator(_CodeWriter):
    """Writes ``element_N`` for each grammar, for one stream representation: ``large`` streams
    are bytes read by slicing (a shift of a long integer costs time in proportion to its length),
    short ones are one integer, as bitstream.SmallBitReader holds them."""

    def __init__(self, tables: Tables, large: bool, max_depth: int):
        super().__init__(tables, max_depth)
        self.large = large

    # -- bit reads ------------------------------------------------------------------------------

    def extract(self, width: str, mask: str) -> str:
        """The expression for the ``width`` bits that end at ``pos`` (already advanced)."""
        if self.large:
            return f'int.from_bytes(v[(pos - {width}) >> 3:(pos + 7) >> 3], "big") >> (-pos & 7) & {mask}'
        return f"v >> (lim - pos) & {mask}"

    def read(self, target: str, width: int) -> None:
        """``target`` = the next ``width`` bits, or the error BitReader.bits raises."""
        out = self.out
        if width == 0:
            out(f"{target} = 0")
            return
        out(f"pos += {width}")
        out(f"if pos > lim: raise _early(pos - {width}, {width})")
        out(f"{target} = {self.extract(str(width), hex((1 << width) - 1))}")

    def read_unsigned(self, target: str) -> None:
        """EXI Unsigned Integer (7-bit groups, least significant first), bounded in length as
        datatypes.read_unsigned is; ``ustart`` keeps where it began for the error."""
        out = self.out
        out("ustart = pos")
        out(f"{target} = 0")
        out("shift = 0")
        with out.block("while True:"):
            self.read("octet", 8)
            out(f"{target} |= (octet & 0x7F) << shift")
            out("if octet < 0x80: break")
            out("shift += 7")
            out(f"if shift >= {7 * MAX_UNSIGNED_GROUPS}: raise DecodeError("
                f"{f'unsigned integer longer than {MAX_UNSIGNED_GROUPS} groups'!r}, ustart)")

    def read_octets(self, target: str, length: str) -> None:
        """``length`` octets as bytes; the caller has checked that they are in the stream."""
        out = self.out
        out(f"pos += {length} * 8")
        out(f"{target} = ({self.extract(f'{length} * 8', f'((1 << {length} * 8) - 1)')})"
            f'.to_bytes({length}, "big")')

    def read_value(self, datatype, target: str) -> None:
        """One value of ``datatype`` into ``target``: inline for the kinds V2G messages are made
        of, through the datatype object (with the reader's position synchronised) otherwise.
        Error texts and offsets are those of datatypes.py."""
        out = self.out
        kind = datatype.kind
        if kind == "nbit":
            self.read(target, datatype.width)
            if datatype.min:
                out(f"{target} += {datatype.min}")
            if datatype.min + (1 << datatype.width) - 1 > datatype.max:
                out(f"if {target} > {datatype.max}: r.violated = True")
        elif kind == "boolean":
            self.read(target, 1)
            out(f"{target} = {target} == 1")
        elif kind == "enum":
            values = tuple(datatype.values)
            self.read("index", datatype.width)
            if len(values) < (1 << datatype.width):
                with out.block(f"if index >= {len(values)}:"):
                    out("r.violated = True")
                    out(f"{target} = index")
                with out.block("else:"):
                    out(f"{target} = {self.constant('VALUES', values)}[index]")
            else:
                out(f"{target} = {self.constant('VALUES', values)}[index]")
        elif kind == "unsigned":
            self.read_unsigned(target)
            checks = []
            if datatype.min:
                checks.append(f"{target} < {datatype.min}")
            if datatype.max is not None:
                checks.append(f"{target} > {datatype.max}")
            if checks:
                out(f"if {' or '.join(checks)}: r.violated = True")
        elif kind == "integer":
            out("start = pos")
            self.read("negative", 1)
            self.read_unsigned(target)
            out(f"if negative: {target} = -{target} - 1")
            checks = []
            if datatype.min is not None:
                checks.append(f"{target} < {datatype.min}")
            if datatype.max is not None:
                checks.append(f"{target} > {datatype.max}")
            if checks:
                out(f"if {' or '.join(checks)}: r.violated = True")
        elif kind == "string":
            self.read_unsigned("marker")
            out("if marker < 2: raise DecodeError(\"string table hit, but the V2G options keep no "
                "value table\", ustart, \"a string literal (length + 2)\")")
            out("length = marker - 2")
            out("if length * 8 > lim - pos: raise DecodeError("
                "f\"string of {length} characters does not fit in the stream\", ustart)")
            with out.block("if length == 0:"):
                out(f'{target} = ""')
            with out.block("else:"):
                self.read_octets("raw", "length")
                with out.block("if raw.isascii():"):
                    out(f'{target} = raw.decode("ascii")')
                with out.block("else:"):
                    out(f"{target}, pos = _characters(r, pos - length * 8, length, ustart)")
            self.length_check(datatype, "length")
        elif kind == "binary":
            self.read_unsigned("length")
            out("if length * 8 > lim - pos: raise DecodeError("
                "f\"binary of {length} bytes does not fit in the stream\", ustart)")
            with out.block("if length == 0:"):
                out(f'{target} = b""')
            with out.block("else:"):
                self.read_octets(target, "length")
            self.length_check(datatype, "length")
        else:  # decimal, float, list: rare in V2G, read by the datatype object itself
            out("r.pos = pos")
            out(f"{target} = {self.constant('DATATYPE', datatype)}.read(r)")
            out("pos = r.pos")

    def length_check(self, datatype, length: str) -> None:
        """A string or binary of a length the facets forbid is read as it is, and flagged."""
        checks = []
        if datatype.min_length:
            checks.append(f"{length} < {datatype.min_length}")
        if datatype.max_length is not None:
            checks.append(f"{length} > {datatype.max_length}")
        if checks:
            self.out(f"if {' or '.join(checks)}: r.violated = True")

    def empty(self, datatype, target: str) -> None:
        """An element with no content at all: the datatype's empty value, flagged where the
        facets forbid it (Decoder.empty)."""
        self.out(f"{target} = {datatype.empty!r}")
        if datatype.check(datatype.empty) is not None:
            self.out("r.violated = True")

    # -- elements -------------------------------------------------------------------------------

    def second_level(self, state, width: int) -> bool:
        """The escape code was read: only EE is accepted there, and only where the first level
        has none and the element may end without content (Decoder.second_level_end). Returns
        whether the element may end here (otherwise the code written always raises)."""
        out = self.out
        expected = repr(state.expected())
        out(f"start = pos - {width}")
        self.read("code", state.second_width)
        if state.second_end is None:
            out(f"raise DecodeError(DEVIATION, start, {expected})")
            return False
        out(f"if code != {state.second_end}: raise DecodeError(DEVIATION, start, {expected})")
        if state.characters is None:
            out(f'raise DecodeError("element ends before its required content", start, {expected})')
            return False
        return True

    def leaf(self, grammar: Grammar, target: str) -> None:
        """A simple-typed element (the value itself, no mapping), as Decoder.element reads it."""
        out = self.out
        state = grammar.states[0]
        characters = state.productions[0]
        end_state = grammar.states[characters.next]
        self.read("code", state.width)
        with out.block("if code:"):
            self.second_level(state, state.width)
            self.empty(characters.arg, target)
        with out.block("else:"):
            self.read_value(characters.arg, target)
            self.read("code", end_state.width)
            out(f"if code: raise DecodeError(DEVIATION, pos - {end_state.width}, 'end of element')")

    def child(self, production) -> None:
        """SE: the child's content into ``child``; simple-typed children are read in place."""
        out = self.out
        grammar = production.arg
        if grammar.is_simple:
            # a nested element one level deeper than the limit is refused where it starts
            out(f'if depth >= {self.max_depth}: raise DecodeError("elements nested too deep", pos)')
            self.leaf(grammar, "child")
        else:
            out(f"child, pos = element_{grammar.index}(r, v, lim, pos, depth + 1)")

    def store(self, grammar: Grammar, name: str) -> None:
        """The message model: #children in stream order for interleaved content, lists for
        elements that may repeat, plain keys otherwise."""
        out = self.out
        if grammar.interleaved:
            out(f'content.setdefault("#children", []).append({{{name!r}: child}})')
        elif name in grammar.lists:
            out(f"bucket = content.get({name!r})")
            with out.block("if bucket is None:"):
                out(f"content[{name!r}] = [child]")
            with out.block("else:"):
                out("bucket.append(child)")
        else:
            out(f"content[{name!r}] = child")

    def state_code(self, grammar: Grammar, number: int, chained: bool) -> None:
        """One state: read the event code, act on the production it selects, move on. In a chain
        of same-shaped states (unrolled maxOccurs) the step to the following state is ``+= 1``."""
        out = self.out
        state = grammar.states[number]
        out(f"# expects {state.expected()}")
        self.read("code", state.width)
        for production in state.productions:
            keyword = "if" if production.code == 0 else "elif"
            with out.block(f"{keyword} code == {production.code}:"):
                if production.kind == SE:
                    self.child(production)
                    self.store(grammar, production.name)
                elif production.kind == AT:
                    self.read_value(production.arg, "value")
                    out(f"content[{'@' + production.name!r}] = value")
                elif production.kind == CH:
                    self.read_value(production.arg, "text")
                    with out.block('if "#text" in content and isinstance(text, str):'):
                        out('content["#text"] += text')
                    with out.block("else:"):
                        out('content["#text"] = text')
                elif production.kind == EE:
                    out("return content, pos")
                    continue
                else:
                    out('raise DecodeError("wildcard content (SE(*)/AT(*)) is not supported", '
                        f"pos - {state.width}, {state.expected()!r})")
                    continue
                if chained and production.next == number + 1:
                    out("state += 1")
                elif chained or production.next != number:
                    out(f"state = {production.next}")
        with out.block("else:"):
            if self.second_level(state, state.width):
                if grammar.simple_content:
                    # an empty value ended early reads like an empty CH, as from_xml gives it
                    with out.block('if "#text" not in content:'):
                        self.empty(state.characters.arg, 'content["#text"]')
                out("return content, pos")

    def element(self, grammar: Grammar) -> None:
        out = self.out
        with out.block(f"def element_{grammar.index}(r, v, lim, pos, depth):"):
            out(f"# {grammar.name}")
            out(f'if depth > {self.max_depth}: raise DecodeError("elements nested too deep", pos)')
            if grammar.is_simple:
                self.leaf(grammar, "child")
                out("return child, pos")
                return
            out("content = {}")
            out("state = 0")
            runs = self.blocks(grammar)
            # States are mostly numbered in the order a stream passes them, so the runs follow
            # one another and each is entered by falling through; a step back to an earlier run
            # (repeated choices) needs the loop around them all.
            backwards = any(p.next is not None and p.next < first
                            for first, last in runs for n in range(first, last + 1)
                            for p in grammar.states[n].productions)
            with out.block("while True:") if backwards else _nothing():
                for first, last in runs:
                    loops = first < last or any(p.next == first for p in grammar.states[first].productions)
                    if first == last:
                        header = f"{'while' if loops else 'if'} state == {first}:"
                    else:
                        header = f"while {first} <= state <= {last}:"
                    with out.block(header):
                        self.state_code(grammar, first, chained=first < last)



@contextmanager
def _nothing():
    yield


def _all_grammars(tables: Tables) -> list[Grammar]:
    """The schema's grammars, then the relaxed fragment grammar (numbered after them)."""
    found = list(tables.grammars)
    for _, _, grammar in tables.fragment:
        if grammar is not None and grammar.index == len(found):
            found.append(grammar)
    return found


class _Compiled:
    """The generated functions of one schema, compiled one by one as they are first called.

    Not when the schema is loaded: a schema has up to 160 grammars and a session uses a few
    dozen of them, so this keeps the start-up cost (which `ccssniff decode` pays once per run) to
    the grammars a trace needs. Until then ``<prefix>_N`` is a stub that compiles the real function,
    which replaces the stub in the namespace the generated code calls its children through, and
    in ``functions``.
    """

    def __init__(self, tables: Tables, generator, prefix: str, namespace: dict):
        self.tables = tables
        self.generator = generator
        self.prefix = prefix
        self.grammars = _all_grammars(tables)
        self.namespace = dict(namespace)
        self.functions = [self._stub(grammar) for grammar in self.grammars]
        self.lock = threading.Lock()
        for grammar, stub in zip(self.grammars, self.functions):
            self.namespace[f"{prefix}_{grammar.index}"] = stub

    def _stub(self, grammar: Grammar):
        def compile_then_call(*args):
            return self.compiled(grammar)(*args)
        return compile_then_call

    def compiled(self, grammar: Grammar):
        with self.lock:  # the generator is not reentrant; two threads may meet here
            name = f"{self.prefix}_{grammar.index}"
            function = self.functions[grammar.index]
            if function.__name__ == name:  # compiled meanwhile (the stubs have another name)
                return function
            text = self.generator.source(grammar)
            self.namespace.update(self.generator.constants)
            exec(compile(text, f"<openv2gx {self.tables.name} {name}>", "exec"), self.namespace)
            function = self.functions[grammar.index] = self.namespace[name]
            return function


@lru_cache(maxsize=None)
def decoders(tables: Tables, large: bool) -> _Compiled:
    """The decoder functions ``element_N`` of a schema, for short (integer) or long (bytes) streams."""
    from .decoder import MAX_DEPTH  # decoder imports this module
    namespace = {"DecodeError": DecodeError, "DEVIATION": DEVIATION, "_early": _early,
                 "_characters": _characters}
    return _Compiled(tables, _DecoderGenerator(tables, large, MAX_DEPTH), "element", namespace)


def source(tables: Tables, encoder: bool = False, large: bool = False) -> str:
    """The generated decoder (or encoder) of every grammar of a schema, for reading and debugging."""
    from .decoder import MAX_DEPTH
    generator = _EncoderGenerator(tables, WALK_MAX_DEPTH) if encoder else _DecoderGenerator(tables, large, MAX_DEPTH)
    return "\n".join(generator.source(grammar) for grammar in _all_grammars(tables))


class SpecialisedDecoder:
    """Decoder.element's interface (``reader``, ``element(grammar)``) over the generated code."""

    __slots__ = ("reader", "functions", "stream")

    def __init__(self, tables: Tables, data: bytes):
        self.reader = bit_reader(data)
        small = isinstance(self.reader, SmallBitReader)
        self.functions = decoders(tables, not small).functions
        self.stream = self.reader.value if small else data

    def element(self, grammar: Grammar):
        reader = self.reader
        content, reader.pos = self.functions[grammar.index](reader, self.stream, reader.limit, reader.pos, 1)
        return content


# -- the encoder ----------------------------------------------------------------------------------
#
# The generated encoder takes the fast road only: a message whose keys already come in the order
# walk.py would put them in (schema order, as decoded messages have them) and whose values pass
# their checks. Anything else (keys out of order, a value of the wrong type or range, a missing
# element, content too deep) raises Unusual, and encoder.encode then walks the message with the
# interpreter (walk.py), which sorts what can be sorted and raises the EncodeError, so there is one
# source of errors. Bits gather in an integer ``acc`` of ``n`` bits passed along the calls and
# handed to the BitWriter in large pieces.


class Unusual(Exception):
    """The generated encoder leaves this message to the interpreter."""


#: pending bits beyond this are handed to the writer at the next element (shifting a long integer
#: costs in proportion to its length)
FLUSH_BITS = 4096


def _put_unsigned(acc: int, n: int, value: int):
    """EXI Unsigned Integer of more than one group (BitWriter.unsigned on the pending bits)."""
    while value > 0x7F:
        acc = acc << 8 | (value & 0x7F) | 0x80
        n += 8
        value >>= 7
    return acc << 8 | value, n + 8


def _put_characters(acc: int, n: int, text: str):
    """Characters beyond ASCII, each code point an Unsigned Integer (datatypes.write_characters);
    a lone surrogate is no character, and String.check's refusal is the interpreter's to word."""
    if SURROGATES.search(text):
        raise Unusual
    for char in text:
        code = ord(char)
        if code < 0x80:
            acc = acc << 8 | code
            n += 8
        else:
            acc, n = _put_unsigned(acc, n, code)
    return acc, n


class _WriterSink(Sink):
    """walk.py's events straight into a BitWriter, for the values and elements the generated
    code hands to the interpreter."""

    names = False

    def __init__(self, writer: BitWriter):
        self.writer = writer
        self.event = writer.bits

    def attribute(self, uri, name, datatype, value):
        datatype.write(self.writer, value)

    def characters(self, datatype, value):
        datatype.write(self.writer, value)


def _slow_value(w: BitWriter, acc: int, n: int, datatype, value):
    """A value the inline code does not write (decimal, float, list, non-ASCII text, ...)."""
    if datatype.check(value) is not None:
        raise Unusual
    w.bits(n, acc)
    datatype.write(w, value)
    return 0, 0


def _slow_leaf(w: BitWriter, acc: int, n: int, grammar: Grammar, value):
    w.bits(n, acc)
    try:
        walk_leaf(grammar, value, _WriterSink(w))
    except EncodeError:
        raise Unusual from None
    return 0, 0


def _steps_in_walk_order(content, mixed: bool, interleaved: bool) -> list:
    """The (key, value) steps of mixed or interleaved content, taken only where the keys already
    come in the order walk._sorted_items would put them in: attributes, then text (in mixed
    content; after everything otherwise), then the children, #children first. Such a grammar
    accepts text, or children, in more than one place, so taking another order as given would
    write other bits than the walk; those layouts are left to it."""
    if content.__class__ is not dict:
        raise Unusual
    steps = []
    reached = 0
    for key, value in content.items():
        if key == "#text":
            phase = 1 if mixed else 4
        elif key == "#children":
            phase = 2
        elif key.__class__ is str and key.startswith("@"):
            phase = 0
        elif interleaved:  # the walk would sort elements given beside #children
            raise Unusual
        else:
            phase = 3
        if phase < reached:
            raise Unusual
        reached = phase
        if key != "#children" or not interleaved:
            steps.append((key, value))
            continue
        if value.__class__ is not list and value.__class__ is not tuple:
            raise Unusual
        for child in value:
            if child.__class__ is not dict or len(child) != 1:
                raise Unusual
            steps.extend(child.items())
    return steps


class _EncoderGenerator(_CodeWriter):
    """Writes ``encode_N(w, content, depth, acc, n) -> (acc, n)`` for each grammar."""

    def emit(self, width: int, value: int) -> None:
        if width:
            self.out(f"acc = acc << {width} | {value}" if value else f"acc <<= {width}")
            self.out(f"n += {width}")

    def fast_check(self, datatype) -> str | None:
        """A condition on ``value`` under which datatype.check(value) is None and the inline
        write below applies; None where there is no inline write."""
        kind = datatype.kind
        if kind in ("nbit", "unsigned", "integer"):
            terms = ["value.__class__ is int"]
            if datatype.min is not None:
                terms.append(f"{datatype.min} <= value")
            if datatype.max is not None:
                terms.append(f"value <= {datatype.max}")
            bounded = (datatype.min is not None and datatype.max is not None
                       and max(abs(datatype.min), abs(datatype.max)).bit_length() <= MAGNITUDE_BITS)
            if kind != "nbit" and not bounded:  # datatypes.magnitude_problem
                terms.append(f"value.bit_length() <= {MAGNITUDE_BITS}")
            return " and ".join(terms)
        if kind == "boolean":
            return "value.__class__ is bool"
        if kind == "enum":
            return f"value.__class__ is str and (index := {self.constant('INDEX', datatype.index)}.get(value)) is not None"
        if kind in ("string", "binary"):
            terms = ["value.__class__ is str" if kind == "string" else "value.__class__ is bytes"]
            if datatype.min_length:
                terms.append(f"{datatype.min_length} <= len(value)")
            if datatype.max_length is not None:
                terms.append(f"len(value) <= {datatype.max_length}")
            return " and ".join(terms)
        return None

    def put(self, before: tuple[int, int], width: str, value: str, after: tuple[int, int]) -> None:
        """acc gets the constant bits ``before``, then ``value`` in ``width`` bits, then the
        constant bits ``after``, in one statement (``width`` may be an expression)."""
        (before_width, before_code), (after_width, after_code) = before, after
        fixed = width.isdigit()
        shift = str(before_width + int(width)) if fixed else f"({before_width} + {width})" if before_width else width
        terms = [f"acc << {shift}"]
        if before_code:
            terms.append(str(before_code << int(width)) if fixed else f"{before_code} << {width}")
        terms.append(value)
        expression = " | ".join(terms)
        if after_width:
            expression = f"({expression}) << {after_width}" + (f" | {after_code}" if after_code else "")
        self.out(f"acc = {expression}")
        constant = before_width + after_width
        if fixed:
            self.out(f"n += {constant + int(width)}")
        else:
            self.out(f"n += {width}" + (f" + {constant}" if constant else ""))

    def put_unsigned(self, before, name: str, after, then: tuple[str, str] | None = None) -> None:
        """An Unsigned Integer between constant bits: one octet (the usual case) in one
        statement; ``then`` is (width, value) of bits that follow it (a string's octets)."""
        out = self.out
        with out.block(f"if {name} < 0x80:"):
            if then:
                self.put(before, "8", name, (0, 0))
                self.put((0, 0), *then, after)
            else:
                self.put(before, "8", name, after)
        with out.block("else:"):
            self.emit(*before)
            out(f"acc, n = _put_unsigned(acc, n, {name})")
            if then:
                self.put((0, 0), *then, after)
            else:
                self.emit(*after)

    def write_value(self, datatype, before=(0, 0), after=(0, 0)) -> None:
        """The inline write of ``value`` once fast_check holds (datatypes.py's write methods),
        between the constant bits ``before`` and ``after`` (event codes)."""
        out = self.out
        kind = datatype.kind
        if kind == "nbit":
            offset = f"value - {datatype.min}" if datatype.min >= 0 else f"value + {-datatype.min}"
            self.put(before, str(datatype.width), f"({offset})", after)
        elif kind == "boolean":
            self.put(before, "1", "value", after)
        elif kind == "enum":
            self.put(before, str(datatype.width), "index", after)
        elif kind == "unsigned":
            self.put_unsigned(before, "value", after)
        elif kind == "integer":
            # sign bit, then the magnitude as an Unsigned Integer (BitWriter.integer)
            with out.block("if value < 0:"):
                out("magnitude = -value - 1")
                self.put_unsigned((before[0] + 1, before[1] << 1 | 1), "magnitude", after)
            with out.block("else:"):
                out("magnitude = value")
                self.put_unsigned((before[0] + 1, before[1] << 1), "magnitude", after)
        elif kind == "string":
            out("length = len(value)")
            out("marker = length + 2")
            with out.block("if value.isascii():"):  # one octet per character
                self.put_unsigned(before, "marker", after,
                                  then=("8 * length", 'int.from_bytes(value.encode("ascii"), "big")'))
            with out.block("else:"):
                self.put_unsigned(before, "marker", (0, 0))
                out("acc, n = _put_characters(acc, n, value)")
                self.emit(*after)
        else:  # binary
            out("length = len(value)")
            self.put_unsigned(before, "length", after, then=("8 * length", 'int.from_bytes(value, "big")'))

    def value(self, datatype, width: int, code: int) -> None:
        """An AT or CH event and its value: inline when the value is ordinary."""
        out = self.out
        slow = f"acc, n = _slow_value(w, acc, n, {self.constant('DATATYPE', datatype)}, value)"
        check = self.fast_check(datatype)
        if check is None:
            self.emit(width, code)
            out(slow)
            return
        with out.block(f"if {check}:"):
            self.write_value(datatype, before=(width, code))
        with out.block("else:"):
            self.emit(width, code)
            out(slow)

    def leaf(self, grammar: Grammar, width: int = 0, code: int = 0) -> None:
        """A simple-typed element, after the parent's event code (``width`` bits ``code``), as
        walk.walk_leaf writes it."""
        out = self.out
        state = grammar.states[0]
        datatype = state.characters.arg
        check = self.fast_check(datatype)
        if check is None:
            self.leaf_by_interpreter(grammar, width, code)
            return
        with out.block(f"if {check}:"):
            if datatype.kind in ("string", "binary"):
                with out.block("if not value:"):
                    # no character content at all: EXI ends the element with the second-level EE
                    self.emit(width + state.width + state.second_width,
                              (code << state.width | state.count) << state.second_width | state.second_end)
                with out.block("else:"):
                    self.leaf_characters(grammar, width, code)
            else:
                self.leaf_characters(grammar, width, code)
        with out.block("else:"):
            self.leaf_by_interpreter(grammar, width, code)

    def leaf_characters(self, grammar: Grammar, width: int, code: int) -> None:
        state = grammar.states[0]
        characters = state.characters
        end_state = grammar.states[characters.next]
        self.write_value(characters.arg, before=(width + state.width, code << state.width | characters.code),
                         after=(end_state.width, end_state.end.code))

    def leaf_by_interpreter(self, grammar: Grammar, width: int, code: int) -> None:
        self.emit(width, code)
        self.out(f"acc, n = _slow_leaf(w, acc, n, {self.constant('GRAMMAR', grammar)}, value)")

    def end_table(self, grammar: Grammar) -> str:
        """Per state, the bits that end the element there (walk_element's last step), or None."""
        ends = []
        for state in grammar.states:
            characters = state.characters
            if state.end is not None:
                ends.append((state.width, state.end.code))
            elif characters is not None and characters.arg.check(characters.arg.empty) is None:
                ends.append((state.width + state.second_width, state.count << state.second_width | state.second_end))
            else:
                ends.append(None)
        return self.constant("END", tuple(ends))

    def dispatch(self, grammar: Grammar, number: int, chained: bool) -> None:
        """The productions of one state, chosen by the key in hand."""
        out = self.out
        state = grammar.states[number]
        chosen = {}  # walk.py finds productions by (kind, name) in a dict: the last one wins
        for production in state.productions:
            if production.kind == SE:
                chosen[production.name] = production
            elif production.kind == AT:
                chosen["@" + production.name] = production
            elif production.kind == CH:
                chosen["#text"] = production
        for key, production in chosen.items():
            with out.block(f"if key == {key!r}:"):
                if production.kind == SE:
                    child = production.arg
                    if child.is_simple:
                        self.leaf(child, state.width, production.code)
                    else:
                        out(f"acc, n = encode_{child.index}(w, value, depth + 1, "
                            f"acc << {state.width} | {production.code}, n + {state.width})")
                elif production.kind == AT:
                    self.value(production.arg, state.width, production.code)
                else:
                    # an empty #text is no content at all (walk._sorted_items leaves it out)
                    empty = production.arg.empty
                    if empty is not None:
                        kinds = "(str,)" if isinstance(empty, str) else "(bytes, bytearray)"
                        out(f"if isinstance(value, {kinds}) and len(value) == 0: continue")
                    self.value(production.arg, state.width, production.code)
                if chained and production.next == number + 1:
                    out("state += 1")
                elif chained or production.next != number:
                    out(f"state = {production.next}")
                out("continue")
        out("raise Unusual")

    def element(self, grammar: Grammar) -> None:
        out = self.out
        with out.block(f"def encode_{grammar.index}(w, content, depth, acc, n):"):
            out(f"# {grammar.name}")
            out(f"if depth >= {self.max_depth}: raise Unusual")
            if grammar.is_simple:
                out("value = content")
                self.leaf(grammar)
                out("return acc, n")
                return
            out("if content.__class__ is not dict: raise Unusual")
            with out.block(f"if n > {FLUSH_BITS}:"):
                out("w.bits(n, acc)")
                out("acc = n = 0")
            out("state = 0")
            if grammar.mixed or grammar.interleaved:
                steps = f"_steps_in_walk_order(content, {grammar.mixed}, {grammar.interleaved})"
            else:
                steps = "content.items()"
            with out.block(f"for key, value in {steps}:"):
                if grammar.lists and not grammar.interleaved:
                    # repeated elements are lists; each item takes its own step through the states
                    lists = self.constant("LISTS", grammar.lists)
                    with out.block(f"if key in {lists} and (value.__class__ is list or value.__class__ is tuple):"):
                        out("if not value: raise Unusual")
                        out("values = value")
                    with out.block("else:"):
                        out("values = (value,)")
                with out.block("for value in values:") if grammar.lists and not grammar.interleaved else _nothing():
                    for first, last in self.blocks(grammar):
                        header = f"if state == {first}:" if first == last else f"if {first} <= state <= {last}:"
                        with out.block(header):
                            self.dispatch(grammar, first, chained=first < last)
            out(f"end = {self.end_table(grammar)}[state]")
            out("if end is None: raise Unusual")
            out("return acc << end[0] | end[1], n + end[0]")


@lru_cache(maxsize=None)
def encoders(tables: Tables) -> _Compiled:
    """The encoder functions ``encode_N`` of a schema."""
    namespace = {"Unusual": Unusual, "_put_unsigned": _put_unsigned, "_put_characters": _put_characters,
                 "_slow_value": _slow_value, "_slow_leaf": _slow_leaf, "_steps_in_walk_order": _steps_in_walk_order}
    return _Compiled(tables, _EncoderGenerator(tables, WALK_MAX_DEPTH), "encode", namespace)


def encode_specialised(tables: Tables, message, fragment: bool) -> bytes | None:
    """The EXI stream of ``message`` (walk.walk_document's events), or None where the message
    is not on the fast road and the interpreter must decide."""
    try:
        return _encode(tables, message, fragment)
    except (Unusual, EncodeError, RecursionError, KeyError, TypeError, AttributeError, ValueError):
        return None


def _encode(tables: Tables, message, fragment: bool) -> bytes:
    if not isinstance(message, dict) or not message or (not fragment and len(message) != 1):
        raise Unusual
    functions = encoders(tables).functions
    if fragment:
        index_of, entries, width = tables.fragment_index, tables.fragment, tables.fragment_width
    else:
        index_of, entries, width = tables.document_index, tables.document, tables.document_width
    writer = BitWriter()
    acc, n = HEADER, 8
    for root, content in message.items():
        index = index_of.get(root)
        if index is None or entries[index][2] is None:
            raise Unusual
        encode_element = functions[entries[index][2].index]
        for item in content if fragment and isinstance(content, list) else [content]:
            acc, n = encode_element(writer, item, 0, acc << width | index, n + width)
    if fragment:
        acc, n = acc << tables.fragment_width | len(tables.fragment) + 1, n + tables.fragment_width
    writer.bits(n, acc)
    return writer.to_bytes()
