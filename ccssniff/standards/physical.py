"""Physical values as numbers with units.

DIN 70121 and ISO 15118-2 send a PhysicalValue {Multiplier, Unit, Value}: Value x 10^Multiplier
in Unit (DIN may leave the unit out). ISO 15118-20 sends a RationalNumber {Exponent, Value}
without a unit: the element's name says what it measures.
"""
from __future__ import annotations

from typing import Any, Mapping

# Unit symbols of the schemas as they should be shown.
_UNIT_NAMES = {"W_s": "Ws"}
# ISO 15118-20 element names -> unit, by the quantity the name mentions (checked in this order).
_UNITS_BY_NAME = (("Voltage", "V"), ("Current", "A"), ("Power", "W"), ("Energy", "Wh"),
                  ("Frequency", "Hz"))


def unit_for(name: str) -> str | None:
    """The unit an element name implies: 'EVTargetVoltage' -> 'V'."""
    for word, unit in _UNITS_BY_NAME:
        if word in name:
            return unit
    return None


def is_physical_value(value: Any) -> bool:
    return isinstance(value, dict) and "Value" in value and ("Multiplier" in value or "Exponent" in value)


def physical_value(value: Mapping[str, Any], name: str | None = None) -> tuple[float | None, str | None]:
    """(number, unit) of a PhysicalValue or RationalNumber; ``name`` supplies the unit if absent.

    The number is None when the Value or its Multiplier/Exponent is an empty element (EXI lets
    a device send one; openv2gx decodes it to None and lists it in schema_violations)."""
    raw = value["Value"]
    exponent = value.get("Multiplier", value.get("Exponent", 0))
    unit = value.get("Unit")
    if not isinstance(unit, str):  # absent, empty, or an enumeration index past the schema's list
        unit = unit_for(name) if name is not None else None
    unit = _UNIT_NAMES.get(unit, unit)
    if not isinstance(raw, int) or not isinstance(exponent, int):
        return None, unit
    # Dividing by a power of ten keeps 3531 x 10^-1 exactly 353.1 (multiplying by 0.1 does not).
    number = raw / 10 ** -exponent if exponent < 0 else float(raw * 10 ** exponent)
    return number, unit


def format_physical(value: Mapping[str, Any], name: str | None = None) -> str:
    number, unit = physical_value(value, name)
    if number is None:
        text = "(empty)"
    else:
        text = f"{number:.6g}" if abs(number) < 1e6 else f"{number:.0f}"
    return f"{text} {unit}" if unit else text
