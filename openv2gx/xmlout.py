"""XML rendering of a message, through the same grammar walk as the encoder."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from .tables import load
from .walk import Sink, walk_document

SKIP_URIS = ("", "http://www.w3.org/XML/1998/namespace")


class XmlSink(Sink):
    def __init__(self, uris):
        self.prefixes = {}
        for uri in uris:
            if uri not in SKIP_URIS and uri not in self.prefixes:
                self.prefixes[uri] = f"ns{len(self.prefixes) + 1}"
        self.parts: list[str] = []
        self.stack: list[str] = []
        self.open_tag = False
        self.first = True

    def tag(self, uri, name):
        prefix = self.prefixes.get(uri)
        return f"{prefix}:{name}" if prefix else name

    def close_open_tag(self):
        if self.open_tag:
            self.parts.append(">")
            self.open_tag = False

    def start(self, uri, name):
        self.close_open_tag()
        tag = self.tag(uri, name)
        self.parts.append("<" + tag)
        if self.first:
            for namespace, prefix in self.prefixes.items():
                self.parts.append(f" xmlns:{prefix}={quoteattr(namespace)}")
            self.first = False
        self.stack.append(tag)
        self.open_tag = True

    def attribute(self, uri, name, datatype, value):
        self.parts.append(f" {self.tag(uri, name)}={quoteattr(datatype.to_text(value))}")

    def characters(self, datatype, value):
        self.close_open_tag()
        self.parts.append(escape(datatype.to_text(value)))

    def end(self):
        tag = self.stack.pop()
        if self.open_tag:
            self.parts.append("/>")
            self.open_tag = False
        else:
            self.parts.append(f"</{tag}>")


def message_to_xml(message, lenient: bool | None = None) -> str:
    """The XML of a message; ``lenient`` as for encode (values past the facets written as they
    are, an empty typed element as an empty element), by default when it has schema_violations."""
    if lenient is None:
        lenient = bool(getattr(message, "schema_violations", None))
    tables = load(message.schema)
    sink = XmlSink(tables.uris)
    walk_document(tables, message, sink, fragment=getattr(message, "fragment", False),
                  violations=[] if lenient else None)
    return '<?xml version="1.0" encoding="UTF-8"?>' + "".join(sink.parts)
