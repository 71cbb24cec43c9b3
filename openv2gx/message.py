"""The message model: a nested mapping mirroring the XML infoset (see DESIGN.md).

Element local names are keys, repeated elements are lists, attributes are ``@name`` keys,
character content beside attributes is ``#text``, enumerations are their strings, integers are
int, booleans bool, binary bytes. JSON and XML are two renderings of the same mapping.

Decoded as sent, beyond the schema (each such value listed in ``schema_violations``): None for an
empty element of a type that cannot be empty (JSON null, an empty XML element), the int index for
an enumeration index past the schema's list, numbers and lengths outside the facets.
"""

from __future__ import annotations

import json
from xml.sax.saxutils import escape, quoteattr

XML_NS = "http://www.w3.org/XML/1998/namespace"


class Message(dict):
    """A decoded (or to-be-encoded) EXI document: ``{root element name: content}``."""

    def __init__(self, content=(), schema: str | None = None, root: str | None = None,
                 namespace: str | None = None, fragment: bool = False):
        super().__init__(content)
        self.schema = schema
        self.root = root if root is not None else next(iter(self), None)
        self.namespace = namespace
        self.fragment = fragment
        self.name = message_name(self) if self.root else None
        self.warnings: list[str] = []
        #: "path: rule" for each value that breaks the schema's facets (decoded as sent)
        self.schema_violations: list[str] = []

    @property
    def body(self):
        """The content of the message element: the Body member for DIN/ISO-2, else the root."""
        root = self.get(self.root)
        if self.root == "V2G_Message" and isinstance(root, dict):
            body = root.get("Body") or {}
            return body.get(self.name) if isinstance(body, dict) else None
        return root

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self, default=json_default, ensure_ascii=False, indent=indent)

    def to_xml(self) -> str:
        from .xmlout import message_to_xml
        return message_to_xml(self)


def message_name(message: dict) -> str | None:
    root = next(iter(message), None)
    if root == "V2G_Message":
        body = message[root].get("Body") if isinstance(message[root], dict) else None
        if isinstance(body, dict) and body:
            return next(iter(body))
        return "V2G_Message"
    return root


def json_default(value):
    if isinstance(value, (bytes, bytearray)):
        return value.hex().upper()
    return str(value)


def xml_text(text: str) -> str:
    return escape(text)


def xml_attribute(text: str) -> str:
    return quoteattr(text)
