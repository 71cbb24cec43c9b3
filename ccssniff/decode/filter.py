"""The ``--filter`` / ``-Y`` language of ``ccssniff decode``: which events to show.

A small expression language in the spirit of Wireshark's display filters, over events rather than
packets. Grammar (keywords are case-insensitive; ``&&``, ``||`` and ``!`` may stand for them)::

    expression := term ("or" term)*
    term       := factor ("and" factor)*
    factor     := "not" factor | "(" expression ")" | comparison | pattern
    comparison := field operator value          operator: == != > >= < <=
    pattern    := a word, matched against the event's name; * and ? are wildcards
    value      := a word or number, or text in "double" or 'single' quotes

Fields: ``kind`` (homeplug, sdp, connection, schema, v2g, tls, sequence, error, neighbor),
``name``, ``connection``, ``frame``, ``direction`` (``EV`` or ``EVSE``: the sender),
``schema``, any field of the event (``src``, ``run_id``, ...) and any element of a decoded
V2G message, found at any depth (``EVTargetCurrent``, ``ResponseCode``, ``EVRESSSOC``).
Physical values compare as numbers with their multiplier applied; text compares with
``==``/``!=`` and wildcards; binary values compare as hex. A field an event does not have
makes its comparison false (also for ``!=``), as in Wireshark.
"""
from __future__ import annotations

import fnmatch
import re
from typing import Any, Callable, Iterator

from ccssniff.decode.events import EV_TO_EVSE, EVSE_TO_EV, Event
from ccssniff.standards.physical import is_physical_value, physical_value

__all__ = ["FilterError", "compile_filter", "GRAMMAR_HELP"]

Predicate = Callable[[Event], bool]

GRAMMAR_HELP = """\
\b
Filter expressions (-Y / --filter):
  CurrentDemand*                 events whose name matches (* and ? are wildcards)
  kind == sequence               sequence violations (also: v2g, homeplug, sdp, error, ...)
  EVTargetCurrent > 100          a decoded value, physical values in their unit (A here)
  ResponseCode == FAILED*        text values compare with wildcards
  connection == 2 and not kind == error
  (CM_SLAC* or SDP*) and direction == EVSE
\b
  Combine with and / or / not (&& || !) and parentheses; compare with == != > >= < <=.
  Fields: kind, name, connection, frame, direction (EV or EVSE), schema, any event field
  (src, run_id, ...) and any element of a V2G message at any depth. Quote values with spaces.
"""

_OPERATORS = ("==", "!=", ">=", "<=", ">", "<")
_TOKEN = re.compile(r"""
    \s*(?:
      (?P<op>==|!=|>=|<=|>|<|&&|\|\||!|\(|\))
    | "(?P<dq>[^"]*)"
    | '(?P<sq>[^']*)'
    | (?P<word>[^\s()!=<>&|"']+)
    )""", re.VERBOSE)
_DIRECTIONS = {"ev": EV_TO_EVSE, "evse": EVSE_TO_EV, EV_TO_EVSE.lower(): EV_TO_EVSE,
               EVSE_TO_EV.lower(): EVSE_TO_EV}
_ATTRIBUTES = ("kind", "name", "connection", "frame", "direction")
_SEARCH_DEPTH = 8  # message nesting searched for an element name


class FilterError(ValueError):
    """An expression that does not parse; the text says where and why, in one line."""


class _Token:
    __slots__ = ("kind", "text", "position")

    def __init__(self, kind: str, text: str, position: int) -> None:
        self.kind = kind  # "op", "word", "text" (quoted), "end"
        self.text = text
        self.position = position


def _tokens(expression: str) -> list[_Token]:
    out: list[_Token] = []
    position = 0
    while True:
        while position < len(expression) and expression[position].isspace():
            position += 1
        if position == len(expression):
            out.append(_Token("end", "", position))
            return out
        found = _TOKEN.match(expression, position)
        if found is None or found.end() == position:
            quote = expression[position]
            problem = "a quote that is never closed" if quote in "\"'" else f"unexpected {quote!r}"
            raise FilterError(f"{problem} at position {position + 1}")
        if found.group("op") is not None:
            out.append(_Token("op", found.group("op"), position))
        elif found.group("word") is not None:
            out.append(_Token("word", found.group("word"), position))
        else:
            text = found.group("dq") if found.group("dq") is not None else found.group("sq")
            out.append(_Token("text", text, position))
        position = found.end()


