"""Simulated EVSE power stage and PEV battery, stepped by explicit ``dt`` (no clock inside).

The two meet in :class:`DcCircuit`: during the charge loop the EVSE is a current source whose
output is capped by its own current, power and voltage limits (and the EV's request); the
battery sets the voltage (open-circuit voltage plus the drop over its internal resistance).
Whichever cap is the lowest is reported as the limitation, so the loop messages can carry the
EVSE's *LimitAchieved flags and show which side limits the power.

Parameters are dataclasses, loadable from a TOML file (tables ``[evse]`` and ``[battery]``)
and overridable field by field (the CLI passes its options to :func:`override`).
"""

from __future__ import annotations

import bisect
import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

EV_LIMIT = "ev"  # the EV asked for less than the EVSE could give
EVSE_CURRENT_LIMIT = "evse_current"
EVSE_VOLTAGE_LIMIT = "evse_voltage"
EVSE_POWER_LIMIT = "evse_power"

# EVSE output current while precharging: ISO 15118-2 caps the PreCharge current at 2 A
PRECHARGE_CURRENT_LIMIT = 2.0


@dataclass(frozen=True)
class PowerStageParams:
    max_voltage: float = 500.0  # V
    min_voltage: float = 50.0  # V
    max_current: float = 200.0  # A
    min_current: float = 0.0  # A
    max_power: float = 100_000.0  # W
    voltage_ramp: float = 200.0  # V/s, during cable check and precharge
    current_ramp: float = 100.0  # A/s, during the charge loop
    isolation_check_duration: float = 2.0  # s, how long CableCheck reports Ongoing
    current_regulation_tolerance: float = 1.0  # A
    peak_current_ripple: float = 1.0  # A
    ac_nominal_voltage: float = 230.0  # V per phase
    ac_max_current: float = 32.0  # A per phase
    ac_phases: int = 3


@dataclass(frozen=True)
class BatteryParams:
    capacity_kwh: float = 60.0
    start_soc: float = 20.0  # %
    target_soc: float = 80.0  # % where the EV reports ChargingComplete and stops
    bulk_soc: float = 80.0  # % where BulkChargingComplete turns true
    # open-circuit voltage at SOC points (%, V), interpolated linearly
    ocv_curve: tuple[tuple[float, float], ...] = (
        (0.0, 320.0), (10.0, 345.0), (20.0, 355.0), (50.0, 372.0),
        (80.0, 390.0), (90.0, 398.0), (100.0, 410.0))
    internal_resistance: float = 0.1  # ohm
    max_current: float = 250.0  # A the EV will ever ask for
    max_voltage: float = 420.0  # V, the EV's maximum voltage limit
    max_power: float = 150_000.0  # W
    taper_start_soc: float = 70.0  # % above which the requested current falls off
    taper_end_current: float = 10.0  # A requested at 100 % SOC
    precharge_tolerance: float = 10.0  # V: precharge is done within this of the battery voltage
    ac_max_current: float = 16.0  # A per phase the on-board charger takes
    ac_phases: int = 3

    def __post_init__(self) -> None:
        if not 0.0 <= self.start_soc <= 100.0 or not 0.0 <= self.target_soc <= 100.0:
            raise ValueError("start_soc and target_soc must be between 0 and 100 %")
        points = [soc for soc, _ in self.ocv_curve]
        if len(points) < 2 or points != sorted(points):
            raise ValueError("ocv_curve needs at least two points in rising SOC order")


@dataclass(frozen=True)
class SimulationParams:
    evse: PowerStageParams = field(default_factory=PowerStageParams)
    battery: BatteryParams = field(default_factory=BatteryParams)


def _check_positive(params: Any) -> None:
    for item in dataclasses.fields(params):
        value = getattr(params, item.name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise ValueError(f"{type(params).__name__}.{item.name} must not be negative ({value})")


def _from_mapping(cls: type, mapping: Mapping[str, Any], where: str) -> Any:
    known = {item.name: item for item in dataclasses.fields(cls)}
    values = {}
    for key, value in mapping.items():
        name = key.replace("-", "_")
        if name not in known:
            raise ValueError(f"{where}: unknown setting {key!r} (known: {', '.join(sorted(known))})")
        if name == "ocv_curve":
            value = tuple((float(soc), float(volts)) for soc, volts in value)
        elif isinstance(known[name].default, int) and not isinstance(known[name].default, bool):
            if not isinstance(value, int):
                raise ValueError(f"{where}: {key} must be an integer, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}: {key} must be a number, got {value!r}")
        else:
            value = float(value)
        values[name] = value
    params = cls(**values)
    _check_positive(params)
    return params


def load_params(path: str | Path) -> SimulationParams:
    """Read a TOML file with optional ``[evse]`` and ``[battery]`` tables; ValueError if unusable."""
    try:
        with open(path, "rb") as stream:
            data = tomllib.load(stream)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"{path}: {error}") from error
    unknown = set(data) - {"evse", "battery"}
    if unknown:
        raise ValueError(f"{path}: unknown table(s) {sorted(unknown)}; use [evse] and [battery]")
    return SimulationParams(
        evse=_from_mapping(PowerStageParams, data.get("evse", {}), f"{path} [evse]"),
        battery=_from_mapping(BatteryParams, data.get("battery", {}), f"{path} [battery]"))


