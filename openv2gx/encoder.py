"""Message mapping -> EXI stream, bit-exact with the V2G options (header 0x80, bit-packed)."""

from __future__ import annotations

from .bitstream import BitWriter
from .errors import EncodeError, brief
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


def encode(message, schema: str | None = None, fragment: bool | None = None, specialised: bool = True,
           lenient: bool | None = None) -> bytes:
    """Encode a message mapping ``{root: content}`` with the named grammar.

    Raises EncodeError naming the element path and the rule broken; nothing is written then.
    The code generated from the grammar (specialise.py) encodes what fits the schema as given;
    the rest, and everything with ``specialised=False``, goes through the walk below, the
    reference that sorts keys and raises the errors.

    ``lenient`` writes values that break the schema's facets but that the bits can carry (an
    integer past its maxInclusive, an enumeration index past the list, a string too long, None
    for an empty typed element), as devices send them. It defaults to whether the message
    carries ``schema_violations``, so a message decoded from captured bytes encodes back to
    them, and a message built by hand is checked strictly.
    """
    schema = schema or getattr(message, "schema", None)
    if schema is None:
        raise EncodeError("/", "no schema given")
    if fragment is None:
        fragment = bool(getattr(message, "fragment", False))
    if lenient is None:
        lenient = bool(getattr(message, "schema_violations", None))
    tables = load(schema)
    if specialised:
        # the generated code writes only values within the facets, bit for bit as the walk does
        encoded = encode_specialised(tables, message, fragment)
        if encoded is not None:
            return encoded
    sink = ExiSink()
    try:
        walk_document(tables, message, sink, fragment, [] if lenient else None)
    except (RecursionError, KeyError, TypeError, AttributeError, ValueError) as exc:
        if isinstance(exc, EncodeError):
            raise
        raise EncodeError("/", f"message does not fit the schema ({type(exc).__name__}: "
                          f"{brief(str(exc))})") from exc
    return sink.writer.to_bytes()
