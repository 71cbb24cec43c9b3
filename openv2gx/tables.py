"""Loads the generated grammar tables (openv2gx/grammars/*.json) into runtime structures.

See grammars/FORMAT.md for the file format. Tables are loaded once per process and cached.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

from .datatypes import Datatype, Untyped, make_datatype
from .errors import UnknownSchemaError

GRAMMAR_DIR = Path(__file__).resolve().parent / "grammars"

# production kinds
SE, AT, CH, EE, SE_ANY, AT_ANY = range(6)
_KIND = {"SE": SE, "AT": AT, "CH": CH, "EE": EE, "SE*": SE_ANY, "AT*": AT_ANY}

SCHEMAS = ("appHandshake", "din", "iso2", "iso20_CommonMessages", "iso20_AC", "iso20_DC",
           "iso20_WPT", "iso20_ACDP", "xmldsig")
ISO20_SCHEMAS = ("iso20_CommonMessages", "iso20_DC", "iso20_AC", "iso20_ACDP", "iso20_WPT")


def width_for(count: int) -> int:
    return 0 if count <= 1 else math.ceil(math.log2(count))


class Production:
    __slots__ = ("kind", "code", "qname", "uri", "name", "arg", "next")

    def __init__(self, kind, code, qname, uri, name, arg, next_state):
        self.kind = kind
        self.code = code
        self.qname = qname
        self.uri = uri
        self.name = name
        self.arg = arg
        self.next = next_state


class State:
    """One non-terminal: first-level productions in event-code order.

    Element grammars run non-strict, so one more code value escapes to second-level events.
    """

    __slots__ = ("width", "productions", "count", "by_name", "characters", "end", "fast",
                 "second_width", "second_end")

    def __init__(self, productions: list[Production], start_tag: bool = False, first: bool = False):
        self.productions = productions
        self.count = len(productions)
        self.width = width_for(self.count + 1)
        self.by_name = {}
        self.characters = None
        self.end = None
        for p in productions:
            if p.kind in (SE, AT):
                self.by_name[(p.kind, p.name)] = p
            elif p.kind == CH:
                self.characters = p
            elif p.kind == EE:
                self.end = p
        self.fast = tuple((p.kind, p.name, p.arg, p.next) for p in productions)
        # Second-level productions that non-strict EXI adds (EXI 1.0 section 8.5.4.4.1, after
        # pruning comments, PIs, DTDs and prefixes): EE where the first level lacks it; in the
        # start tag also xsi:type and xsi:nil (entry state), AT(*) and the untyped-attribute
        # group; everywhere SE(*) and CH [untyped]. Only EE is decoded and encoded here.
        second = []
        if self.end is None:
            second.append("EE")
        if start_tag:
            if first:
                second += ["AT(xsi:type)", "AT(xsi:nil)"]
            second += ["AT(*)", "AT[untyped]"]
        second += ["SE(*)", "CH[untyped]"]
        self.second_width = width_for(len(second))
        self.second_end = 0 if self.end is None else None

    def expected(self) -> str:
        names = []
        for p in self.productions:
            if p.kind == SE:
                names.append(p.name)
            elif p.kind == AT:
                names.append("@" + p.name)
            elif p.kind == CH:
                names.append("characters")
            elif p.kind == EE:
                names.append("end of element")
            else:
                names.append("any element" if p.kind == SE_ANY else "any attribute")
        return ", ".join(names)


class Grammar:
    __slots__ = ("index", "name", "states", "lists", "order", "simple_content", "mixed", "is_simple",
                 "interleaved")

    def __init__(self, index: int, name: str):
        self.index = index
        self.name = name


def _start_tag_states(states: list[list]) -> set[int]:
    """States 0..content of EXI 8.5.4.4.1: the entry state, every state that still accepts
    attributes, and the state an attribute leads to where attributes end (the content state)."""
    result = {0}
    for number, productions in enumerate(states):
        if any(p[0] in ("AT", "AT*") for p in productions):
            result.add(number)
            for p in productions:
                if p[0] == "AT" and not any(q[0] in ("AT", "AT*") for q in states[p[3]]):
                    result.add(p[3])
    return result


class Tables:
    def __init__(self, raw: dict):
        self.name = raw["grammar"]
        self.uris = raw["uris"]
        self.qnames = [tuple(q) for q in raw["qnames"]]
        self.datatypes: list[Datatype] = [make_datatype(spec) for spec in raw["datatypes"]]
        untyped = Untyped()
        self.grammars = [Grammar(i, g["name"]) for i, g in enumerate(raw["grammars"])]
        for grammar, spec in zip(self.grammars, raw["grammars"]):
            grammar.lists = frozenset(self.qnames[q][1] for q in spec.get("lists", ()))
            grammar.order = {self.qnames[q][1]: i for i, q in enumerate(spec.get("order", ()))}
            grammar.simple_content = bool(spec.get("simple"))
            grammar.mixed = bool(spec.get("mixed"))
            grammar.interleaved = bool(spec.get("interleaved"))
            grammar.states = []
            start_tag_states = _start_tag_states(spec["states"])
            for number, state_spec in enumerate(spec["states"]):
                productions = []
                for code, p in enumerate(state_spec):
                    kind = _KIND[p[0]]
                    if kind == SE:
                        uri, name = self.qnames[p[1]]
                        productions.append(Production(SE, code, p[1], uri, name, self.grammars[p[2]], p[3]))
                    elif kind == AT:
                        uri, name = self.qnames[p[1]]
                        productions.append(Production(AT, code, p[1], uri, name, self.datatypes[p[2]], p[3]))
                    elif kind == CH:
                        dt = untyped if p[1] is None else self.datatypes[p[1]]
                        productions.append(Production(CH, code, None, None, None, dt, p[2]))
                    elif kind == EE:
                        productions.append(Production(EE, code, None, None, None, None, None))
                    else:
                        productions.append(Production(kind, code, None, p[1], None, None, p[2]))
                grammar.states.append(State(productions, number in start_tag_states, number == 0))
            first = grammar.states[0]
            grammar.is_simple = (len(grammar.states) == 2 and first.count == 1
                                 and first.productions[0].kind == CH and not grammar.simple_content
                                 and not grammar.mixed)
        self.document = [(self.qnames[q][1], self.qnames[q][0], self.grammars[g]) for q, g in raw["document"]]
        self.document_width = width_for(len(self.document) + 1)
        self.document_index = {name: i for i, (name, _, _) in enumerate(self.document)}
        relaxed = self._element_fragment_grammar(raw, untyped)
        self.fragment = [(self.qnames[q][1], self.qnames[q][0], relaxed if g is None else self.grammars[g])
                         for q, g in raw["fragment"]]
        self.fragment_width = width_for(len(self.fragment) + 2)
        self.fragment_index = {name: i for i, (name, _, _) in enumerate(self.fragment)}


    def _element_fragment_grammar(self, raw, untyped) -> Grammar:
        """EXI 8.5.3: the relaxed grammar for a fragment element whose qname is declared with
        several types: any declared attribute, then any declared element, any characters."""
        grammar = Grammar(len(self.grammars), "ElementFragment")
        grammar.lists = frozenset()
        grammar.order = {}
        grammar.simple_content = False
        grammar.mixed = True
        grammar.interleaved = True
        grammar.is_simple = False
        attributes = []
        for code, (q, d) in enumerate(raw["fragment_attributes"]):
            uri, name = self.qnames[q]
            attributes.append(Production(AT, code, q, uri, name, untyped if d is None else self.datatypes[d], 0))
        elements = []
        for q, g in raw["fragment"]:
            uri, name = self.qnames[q]
            elements.append((q, uri, name, grammar if g is None else self.grammars[g]))

        def content(first_code):
            found = [Production(SE, first_code + i, q, uri, name, g, 1)
                     for i, (q, uri, name, g) in enumerate(elements)]
            code = first_code + len(found)
            found.append(Production(SE_ANY, code, None, None, None, None, 1))
            found.append(Production(EE, code + 1, None, None, None, None, None))
            found.append(Production(CH, code + 2, None, None, None, untyped, 1))
            return found

        start = attributes + [Production(AT_ANY, len(attributes), None, None, None, None, 0)]
        start += content(len(start))
        grammar.states = [State(start, True, True), State(content(0))]
        return grammar


@lru_cache(maxsize=None)
def load(schema: str) -> Tables:
    if schema not in SCHEMAS:
        raise UnknownSchemaError(f"unknown schema {schema!r}; choose one of {', '.join(SCHEMAS)}")
    path = GRAMMAR_DIR / f"{schema}.json"
    return Tables(json.loads(path.read_text(encoding="utf-8")))
