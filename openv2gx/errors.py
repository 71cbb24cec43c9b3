"""Errors of the EXI codec: the only exceptions its public functions raise for bad input."""


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
        self.path = path
        self.rule = rule
        super().__init__(f"{path}: {rule}")


class UnknownSchemaError(ValueError):
    """The schema name is not one of the generated grammars."""
