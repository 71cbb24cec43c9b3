"""``ccssniff emulate``: charger and car stacks, on real interfaces or in the lab."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import click

from ccssniff.ui.errors import UsageFailure

# The stacks load on demand, so that `ccssniff decode` does not pay for them.

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
                      evse_max_voltage, evse_max_power):
    from ccssniff.emulate.physics import SimulationParams, load_params, override

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


PROTOCOL_HELP = "din: DIN SPEC 70121; iso2: ISO 15118-2; iso20: ISO 15118-20."
MODE_HELP = "Energy transfer: dc (DC charging) or ac (AC charging through the car's on-board charger)."


@emulate.command()
@click.option("-w", "--write", "output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="pcapng file to write the session to (every frame, as a sniffer on the cable would see it).")
@click.option("--protocol", type=click.Choice(PROTOCOLS), default="din", show_default=True,
              help="The one protocol both stacks offer and accept: " + PROTOCOL_HELP)
@click.option("--mode", type=click.Choice(MODES), default="dc", show_default=True, help=MODE_HELP)
@click.option("--charge-time", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Seconds of charge loop before the EV stops (0: until the target SOC).")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Seed of the simulated randomness (RunID, network key, session ID): same seed, same file.")
@click.option("--start-time", type=float, default=1_767_225_600.0, show_default=True,
              help="Simulated clock at the start, Unix seconds (the frames' timestamps start here).")
@simulation_options
def lab(output, protocol, mode, charge_time, seed, start_time, **simulation) -> None:
    """Run both stacks in one process and record the session as a real wire carries it.

    No root and no network needed: the frames (HomePlug SLAC, IPv6 neighbour discovery, SDP,
    TCP, V2GTP with EXI) get timestamps from a simulated clock, so a 60 s charge takes well
    under a second. Prints the outcome and the messages sent; exit status 1 if the session failed.

    \b
    Examples:
      ccssniff emulate lab -w lab.pcapng                        DIN 70121 DC, 60 s of charging
      ccssniff emulate lab --protocol iso2 --mode ac -w ac.pcapng
      ccssniff emulate lab --protocol iso20 --charge-time 0 --start-soc 75 --target-soc 80 -w full.pcapng
      ccssniff emulate lab --config lab.toml --evse-max-power 50000 -w limited.pcapng
      ccssniff decode lab.pcapng --summary                       then look at what was made
    """
    from ccssniff.capture.pcapng import PcapngWriter
    from ccssniff.emulate.lab import LabConfig, run_lab

    config = LabConfig(protocol=protocol, mode=mode, params=simulation_params(**simulation),
                       charge_time=charge_time or None, seed=seed, start_time=start_time)
    started = time.perf_counter()
    try:
        with PcapngWriter(output) as writer:
            result = run_lab(config, lambda frame, at, comment: writer.write(frame, timestamp=at, comment=comment))
    except OSError as exc:
        raise UsageFailure(f"cannot write {output}: {exc.strerror or exc}") from None
    except ValueError as exc:  # a protocol that cannot do the mode, parameters that do not fit
        output.unlink(missing_ok=True)
        raise UsageFailure(str(exc)) from None
    elapsed = time.perf_counter() - started
    counts = Counter(m.name for m in result.messages)
    status = "completed" if result.ok else "FAILED"
    click.echo(f"{protocol} {mode}: session {status} ({result.reason}); {result.frames} frames, "
               f"{len(result.messages)} V2G messages, {result.duration:.1f} s simulated in {elapsed:.2f} s "
               f"-> {output}")
    click.echo(", ".join(f"{name} x{count}" for name, count in counts.items()))
    if not result.ok:
        raise SystemExit(1)


def side_command(side: str):
    @click.argument("interface")
    @click.option("--protocol", "protocols", multiple=True, type=click.Choice(PROTOCOLS),
                  help="Protocol offered/accepted, repeatable, in order of preference (default: din). "
                       + PROTOCOL_HELP)
    @click.option("--mode", type=click.Choice(MODES), default="dc", show_default=True, help=MODE_HELP)
    @click.option("--no-slac", is_flag=True, help="Skip SLAC (for peers without it, or plain Ethernet).")
    @click.option("--modem", type=click.Choice(["auto", "none"]), default="auto", show_default=True,
                  help="'none': no local HomePlug modem to give the SLAC key to (CM_SET_KEY skipped).")
    @click.option("--port", type=click.IntRange(0, 65535), default=0, help={
        "evse": "TCP port the charger listens on and announces in SDP (0: a random one in 49152-65535).",
        "pev": "TCP port the car connects to, instead of the one the charger announces in its SDP response "
               "(0: the announced one); for chargers that announce a wrong port. The address stays SDP's.",
    }[side])
    @click.option("--charge-time", type=click.FloatRange(min=0), default=60.0, show_default=True,
                  help="Seconds of charge loop before the EV stops (0: until the target SOC).")
    @click.option("--timeout", type=click.FloatRange(min=1), default=300.0, show_default=True,
                  help="Give up when the session takes longer.")
    @click.option("--relaxed-timing", "relaxed_timing", metavar="FACTOR", type=click.FloatRange(min=1),
                  default=1.0, show_default=True,
                  help="Multiply the V2G message, sequence and loop timeouts we enforce, for slow peers.")
    @click.option("-w", "--write", "record", type=click.Path(dir_okay=False, path_type=Path),
                  help="Record every frame on the interface to this pcapng file.")
    @click.option("--seed", type=int, help="Seed for session IDs, RunIDs and keys (default: random).")
    @click.option("--show-key", is_flag=True,
                  help="Log the SLAC network key (NMK) in full with -v; by default only its first and last byte.")
    @simulation_options
    def command(interface, protocols, mode, no_slac, modem, port, charge_time, timeout, relaxed_timing,
                record, seed, show_key, **simulation):
        import asyncio

        from ccssniff.emulate.driver import DriverError, EmulatorConfig, Progress, run_side
        from ccssniff.ui.live import live_progress

        config = EmulatorConfig(interface=interface, protocols=tuple(protocols) or ("din",), mode=mode,
                                params=simulation_params(**simulation), slac=not no_slac, modem=modem,
                                charge_time=charge_time or None, timeout=timeout, record=record, seed=seed,
                                relaxed_timing=relaxed_timing, show_key=show_key,
                                **({"port": port} if side == "evse" else {"peer_port": port}))
        progress = Progress(soc=config.params.battery.start_soc)
        try:
            with live_progress(progress, title=f"{side.upper()} on {interface}"):
                result = asyncio.run(run_side(side, config, progress))
        except DriverError as exc:
            raise UsageFailure(str(exc)) from None
        except PermissionError:
            raise UsageFailure(f"no permission to use {interface}: run as root or with CAP_NET_RAW") from None
        except asyncio.CancelledError:
            raise UsageFailure("aborted") from None
        status = "completed" if result.ok else "FAILED"
        click.echo(f"{side.upper()}: session {status} ({result.reason}); protocol {progress.protocol}, "
                   f"{progress.messages} V2G messages; SOC {config.params.battery.start_soc:.2f} -> "
                   f"{progress.soc:.2f} %")
        if not result.ok:
            raise SystemExit(1)

    command.__doc__ = {
        "evse": """Be a charger on INTERFACE: SLAC, SDP server, SECC over TCP, simulated power stage.

        \b
        Example:
          ccssniff emulate evse eth0 --protocol iso2 --protocol din -w evse.pcapng
        """,
        "pev": """Be a car on INTERFACE: SLAC, SDP client, EVCC over TCP, simulated battery.

        Ctrl-C ends the session the way the protocol allows (PowerDelivery stop, SessionStop).

        \b
        Example:
          ccssniff emulate pev eth0 --protocol din --start-soc 30 -w pev.pcapng
        """,
    }[side]
    return emulate.command(name=side)(command)


evse = side_command("evse")
pev = side_command("pev")
