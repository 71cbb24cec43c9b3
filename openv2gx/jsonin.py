"""JSON (as ``Message.to_json`` writes it) -> message mapping, typed by the grammar.

JSON has no bytes or decimals: the JSON rendering writes binary as hex strings and decimals as
strings. Walking the grammar (as xmlin does for XML) tells where a string stands for bytes or a
decimal, so the result is what ``decode`` returned and ``encode`` takes.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

from .datatypes import Binary, DecimalType, ListType
from .errors import EncodeError
from .message import Message
from .tables import Grammar, load
from .xmlin import _vocabulary_of

MAX_DEPTH = 64


def _value(datatype, value, path: str):
    if isinstance(datatype, Binary) and isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError as exc:
            raise EncodeError(path, f"not hex: {value[:40]!r}") from exc
    if isinstance(datatype, DecimalType) and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        try:
            return Decimal(str(value))
        except InvalidOperation as exc:
            raise EncodeError(path, f"not a decimal: {value!r}") from exc
    if isinstance(datatype, ListType) and isinstance(value, list):
        return [_value(datatype.item, item, path) for item in value]
    return value


def _element(grammar: Grammar, content, path: str, depth: int):
    if depth > MAX_DEPTH:
        raise EncodeError(path, "nested too deep")
    children, attributes, text_type = _vocabulary_of(grammar)
    if grammar.is_simple:
        return _value(text_type, content, path)
    if not isinstance(content, dict):
        raise EncodeError(path, f"expected an object of child elements, got {type(content).__name__}")
    result = {}
    for key, value in content.items():
        if key.startswith("@"):
            datatype = attributes.get(key[1:])
            if datatype is None:
                raise EncodeError(f"{path}/{key}", "attribute not declared for this element")
            result[key] = _value(datatype, value, f"{path}/{key}")
        elif key == "#text":
            result[key] = _value(text_type, value, path) if text_type is not None else value
        elif key == "#children" and isinstance(value, list):
            result[key] = [{name: _child(children, name, item, path, depth)
                            for name, item in pair.items()} if isinstance(pair, dict) else pair
                           for pair in value]
        elif isinstance(value, list) and key in grammar.lists:
            result[key] = [_child(children, key, item, path, depth) for item in value]
        else:
            result[key] = _child(children, key, value, path, depth)
    return result


def _child(children, name, value, path, depth):
    grammar = children.get(name)
    if grammar is None:
        raise EncodeError(f"{path}/{name}", "element not declared here")
    return _element(grammar, value, f"{path}/{name}", depth + 1)


def from_json(data, schema: str, fragment: bool = False) -> Message:
    """A message mapping from its JSON text (or the already parsed object)."""
    if isinstance(data, (str, bytes, bytearray)):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise EncodeError("/", f"not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not data:
        raise EncodeError("/", "a message is a JSON object {root element name: content}")
    tables = load(schema)
    entries = tables.fragment if fragment else tables.document
    index = tables.fragment_index if fragment else tables.document_index
    content = {}
    for root, value in data.items():
        if root not in index or entries[index[root]][2] is None:
            raise EncodeError(root, f"not a root element of {schema}")
        grammar = entries[index[root]][2]
        if fragment and isinstance(value, list):
            content[root] = [_element(grammar, item, root, 0) for item in value]
        else:
            content[root] = _element(grammar, value, root, 0)
    first = next(iter(data))
    return Message(content, schema=schema, root=first, namespace=entries[index[first]][1], fragment=fragment)
