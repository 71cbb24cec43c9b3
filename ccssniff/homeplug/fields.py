"""Declarative binary layouts: one tuple of items per record, parse and build both derived from it.

A record class lists its wire layout in ``layout``; the ``@record`` decorator turns it into a
keyword-only dataclass (equality, named fields) and compiles the layout once: runs of fixed-size
items become one precompiled ``struct.Struct``, so parsing a fixed message is a single
``unpack_from``. Items:

    UInt(name, size, enum=...)   little-endian unsigned integer of 1, 2 or 4 bytes
    Bytes(name, size)            fixed-size byte string (IDs, reserved bytes)
    Key(name, size=16)           secret key (NMK, NEK), parsed to a NetworkKey that prints masked
    Mac(name)                    6-byte address, parsed to a MacAddress
    Count(name, of=...)          element count of a later array; not stored, written as len(array)
    Array(name, element, count=) list of UInt values or of nested records
    Nibbles(name, count=)        list of 4-bit values, two per byte, low nibble first
    Rest(name)                   all remaining bytes

Every item accepts ``when=predicate``: the item is on the wire only if ``predicate(values)``
holds, where ``values`` maps the names parsed so far; absent, a scalar is None and an array [].
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Any, Callable, ClassVar, Mapping

from .keys import NetworkKey, mask_key
from .notation import MacAddress, format_hex, mac_from_wire

Predicate = Callable[[Mapping[str, Any]], bool]


class LayoutError(ValueError):
    """Bytes that do not fit a layout, or values that cannot be encoded; names the field."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"field {field!r}: {problem}")
        self.field = field
        self.problem = problem


class Item:
    """One element of a layout."""

    size: int | None = None  # bytes on the wire when fixed, None when it depends on the data
    code: str = ""  # struct code of a fixed item
    stored = True  # is the item a field of the record (Count is not)

    def __init__(self, name: str, when: Predicate | None = None):
        self.name = name
        self.when = when

    def default(self) -> Any:
        raise NotImplementedError

    def absent(self) -> Any:
        """The value a conditional item takes when it is not on the wire."""
        return None

    # Variable items (and conditional fixed ones) parse and build themselves.
    def parse(self, buf: bytes, off: int, values: dict) -> int:
        if self.size is None:
            raise NotImplementedError
        end = off + self.size
        if end > len(buf):
            raise LayoutError(self.name, f"needs {self.size} bytes at offset {off}, {len(buf) - off} left")
        values[self.name] = self.convert(struct.unpack_from("<" + self.code, buf, off)[0])
        return end

    def build(self, value: Any, out: list) -> None:
        out.append(struct.pack("<" + self.code, self.check(value)))

    def convert(self, raw: Any) -> Any:
        """Value of the record field from what struct unpacked."""
        return raw

    def check(self, value: Any) -> Any:
        """Value struct packs, or LayoutError; struct alone would silently pad or cut bytes."""
        return value

    def describe(self, value: Any) -> Any:
        """Value as a person reads it: enum names, hex for bytes."""
        if isinstance(value, bytes):
            return format_hex(value) if not isinstance(value, MacAddress) else str(value)
        return value


class UInt(Item):
    _codes = {1: "B", 2: "H", 4: "I"}

    def __init__(self, name: str, size: int = 1, *, enum: Mapping[int, str] | None = None,
                 default: int = 0, when: Predicate | None = None):
        super().__init__(name, when)
        self.size = size
        self.code = self._codes[size]
        self.enum = dict(enum or {})
        self._default = default

    def default(self) -> int:
        return self._default

    def check(self, value: Any) -> int:
        if not isinstance(value, int) or not 0 <= value < 1 << (8 * self.size):
            raise LayoutError(self.name, f"{value!r} is not an unsigned {8 * self.size}-bit integer")
        return value

    def describe(self, value: Any) -> Any:
        return self.enum.get(value, value) if self.enum else value


class Bytes(Item):
    def __init__(self, name: str, size: int, *, default: bytes | None = None, when: Predicate | None = None):
        super().__init__(name, when)
        self.size = size
        self.code = f"{size}s"
        self._default = bytes(size) if default is None else default

    def default(self) -> bytes:
        return self._default

    def check(self, value: Any) -> bytes:
        if not isinstance(value, (bytes, bytearray)) or len(value) != self.size:
            raise LayoutError(self.name, f"needs exactly {self.size} bytes, got {value!r}")
        return bytes(value)


class Key(Bytes):
    """A secret key (NMK, NEK): bytes in the record, masked in its repr and descriptions
    (a NetworkKey, which renderers reveal only on request)."""

    def __init__(self, name: str, size: int = 16, *, when: Predicate | None = None):
        super().__init__(name, size, when=when)

    def describe(self, value: Any) -> Any:
        return NetworkKey(value)


