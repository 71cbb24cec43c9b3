"""Writes the grammar tables as Lua data files for the Wireshark dissectors (lua_dissectors/).

Each ``<schema>.ltab`` is the JSON table of grammars/FORMAT.md as one Lua table constructor
(``return {...}``, same keys, same 0-based numbers), so the Lua runtime reads exactly what the
Python runtime reads. ``fields.ltab`` lists every Wireshark field the dissector registers: one per
element path reachable from a message (see ``field_paths``). The suffix is not ``.lua`` because
Wireshark runs every ``*.lua`` file below its plugin folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

GRAMMAR_DIR = Path(__file__).resolve().parent / "grammars"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "lua_dissectors" / "ccs15118"
SCHEMAS = ("appHandshake", "din", "iso2", "iso20_CommonMessages", "iso20_AC", "iso20_DC",
           "iso20_WPT", "iso20_ACDP")
XMLDSIG_URI = "http://www.w3.org/2000/09/xmldsig#"
#: field prefix (after ``v2g.``) per grammar
FAMILY = {"appHandshake": "sap", "din": "din", "iso2": "iso2"}
#: grammar types decoded as one double, value x 10^exponent
PHYSICAL_SUFFIXES = ("}PhysicalValueType", "}RationalNumberType")
#: recursive types stop contributing fields below this depth
MAX_FIELD_DEPTH = 16


def family(schema: str) -> str:
    return FAMILY.get(schema, "iso20")


def lua_literal(value) -> str:
    if value is None:
        return "false"  # Lua tables cannot hold nil; the runtime reads false as null
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        # beyond 2^53 a Lua 5.1-5.2 number is not exact: the runtime compares such bounds as text
        return str(value) if abs(value) < 2**53 else lua_string(str(value))
    if isinstance(value, str):
        return lua_string(value)
    if isinstance(value, list):
        return "{" + ",".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{key}={lua_literal(v)}" for key, v in value.items()) + "}"
    raise TypeError(f"no Lua literal for {type(value).__name__}")


def lua_string(text: str) -> str:
    out = []
    for char in text:
        code = ord(char)
        if char in "\\\"":
            out.append("\\" + char)
        elif 32 <= code < 127:
            out.append(char)
        else:
            out.extend(f"\\{byte:03d}" for byte in char.encode("utf-8"))
    return '"' + "".join(out) + '"'


def is_physical(grammar: dict) -> bool:
    return grammar["name"].endswith(PHYSICAL_SUFFIXES)


def field_type(datatype: dict | None) -> tuple[str, list | None]:
    """(Wireshark ftype name, value strings) for a datatype; None = untyped string."""
    if datatype is None:
        return "string", None
    kind = datatype["kind"]
    if kind == "enum":
        return ("uint8" if len(datatype["values"]) <= 256 else "uint16"), datatype["values"]
    if kind in ("nbit", "unsigned", "integer"):
        low, high = datatype.get("min"), datatype.get("max")
        if kind == "unsigned" and low is None:
            low = 0
        if low is not None and high is not None and -2**31 <= low and high < 2**31:
            return ("uint32" if low >= 0 else "int32"), None
        if low is not None and high is not None and low >= 0 and high < 2**32:
            return "uint32", None
        return ("uint64" if low is not None and low >= 0 else "int64"), None
    if kind == "boolean":
        return "boolean", None
    if kind == "binary":
        return "bytes", None
    if kind == "float":
        return "double", None
    return "string", None


def _content_type(table: dict, grammar: dict) -> tuple[str, list | None]:
    """The type of the value an element of this grammar carries itself (not its children)."""
    if is_physical(grammar):
        return "double", None
    for state in grammar["states"]:
        for production in state:
            if production[0] == "CH":
                dt = production[1]
                return field_type(None if dt is None else table["datatypes"][dt])
    return "none", None


def child_path(fam: str, parent: str, local: str, uri: str, depth: int) -> str:
    """The field name (after ``v2g.``) of a child element; the Lua runtime applies the same rule:
    the message element sits directly under the family (DIN/ISO-2 Body dropped), Header and
    xmldsig elements are shared by all messages."""
    if uri == XMLDSIG_URI:
        return parent + "." + local if parent.startswith("xmldsig.") else "xmldsig." + local
    if depth == 1:
        if local == "Body":
            return fam
        if local == "Header":
            return fam + ".Header"
    return parent + "." + local


def is_message_root(schema: str, local: str) -> bool:
    if schema in ("din", "iso2"):
        return local == "V2G_Message"
    return local.endswith(("Req", "Res"))


def field_paths(schema: str, table: dict) -> dict[str, tuple[str, str, list | None]]:
    """path -> (label, ftype, value strings) for every element and attribute under a message."""
    fam = family(schema)
    grammars = table["grammars"]
    qnames = table["qnames"]
    found: dict[str, tuple[str, str, list | None]] = {}

    children: dict[int, list] = {}

    def children_of(grammar_index: int) -> list:
        """Distinct SE and AT productions (a repeated child appears in many states)."""
        if grammar_index not in children:
            seen = {}
            for state in grammars[grammar_index]["states"]:
                for production in state:
                    if production[0] in ("SE", "AT"):
                        seen.setdefault((production[0], production[1]), production)
            children[grammar_index] = list(seen.values())
        return children[grammar_index]

    visited = set()

    def walk(grammar_index: int, path: str, depth: int, stack: tuple):
        if (grammar_index, path) in visited:
            return
        visited.add((grammar_index, path))
        grammar = grammars[grammar_index]
        if path != fam:
            found.setdefault(path, (path.rsplit(".", 1)[-1], *_content_type(table, grammar)))
        if is_physical(grammar) or grammar_index in stack or depth > MAX_FIELD_DEPTH:
            return
        for production in children_of(grammar_index):
            if production[0] == "SE":
                uri, local = qnames[production[1]]
                walk(production[2], child_path(fam, path, local, uri, depth + 1), depth + 1,
                     stack + (grammar_index,))
            else:
                local = qnames[production[1]][1]
                found.setdefault(path + "." + local, (local, *field_type(table["datatypes"][production[2]])))

    for qname, grammar_index in table["document"]:
        local = qnames[qname][1]
        if is_message_root(schema, local):
            walk(grammar_index, fam if local == "V2G_Message" else fam + "." + local, 0, ())
    return found


def all_fields(tables: dict[str, dict]) -> list[list]:
    """[[path, label, ftype, value strings or false]] sorted by path; a path two grammars give
    different types (never in the V2G schemas) becomes a string field."""
    merged: dict[str, tuple[str, str, list | None]] = {}
    for schema in SCHEMAS:
        for path, spec in field_paths(schema, tables[schema]).items():
            if path in merged and merged[path][1:] != spec[1:]:
                spec = (spec[0], "string", None)
            merged[path] = spec
    return [[path, label, ftype, values or False] for path, (label, ftype, values) in sorted(merged.items())]


def load_tables(grammar_dir: Path = GRAMMAR_DIR) -> dict[str, dict]:
    return {name: json.loads((grammar_dir / f"{name}.json").read_text(encoding="utf-8")) for name in SCHEMAS}


HEADER = "-- generated by python -m openv2gx.lua_export from openv2gx/grammars/{}; do not edit\n"


def render(tables: dict[str, dict]) -> dict[str, str]:
    """file name -> text of every data file."""
    files = {}
    for name, table in tables.items():
        files[f"{name}.ltab"] = HEADER.format(f"{name}.json") + "return " + lua_literal(table) + "\n"
    fields = all_fields(tables)
    body = ",\n".join(lua_literal(entry) for entry in fields)
    files["fields.ltab"] = HEADER.format("*.json") + "return {\n" + body + "\n}\n"
    return files


def write_lua_tables(out_dir: Path = DEFAULT_OUT, grammar_dir: Path = GRAMMAR_DIR) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render(load_tables(grammar_dir)).items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m openv2gx.lua_export", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the .ltab files")
    args = parser.parse_args(argv)
    for path in write_lua_tables(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
