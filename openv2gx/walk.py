"""Walks a message mapping through the grammar: the one place that turns a mapping into events.

The EXI encoder and the XML writer are two sinks of the same walk, so whatever the encoder
accepts renders as XML of the same structure, and the checks (unknown or missing elements,
values outside their type) happen before any byte leaves the encoder.

A lenient walk (``violations``, a list) lets through the values the bits can carry although the
schema's facets forbid them (datatypes.Datatype.fits) and empty typed elements (None), and lists
each as "path: rule"; the structure is checked as strictly as ever. Decoded messages that broke
the facets get their ``schema_violations`` from it (find_violations), so the interpreter and the
generated decoder word them identically.
"""

from __future__ import annotations

from .errors import EncodeError, brief
from .tables import AT, CH, SE, Grammar, Tables

#: the decoder's limit too: whatever the walk accepts, the decoder reads back
MAX_DEPTH = 64


class Sink:
    """Receives the events of a walk."""

    #: whether start() and end() are wanted; an EXI stream implies names by event codes alone
    names = True

    def event(self, width: int, code: int) -> None: ...

    def start(self, uri: str, name: str) -> None: ...

    def attribute(self, uri: str, name: str, datatype, value) -> None: ...

    def characters(self, datatype, value) -> None: ...

    def end(self) -> None: ...


def _ordered_items(grammar: Grammar, content):
    if not isinstance(content, dict):
        raise EncodeError("", f"expected a mapping of child elements, got {type(content).__name__}")
    order = grammar.order
    lists = grammar.lists
    last = -1
    # the common case (child elements only, in schema order, none repeated) needs no sorting
    for key, value in content.items():
        position = order.get(key)
        if position is None or position <= last or (key in lists and isinstance(value, (list, tuple))):
            return _sorted_items(grammar, content)
        last = position
    return [(SE, key, value) for key, value in content.items()]


def _sorted_items(grammar: Grammar, content: dict):
    attributes = []
    children = []
    text = []
    order = grammar.order
    for key, value in content.items():
        if key.__class__ is not str:
            raise EncodeError(brief(key), f"element names are strings, not {type(key).__name__}")
        if key.startswith("@"):
            attributes.append((key[1:], value))
        elif key == "#text":
            if not _is_empty(grammar, value):
                text.append((CH, None, value))
        elif key == "#children" and grammar.interleaved:
            for position, child in enumerate(value if isinstance(value, (list, tuple)) else [None]):
                if not isinstance(child, dict) or len(child) != 1:
                    raise EncodeError("#children", "expected a list of {element: content} pairs")
                (name, item), = child.items()
                children.append((-1, position, SE, name, item))
        elif key in order:
            position = order[key]
            if key in grammar.lists and isinstance(value, (list, tuple)):
                if not value:
                    raise EncodeError(key, "empty list: leave the element out instead")
                children.extend((position, i, SE, key, item) for i, item in enumerate(value))
            else:
                children.append((position, 0, SE, key, value))
        else:
            raise EncodeError(_named(key), "unknown element: the schema allows "
                              + (", ".join(order) or "no child elements") + " here")
    attributes.sort()
    children.sort(key=lambda item: (item[0], item[1]))
    items = [(AT, name, value) for name, value in attributes]
    items.extend((kind, key, value) for _, _, kind, key, value in children)
    if text:
        if grammar.mixed:
            items[len(attributes):len(attributes)] = text
        else:
            items.extend(text)
    return items


def _named(key) -> str:
    """A key of the message as an error names it: short keys as they are, others quoted briefly."""
    return key if key.__class__ is str and len(key) <= 60 else brief(key)


def _is_empty(grammar: Grammar, value) -> bool:
    """Whether a #text value is no content at all: "" for a string, b"" for binary content."""
    if not isinstance(value, (str, bytes, bytearray)) or len(value) != 0:
        return False
    text_type = next((state.characters.arg for state in grammar.states if state.characters is not None), None)
    if text_type is None or text_type.empty is None:
        return False
    return isinstance(value, str) == isinstance(text_type.empty, str)