def override(params: Any, **changes: Any) -> Any:
    """A copy of a params dataclass with the given fields changed; None values are ignored."""
    changes = {k: v for k, v in changes.items() if v is not None}
    merged = {item.name: getattr(params, item.name) for item in dataclasses.fields(params)}
    merged.update(changes)
    return _from_mapping(type(params), merged, type(params).__name__) if changes else params


def _approach(value: float, target: float, max_step: float) -> float:
    if value < target:
        return min(target, value + max_step)
    return max(target, value - max_step)


class Battery:
    """The PEV's traction battery and the requests its battery management would make."""

    def __init__(self, params: BatteryParams) -> None:
        self.params = params
        self.soc = params.start_soc
        self.current = 0.0  # A flowing into the battery
        self.energy_charged_wh = 0.0

    def open_circuit_voltage(self) -> float:
        curve = self.params.ocv_curve
        socs = [soc for soc, _ in curve]
        index = bisect.bisect_left(socs, self.soc)
        if index <= 0:
            return curve[0][1]
        if index >= len(curve):
            return curve[-1][1]
        (s0, v0), (s1, v1) = curve[index - 1], curve[index]
        return v0 + (v1 - v0) * (self.soc - s0) / (s1 - s0)

    def terminal_voltage(self, current: float | None = None) -> float:
        current = self.current if current is None else current
        return self.open_circuit_voltage() + current * self.params.internal_resistance

    def current_for_voltage(self, voltage: float) -> float:
        """The charge current at which the terminal voltage reaches ``voltage``."""
        return max(0.0, (voltage - self.open_circuit_voltage()) / self.params.internal_resistance)

    def requested_current(self) -> float:
        """What the EV asks for: its maximum, tapered above taper_start_soc, within its limits."""
        p = self.params
        if self.charging_complete:
            return 0.0
        current = p.max_current
        if self.soc > p.taper_start_soc:
            fraction = (self.soc - p.taper_start_soc) / (100.0 - p.taper_start_soc)
            current = p.max_current + (p.taper_end_current - p.max_current) * fraction
        current = min(current, self.current_for_voltage(p.max_voltage))
        voltage = self.terminal_voltage(current)
        if voltage * current > p.max_power:
            current = p.max_power / max(voltage, 1.0)
        return max(0.0, current)

    def requested_voltage(self) -> float:
        """EVTargetVoltage: the EV's maximum voltage, which it never wants exceeded."""
        return self.params.max_voltage

    @property
    def charging_complete(self) -> bool:
        return self.soc >= self.params.target_soc

    @property
    def bulk_charging_complete(self) -> bool:
        return self.soc >= self.params.bulk_soc

    def remaining_time(self, soc: float | None = None) -> float:
        """Seconds to reach ``soc`` (default target_soc) at the present power; a rough estimate."""
        soc = self.params.target_soc if soc is None else soc
        power = self.current * self.terminal_voltage()
        if soc <= self.soc:
            return 0.0
        if power <= 0:
            return float("inf")
        return (soc - self.soc) / 100.0 * self.params.capacity_kwh * 3.6e6 / power

    def step(self, dt: float, current: float) -> None:
        """Charge with ``current`` amperes (DC at the battery) for ``dt`` seconds."""
        self.current = max(0.0, current)
        energy_wh = self.terminal_voltage() * self.current * dt / 3600.0
        self.energy_charged_wh += energy_wh
        self.soc = min(100.0, self.soc + energy_wh / (self.params.capacity_kwh * 10.0))


