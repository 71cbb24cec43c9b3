"""XML text -> message mapping, typed by the grammar (the inverse of xmlout)."""

from __future__ import annotations

from xml.etree import ElementTree

from .errors import EncodeError
from .message import Message
from .tables import AT, CH, SE, Grammar, Tables, load

MAX_DEPTH = 64


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


_vocabularies: dict = {}


def _vocabulary_of(grammar: Grammar):
    """Every child element, attribute and character type a grammar can meet, by local name."""
    found = _vocabularies.get(grammar)
    if found is None:
        children, attributes, text = {}, {}, None
        for state in grammar.states:
            for p in state.productions:
                if p.kind == SE:
                    children.setdefault(p.name, p.arg)
                elif p.kind == AT:
                    attributes.setdefault(p.name, p.arg)
                elif p.kind == CH and text is None:
                    text = p.arg
        found = _vocabularies[grammar] = (children, attributes, text)
    return found


def _convert(datatype, text: str, path: str):
    try:
        return datatype.from_text(text)
    except ValueError as exc:
        raise EncodeError(path, str(exc)) from exc


def _element(grammar: Grammar, element, path: str, depth: int):
    if depth > MAX_DEPTH:
        raise EncodeError(path, "nested too deep")
    children, attributes, text_type = _vocabulary_of(grammar)
    text = element.text or ""
    if grammar.is_simple:
        if len(element):
            raise EncodeError(path, "simple-typed element has child elements")
        return text_type.empty if text == "" else _convert(text_type, text, path)
    content = {}
    for name, value in element.attrib.items():
        local = _local(name)
        if local not in attributes:
            raise EncodeError(f"{path}/@{local}", "attribute not declared for this element")
        content["@" + local] = _convert(attributes[local], value, f"{path}/@{local}")
    if text.strip() and text_type is not None:
        content["#text"] = _convert(text_type, text, path) if grammar.simple_content else text
    elif grammar.simple_content:
        content["#text"] = text_type.empty
    for child in element:
        local = _local(child.tag)
        child_grammar = children.get(local)
        if child_grammar is None:
            raise EncodeError(f"{path}/{local}", "element not declared here")
        value = _element(child_grammar, child, f"{path}/{local}", depth + 1)
        if grammar.interleaved:
            content.setdefault("#children", []).append({local: value})
        elif local in grammar.lists:
            content.setdefault(local, []).append(value)
        else:
            content[local] = value
    return content


def from_xml(xml: str | bytes, schema: str, fragment: bool = False) -> Message:
    """Parse XML of a V2G message into the message mapping that encode() takes."""
    tables: Tables = load(schema)
    try:
        root = ElementTree.fromstring(xml.encode("utf-8") if isinstance(xml, str) else xml)
    except ElementTree.ParseError as exc:
        raise EncodeError("/", f"not well-formed XML: {exc}") from exc
    local = _local(root.tag)
    entries = tables.fragment if fragment else tables.document
    index = (tables.fragment_index if fragment else tables.document_index).get(local)
    if index is None:
        raise EncodeError(local, f"not a root element of {schema}")
    _, uri, grammar = entries[index]
    message = Message({local: _element(grammar, root, local, 0)}, schema=schema, root=local,
                      namespace=uri, fragment=fragment)
    return message