class Mac(Bytes):
    def __init__(self, name: str, *, default: bytes | None = None, when: Predicate | None = None):
        super().__init__(name, 6, default=MacAddress(default or bytes(6)), when=when)

    convert = mac_from_wire


class Count(UInt):
    """Number of elements of the array named ``of``; derived from the array when building."""

    stored = False

    def __init__(self, name: str, size: int = 1, *, of: str, when: Predicate | None = None):
        super().__init__(name, size, when=when)
        self.of = of


class Array(Item):
    def __init__(self, name: str, element: "UInt | type[Record]", *, count: str, when: Predicate | None = None):
        super().__init__(name, when)
        self.element = element
        self.count = count

    def default(self) -> list:
        return []

    def absent(self) -> list:
        return []

    def parse(self, buf: bytes, off: int, values: dict) -> int:
        n = values[self.count]
        element = self.element
        if isinstance(element, UInt):
            end = off + n * element.size
            if end > len(buf):
                raise LayoutError(self.name, f"{n} elements need {n * element.size} bytes at offset {off}, "
                                  f"{len(buf) - off} left")
            values[self.name] = list(buf[off:end]) if element.size == 1 else \
                list(struct.unpack_from(f"<{n}{element.code}", buf, off))
            return end
        items = []
        for i in range(n):
            try:
                item, off = element.decode(buf, off)
            except LayoutError as exc:
                raise LayoutError(f"{self.name}[{i}].{exc.field}", exc.problem) from None
            items.append(item)
        values[self.name] = items
        return off

    def build(self, value: Any, out: list) -> None:
        element = self.element
        if isinstance(element, UInt):
            try:
                out.append(bytes(value) if element.size == 1 else struct.pack(f"<{len(value)}{element.code}", *value))
            except (ValueError, TypeError, struct.error):
                for i, v in enumerate(value):  # find the element that does not fit, to name it
                    try:
                        element.check(v)
                    except LayoutError as exc:
                        raise LayoutError(f"{self.name}[{i}]", exc.problem) from None
                raise
            return
        for i, item in enumerate(value):
            if not isinstance(item, element):
                raise LayoutError(f"{self.name}[{i}]", f"expected {element.__name__}, got {item!r}")
            try:
                item.encode(out)
            except LayoutError as exc:
                raise LayoutError(f"{self.name}[{i}].{exc.field}", exc.problem) from None

    def describe(self, value: Any) -> Any:
        if isinstance(self.element, UInt):
            return list(value)
        return [item.describe() for item in value]


class Nibbles(Item):
    """``count`` 4-bit values packed two per byte, the first in the low nibble."""

    def __init__(self, name: str, *, count: str, when: Predicate | None = None):
        super().__init__(name, when)
        self.count = count

    def default(self) -> list:
        return []

    def absent(self) -> list:
        return []

    def parse(self, buf: bytes, off: int, values: dict) -> int:
        n = values[self.count]
        end = off + (n + 1) // 2
        if end > len(buf):
            raise LayoutError(self.name, f"{n} nibbles need {(n + 1) // 2} bytes at offset {off}, "
                              f"{len(buf) - off} left")
        nibbles = []
        for byte in buf[off:end]:
            nibbles += (byte & 0x0F, byte >> 4)
        values[self.name] = nibbles[:n]
        return end

    def build(self, value: Any, out: list) -> None:
        if any(not isinstance(v, int) or not 0 <= v <= 15 for v in value):
            raise LayoutError(self.name, "every element must be an integer 0..15")
        padded = list(value) + [0] * (len(value) % 2)
        out.append(bytes(lo | hi << 4 for lo, hi in zip(padded[::2], padded[1::2])))


class Rest(Item):
    """Every byte up to the end of the message (vendor extensions whose layout varies)."""

    def default(self) -> bytes:
        return b""

    def parse(self, buf: bytes, off: int, values: dict) -> int:
        values[self.name] = bytes(buf[off:])
        return len(buf)

    def build(self, value: Any, out: list) -> None:
        if not isinstance(value, (bytes, bytearray)):
            raise LayoutError(self.name, f"needs bytes, got {value!r}")
        out.append(bytes(value))


class _FixedRun:
    """Consecutive fixed-size items, parsed and built with one precompiled struct."""

    def __init__(self, items: list[Item]):
        self.items = items
        self.struct = struct.Struct("<" + "".join(item.code for item in items))
        self.size = self.struct.size
        self.names = tuple(item.name for item in items)
        self.converted = tuple((i, item.name, item.convert) for i, item in enumerate(items)
                               if type(item).convert is not Item.convert)
        self.counts = tuple((i, item.of) for i, item in enumerate(items) if isinstance(item, Count))

    def parse(self, buf: bytes, off: int, values: dict) -> int:
        try:
            raw = self.struct.unpack_from(buf, off)
        except struct.error:
            raise self._truncation(buf, off) from None
        values.update(zip(self.names, raw))
        for i, name, convert in self.converted:
            values[name] = convert(raw[i])
        return off + self.size

    def _truncation(self, buf: bytes, off: int) -> LayoutError:
        for item in self.items:
            if off + item.size > len(buf):
                return LayoutError(item.name, f"needs {item.size} bytes at offset {off}, {max(len(buf) - off, 0)} left")
            off += item.size
        raise AssertionError("unpack failed though every item fits")

    def build(self, record: "Record", out: list) -> None:
        values = []
        for item in self.items:
            value = len(getattr(record, item.of)) if isinstance(item, Count) else getattr(record, item.name)
            values.append(item.check(value))
        out.append(self.struct.pack(*values))


