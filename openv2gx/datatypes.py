"""EXI datatype representations (EXI 1.0 section 7) as the grammar tables describe them.

Each datatype reads a value from a BitReader, writes one to a BitWriter, checks a Python value
against the schema's facets before anything is written, and converts between the Python value
and its XML lexical form. Python values: int, bool, str, bytes, list (for xs:list).

Decoding is lenient: a value the bits carry but the facets forbid (4 in an integer 1..3 written in
two bits, an enumeration index past the last value, a string longer than maxLength) is read as it
is, and the reader's ``violated`` flag says that the message needs its violations listed
(walk.find_violations words them, with paths). ``check`` is the strict test of the facets,
``fits`` the lenient one: whether the bits can carry the value at all.
"""

from __future__ import annotations

import base64
import binascii
import re
from decimal import Decimal, InvalidOperation

from .bitstream import BitReader, BitWriter
from .errors import DecodeError, brief

#: longest Unsigned Integer accepted, in 7-bit groups: bounds the work for hostile input while
#: leaving room for xs:integer values far beyond 64 bits
MAX_UNSIGNED_GROUPS = 600


def read_unsigned(reader: BitReader) -> int:
    value = 0
    shift = 0
    start = reader.pos
    bits = reader.bits
    while True:
        octet = bits(8)
        value |= (octet & 0x7F) << shift
        if octet < 0x80:
            return value
        shift += 7
        if shift >= 7 * MAX_UNSIGNED_GROUPS:
            raise DecodeError("unsigned integer longer than %d groups" % MAX_UNSIGNED_GROUPS, start)


def read_string_literal(reader: BitReader, expected_what: str = "string") -> str:
    """A value-table miss: length + 2, then code points (value partition capacity is 0)."""
    start = reader.pos
    marker = read_unsigned(reader)
    if marker < 2:
        raise DecodeError("string table hit, but the V2G options keep no value table", start,
                          "a string literal (length + 2)")
    return read_characters(reader, marker - 2, start)


def read_characters(reader: BitReader, length: int, start: int) -> str:
    if length * 8 > reader.remaining():
        raise DecodeError(f"string of {length} characters does not fit in the stream", start)
    if length == 0:
        return ""
    raw = reader.bits(length * 8).to_bytes(length, "big")
    if max(raw) < 0x80:
        return raw.decode("ascii")
    reader.pos -= length * 8
    chars = []
    for _ in range(length):
        code = read_unsigned(reader)
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise DecodeError(f"invalid character code point {code:#x}", reader.pos)
        chars.append(chr(code))
    return "".join(chars)


def write_characters(writer: BitWriter, text: str) -> None:
    if text.isascii():
        writer.bits(8 * len(text), int.from_bytes(text.encode("ascii"), "big"))
        return
    for char in text:
        writer.unsigned(ord(char))


SURROGATES = re.compile("[\ud800-\udfff]")


def magnitude_problem(value) -> str | None:
    """Integers the decoder would refuse as too long to read (its bound on hostile input)."""
    if isinstance(value, int) and value.bit_length() > 7 * MAX_UNSIGNED_GROUPS - 8:
        return f"integer of {value.bit_length()} bits is longer than the decoder reads"
    return None


class Datatype:
    kind = "?"
    python_type: type | tuple = object
    #: the value of an element written with no character content at all (non-strict EXI grammars
    #: allow it for every type; for any but strings and binary it breaks the schema)
    empty = None

    def describe(self) -> str:
        return self.kind

    def check(self, value) -> str | None:
        """Why the value does not fit, or None."""
        if not isinstance(value, self.python_type) or isinstance(value, bool) and self.python_type is int:
            if value is None:
                return f"empty element, expected {self.describe()}"
            return f"expected {self.describe()}, got {type(value).__name__} {brief(value)}"
        return None

    def fits(self, value) -> str | None:
        """Why the bits cannot carry the value even when the facets are not enforced, or None."""
        return self.check(value)

    def to_text(self, value) -> str:
        return str(value)


class NBit(Datatype):
    kind = "nbit"
    python_type = int

    def __init__(self, spec):
        self.min = spec["min"]
        self.max = spec["max"]
        self.width = spec["bits"]

    def describe(self):
        return f"integer {self.min}..{self.max}"

    def read(self, reader):
        value = reader.bits(self.width) + self.min
        if value > self.max:
            reader.violated = True
        return value

    def write(self, writer, value):
        writer.bits(self.width, value - self.min)

    def check(self, value):
        if value.__class__ is int and self.min <= value <= self.max:  # the common case, checked first
            return None
        problem = super().check(value)
        if problem is None and not self.min <= value <= self.max:
            problem = f"value {brief(value)} outside {self.min}..{self.max}"
        return problem

    def fits(self, value):
        problem = Datatype.check(self, value)
        if problem is None and not 0 <= value - self.min < 1 << self.width:
            problem = (f"value {brief(value)} does not fit in {self.width} bits "
                       f"({self.min}..{self.min + (1 << self.width) - 1})")
        return problem

    def from_text(self, text):
        return int(text)