class NullSink(Sink):
    """Takes the events and keeps nothing: a walk for its checks alone."""

    names = False

    def event(self, width, code):
        pass


def find_violations(tables: Tables, message, fragment: bool = False) -> list[str]:
    """What in a decoded message breaks the schema's facets, as "path: rule" lines."""
    violations: list[str] = []
    try:
        walk_document(tables, message, NullSink(), fragment, violations)
    except EncodeError as error:  # not expected of a decoded message; said rather than lost
        violations.append(str(error))
    return violations


def _tolerate(datatype, value, problem: str, violations: list | None, path: str, may_be_empty: bool) -> None:
    """A value the facets refuse: an EncodeError when strict, else noted when the bits carry it."""
    if violations is None:
        raise EncodeError("", problem)
    if value is None:
        # None is the empty element of a type whose empty content breaks the schema; a string
        # or binary is empty as "" or b""
        if not may_be_empty or datatype.empty is not None:
            raise EncodeError("", problem)
    else:
        hard = datatype.fits(value)
        if hard:
            raise EncodeError("", hard)
    violations.append(f"{path}: {problem}")


def _unavoidable(grammar: Grammar, state, goal) -> list[str]:
    """The elements offered in ``state`` without which no path reaches a state meeting ``goal``."""
    names = dict.fromkeys(p.name for p in state.productions if p.kind == SE)
    return [name for name in names if not _reachable(grammar, state, goal, avoid=name)]


def _reachable(grammar: Grammar, start, goal, avoid: str | None) -> bool:
    seen = {id(start)}
    stack = [start]
    while stack:
        state = stack.pop()
        if goal(state):
            return True
        for p in state.productions:
            if p.next is None or (p.kind == SE and p.name == avoid):
                continue
            following = grammar.states[p.next]
            if id(following) not in seen:
                seen.add(id(following))
                stack.append(following)
    return False


def _missing(grammar: Grammar, state, before: str | None = None) -> EncodeError:
    """The error for content that stops short: names the missing element where there is one."""
    if before is None:
        goal = lambda s: s.end is not None or (s.characters is not None and s.count == 1)
        where = ""
    else:
        goal = lambda s: (SE, before) in s.by_name
        where = f" (before {before})"
    if before is not None and not _reachable(grammar, state, goal, avoid=None):
        return EncodeError(before, "element not allowed here (out of schema order, or repeated "
                           f"more often than allowed); expected {state.expected()}")
    missing = _unavoidable(grammar, state, goal)
    if len(missing) == 1:
        return EncodeError(missing[0], "required element missing" + where)
    return EncodeError("", f"incomplete element{where}: expected {state.expected()}")


def _within(name: str, error: EncodeError) -> EncodeError:
    """The error of a child, its path now starting at the parent (paths are built only on error)."""
    return EncodeError(f"{name}/{error.path}" if error.path else name, error.rule)


def walk_leaf(grammar: Grammar, value, sink: Sink, violations: list | None = None, path: str = "") -> None:
    """A simple-typed element: characters, or nothing at all for an empty string or binary (or
    None, an empty element of another type, in a lenient walk)."""
    state = grammar.states[0]
    datatype = state.characters.arg
    problem = datatype.check(value)
    if problem:
        _tolerate(datatype, value, problem, violations, path, state.second_end is not None)
    if value is None or not value and isinstance(value, (str, bytes, bytearray)):
        # no character content at all: EXI ends such an element with the second-level EE
        sink.event(state.width, state.count)
        sink.event(state.second_width, state.second_end)
        return
    sink.event(state.width, state.characters.code)
    sink.characters(datatype, value)
    end_state = grammar.states[state.characters.next]
    sink.event(end_state.width, end_state.end.code)


