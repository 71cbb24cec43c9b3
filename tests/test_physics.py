"""The simulated power stage and battery (ccssniff.emulate.physics)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccssniff.emulate.physics import (EV_LIMIT, EVSE_CURRENT_LIMIT, EVSE_POWER_LIMIT,
                                      EVSE_VOLTAGE_LIMIT, Battery, BatteryParams, DcCircuit,
                                      PowerStage, PowerStageParams, SimulationParams, load_params,
                                      override)


def _charge(circuit: DcCircuit, seconds: float, dt: float = 0.1) -> None:
    circuit.contactors_closed = True
    circuit.stage.start_charging()
    for _ in range(round(seconds / dt)):
        battery = circuit.battery
        circuit.stage.set_targets(battery.requested_voltage(), battery.requested_current())
        circuit.step(dt)


def test_open_circuit_voltage_interpolates_the_curve():
    battery = Battery(BatteryParams(start_soc=15.0))
    assert battery.open_circuit_voltage() == pytest.approx(350.0)  # halfway 345..355
    battery.soc = 0.0
    assert battery.open_circuit_voltage() == 320.0
    battery.soc = 100.0
    assert battery.open_circuit_voltage() == 410.0
    assert battery.terminal_voltage(100.0) == pytest.approx(410.0 + 100.0 * 0.1)


def test_cable_check_takes_its_duration_and_ramps_the_voltage():
    stage = PowerStage(PowerStageParams(isolation_check_duration=2.0, voltage_ramp=100.0))
    stage.start_cable_check(400.0)
    voltages = []
    for _ in range(19):
        stage.step(0.1)
        voltages.append(stage.present_voltage)
    assert not stage.isolation_valid
    stage.step(0.1)
    assert stage.isolation_valid and stage.cable_check_done
    assert voltages[0] == pytest.approx(10.0)  # 100 V/s for 0.1 s
    assert all(b - a <= 10.0 + 1e-9 for a, b in zip(voltages, voltages[1:]))


def test_precharge_reaches_the_battery_voltage_at_the_ramp_rate():
    circuit = DcCircuit(SimulationParams(evse=PowerStageParams(voltage_ramp=50.0)))
    target = circuit.battery.terminal_voltage(0.0)
    circuit.stage.start_precharge(target, 2.0)
    steps = 0
    while not circuit.precharged:
        circuit.step(0.1)
        steps += 1
        assert circuit.stage.present_current <= 2.0
    tolerance = circuit.battery.params.precharge_tolerance
    assert steps == pytest.approx((target - tolerance) / 5.0, abs=1)
    for _ in range(100):
        circuit.step(0.1)
    assert circuit.stage.present_voltage == pytest.approx(target)


def test_ev_request_limits_when_the_evse_is_strong():
    circuit = DcCircuit(SimulationParams(evse=PowerStageParams(max_current=500, max_power=400_000),
                                         battery=BatteryParams(max_current=100)))
    _charge(circuit, 5.0)
    stage = circuit.stage
    assert stage.limitation == EV_LIMIT
    assert stage.present_current == pytest.approx(100.0)
    assert not (stage.current_limit_achieved or stage.power_limit_achieved or stage.voltage_limit_achieved)
    assert stage.present_voltage == pytest.approx(circuit.battery.terminal_voltage())


def test_evse_current_limit():
    circuit = DcCircuit(SimulationParams(evse=PowerStageParams(max_current=80.0, current_ramp=40.0)))
    circuit.contactors_closed = True
    circuit.stage.start_charging()
    circuit.stage.set_targets(420.0, 200.0)
    circuit.step(1.0)
    assert circuit.stage.present_current == pytest.approx(40.0)  # the ramp, not yet the limit
    _charge(circuit, 3.0)
    assert circuit.stage.present_current == pytest.approx(80.0)
    assert circuit.stage.limitation == EVSE_CURRENT_LIMIT and circuit.stage.current_limit_achieved


def test_evse_power_limit():
    circuit = DcCircuit(SimulationParams(evse=PowerStageParams(max_power=20_000.0)))
    _charge(circuit, 10.0)
    stage = circuit.stage
    assert stage.limitation == EVSE_POWER_LIMIT and stage.power_limit_achieved
    assert stage.present_power == pytest.approx(20_000.0, rel=1e-3)


def test_evse_voltage_limit():
    battery = BatteryParams(start_soc=50.0)  # OCV 372 V
    circuit = DcCircuit(SimulationParams(evse=PowerStageParams(max_voltage=380.0, max_power=1e6),
                                         battery=battery))
    _charge(circuit, 10.0)
    stage = circuit.stage
    assert stage.limitation == EVSE_VOLTAGE_LIMIT and stage.voltage_limit_achieved
    assert stage.present_voltage == pytest.approx(380.0, abs=0.5)


def test_soc_and_energy_add_up_and_the_request_tapers():
    params = SimulationParams(evse=PowerStageParams(max_current=400, max_power=400_000),
                              battery=BatteryParams(capacity_kwh=10.0, start_soc=60.0, target_soc=95.0))
    circuit = DcCircuit(params)
    requests = []
    dt = 0.5
    circuit.contactors_closed = True
    circuit.stage.start_charging()
    while not circuit.battery.charging_complete:
        requests.append((circuit.battery.soc, circuit.battery.requested_current()))
        circuit.stage.set_targets(circuit.battery.requested_voltage(), requests[-1][1])
        circuit.step(dt)
        assert len(requests) < 20_000
    battery = circuit.battery
    assert battery.energy_charged_wh / 1000.0 == pytest.approx((battery.soc - 60.0) / 100 * 10.0)
    tapering = [current for soc, current in requests if soc > 75.0]
    assert tapering and all(b <= a + 1e-9 for a, b in zip(tapering, tapering[1:]))
    assert tapering[-1] < 0.5 * params.battery.max_current
    assert battery.requested_current() == 0.0 and battery.bulk_charging_complete


def test_ac_charging_takes_the_lower_limit():
    stage = PowerStage(PowerStageParams(ac_max_current=32.0))
    battery = Battery(BatteryParams(ac_max_current=16.0, capacity_kwh=10.0))
    soc = battery.soc
    assert stage.step_ac(60.0, battery) == 16.0
    expected_wh = 3 * 230.0 * 16.0 * 60.0 / 3600.0
    assert battery.energy_charged_wh == pytest.approx(expected_wh, rel=0.05)
    assert battery.soc > soc


def test_toml_loading_and_overrides(tmp_path):
    path = tmp_path / "sim.toml"
    path.write_text('[evse]\nmax_current = 125\nmax-power = 50000.5\n'
                    '[battery]\nstart_soc = 33\nocv_curve = [[0, 300], [100, 400]]\nac_phases = 1\n')
    params = load_params(path)
    assert params.evse.max_current == 125.0 and params.evse.max_power == 50000.5
    assert params.battery.ocv_curve == ((0.0, 300.0), (100.0, 400.0))
    assert params.battery.ac_phases == 1 and params.battery.start_soc == 33.0
    assert params.evse.voltage_ramp == PowerStageParams().voltage_ramp
    changed = override(params.battery, start_soc=50, target_soc=None)
    assert changed.start_soc == 50.0 and changed.target_soc == params.battery.target_soc
    assert override(params.evse) is params.evse


@pytest.mark.parametrize("text, message", [
    ("[evse]\nmax_curent = 1\n", "unknown setting 'max_curent'"),
    ("[evse]\nmax_current = 'lots'\n", "must be a number"),
    ("[battery]\nstart_soc = 120\n", "between 0 and 100"),
    ("[battery]\nac_phases = 1.5\n", "must be an integer"),
    ("[evse]\nmax_power = -3\n", "must not be negative"),
    ("[charger]\n", "unknown table"),
    ("this is = not toml [", "sim.toml"),
])
def test_toml_errors_are_clear(tmp_path, text, message):
    path = tmp_path / "sim.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        load_params(path)


def test_missing_toml_file_is_a_value_error(tmp_path):
    with pytest.raises(ValueError):
        load_params(tmp_path / "absent.toml")


@settings(max_examples=60, deadline=None)
@given(max_current=st.floats(10, 500), max_power=st.floats(5_000, 400_000),
       max_voltage=st.floats(380, 1000), start_soc=st.floats(0, 90),
       steps=st.lists(st.floats(0.01, 1.0), min_size=1, max_size=80))
def test_charging_never_exceeds_the_evse_limits(max_current, max_power, max_voltage, start_soc, steps):
    circuit = DcCircuit(SimulationParams(
        evse=PowerStageParams(max_current=max_current, max_power=max_power, max_voltage=max_voltage),
        battery=BatteryParams(start_soc=start_soc, target_soc=100.0)))
    circuit.contactors_closed = True
    circuit.stage.start_charging()
    for dt in steps:
        circuit.stage.set_targets(circuit.battery.requested_voltage(), circuit.battery.requested_current())
        soc = circuit.battery.soc
        circuit.step(dt)
        stage = circuit.stage
        assert 0.0 <= stage.present_current <= max_current + 1e-6
        assert stage.present_power <= max_power * (1 + 1e-6) + 1e-6
        assert stage.present_voltage <= max(max_voltage, circuit.battery.open_circuit_voltage()) + 1e-6
        assert circuit.battery.soc >= soc
