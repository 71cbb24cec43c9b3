"""Message mapping -> EXI stream, bit-exact with the V2G options (header 0x80, bit-packed)."""

from __future__ import annotations

from .bitstream import BitWriter
from .errors import EncodeError
from .specialise import encode_specialised
from .tables import load
from .walk import Sink, walk_document

HEADER = 0x80


class ExiSink(Sink):
    __slots__ = ("writer", "event")
    names = False

    def __init__(self):
        self.writer = BitWriter()
        self.writer.bits(8, HEADER)
        # event codes go straight to the writer: one call per event on the hot path
        self.event = self.writer.bits

    def start(self, uri, name):
        pass

    def attribute(self, uri, name, datatype, value):
        datatype.write(self.writer, value)

    def characters(self, datatype, value):
        datatype.write(self.writer, value)

    def end(self):
        pass


def encode(message, schema: str | None = None, fragment: bool | None = None, specialised: bool = True) -> bytes:
    """Encode a message mapping ``{root: content}`` with the named grammar.

    Raises EncodeError naming the element path and the rule broken; nothing is written then.
    The code generated from the grammar (specialise.py) encodes what fits the schema as given;
    the rest, and everything with ``specialised=False``, goes through the walk below, the
    reference that sorts keys and raises the errors.
    """
    schema = schema or getattr(message, "schema", None)
    if schema is None:
        raise EncodeError("/", "no schema given")
    if fragment is None:
        fragment = bool(getattr(message, "fragment", False))
    tables = load(schema)
    if specialised:
        encoded = encode_specialised(tables, message, fragment)
        if encoded is not None:
            return encoded
    sink = ExiSink()
    try:
        walk_document(tables, message, sink, fragment)
    except (RecursionError, KeyError, TypeError) as exc:
        raise EncodeError("/", f"message does not fit the schema ({type(exc).__name__}: {exc})") from exc
    return sink.writer.to_bytes()