def walk_element(grammar: Grammar, content, sink: Sink, depth: int = 0, violations: list | None = None,
                 path: str = "") -> None:
    """Events of one element's content; an EncodeError's path is relative to this element, the
    violations' paths (``path`` is this element's) are whole."""
    if depth >= MAX_DEPTH:
        raise EncodeError("", "nested too deep")
    if grammar.is_simple:
        walk_leaf(grammar, content, sink, violations, path)
        return
    states = grammar.states
    state = states[0]
    event = sink.event
    names = sink.names
    repeats: dict[str, int] = {}
    for kind, name, value in _ordered_items(grammar, content):
        if value is None and kind == CH and violations is not None and state.characters is not None \
                and state.characters.arg.empty is None:
            continue  # empty typed content: the element ends with the second-level EE below
        production = state.characters if kind == CH else state.by_name.get((kind, name))
        if production is None:
            if kind == SE and name in grammar.order and state.end is None:
                raise _missing(grammar, state, before=name)
            what = "text content" if kind == CH else ("attribute" if kind == AT else "element")
            where = "" if kind == CH else (f"@{name}" if kind == AT else name)
            raise EncodeError(_named(where), f"{what} not allowed here; expected {state.expected()}")
        if kind == SE:
            event(state.width, production.code)
            child = production.arg
            if names:
                sink.start(production.uri, name)
            try:
                if violations is None:
                    if child.is_simple:
                        walk_leaf(child, value, sink)
                    else:
                        walk_element(child, value, sink, depth + 1)
                else:
                    where = f"{path}/{name}"
                    if name in grammar.lists:
                        repeats[name] = repeats.get(name, -1) + 1
                        where += f"[{repeats[name]}]"
                    if child.is_simple:
                        walk_leaf(child, value, sink, violations, where)
                    else:
                        walk_element(child, value, sink, depth + 1, violations, where)
            except EncodeError as error:
                raise _within(name, error) from None
            if names:
                sink.end()
        else:
            problem = production.arg.check(value)
            if problem:
                try:
                    _tolerate(production.arg, value, problem, violations,
                              path if kind == CH else f"{path}/@{name}", may_be_empty=False)
                except EncodeError as error:
                    raise EncodeError("" if kind == CH else f"@{name}", error.rule) from None
            event(state.width, production.code)
            if kind == AT:
                sink.attribute(production.uri, name, production.arg, value)
            else:
                sink.characters(production.arg, value)
        state = states[production.next]
    if state.end is not None:
        event(state.width, state.end.code)
    elif state.characters is not None and (violations is not None
                                           or state.characters.arg.check(state.characters.arg.empty) is None):
        # no character content at all (optional attributes may be left out before it): EXI ends
        # such an element with the second-level EE, as EXIficient writes <SignatureValue/>
        problem = state.characters.arg.check(state.characters.arg.empty)
        if problem:
            violations.append(f"{path}: {problem}")
        event(state.width, state.count)
        event(state.second_width, state.second_end)
    else:
        raise _missing(grammar, state)


def walk_document(tables: Tables, message, sink: Sink, fragment: bool = False,
                  violations: list | None = None) -> None:
    if not isinstance(message, dict) or not message:
        raise EncodeError("/", "a message is a mapping {root element name: content}")
    roots = list(message.items())
    if not fragment and len(roots) != 1:
        raise EncodeError("/", "a document has exactly one root element")
    for root, content in roots:
        if fragment:
            index = tables.fragment_index.get(root)
            entries, width = tables.fragment, tables.fragment_width
        else:
            index = tables.document_index.get(root)
            entries, width = tables.document, tables.document_width
        if index is None or entries[index][2] is None:
            raise EncodeError(_named(root), f"not a root element of {tables.name}")
        name, uri, grammar = entries[index]
        items = content if fragment and isinstance(content, list) else [content]
        for number, item in enumerate(items):
            sink.event(width, index)
            sink.start(uri, name)
            where = f"{name}[{number}]" if len(items) > 1 else name
            try:
                walk_element(grammar, item, sink, 0, violations, where)
            except EncodeError as error:
                raise _within(root, error) from None
            sink.end()
    if fragment:
        sink.event(tables.fragment_width, len(tables.fragment) + 1)
