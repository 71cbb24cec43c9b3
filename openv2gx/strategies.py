"""Hypothesis strategies for schema-valid messages, drawn by walking the grammar tables.

At each grammar state one production is drawn (an attribute, a child element, characters or the
end of the element); values respect their datatype's facets (n-bit ranges, integer bounds up to far
beyond 64 bits for unbounded xs:integer, string and binary lengths, enumerations). Wildcards
(SE(*), AT(*)) and second-level productions are never drawn. Each element gets a budget of
productions and the whole message one of elements; past them the walk takes the shortest way to
the end, so examples stay small and shrink towards the minimal message.

    >>> from hypothesis import given
    >>> from openv2gx.strategies import messages
    >>> @given(messages("din", "V2G_Message", body="CurrentDemandReq"))
    ... def test_round_trip(message): ...

hypothesis is a test dependency: import this module from tests and test tools only.
"""

from __future__ import annotations

import math
import string
from functools import lru_cache

from hypothesis import strategies as st

from .datatypes import Binary, Boolean, Enumeration, Integer, NBit, String, Unsigned, Untyped
from .message import Message
from .tables import AT, CH, EE, SE, Grammar, Tables, load

#: far beyond 64 bits, well inside what the decoder reads
HUGE = 1 << 200
#: characters of generated strings: NCName-safe, with non-ASCII letters for the code-point path
NAME_START = string.ascii_letters + "_äéßΩж"
NAME_REST = NAME_START + string.digits + "-."
TEXT_CHARACTERS = NAME_REST + "&<>'\"€ñ"
#: extra characters above the minimum length a string or binary value gets at most
SPARE_LENGTH = 12

INFINITE = math.inf


def document_roots(schema: str) -> list[str]:
    """The global elements a document may start with and these strategies can fill: all but
    those that need wildcard content (xmldsig SignatureProperty), in event-code order."""
    tables = load(schema)
    costs = _costs(tables)
    return [name for name, _, grammar in tables.document
            if grammar is not None and costs[id(grammar)][0] < INFINITE]


def body_members(schema: str) -> list[str]:
    """The messages a DIN / ISO 15118-2 ``V2G_Message/Body`` can carry (abstract head included)."""
    body = _child_grammar(load(schema), "V2G_Message", "Body")
    return list(dict.fromkeys(p.name for s in body.states for p in s.productions if p.kind == SE))


def messages(schema: str, root: str, body: str | None = None, *, exclude=frozenset(),
             max_elements: int = 40, max_items: int = 8, max_depth: int = 12) -> st.SearchStrategy[Message]:
    """Random schema-valid messages with the given root element.

    ``body`` forces the member of ``V2G_Message/Body`` (DIN / ISO 15118-2); ``exclude`` names
    elements never drawn (for example abstract elements, which an instance must not contain).
    """
    tables = load(schema)
    index = tables.document_index.get(root)
    if index is None or tables.document[index][2] is None:
        raise ValueError(f"{root} is not a root element of {schema}")
    _, _, grammar = tables.document[index]
    if root not in document_roots(schema):
        raise ValueError(f"{root} of {schema} cannot be filled without wildcard content")
    forced = {}
    if body is not None:
        if body not in body_members(schema) or body in exclude:
            raise ValueError(f"{body} is not a V2G_Message/Body member of {schema} that may be drawn")
        forced[_child_grammar(tables, "V2G_Message", "Body")] = body
    costs = _costs(tables)
    limits = (max_elements, max_items, max_depth)

    @st.composite
    def draw_message(draw):
        walk = _Walk(draw, costs, forced, frozenset(exclude), limits)
        content = walk.element(grammar, 0)
        return Message({root: content}, schema=schema, root=root)

    return draw_message()


def _child_grammar(tables: Tables, root: str, child: str) -> Grammar:
    _, _, grammar = tables.document[tables.document_index[root]]
    for state in grammar.states:
        production = state.by_name.get((SE, child))
        if production is not None:
            return production.arg
    raise LookupError(f"{root} has no child {child} in {tables.name}")


_cost_cache: dict[str, dict] = {}


def _costs(tables: Tables) -> dict:
    """Per grammar and state: the fewest elements that still have to come before the end."""
    found = _cost_cache.get(tables.name)
    if found is not None:
        return found
    grammars = {id(g): g for g in tables.grammars}
    for _, _, g in tables.document + tables.fragment:
        if g is not None:
            grammars[id(g)] = g
    cost = {key: [INFINITE] * len(g.states) for key, g in grammars.items()}
    changed = True
    while changed:
        changed = False
        for key, g in grammars.items():
            row = cost[key]
            for number, state in enumerate(g.states):
                best = row[number]
                for p in state.productions:
                    option = _step_cost(p, row, cost)
                    if option < best:
                        best = option
                if best < row[number]:
                    row[number] = best
                    changed = True
    _cost_cache[tables.name] = cost
    return cost


