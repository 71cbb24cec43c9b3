"""The electrical values of one V2G session: what was asked, offered, measured and who limited.

One declarative table says which elements carry which quantity and in which messages they
count. Present values, targets and power count in the charge loop only, so that "last" means the
last value of the loop; pre-charge and welding detection are reported on their own. Aggregates
only: the size does not grow with the session.
"""
from __future__ import annotations

from typing import Any, Mapping

from ccssniff.standards.physical import is_physical_value, physical_value

LIMITED_BY_EV = "EV request (below the EVSE's offer)"
LIMITED_BY_CURRENT = "EVSE current limit"
LIMITED_BY_VOLTAGE = "EVSE voltage limit"
LIMITED_BY_POWER = "EVSE power limit"

LOOP = "loop"     # charge-loop messages only
ANY = "any"       # wherever the element appears

# (summary key, element names in order of preference, where it counts, request/response/both)
QUANTITIES: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    ("voltage", ("EVSEPresentVoltage",), LOOP, "Res"),
    ("current", ("EVSEPresentCurrent",), LOOP, "Res"),
    ("ev_target_voltage", ("EVTargetVoltage",), LOOP, "Req"),
    ("ev_target_current", ("EVTargetCurrent",), LOOP, "Req"),
    ("ev_present_power", ("EVPresentActivePower",), LOOP, "Req"),
    ("evse_max_current", ("EVSEMaximumCurrentLimit", "EVSEMaxCurrent", "EVSEMaximumChargeCurrent"), ANY, "Res"),
    ("evse_max_voltage", ("EVSEMaximumVoltageLimit", "EVSEMaximumVoltage"), ANY, "Res"),
    ("evse_max_power", ("EVSEMaximumPowerLimit", "EVSEMaximumChargePower"), ANY, "Res"),
    ("evse_nominal_voltage", ("EVSENominalVoltage",), ANY, "Res"),
    ("ev_max_current", ("EVMaximumCurrentLimit", "EVMaxCurrent", "EVMaximumChargeCurrent"), ANY, "Req"),
    ("ev_max_voltage", ("EVMaximumVoltageLimit", "EVMaxVoltage", "EVMaximumVoltage"), ANY, "Req"),
    ("ev_max_power", ("EVMaximumPowerLimit", "EVMaximumChargePower"), ANY, "Req"),
    ("meter_reading", ("MeterReading",), ANY, "Res"),
    ("soc", ("EVRESSSOC", "PresentSOC"), ANY, "Req"),
)
_UNITS = {"soc": "%", "meter_reading": "Wh"}
LOOP_MESSAGES = frozenset(("CurrentDemand", "ChargingStatus", "DC_ChargeLoop", "AC_ChargeLoop", "WPT_ChargeLoop"))
_LOOP_RESPONSES_WITH_FLAGS = ("CurrentDemandRes", "DC_ChargeLoopRes")


def find(content: Mapping[str, Any], name: str, depth: int = 3) -> Any:
    """The value of element ``name`` anywhere in the first levels of ``content`` (None if absent)."""
    if name in content:
        return content[name]
    if depth:
        for value in content.values():
            if isinstance(value, dict):
                found = find(value, name, depth - 1)
                if found is not None:
                    return found
    return None


def number_of(value: Any, name: str) -> tuple[float, str | None] | None:
    """(number, unit) of a physical value or a plain number; None for empty or odd content."""
    if is_physical_value(value):
        raw, exponent = value.get("Value"), value.get("Multiplier", value.get("Exponent", 0))
        if not isinstance(raw, (int, float)) or isinstance(raw, bool) or \
                not isinstance(exponent, (int, type(None))) or isinstance(exponent, bool):
            return None
        return physical_value(value, name)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), None
    return None


_EXTRACTED_KEPT = 1024


def _extract(content: Mapping[str, Any], suffix: str, in_loop: bool) -> dict[str, tuple[float, str | None]]:
    """The quantities of QUANTITIES one message carries: key -> (number, unit)."""
    values: dict[str, tuple[float, str | None]] = {}
    for key, elements, where, side in QUANTITIES:
        if side != suffix or (where == LOOP and not in_loop):
            continue
        for element in elements:
            found = number_of(find(content, element), element)
            if found is not None:
                values[key] = found
                break
    return values


def limiting_side(content: Mapping[str, Any]) -> str:
    """Who held the power back, by one charge-loop response's *LimitAchieved flags."""
    if content.get("EVSECurrentLimitAchieved") is True:
        return LIMITED_BY_CURRENT
    if content.get("EVSEVoltageLimitAchieved") is True:
        return LIMITED_BY_VOLTAGE
    if content.get("EVSEPowerLimitAchieved") is True:
        return LIMITED_BY_POWER
    return LIMITED_BY_EV


