"""The typed values of a message, with their datatypes: where tests and fuzzers put edge values.

    >>> for leaf in leaves(message): leaf.set(message, None)   # every element emptied in turn

``Leaf.path`` is spelled as ``Message.schema_violations`` spells it ("V2G_Message/Body/.../
ProfileEntry[0]/ChargingProfileEntryMaxNumberOfPhasesInUse"); ``facet_breaking_values`` gives values
the bits of a datatype carry although its facets forbid them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .datatypes import Binary, Datatype, Enumeration, Integer, NBit, String, Unsigned
from .tables import AT, SE, Grammar, load


@dataclass(frozen=True)
class Leaf:
    path: str
    #: keys and list indices from the message down to the value
    keys: tuple
    datatype: Datatype
    #: an element (which may be empty), not an attribute
    element: bool

    def get(self, message):
        for key in self.keys:
            message = message[key]
        return message

    def set(self, message, value) -> None:
        for key in self.keys[:-1]:
            message = message[key]
        message[self.keys[-1]] = value


def _children(grammar: Grammar) -> dict:
    found = {}
    for state in grammar.states:
        for production in state.productions:
            if production.kind == SE:
                found.setdefault(production.name, production.arg)
            elif production.kind == AT:
                found.setdefault("@" + production.name, production.arg)
    return found


def leaves(message) -> list[Leaf]:
    """Every simple-typed element and attribute of a decoded message (interleaved #children
    content left out)."""
    tables = load(message.schema)
    index = tables.fragment_index if message.fragment else tables.document_index
    entries = tables.fragment if message.fragment else tables.document
    found: list[Leaf] = []
    for root, content in message.items():
        grammar = entries[index[root]][2]
        if isinstance(content, list):
            for number, item in enumerate(content):
                _walk(grammar, item, f"{root}[{number}]", (root, number), found)
        else:
            _walk(grammar, content, root, (root,), found)
    return found


def _walk(grammar: Grammar, content, path: str, keys: tuple, found: list) -> None:
    if grammar.is_simple:
        found.append(Leaf(path, keys, grammar.states[0].characters.arg, True))
        return
    if not isinstance(content, dict):
        return
    children = _children(grammar)
    for key, value in content.items():
        child = children.get(key)
        if child is None:
            continue
        if key.startswith("@"):
            found.append(Leaf(f"{path}/{key}", keys + (key,), child, False))
        elif isinstance(value, list):
            for number, item in enumerate(value):
                _walk(child, item, f"{path}/{key}[{number}]", keys + (key, number), found)
        else:
            _walk(child, value, f"{path}/{key}", keys + (key,), found)


def facet_breaking_values(datatype: Datatype) -> list:
    """Values of ``datatype`` outside its facets that its bits still carry (none where the bits
    and the facets agree, as for booleans or an n-bit range of a power of two)."""
    if isinstance(datatype, NBit) and datatype.kind == "nbit":
        top = datatype.min + (1 << datatype.width) - 1
        return list(range(datatype.max + 1, top + 1))[:3] + ([top] if top > datatype.max + 3 else [])
    if isinstance(datatype, Unsigned):
        values = [] if datatype.max is None else [datatype.max + 1, datatype.max + 1000]
        return values + list(range(0, min(datatype.min, 2)))
    if isinstance(datatype, Integer):
        values = [] if datatype.max is None else [datatype.max + 1]
        return values + ([] if datatype.min is None else [datatype.min - 1])
    if isinstance(datatype, Enumeration):
        return list(range(len(datatype.values), min(1 << datatype.width, len(datatype.values) + 3)))
    if isinstance(datatype, (String, Binary)) and datatype.kind in ("string", "binary"):
        unit = "x" if datatype.kind == "string" else b"\xab"
        values = []
        if datatype.max_length is not None:
            values.append(unit * (datatype.max_length + 1))
        if datatype.min_length:
            values.append(unit * (datatype.min_length - 1))
        return values
    return []