def _step_cost(production, row, cost) -> float:
    if production.kind == EE:
        return 0
    if production.kind in (AT, CH):
        return row[production.next]
    if production.kind == SE:
        child = cost.get(id(production.arg))
        return INFINITE if child is None else 1 + child[0] + row[production.next]
    return INFINITE  # wildcards are never drawn


class _Walk:
    def __init__(self, draw, costs, forced, exclude, limits):
        self.draw = draw
        self.costs = costs
        self.forced = forced
        self.exclude = exclude
        self.elements_left, self.max_items, self.max_depth = limits
        self.ids = 0

    def element(self, grammar: Grammar, depth: int):
        if grammar.is_simple:
            return self.value(grammar.states[0].characters.arg)
        row = self.costs[id(grammar)]
        content: dict = {}
        children = []
        text = None
        state_number = 0
        items = 0
        while True:
            state = grammar.states[state_number]
            choices = [p for p in state.productions if self.allowed(p, grammar, content, row)]
            if not choices:
                raise AssertionError(f"no way on in {grammar.name} state {state_number}")
            choices.sort(key=lambda p: _step_cost(p, row, self.costs))
            forced = self.forced.get(grammar)
            if forced is not None and state_number == 0:
                choices = [p for p in choices if p.name == forced]
            exhausted = items >= self.max_items or self.elements_left <= 0 or depth >= self.max_depth
            production = choices[0] if exhausted else choices[self.draw(_index_strategy(len(choices)))]
            items += 1
            if production.kind == EE:
                break
            if production.kind == AT:
                content["@" + production.name] = self.attribute(production)
            elif production.kind == CH:
                text = self.value(production.arg)
            else:
                self.elements_left -= 1
                child = self.element(production.arg, depth + 1)
                if grammar.interleaved:
                    children.append({production.name: child})
                elif production.name in grammar.lists:
                    content.setdefault(production.name, []).append(child)
                else:
                    content[production.name] = child
            state_number = production.next
        if children:
            content["#children"] = children
        if text is not None:
            content["#text"] = text
        return content

    def allowed(self, production, grammar: Grammar, content: dict, row) -> bool:
        if production.kind == SE:
            if production.name in self.exclude or id(production.arg) not in self.costs:
                return False
            if not grammar.interleaved and production.name in content and production.name not in grammar.lists:
                return False
        elif production.kind == CH:
            # untyped characters of mixed content would merge with the text the model keeps
            if isinstance(production.arg, Untyped) and grammar.mixed:
                return False
        elif production.kind != AT and production.kind != EE:
            return False
        return _step_cost(production, row, self.costs) < INFINITE

    def attribute(self, production):
        datatype = production.arg
        if isinstance(datatype, String):
            # attribute strings end up as xs:ID, xs:NCName or xs:anyURI: names, unique per message
            self.ids += 1
            stem = self.draw(st.text(NAME_START, min_size=1, max_size=1)) + self.draw(
                st.text(NAME_REST, max_size=6))
            return f"{stem}{self.ids}"
        return self.value(datatype)

    def value(self, datatype):
        strategy = _value_strategies.get(id(datatype))
        if strategy is None:
            strategy = _value_strategies[id(datatype)] = value_strategy(datatype)
        return self.draw(strategy)


# strategies are built once: building them costs more than drawing from them
_value_strategies: dict[int, st.SearchStrategy] = {}


@lru_cache(maxsize=None)
def _index_strategy(count: int) -> st.SearchStrategy[int]:
    return st.integers(0, count - 1)


def value_strategy(datatype) -> st.SearchStrategy:
    """Values of one datatype within its facets."""
    if isinstance(datatype, Enumeration):
        return st.sampled_from(datatype.values)
    if isinstance(datatype, Boolean):
        return st.booleans()
    if isinstance(datatype, Unsigned):
        high = datatype.max if datatype.max is not None else HUGE
        return st.integers(datatype.min, min(high, datatype.min + 1000)) | st.integers(datatype.min, high)
    if isinstance(datatype, Integer):
        low = datatype.min if datatype.min is not None else -HUGE
        high = datatype.max if datatype.max is not None else HUGE
        return st.integers(max(low, -1000), min(high, 1000)) | st.integers(low, high)
    if isinstance(datatype, NBit):
        return st.integers(datatype.min, datatype.max)
    if isinstance(datatype, Binary):
        low = datatype.min_length or 0
        high = low + SPARE_LENGTH if datatype.max_length is None else min(datatype.max_length, low + SPARE_LENGTH)
        return st.binary(min_size=low, max_size=high)
    if isinstance(datatype, String):
        low = datatype.min_length or 0
        high = low + SPARE_LENGTH if datatype.max_length is None else min(datatype.max_length, low + SPARE_LENGTH)
        return st.text(TEXT_CHARACTERS, min_size=low, max_size=high)
    raise NotImplementedError(f"no strategy for {datatype.kind} values (not used by the V2G schemas)")


__all__ = ["messages", "document_roots", "body_members", "value_strategy"]