class Range:
    """Minimum, maximum, mean and last of a quantity (constant size)."""

    __slots__ = ("minimum", "maximum", "last", "unit", "total", "count", "first")

    def __init__(self) -> None:
        self.minimum = self.maximum = self.last = self.first = None
        self.unit: str | None = None
        self.total = 0.0
        self.count = 0

    def add(self, value: float, unit: str | None = None) -> None:
        if self.first is None:
            self.first = value
        self.last = value
        self.unit = unit or self.unit
        self.total += value
        self.count += 1
        self.minimum = value if self.minimum is None else min(self.minimum, value)
        self.maximum = value if self.maximum is None else max(self.maximum, value)

    def to_dict(self) -> dict[str, Any] | None:
        if self.last is None:
            return None
        return {"min": self.minimum, "max": self.maximum, "last": self.last, "first": self.first,
                "mean": round(self.total / self.count, 6), "unit": self.unit}


class Measurements:
    def __init__(self) -> None:
        self.ranges: dict[str, Range] = {key: Range() for key, *_ in QUANTITIES}
        self.power = Range()
        self.energy_wh = 0.0
        self.limited_by: dict[str, float] = {}
        self.pre_charge: dict[str, Any] = {}
        self.welding: dict[str, Any] = {}
        self._last_power: tuple[float, float] | None = None
        self._last_loop_response: tuple[float, str] | None = None
        self._extracted: dict[int, tuple[Mapping[str, Any], dict]] = {}

    def add(self, name: str, base: str, content: Mapping[str, Any], time: float) -> None:
        in_loop = base in LOOP_MESSAGES
        suffix = name[-3:]
        # The decoder hands out one object per distinct payload and charge loops repeat theirs byte
        # for byte, so the values are looked up once per object (kept with it: its id stays unique).
        cached = self._extracted.get(id(content))
        if cached is not None and cached[0] is content:
            values = cached[1]
        else:
            values = _extract(content, suffix, in_loop)
            if len(self._extracted) >= _EXTRACTED_KEPT:
                self._extracted.clear()
            self._extracted[id(content)] = (content, values)
        ranges = self.ranges
        for key, (number, unit) in values.items():
            ranges[key].add(number, unit or _UNITS.get(key))
        if in_loop:
            self._power(values, time)
            if name in _LOOP_RESPONSES_WITH_FLAGS:
                self._limitation(content, time)
        elif base in ("PreCharge", "DC_PreCharge"):
            self._side_values(self.pre_charge, content, time,
                              ("EVTargetVoltage", "EVSEPresentVoltage"))
        elif base in ("WeldingDetection", "DC_WeldingDetection") and suffix == "Res":
            found = number_of(find(content, "EVSEPresentVoltage"), "EVSEPresentVoltage")
            if found is not None:
                self.welding.setdefault("voltage_first", found[0])
                self.welding.setdefault("start", time)
                self.welding["voltage_last"] = found[0]
                self.welding["duration"] = round(time - self.welding["start"], 6)

    def _side_values(self, target: dict, content: Mapping[str, Any], time: float, names: tuple) -> None:
        target.setdefault("start", time)
        target["duration"] = round(time - target["start"], 6)
        for element in names:
            found = number_of(find(content, element), element)
            if found is not None:
                target[element] = found[0]

    def _power(self, values: Mapping[str, tuple[float, str | None]], time: float) -> None:
        if "voltage" in values and "current" in values:
            watts = values["voltage"][0] * values["current"][0]
        elif "ev_present_power" in values:
            watts = values["ev_present_power"][0]
        else:
            return
        self.power.add(watts, "W")
        if self._last_power is not None:
            since, previous = self._last_power
            self.energy_wh += (previous + watts) / 2 * (time - since) / 3600
        self._last_power = (time, watts)

    def _limitation(self, content: Mapping[str, Any], time: float) -> None:
        limiter = limiting_side(content)
        if self._last_loop_response is not None:
            since, previous = self._last_loop_response
            self.limited_by[previous] = self.limited_by.get(previous, 0.0) + (time - since)
        else:
            self.limited_by.setdefault(limiter, 0.0)
        self._last_loop_response = (time, limiter)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {key: self.ranges[key].to_dict() for key, *_ in QUANTITIES}
        out["power"] = self.power.to_dict()
        out["energy_wh"], out["energy_source"] = None, None
        meter = self.ranges["meter_reading"]
        if meter.count > 1 and meter.last > meter.first:
            out["energy_wh"], out["energy_source"] = round(meter.last - meter.first, 3), "meter"
        elif self.power.count > 1:
            out["energy_wh"], out["energy_source"] = round(self.energy_wh, 3), "integrated power"
        out["limited_by"] = {who: round(seconds, 6) for who, seconds in self.limited_by.items()}
        out["pre_charge"] = {k: v for k, v in self.pre_charge.items() if k != "start"} or None
        out["welding_detection"] = {k: v for k, v in self.welding.items() if k != "start"} or None
        return out
