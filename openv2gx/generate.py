"""Grammar generator: official XSDs -> EXI 1.0 schema-informed grammar tables (JSON).

Run as ``python -m openv2gx.generate [--schemas DIR] [--out DIR]``.

The tables follow W3C EXI 1.0 (second edition) section 8.5: for each type a proto-grammar is built
from attribute uses and particles (8.5.4.1), normalised (8.5.4.2: epsilon elimination and merging
of duplicate terminals, done here as a subset construction over the proto-grammar's states) and its
productions are ordered for event-code assignment (8.5.4.3). The V2G world runs EXI non-strict, so
every element state also owns second-level productions (8.5.4.4.1); the tables record the
first-level productions and the runtime widens each event code by one escape value.

The output format is documented in openv2gx/grammars/FORMAT.md; it is read by the Python runtime
and by the Lua dissector alike. xmlschema is needed here only, never at run time.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

XSD_NS = "http://www.w3.org/2001/XMLSchema"
XML_NS = "http://www.w3.org/XML/1998/namespace"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
FORMAT_VERSION = 1

#: grammar name -> entry XSD (relative to the schemas folder) and what the grammar is for
SCHEMA_SETS = {
    "appHandshake": "appHandshake/V2G_CI_AppProtocol.xsd",
    "din": "din/V2G_CI_MsgDef.xsd",
    "iso2": "iso2/V2G_CI_MsgDef.xsd",
    "iso20_CommonMessages": "iso20/V2G_CI_CommonMessages.xsd",
    "iso20_AC": "iso20/V2G_CI_AC.xsd",
    "iso20_DC": "iso20/V2G_CI_DC.xsd",
    "iso20_WPT": "iso20/V2G_CI_WPT.xsd",
    "iso20_ACDP": "iso20/V2G_CI_ACDP.xsd",
    "xmldsig": "xmldsig-core-schema.xsd",
}

INFINITE = None  # xmlschema's max_occurs for "unbounded"


def split_name(name: str, default_uri: str = "") -> tuple[str, str]:
    if name.startswith("{"):
        uri, local = name[1:].split("}", 1)
        return uri, local
    return default_uri, name


def qname_key(qname: tuple[str, str]) -> tuple[str, str]:
    """EXI sorts qnames by local-name first, then by uri."""
    return qname[1], qname[0]


# --------------------------------------------------------------------------------------------
# Datatypes (EXI 1.0 section 7)
# --------------------------------------------------------------------------------------------

def _builtin_ancestors(simple_type):
    t = simple_type
    names = []
    while t is not None:
        if getattr(t, "name", None) and str(t.name).startswith("{%s}" % XSD_NS):
            names.append(split_name(t.name)[1])
        base = getattr(t, "base_type", None)
        if base is t:
            break
        t = base
    return names


def _facet_bound(simple_type, kinds):
    t = simple_type
    while t is not None:
        for kind, adjust in kinds:
            facet = t.facets.get("{%s}%s" % (XSD_NS, kind)) if hasattr(t, "facets") else None
            if facet is not None and hasattr(facet, "value"):
                return int(facet.value) + adjust
        t = getattr(t, "base_type", None)
    return None


def _length_bounds(simple_type):
    lo = hi = None
    t = simple_type
    while t is not None and hasattr(t, "facets"):
        for kind in ("length", "minLength", "maxLength"):
            facet = t.facets.get("{%s}%s" % (XSD_NS, kind))
            if facet is None:
                continue
            if kind in ("length", "minLength") and lo is None:
                lo = int(facet.value)
            if kind in ("length", "maxLength") and hi is None:
                hi = int(facet.value)
        t = getattr(t, "base_type", None)
    return lo, hi


def datatype_of(simple_type) -> dict:
    """The EXI datatype representation of a simple type, as a JSON-ready dict."""
    if simple_type.is_list():
        return {"kind": "list", "item": datatype_of(simple_type.item_type)}
    if simple_type.is_union():
        raise NotImplementedError("union types are not used by the V2G schemas")
    builtins = _builtin_ancestors(simple_type)
    primitive = builtins[-1] if builtins else "string"
    if simple_type.enumeration and primitive not in ("QName", "NOTATION"):
        values = [str(v).lower() if isinstance(v, bool) else str(v) for v in simple_type.enumeration]
        return {"kind": "enum", "values": values, "bits": bits_for(len(values))}
    patterns = getattr(simple_type, "patterns", None)
    if patterns and primitive == "string" and not str(simple_type.name or "").startswith("{%s}" % XSD_NS):
        raise NotImplementedError("restricted character sets (pattern facets) are not used by the V2G schemas")
    if primitive == "boolean":
        return {"kind": "boolean"}
    if primitive == "decimal":
        if "integer" not in builtins:
            return {"kind": "decimal"}
        lo = _facet_bound(simple_type, (("minInclusive", 0), ("minExclusive", 1)))
        hi = _facet_bound(simple_type, (("maxInclusive", 0), ("maxExclusive", -1)))
        if lo is not None and hi is not None and hi - lo + 1 <= 4096:
            return {"kind": "nbit", "min": lo, "max": hi, "bits": bits_for(hi - lo + 1)}
        if lo is not None and lo >= 0:
            return _bounded({"kind": "unsigned"}, lo, hi)
        return _bounded({"kind": "integer"}, lo, hi)
    if primitive in ("float", "double"):
        return {"kind": "float"}
    if primitive in ("hexBinary", "base64Binary"):
        lo, hi = _length_bounds(simple_type)
        return _lengths({"kind": "binary", "lexical": "hex" if primitive == "hexBinary" else "base64"}, lo, hi)
    if primitive in ("string", "anyURI"):
        lo, hi = _length_bounds(simple_type)
        return _lengths({"kind": "string"}, lo, hi)
    raise NotImplementedError("datatype %s is not used by the V2G schemas" % primitive)


def _bounded(dt, lo, hi):
    if lo is not None:
        dt["min"] = lo
    if hi is not None:
        dt["max"] = hi
    return dt


def _lengths(dt, lo, hi):
    if lo:
        dt["minLength"] = lo
    if hi is not None:
        dt["maxLength"] = hi
    return dt


def bits_for(count: int) -> int:
    return 0 if count <= 1 else math.ceil(math.log2(count))


# --------------------------------------------------------------------------------------------
# Proto-grammars as a small NFA: states with terminal and epsilon edges; a fragment is
# (start, accepting states), "accepting" standing for the proto-grammar's EE productions.
# --------------------------------------------------------------------------------------------

class Proto:
    def __init__(self):
        self.edges: list[list[tuple]] = []  # per state: (terminal, target) ; terminal None = epsilon

    def state(self) -> int:
        self.edges.append([])
        return len(self.edges) - 1

    def edge(self, source: int, terminal, target: int) -> None:
        self.edges[source].append((terminal, target))

    def closure(self, states) -> frozenset:
        stack = list(states)
        seen = set(states)
        while stack:
            s = stack.pop()
            for terminal, target in self.edges[s]:
                if terminal is None and target not in seen:
                    seen.add(target)
                    stack.append(target)
        return frozenset(seen)


def concat(proto: Proto, left, right):
    start_l, accepts_l = left
    start_r, accepts_r = right
    for a in accepts_l:
        proto.edge(a, None, start_r)
    return start_l, accepts_r


def empty_fragment(proto: Proto):
    s = proto.state()
    return s, {s}


class SchemaGrammars:
    """Builds every grammar of one schema set."""

    def __init__(self, schema, name: str):
        self.schema = schema
        self.name = name
        self.qnames: list[tuple[str, str]] = []
        self.qname_index: dict[tuple[str, str], int] = {}
        self.datatypes: list[dict] = []
        self.datatype_index: dict[str, int] = {}
        self.grammars: list[dict] = []
        self.grammar_index: dict = {}
        self.pending: list = []
        self.namespaces = self._schema_namespaces()

    # -- registries ---------------------------------------------------------------------------
    def _schema_namespaces(self):
        skip = {XSD_NS, XML_NS, XSI_NS}
        return sorted({split_name(n)[0] for n in self.schema.maps.elements} - skip)

    def qname(self, qn: tuple[str, str]) -> int:
        if qn not in self.qname_index:
            self.qname_index[qn] = len(self.qnames)
            self.qnames.append(qn)
        return self.qname_index[qn]

    def datatype(self, simple_type) -> int:
        dt = datatype_of(simple_type)
        key = json.dumps(dt, sort_keys=True)
        if key not in self.datatype_index:
            self.datatype_index[key] = len(self.datatypes)
            self.datatypes.append(dt)
        return self.datatype_index[key]

    def global_elements(self):
        found = []
        for name, element in self.schema.maps.elements.items():
            uri, local = split_name(name)
            if uri in self.namespaces:
                found.append(((uri, local), element))
        found.sort(key=lambda item: qname_key(item[0]))
        return found

    def substitution_members(self, element):
        """The element and every member that reaches it through substitution groups, sorted."""
        seen = {}
        stack = [element]
        while stack:
            e = stack.pop()
            qn = self.element_qname(e)
            if qn in seen:
                continue
            seen[qn] = e
            for member in self.schema.maps.substitution_groups.get(e.name, ()):
                stack.append(member)
        members = list(seen.items())
        members.sort(key=lambda item: qname_key(item[0]))
        return members

    @staticmethod
    def element_qname(element) -> tuple[str, str]:
        target = element.ref if getattr(element, "ref", None) is not None else element
        uri, local = split_name(target.name)
        return uri, local

    # -- grammars --------------------------------------------------------------------------
    def grammar_for_type(self, xsd_type) -> int:
        key = ("type", xsd_type.name) if xsd_type.name else ("anon", id(xsd_type))
        if key in self.grammar_index:
            return self.grammar_index[key]
        index = len(self.grammars)
        self.grammar_index[key] = index
        label = xsd_type.name or "anonymous"
        self.grammars.append({"name": label})
        self.pending.append((index, xsd_type))
        return index

    def grammar_for_element(self, element) -> int:
        target = element.ref if getattr(element, "ref", None) is not None else element
        return self.grammar_for_type(target.type)

    def build_all(self, roots) -> None:
        for _, element in roots:
            self.grammar_for_element(element)
        while self.pending:
            index, xsd_type = self.pending.pop(0)
            self.grammars[index].update(self.build_type(xsd_type))

    def build_type(self, xsd_type) -> dict:
        proto = Proto()
        self.leaf_counter = 0
        self.interleaved = False
        repeated: set[int] = set()
        order: list[int] = []
        if xsd_type.is_simple():
            content = self.simple_content(proto, xsd_type)
            fragment = content
        else:
            fragment = self.attribute_fragment(proto, xsd_type)
            if xsd_type.has_simple_content():
                content = self.simple_content(proto, xsd_type.content)
            elif xsd_type.is_empty():
                content = empty_fragment(proto)
            else:
                content = self.particle(proto, xsd_type.content, repeated, order, False)
                if xsd_type.mixed:
                    self.add_untyped_characters(proto, content)
            fragment = concat(proto, fragment, content)
        start, accepts = fragment
        states = self.normalise(proto, start, accepts)
        result = {"states": states}
        if repeated:
            result["lists"] = sorted(repeated)
        if order:
            result["order"] = order
        if not xsd_type.is_simple() and xsd_type.has_simple_content():
            result["simple"] = True
        if not xsd_type.is_simple() and xsd_type.mixed:
            result["mixed"] = True
        if self.interleaved:
            result["interleaved"] = True
        return result

    def simple_content(self, proto: Proto, simple_type):
        s0, s1 = proto.state(), proto.state()
        proto.edge(s0, ("CH", self.datatype(simple_type)), s1)
        return s0, {s1}

    def attribute_fragment(self, proto: Proto, xsd_type):
        uses = []
        wildcard = None
        for name, attribute in xsd_type.attributes.items():
            if name is None:
                wildcard = attribute
                continue
            uri, local = split_name(attribute.name)
            if uri in (XSI_NS,):
                continue
            uses.append(((uri, local), attribute))
        uses.sort(key=lambda item: qname_key(item[0]))
        fragments = []
        for qn, attribute in uses:
            s0, s1 = proto.state(), proto.state()
            proto.edge(s0, ("AT", self.qname(qn), self.datatype(attribute.type)), s1)
            accepts = {s1}
            if attribute.use != "required":
                accepts.add(s0)
            fragments.append((s0, accepts))
        if wildcard is not None:
            s0, s1 = proto.state(), proto.state()
            fragments.append((s0, {s0, s1}))
            terminals = self.wildcard_terminals("AT", wildcard)
            for start, _ in fragments:
                for terminal in terminals:
                    proto.edge(start, terminal, start)
        if not fragments:
            return empty_fragment(proto)
        result = fragments[0]
        for fragment in fragments[1:]:
            result = concat(proto, result, fragment)
        return result

    def wildcard_terminals(self, kind, wildcard, order=None):
        namespaces = list(getattr(wildcard, "namespace", ()) or ())
        not_namespace = list(getattr(wildcard, "not_namespace", ()) or ())
        if "##any" in namespaces or "##other" in namespaces or not_namespace:
            return [(kind + "*", None) if order is None else (kind + "*", None, order)]
        terminals = []
        for uri in sorted(namespaces):
            uri = "" if uri == "##local" else uri
            terminals.append((kind + "*", uri) if order is None else (kind + "*", uri, order))
        return terminals

    def particle(self, proto: Proto, particle, repeated, order, inside_repeat):
        min_occurs = particle.min_occurs
        max_occurs = particle.max_occurs
        repeats = inside_repeat or max_occurs is INFINITE or max_occurs > 1
        if (max_occurs is INFINITE or max_occurs > 1) and type(particle).__name__ == "XsdGroup" \
                and len(self.leaf_names(particle)) > 1:
            self.interleaved = True
        leaf_base = self.leaf_counter
        term = lambda: self.term(proto, particle, repeated, order, repeats, leaf_base)
        copies = []
        for _ in range(min_occurs):
            copies.append(term())
        if max_occurs is INFINITE:
            start, accepts = term()
            for a in accepts:
                proto.edge(a, None, start)
            copies.append((start, set(accepts) | {start}))
        else:
            for _ in range(max_occurs - min_occurs):
                start, accepts = term()
                copies.append((start, set(accepts) | {start}))
        if not copies:
            return empty_fragment(proto)
        result = copies[0]
        for fragment in copies[1:]:
            result = concat(proto, result, fragment)
        return result

    def leaf_names(self, group) -> set:
        names = set()
        for child in group:
            if type(child).__name__ == "XsdGroup":
                names |= self.leaf_names(child)
            else:
                names.add(getattr(child, "name", None) or id(child))
        return names

    def term(self, proto: Proto, particle, repeated, order, repeats, leaf_base):
        """One copy of a particle's term; copies share the schema order of their leaves."""
        self.leaf_counter = leaf_base
        kind = type(particle).__name__
        if kind == "XsdElement":
            leaf = self.leaf_counter
            self.leaf_counter += 1
            s0, s1 = proto.state(), proto.state()
            for position, (qn, member) in enumerate(self.substitution_members(
                    particle.ref if particle.ref is not None else particle)):
                index = self.qname(qn)
                if repeats:
                    repeated.add(index)
                if index not in order:
                    order.append(index)
                proto.edge(s0, ("SE", index, self.grammar_for_element(member), (leaf, position)), s1)
            return s0, {s1}
        if kind == "XsdAnyElement":
            leaf = self.leaf_counter
            self.leaf_counter += 1
            s0, s1 = proto.state(), proto.state()
            for terminal in self.wildcard_terminals("SE", particle, (leaf, 0)):
                proto.edge(s0, terminal, s1)
            return s0, {s1}
        # model group
        children = list(particle)
        if particle.model == "sequence":
            if not children:
                return empty_fragment(proto)
            result = None
            for child in children:
                fragment = self.particle(proto, child, repeated, order, repeats)
                result = fragment if result is None else concat(proto, result, fragment)
            return result
        if particle.model == "choice":
            if not children:
                return empty_fragment(proto)
            start = proto.state()
            accepts = set()
            for child in children:
                child_start, child_accepts = self.particle(proto, child, repeated, order, repeats)
                proto.edge(start, None, child_start)
                accepts |= child_accepts
            return start, accepts
        if particle.model == "all":
            start = proto.state()
            for child in children:
                child_start, child_accepts = self.particle(proto, child, repeated, order, True)
                proto.edge(start, None, child_start)
                for a in child_accepts:
                    proto.edge(a, None, start)
            return start, {start}
        raise NotImplementedError(particle.model)

    def add_untyped_characters(self, proto: Proto, fragment):
        start, _ = fragment
        reachable = self.reachable(proto, start)
        for s in reachable:
            proto.edge(s, ("CHU",), s)

    @staticmethod
    def reachable(proto: Proto, start):
        seen = {start}
        stack = [start]
        while stack:
            s = stack.pop()
            for _, target in proto.edges[s]:
                if target not in seen:
                    seen.add(target)
                    stack.append(target)
        return seen

    # -- normalisation and event codes ---------------------------------------------------------
    def normalise(self, proto: Proto, start: int, accepts) -> list[list]:
        accepts = frozenset(accepts)
        initial = proto.closure([start])
        numbering = {initial: 0}
        queue = [initial]
        states: list[list] = []
        while queue:
            current = queue.pop(0)
            by_terminal: dict = {}
            terminal_of: dict = {}
            for s in sorted(current):
                for terminal, target in proto.edges[s]:
                    if terminal is None:
                        continue
                    key = self.terminal_identity(terminal)
                    if key not in by_terminal:
                        by_terminal[key] = set()
                        terminal_of[key] = terminal
                    elif self.sort_key(terminal) < self.sort_key(terminal_of[key]):
                        terminal_of[key] = terminal
                    by_terminal[key].add(target)
            productions = []
            for key, targets in by_terminal.items():
                target_set = proto.closure(targets)
                if target_set not in numbering:
                    numbering[target_set] = len(numbering)
                    queue.append(target_set)
                productions.append((terminal_of[key], numbering[target_set]))
            if current & accepts:
                productions.append((("EE",), None))
            productions.sort(key=lambda item: self.sort_key(item[0]))
            states.append([self.encode_production(t, nxt) for t, nxt in productions])
        return states

    @staticmethod
    def terminal_identity(terminal):
        kind = terminal[0]
        if kind in ("SE", "AT"):
            return kind, terminal[1]
        if kind in ("SE*", "AT*"):
            return kind, terminal[1]
        return (kind,)

    def sort_key(self, terminal):
        kind = terminal[0]
        if kind == "AT":
            return (0, qname_key(self.qnames[terminal[1]]))
        if kind == "AT*":
            return (1 if terminal[1] is not None else 2, terminal[1] or "")
        if kind == "SE":
            return (3, terminal[3])
        if kind == "SE*":
            return (4 if terminal[1] is not None else 5, terminal[2])
        if kind == "EE":
            return (6,)
        return (7,)

    @staticmethod
    def encode_production(terminal, next_state):
        kind = terminal[0]
        if kind == "SE":
            return ["SE", terminal[1], terminal[2], next_state]
        if kind == "AT":
            return ["AT", terminal[1], terminal[2], next_state]
        if kind == "CH":
            return ["CH", terminal[1], next_state]
        if kind == "CHU":
            return ["CH", None, next_state]
        if kind in ("SE*", "AT*"):
            return [kind, terminal[1], next_state]
        return ["EE"]


