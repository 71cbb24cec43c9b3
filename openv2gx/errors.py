"""Errors of the EXI codec: the only exceptions its public functions raise for bad input."""

import reprlib

#: how much of a bad value an error message quotes: enough to recognise it, never the whole of a
#: 10 MB string or a deeply nested structure
_BRIEF = reprlib.Repr()
_BRIEF.maxstring = _BRIEF.maxother = _BRIEF.maxlong = 40
_BRIEF.maxlevel = 2
_BRIEF.maxlist = _BRIEF.maxtuple = _BRIEF.maxdict = _BRIEF.maxset = 4
#: longest path or rule an EncodeError carries
MAX_TEXT = 300


def brief(value) -> str:
    """A repr of ``value`` of a few dozen characters, in time independent of its size."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"<integer of {value.bit_length()} bits>"
    if isinstance(value, (str, bytes, bytearray)) and len(value) > 40:
        return f"{value[:32]!r}... ({len(value)} {'characters' if isinstance(value, str) else 'bytes'})"
    try:
        text = _BRIEF.repr(value)
    except Exception:  # a value whose __repr__ fails still gets an error message
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 3] + "..."


class DecodeError(ValueError):
    """The bytes are not a valid EXI stream for the grammar; carries where and what was expected."""

    def __init__(self, reason: str, bit_offset: int | None = None, expected: str | None = None):
        self.reason = reason
        self.bit_offset = bit_offset
        self.expected = expected
        text = reason
        if bit_offset is not None:
            text += f" at bit {bit_offset}"
        if expected:
            text += f" (expected {expected})"
        super().__init__(text)


class EncodeError(ValueError):
    """The message does not fit the schema; names the element path and the rule broken."""

    def __init__(self, path: str, rule: str):
        self.path = _cut(path if isinstance(path, str) else brief(path))
        self.rule = _cut(rule)
        super().__init__(f"{self.path}: {self.rule}")


class UnknownSchemaError(ValueError):
    """The schema name is not one of the generated grammars."""