class _Conditional:
    def __init__(self, item: Item):
        self.item = item

    def parse(self, buf: bytes, off: int, values: dict) -> int:
        item = self.item
        if item.when(values):
            return item.parse(buf, off, values)
        values[item.name] = item.absent()
        return off

    def build(self, record: "Record", out: list) -> None:
        item = self.item
        present = item.when(vars(record))
        value = len(getattr(record, item.of)) if isinstance(item, Count) else getattr(record, item.name)
        if not present:
            if not isinstance(item, Count) and value != item.absent():
                raise LayoutError(item.name, f"must be {item.absent()!r} here (its condition does not hold), "
                                  f"got {value!r}")
            return
        if value is None:
            raise LayoutError(item.name, "is required here (its condition holds) but is None")
        item.build(value, out)


class _Variable:
    def __init__(self, item: Item):
        self.item = item

    def parse(self, buf: bytes, off: int, values: dict) -> int:
        return self.item.parse(buf, off, values)

    def build(self, record: "Record", out: list) -> None:
        self.item.build(getattr(record, self.item.name), out)


def _compile(layout: tuple[Item, ...]) -> tuple:
    steps: list = []
    run: list[Item] = []
    for item in layout:
        if item.size is not None and item.when is None:
            run.append(item)
            continue
        if run:
            steps.append(_FixedRun(run))
            run = []
        steps.append(_Conditional(item) if item.when is not None else _Variable(item))
    if run:
        steps.append(_FixedRun(run))
    return tuple(steps)


@dataclasses.dataclass(kw_only=True, repr=False)
class Record:
    """Base of every layout-defined record; subclasses set ``layout`` and use ``@record``."""

    layout: ClassVar[tuple[Item, ...]] = ()
    _steps: ClassVar[tuple] = ()
    _count_names: ClassVar[tuple[str, ...]] = ()
    _items: ClassVar[dict[str, Item]] = {}

    @classmethod
    def decode(cls, buf: bytes, off: int = 0) -> tuple["Record", int]:
        """Record at ``buf[off:]`` and the offset after it; LayoutError names a missing field."""
        values: dict = {}
        for step in cls._steps:
            off = step.parse(buf, off, values)
        for name in cls._count_names:
            del values[name]
        obj = cls.__new__(cls)
        obj.__dict__.update(values)
        return obj, off

    def encode(self, out: list) -> None:
        for step in self._steps:
            step.build(self, out)

    def layout_values(self) -> dict[str, Any]:
        """The layout fields of this record (not header fields) in wire order."""
        return {item.name: getattr(self, item.name) for item in self.layout if item.stored}

    def describe(self) -> dict[str, Any]:
        """Layout fields as a person reads them: enum names, hex bytes, nested records as dicts."""
        return {name: self._items[name].describe(value) for name, value in self.layout_values().items()}

    def _repr_fields(self) -> list[str]:
        parts = []
        for name, value in self.layout_values().items():
            if name.startswith("reserved") and not any(value):
                continue  # zero reserved bytes are noise in a repr
            if isinstance(value, MacAddress):
                text = str(value)
            elif isinstance(self._items[name], Key):
                text = mask_key(value)
            elif isinstance(value, bytes):
                text = value.hex() or "''"
            else:
                text = repr(value)
            parts.append(f"{name}={text}")
        return parts

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self._repr_fields())})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # Pretty printers (IPython, hypothesis reports) would otherwise list dataclass internals.
        printer.text(repr(self))


def record(cls: type) -> type:
    """Make ``cls`` (a Record subclass with a ``layout``) a dataclass with a compiled codec."""
    annotations = {}
    for item in cls.layout:
        if not item.stored:
            continue
        annotations[item.name] = Any
        default = item.absent() if item.when is not None else item.default()
        if isinstance(default, list):
            setattr(cls, item.name, dataclasses.field(default_factory=list))
        else:
            setattr(cls, item.name, default)
    cls.__annotations__ = annotations
    cls = dataclasses.dataclass(kw_only=True, repr=False)(cls)
    cls._steps = _compile(cls.layout)
    cls._count_names = tuple(item.name for item in cls.layout if not item.stored)
    cls._items = {item.name: item for item in cls.layout}
    return cls