def all_declarations(schema, namespaces):
    """Every element declaration (global and local) and every attribute declaration of the
    schema set, each by qname: the inputs of the fragment grammars (EXI 8.5.2 and 8.5.3)."""
    by_qname: dict[tuple[str, str], list] = {}
    attributes: dict[tuple[str, str], list] = {}
    seen_types = set()

    def visit_type(xsd_type):
        if xsd_type is None or id(xsd_type) in seen_types or xsd_type.is_simple():
            return
        seen_types.add(id(xsd_type))
        for name, attribute in xsd_type.attributes.items():
            if name is not None:
                attributes.setdefault(split_name(attribute.name), []).append(attribute.type)
        content = xsd_type.content
        if hasattr(content, "model"):
            visit_group(content)

    def visit_group(group):
        for particle in group:
            kind = type(particle).__name__
            if kind == "XsdElement":
                target = particle.ref if particle.ref is not None else particle
                qn = split_name(target.name)
                bucket = by_qname.setdefault(qn, [])
                if all(e is not target for e in bucket):
                    bucket.append(target)
                visit_type(target.type)
            elif kind == "XsdGroup":
                visit_group(particle)

    for name, element in schema.maps.elements.items():
        if split_name(name)[0] in namespaces:
            by_qname.setdefault(split_name(name), [])
            if all(e is not element for e in by_qname[split_name(name)]):
                by_qname[split_name(name)].append(element)
            visit_type(element.type)
    for name, xsd_type in schema.maps.types.items():
        if split_name(name)[0] in namespaces:
            visit_type(xsd_type)
    return by_qname, attributes


