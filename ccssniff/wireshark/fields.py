"""The field values the Lua dissector shows for a decoded message, computed from the openv2gx
message model: the contract the tests hold the dissector to.

Each element or attribute becomes ``(field name, value)`` with the field name of
openv2gx/lua_export.py (``v2g.din.CurrentDemandReq.EVTargetCurrent``); a PhysicalValue or
RationalNumber is one float, value x 10^multiplier; enumerations are their names; binary is
lower-case hex; elements without a value of their own (containers) and empty values are left out.
"""

from __future__ import annotations

from functools import lru_cache

from openv2gx.lua_export import PHYSICAL_SUFFIXES, child_path, family
from openv2gx.tables import AT, SE, load


@lru_cache(maxsize=None)
def _children(schema: str, grammar_index: int) -> dict:
    grammar = load(schema).grammars[grammar_index]
    found = {}
    for state in grammar.states:
        for production in state.productions:
            if production.kind in (SE, AT):
                found.setdefault((production.kind, production.name), production)
    return found


def _value(value):
    return value.hex() if isinstance(value, (bytes, bytearray)) else value


def message_fields(message) -> list[tuple[str, object]]:
    """(field name, value) pairs of a decoded openv2gx message, in document order."""
    schema = message.schema
    fam = family(schema)
    tables = load(schema)
    out: list[tuple[str, object]] = []
    root = message.root
    grammar = next(g for name, _, g in tables.document if name == root)
    path = fam if root == "V2G_Message" else f"{fam}.{root}"
    _walk(schema, fam, grammar, message[root], path, 0, out)
    return out


def _walk(schema, fam, grammar, content, path, depth, out):
    if grammar.name.endswith(PHYSICAL_SUFFIXES):
        if isinstance(content, dict) and "Value" in content:
            exponent = content.get("Multiplier", content.get("Exponent", 0))
            if isinstance(content["Value"], int) and isinstance(exponent, int):
                out.append(("v2g." + path, float(content["Value"]) * 10.0 ** exponent))
        return
    if not isinstance(content, dict):
        if content not in ("", b"", None):
            out.append(("v2g." + path, _value(content)))
        return
    if "#text" in content and content["#text"] not in ("", b"", None):
        out.append(("v2g." + path, _value(content["#text"])))
    children = _children(schema, grammar.index)
    items = []
    for key, value in content.items():
        if key == "#children":
            items.extend((name, item) for entry in value for name, item in entry.items())
        elif key != "#text":
            items.append((key, value))
    for key, value in items:
        if key.startswith("@"):
            if value not in ("", b"", None):
                out.append((f"v2g.{path}.{key[1:]}", _value(value)))
            continue
        production = children.get((SE, key))
        if production is None:
            continue
        sub = child_path(fam, path, key, production.uri, depth + 1)
        for item in value if isinstance(value, list) else [value]:
            _walk(schema, fam, production.arg, item, sub, depth + 1, out)