class Unsigned(NBit):
    kind = "unsigned"

    def __init__(self, spec):
        self.min = spec.get("min", 0)
        self.max = spec.get("max")

    def describe(self):
        return f"integer {self.min}..{self.max if self.max is not None else ''}"

    def read(self, reader):
        value = read_unsigned(reader)
        if value < self.min or (self.max is not None and value > self.max):
            reader.violated = True
        return value

    def write(self, writer, value):
        writer.unsigned(value)

    def check(self, value):
        problem = Datatype.check(self, value) or magnitude_problem(value)
        if problem is None and (value < self.min or (self.max is not None and value > self.max)):
            problem = f"value {brief(value)} outside {self.describe()[8:]}"
        return problem

    def fits(self, value):
        problem = Datatype.check(self, value) or magnitude_problem(value)
        if problem is None and value < 0:
            problem = f"value {brief(value)} is negative: an unsigned integer cannot carry it"
        return problem


class Integer(NBit):
    kind = "integer"

    def __init__(self, spec):
        self.min = spec.get("min")
        self.max = spec.get("max")

    def describe(self):
        lo = "" if self.min is None else self.min
        hi = "" if self.max is None else self.max
        return f"integer {lo}..{hi}"

    def read(self, reader):
        negative = reader.bits(1)
        magnitude = read_unsigned(reader)
        value = -magnitude - 1 if negative else magnitude
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            reader.violated = True
        return value

    def write(self, writer, value):
        writer.integer(value)

    def check(self, value):
        problem = Datatype.check(self, value) or magnitude_problem(value)
        if problem is None and ((self.min is not None and value < self.min)
                                or (self.max is not None and value > self.max)):
            problem = f"value {brief(value)} outside {self.describe()[8:]}"
        return problem

    def fits(self, value):
        return Datatype.check(self, value) or magnitude_problem(value)


class Boolean(Datatype):
    kind = "boolean"
    python_type = bool

    def __init__(self, spec=None):
        pass

    def read(self, reader):
        return reader.bits(1) == 1

    def write(self, writer, value):
        writer.bits(1, 1 if value else 0)

    def to_text(self, value):
        return "true" if value else "false"

    def from_text(self, text):
        text = text.strip()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise ValueError(f"not a boolean: {text!r}")


class Length:
    def read_length_checked(self, reader, value):
        """The value read, flagging a length outside the facets."""
        if ((self.min_length is not None and len(value) < self.min_length)
                or (self.max_length is not None and len(value) > self.max_length)):
            reader.violated = True
        return value

    def length_problem(self, length):
        if self.min_length is not None and length < self.min_length:
            return f"length {length} below minimum {self.min_length}"
        if self.max_length is not None and length > self.max_length:
            return f"length {length} above maximum {self.max_length}"
        return None


class String(Length, Datatype):
    kind = "string"
    python_type = str
    empty = ""

    def __init__(self, spec):
        self.min_length = spec.get("minLength")
        self.max_length = spec.get("maxLength")

    def read(self, reader):
        value = read_string_literal(reader)
        if self.min_length is not None or self.max_length is not None:
            return self.read_length_checked(reader, value)
        return value

    def write(self, writer, value):
        writer.unsigned(len(value) + 2)
        write_characters(writer, value)

    def check(self, value):
        return self.fits(value) or self.length_problem(len(value))

    def fits(self, value):
        problem = Datatype.check(self, value)
        if problem is None and not value.isascii() and SURROGATES.search(value):
            problem = "string holds a lone surrogate, which is no Unicode character"
        return problem

    def from_text(self, text):
        return text


