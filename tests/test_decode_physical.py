"""PhysicalValue (DIN, ISO 15118-2) and RationalNumber (ISO 15118-20) as numbers with units."""
from __future__ import annotations

import pytest

from ccssniff.standards.physical import format_physical, is_physical_value, physical_value, unit_for


@pytest.mark.parametrize("value, name, expected", [
    ({"Multiplier": -1, "Unit": "V", "Value": 3531}, None, (353.1, "V")),
    ({"Multiplier": 0, "Unit": "A", "Value": 125}, None, (125.0, "A")),
    ({"Multiplier": 3, "Unit": "W", "Value": 50}, None, (50000.0, "W")),
    ({"Multiplier": 0, "Unit": "W_s", "Value": 7}, None, (7.0, "Ws")),
    ({"Multiplier": 0, "Value": 400}, "EVTargetVoltage", (400.0, "V")),  # DIN leaves Unit out
    ({"Exponent": -2, "Value": 12345}, "EVSEPresentCurrent", (123.45, "A")),
    ({"Exponent": 2, "Value": 1500}, "EVMaximumChargePower", (150000.0, "W")),
    ({"Exponent": 0, "Value": -20}, "EVTargetEnergyRequest", (-20.0, "Wh")),
    ({"Exponent": 0, "Value": 5}, "Something", (5.0, None)),
])
def test_physical_value(value, name, expected):
    assert is_physical_value(value)
    assert physical_value(value, name) == expected


def test_unit_and_format():
    assert unit_for("EVSEMaximumVoltageLimit") == "V" and unit_for("SOC") is None
    assert format_physical({"Multiplier": -1, "Unit": "V", "Value": 3531}) == "353.1 V"
    assert not is_physical_value({"Value": 1}) and not is_physical_value(5)
