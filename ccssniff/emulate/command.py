"""``ccssniff emulate``: charger and car stacks, on real interfaces or in the lab."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import click

from ccssniff.capture.pcapng import PcapngWriter
from ccssniff.emulate.lab import LabConfig, run_lab
from ccssniff.emulate.physics import SimulationParams, load_params, override
from ccssniff.ui.errors import UsageFailure

PROTOCOLS = ("din", "iso2", "iso20")
MODES = ("dc", "ac")


def simulation_options(function):
    """Physics parameters shared by every emulate command; a TOML file first, options on top."""
    options = [
        click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
                     help="TOML file with [evse] and [battery] tables of simulation parameters."),
        click.option("--start-soc", type=click.FloatRange(0, 100), help="Battery SOC at plug-in, %."),
        click.option("--target-soc", type=click.FloatRange(0, 100), help="SOC where the EV stops, %."),
        click.option("--capacity", "capacity_kwh", type=click.FloatRange(min=0.1), help="Battery capacity, kWh."),
        click.option("--evse-max-current", type=click.FloatRange(min=0), help="EVSE current limit, A."),
        click.option("--evse-max-voltage", type=click.FloatRange(min=0), help="EVSE voltage limit, V."),
        click.option("--evse-max-power", type=click.FloatRange(min=0), help="EVSE power limit, W."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def simulation_params(config_file, start_soc, target_soc, capacity_kwh, evse_max_current,
                      evse_max_voltage, evse_max_power) -> SimulationParams:
    try:
        params = load_params(config_file) if config_file else SimulationParams()
        battery = override(params.battery, start_soc=start_soc, target_soc=target_soc,
                           capacity_kwh=capacity_kwh)
        evse = override(params.evse, max_current=evse_max_current, max_voltage=evse_max_voltage,
                        max_power=evse_max_power)
    except (OSError, ValueError) as exc:
        raise UsageFailure(str(exc)) from None
    return SimulationParams(evse=evse, battery=battery)


@click.group()
def emulate() -> None:
    """Charger (EVSE) and car (PEV) stacks: SLAC, SDP, TCP and the DIN / ISO 15118 messages.

    \b
    Examples:
      ccssniff emulate lab -w lab.pcapng                    reference DIN DC session, no hardware
      ccssniff emulate lab --protocol iso2 --mode ac -w ac.pcapng
    """


@emulate.command()
@click.option("-w", "--write", "output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="pcapng file to write the session to.")
@click.option("--protocol", type=click.Choice(PROTOCOLS), default="din", show_default=True)
@click.option("--mode", type=click.Choice(MODES), default="dc", show_default=True)
@click.option("--charge-time", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Seconds of charge loop before the EV stops (0: until the target SOC).")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the simulated randomness.")
@click.option("--start-time", type=float, default=LabConfig.start_time, show_default=True,
              help="Simulated clock at the start, Unix seconds.")
@simulation_options
def lab(output, protocol, mode, charge_time, seed, start_time, **simulation) -> None:
    """Run both stacks in one process and record the session as a real wire carries it.

    No root and no network needed: the frames (HomePlug SLAC, IPv6 neighbour discovery, SDP,
    TCP, V2GTP with EXI) get timestamps from a simulated clock.
    """
    config = LabConfig(protocol=protocol, mode=mode, params=simulation_params(**simulation),
                       charge_time=charge_time or None, seed=seed, start_time=start_time)
    started = time.perf_counter()
    try:
        with PcapngWriter(output) as writer:
            result = run_lab(config, lambda frame, at, comment: writer.write(frame, timestamp=at, comment=comment))
    except OSError as exc:
        raise UsageFailure(f"cannot write {output}: {exc.strerror or exc}") from None
    elapsed = time.perf_counter() - started
    counts = Counter(m.name for m in result.messages)
    status = "completed" if result.ok else "FAILED"
    click.echo(f"{protocol} {mode}: session {status} ({result.reason}); {result.frames} frames, "
               f"{len(result.messages)} V2G messages, {result.duration:.1f} s simulated in {elapsed:.2f} s "
               f"-> {output}")
    click.echo(", ".join(f"{name} x{count}" for name, count in counts.items()))
    if not result.ok:
        raise SystemExit(1)
