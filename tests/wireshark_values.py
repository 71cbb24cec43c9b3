"""Canonical text of field values, shared by the Wireshark dissector tests: the Lua runtime, tshark
and openv2gx must give the same text for the same value."""

from __future__ import annotations


def canonical(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return "%.17g" % value
    return str(value)


def grammar_of(vector: dict) -> str:
    """The openv2gx grammar name of a vector of ../shared/vectors."""
    if vector["schema"] == "iso20":
        return "iso20_" + vector["namespace"].rsplit(":", 1)[-1]
    return vector["schema"]