class PowerStage:
    """The EVSE's DC converter: cable check, precharge and current-controlled charging."""

    OFF, CABLE_CHECK, PRECHARGE, CHARGE = "off", "cable_check", "precharge", "charge"

    def __init__(self, params: PowerStageParams) -> None:
        self.params = params
        self.mode = self.OFF
        self.present_voltage = 0.0
        self.present_current = 0.0
        self.target_voltage = 0.0
        self.target_current = 0.0
        self.limitation = EV_LIMIT
        self._cable_check_elapsed = 0.0
        self.isolation_valid = False

    # --- commands from the protocol layer ---

    def start_cable_check(self, test_voltage: float) -> None:
        self.mode = self.CABLE_CHECK
        self.target_voltage = min(test_voltage, self.params.max_voltage)
        self._cable_check_elapsed = 0.0
        self.isolation_valid = False

    @property
    def cable_check_done(self) -> bool:
        return self.isolation_valid and self.mode == self.CABLE_CHECK

    def start_precharge(self, voltage: float, current: float) -> None:
        self.mode = self.PRECHARGE
        self.set_targets(voltage, current)

    def start_charging(self) -> None:
        self.mode = self.CHARGE

    def set_targets(self, voltage: float, current: float) -> None:
        self.target_voltage = voltage
        self.target_current = current

    def stop(self) -> None:
        self.mode = self.OFF
        self.target_current = 0.0

    # --- limits and flags the charge loop reports ---

    @property
    def current_limit_achieved(self) -> bool:
        return self.mode == self.CHARGE and self.limitation == EVSE_CURRENT_LIMIT

    @property
    def voltage_limit_achieved(self) -> bool:
        return self.mode == self.CHARGE and self.limitation == EVSE_VOLTAGE_LIMIT

    @property
    def power_limit_achieved(self) -> bool:
        return self.mode == self.CHARGE and self.limitation == EVSE_POWER_LIMIT

    @property
    def present_power(self) -> float:
        return self.present_voltage * self.present_current

    # --- time ---

    def step(self, dt: float, battery: Battery | None = None) -> None:
        """Advance ``dt`` seconds; in CHARGE mode the battery (connected) takes the current."""
        p = self.params
        if self.mode == self.CHARGE and battery is not None:
            self._step_charge(dt, battery)
            return
        self.present_current = _approach(self.present_current, 0.0, p.current_ramp * dt)
        if self.mode == self.CABLE_CHECK:
            self._cable_check_elapsed += dt
            self.isolation_valid = self._cable_check_elapsed >= p.isolation_check_duration
            goal = self.target_voltage
        elif self.mode == self.PRECHARGE:
            goal = min(self.target_voltage, p.max_voltage)
            self.present_current = min(self.target_current, PRECHARGE_CURRENT_LIMIT) \
                if abs(self.present_voltage - goal) > 1.0 else 0.0
        else:
            goal = 0.0
        self.present_voltage = _approach(self.present_voltage, goal, p.voltage_ramp * dt)
        if battery is not None and self.mode == self.OFF:
            battery.step(dt, 0.0)

    def _step_charge(self, dt: float, battery: Battery) -> None:
        p = self.params
        voltage_cap = min(self.target_voltage, p.max_voltage)
        caps = {
            EV_LIMIT: max(0.0, self.target_current),
            EVSE_CURRENT_LIMIT: p.max_current,
            EVSE_VOLTAGE_LIMIT: battery.current_for_voltage(voltage_cap),
            EVSE_POWER_LIMIT: self._current_for_power(battery, p.max_power),
        }
        # ties go to the EV: the EVSE reaches a limit only when it gives less than asked
        self.limitation = min(caps, key=lambda name: (caps[name], name != EV_LIMIT))
        goal = caps[self.limitation]
        self.present_current = _approach(self.present_current, goal, p.current_ramp * dt)
        battery.step(dt, self.present_current)
        # the battery voltage rose during the step; the regulator keeps voltage and power in bounds
        self.present_current = min(self.present_current,
                                   battery.current_for_voltage(max(voltage_cap, battery.open_circuit_voltage())),
                                   self._current_for_power(battery, p.max_power))
        battery.current = self.present_current
        self.present_voltage = battery.terminal_voltage()

    @staticmethod
    def _current_for_power(battery: Battery, power: float) -> float:
        # solve (OCV + I R) I = P for I >= 0
        ocv, resistance = battery.open_circuit_voltage(), battery.params.internal_resistance
        return (-ocv + (ocv * ocv + 4.0 * resistance * power) ** 0.5) / (2.0 * resistance)

    # --- AC ---

    def ac_current(self, battery: Battery) -> float:
        """Per-phase current an AC session draws: the lower of the EVSE's and the car's limits."""
        if battery.charging_complete:
            return 0.0
        return min(self.params.ac_max_current, battery.params.ac_max_current)

    def step_ac(self, dt: float, battery: Battery) -> float:
        """Charge over AC for ``dt``; returns the per-phase current (efficiency taken as 1)."""
        phases = min(self.params.ac_phases, battery.params.ac_phases)
        current = self.ac_current(battery)
        power = phases * self.params.ac_nominal_voltage * current
        battery.step(dt, power / max(battery.terminal_voltage(0.0), 1.0))
        self.present_current = current
        self.present_voltage = self.params.ac_nominal_voltage
        return current


class DcCircuit:
    """Power stage and battery joined by the cable; the EV's contactors close for charging."""

    def __init__(self, params: SimulationParams) -> None:
        self.stage = PowerStage(params.evse)
        self.battery = Battery(params.battery)
        self.contactors_closed = False

    def step(self, dt: float) -> None:
        self.stage.step(dt, self.battery if self.contactors_closed else None)

    @property
    def precharged(self) -> bool:
        """The EV's test before closing contactors: EVSE voltage near the battery voltage."""
        return abs(self.stage.present_voltage - self.battery.terminal_voltage(0.0)) \
            <= self.battery.params.precharge_tolerance