class _Parser:
    def __init__(self, expression: str) -> None:
        self.tokens = _tokens(expression)
        self.index = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def _keyword(self, *words: str) -> bool:
        token = self.current
        if (token.kind == "word" and token.text.lower() in words) or (token.kind == "op" and token.text in words):
            self.index += 1
            return True
        return False

    def _fail(self, expected: str) -> FilterError:
        token = self.current
        found = "the end of the expression" if token.kind == "end" else repr(token.text)
        return FilterError(f"expected {expected} at position {token.position + 1}, found {found}")

    def parse(self) -> Predicate:
        if self.current.kind == "end":
            raise FilterError("the filter expression is empty")
        predicate = self.expression()
        if self.current.kind != "end":
            raise self._fail("'and', 'or' or the end")
        return predicate

    def expression(self) -> Predicate:
        terms = [self.term()]
        while self._keyword("or", "||"):
            terms.append(self.term())
        if len(terms) == 1:
            return terms[0]
        return lambda event: any(term(event) for term in terms)

    def term(self) -> Predicate:
        factors = [self.factor()]
        while self._keyword("and", "&&"):
            factors.append(self.factor())
        if len(factors) == 1:
            return factors[0]
        return lambda event: all(factor(event) for factor in factors)

    def factor(self) -> Predicate:
        if self._keyword("not", "!"):
            inner = self.factor()
            return lambda event: not inner(event)
        if self._keyword("("):
            inner = self.expression()
            if not self._keyword(")"):
                raise self._fail("')'")
            return inner
        token = self.current
        if token.kind not in ("word", "text"):
            raise self._fail("a message name, a field or '('")
        self.index += 1
        following = self.current
        if following.kind == "op" and following.text in _OPERATORS:
            self.index += 1
            value = self.current
            if value.kind not in ("word", "text"):
                raise self._fail(f"a value after {following.text!r}")
            self.index += 1
            return _comparison(token.text, following.text, value.text)
        return _name_pattern(token.text)


def _name_pattern(pattern: str) -> Predicate:
    if not any(mark in pattern for mark in "*?["):
        return lambda event: event.name == pattern
    matches = re.compile(fnmatch.translate(pattern)).match
    return lambda event: matches(event.name) is not None


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if number == number else None  # NaN compares with nothing


_ORDER: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


def _comparison(field: str, operator: str, literal: str) -> Predicate:
    if field == "direction":
        wanted = _DIRECTIONS.get(literal.lower())
        if wanted is None:
            raise FilterError(f"direction is EV or EVSE (the sender), not {literal!r}")
        if operator not in ("==", "!="):
            raise FilterError(f"direction compares with == or !=, not {operator}")
        equal = operator == "=="
        return lambda event: event.direction is not None and (event.direction == wanted) == equal
    number = _number(literal)
    if operator not in ("==", "!=") and number is None:
        raise FilterError(f"{field} {operator} needs a number, not {literal!r}")
    compare = _ORDER[operator]
    text_matches = _text_matcher(literal)
    literal_lower = literal.lower()

    def matches(value: Any) -> bool:
        if isinstance(value, bool):
            if literal_lower not in ("true", "false"):
                return False
            return compare(value, literal_lower == "true") if operator in ("==", "!=") else False
        if is_physical_value(value):
            try:
                value = physical_value(value, field)[0]
            except (KeyError, TypeError, ValueError, ArithmeticError):
                return False
        if isinstance(value, (int, float)):
            return number is not None and compare(float(value), number)
        if isinstance(value, (bytes, bytearray)):
            value = value.hex()
        if isinstance(value, str):
            if number is not None and operator not in ("==", "!="):
                converted = _number(value)
                return converted is not None and compare(converted, number)
            return text_matches(value) == (operator == "==")
        return False

    return lambda event: any(matches(value) for value in _values(event, field))


def _text_matcher(literal: str) -> Callable[[str], bool]:
    if any(mark in literal for mark in "*?["):
        pattern = re.compile(fnmatch.translate(literal)).match
        return lambda text: pattern(text) is not None
    return lambda text: text == literal


def _values(event: Event, field: str) -> Iterator[Any]:
    """Every value ``field`` has in ``event``: an attribute, an event field, message elements."""
    if field in _ATTRIBUTES:
        value = getattr(event, field)
        if value is not None:
            yield value
        return
    if field == "schema":
        if event.message is not None:
            yield event.message.schema
        elif "schema" in event.fields:
            yield event.fields["schema"]
        return
    if field in event.fields:
        yield event.fields[field]
    if event.message is not None:
        # the whole document: the header's SessionID counts as much as the body's elements
        yield from _elements(event.message.get(event.message.root), field, _SEARCH_DEPTH)


def _elements(content: Any, name: str, depth: int) -> Iterator[Any]:
    if isinstance(content, dict):
        for key, value in content.items():
            if key == name:
                if isinstance(value, list):
                    yield from value
                else:
                    yield value
            elif depth and isinstance(value, (dict, list)):
                yield from _elements(value, name, depth - 1)
    elif isinstance(content, list) and depth:
        for item in content:
            yield from _elements(item, name, depth - 1)


def compile_filter(expression: str) -> Predicate:
    """A function that tells whether an event passes ``expression``; FilterError if it does not parse."""
    return _Parser(expression).parse()