class Binary(Length, Datatype):
    kind = "binary"
    python_type = (bytes, bytearray)

    def __init__(self, spec):
        self.lexical = spec["lexical"]
        self.min_length = spec.get("minLength")
        self.max_length = spec.get("maxLength")

    empty = b""

    def describe(self):
        return "bytes"

    def read(self, reader):
        start = reader.pos
        length = read_unsigned(reader)
        if length * 8 > reader.remaining():
            raise DecodeError(f"binary of {length} bytes does not fit in the stream", start)
        value = reader.bits(length * 8).to_bytes(length, "big") if length else b""
        if self.min_length is not None or self.max_length is not None:
            return self.read_length_checked(reader, value)
        return value

    def write(self, writer, value):
        writer.unsigned(len(value))
        if value:
            writer.bits(8 * len(value), int.from_bytes(value, "big"))

    def check(self, value):
        return Datatype.check(self, value) or self.length_problem(len(value))

    def fits(self, value):
        return Datatype.check(self, value)

    def to_text(self, value):
        if self.lexical == "hex":
            return value.hex().upper()
        return base64.b64encode(value).decode("ascii")

    def from_text(self, text):
        text = "".join(text.split())
        try:
            if self.lexical == "hex":
                return bytes.fromhex(text)
            return base64.b64decode(text, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise ValueError(f"not {self.lexical}Binary: {text[:40]!r}") from exc


class Enumeration(Datatype):
    kind = "enum"
    python_type = str

    def __init__(self, spec):
        self.values = spec["values"]
        self.width = spec["bits"]
        self.index = {v: i for i, v in enumerate(self.values)}

    def describe(self):
        return "one of " + ", ".join(self.values)

    def read(self, reader):
        index = reader.bits(self.width)
        if index >= len(self.values):
            # the bits hold more values than the schema lists: the message carries the index
            reader.violated = True
            return index
        return self.values[index]

    def write(self, writer, value):
        index = self.index.get(value) if value.__class__ is str else value
        writer.bits(self.width, index)

    def check(self, value):
        if not isinstance(value, str) or value not in self.index:
            if value.__class__ is int and value >= len(self.values):
                return f"enumeration index {brief(value)} beyond the {len(self.values)} values the schema lists"
            if value is None:
                return f"empty element, expected {self.describe()}"
            return f"{brief(value)} is not {self.describe()}"
        return None

    def fits(self, value):
        if value.__class__ is int and len(self.values) <= value < 1 << self.width:
            return None
        return self.check(value)

    def from_text(self, text):
        return text.strip()


class DecimalType(Datatype):
    kind = "decimal"
    python_type = (Decimal, int)

    def __init__(self, spec=None):
        pass

    def read(self, reader):
        negative = reader.bits(1)
        integral = read_unsigned(reader)
        fraction = str(read_unsigned(reader))[::-1]
        text = ("-" if negative else "") + f"{integral}.{fraction}"
        return Decimal(text)

    def write(self, writer, value):
        sign, digits, exponent = Decimal(value).as_tuple()
        text = format(abs(Decimal(value)), "f")
        integral, _, fraction = text.partition(".")
        writer.bits(1, 1 if sign else 0)
        writer.unsigned(int(integral))
        writer.unsigned(int((fraction or "0")[::-1]))

    def from_text(self, text):
        try:
            return Decimal(text.strip())
        except InvalidOperation as exc:
            raise ValueError(f"not a decimal: {text!r}") from exc


class Float(Datatype):
    kind = "float"
    python_type = (float, int)

    def __init__(self, spec=None):
        pass

    def read(self, reader):
        mantissa = reader.integer()
        exponent = reader.integer()
        if exponent == -(1 << 14):
            return float("inf") if mantissa == 1 else float("-inf") if mantissa == -1 else float("nan")
        return float(mantissa) * 10.0 ** exponent

    def write(self, writer, value):
        sign, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
        mantissa = int("".join(map(str, digits)) or "0")
        writer.integer(-mantissa if sign else mantissa)
        writer.integer(exponent)

    def from_text(self, text):
        return float(text)


class ListType(Datatype):
    kind = "list"
    python_type = list

    def __init__(self, spec):
        self.item = make_datatype(spec["item"])

    def read(self, reader):
        start = reader.pos
        count = read_unsigned(reader)
        if count > reader.remaining():
            raise DecodeError(f"list of {count} items does not fit in the stream", start)
        return [self.item.read(reader) for _ in range(count)]

    def write(self, writer, value):
        writer.unsigned(len(value))
        for item in value:
            self.item.write(writer, item)

    def check(self, value):
        return self._items_problem(value, self.item.check)

    def fits(self, value):
        return self._items_problem(value, self.item.fits)

    def _items_problem(self, value, item_problem):
        problem = Datatype.check(self, value)
        if problem:
            return problem
        for item in value:
            problem = item_problem(item)
            if problem:
                return problem
        return None

    def to_text(self, value):
        return " ".join(self.item.to_text(v) for v in value)

    def from_text(self, text):
        return [self.item.from_text(part) for part in text.split()]


class Untyped(String):
    """Character data that a schema-informed grammar does not type (mixed content)."""

    def __init__(self):
        super().__init__({})


_KINDS = {
    "nbit": NBit,
    "unsigned": Unsigned,
    "integer": Integer,
    "boolean": Boolean,
    "string": String,
    "binary": Binary,
    "enum": Enumeration,
    "decimal": DecimalType,
    "float": Float,
    "list": ListType,
}


def make_datatype(spec: dict) -> Datatype:
    return _KINDS[spec["kind"]](spec)