def generate(name: str, schemas_dir: Path) -> dict:
    import xmlschema

    entry = schemas_dir / SCHEMA_SETS[name]
    schema = xmlschema.XMLSchema10(str(entry))
    builder = SchemaGrammars(schema, name)
    roots = builder.global_elements()
    builder.build_all(roots)
    document = [[builder.qname(qn), builder.grammar_for_element(e)] for qn, e in roots]

    declarations, attribute_declarations = all_declarations(schema, builder.namespaces)
    fragment = []
    for qn in sorted(declarations, key=qname_key):
        decls = declarations[qn]
        types = {(d.type.name or id(d.type), d.nillable) for d in decls}
        grammar = builder.grammar_for_element(decls[0]) if len(types) == 1 else None
        fragment.append([builder.qname(qn), grammar])
    builder.build_all([])
    fragment_attributes = []
    for qn in sorted(attribute_declarations, key=qname_key):
        types = attribute_declarations[qn]
        same = len({t.name or id(t) for t in types}) == 1
        datatype = builder.datatype(types[0]) if same else None
        fragment_attributes.append([builder.qname(qn), datatype])

    standard = ["", XML_NS, XSI_NS, XSD_NS]
    uris = standard + sorted(({uri for uri, _ in builder.qnames} | set(builder.namespaces)) - set(standard))
    return {
        "format": FORMAT_VERSION,
        "grammar": name,
        "entry": SCHEMA_SETS[name],
        "uris": uris,
        "qnames": [list(q) for q in builder.qnames],
        "datatypes": builder.datatypes,
        "grammars": builder.grammars,
        "document": document,
        "fragment": fragment,
        "fragment_attributes": fragment_attributes,
    }


def write_tables(schemas_dir: Path, out_dir: Path, names=None) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names or SCHEMA_SETS:
        table = generate(name, schemas_dir)
        path = out_dir / f"{name}.json"
        text = json.dumps(table, separators=(",", ":"), ensure_ascii=False)
        path.write_text(text + "\n", encoding="utf-8")
        written.append(path)
    return written


def default_schemas_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "shared" / "schemas"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m openv2gx.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--schemas", type=Path, default=default_schemas_dir(), help="folder of the official XSDs")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "grammars")
    parser.add_argument("--lua", type=Path, default=None, metavar="DIR",
                        help="also write the tables as Lua data for the Wireshark dissectors "
                             "(lua_dissectors/ccs15118; see openv2gx/lua_export.py)")
    parser.add_argument("names", nargs="*", help="grammar names (default: all)")
    args = parser.parse_args(argv)
    if not args.schemas.is_dir():
        print(f"error: schema folder {args.schemas} not found", file=sys.stderr)
        return 2
    for path in write_tables(args.schemas, args.out, args.names or None):
        print(path)
    if args.lua is not None:
        from .lua_export import write_lua_tables
        for path in write_lua_tables(args.lua, args.out):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
