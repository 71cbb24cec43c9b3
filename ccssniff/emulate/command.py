"""``ccssniff emulate``: charger and car stacks, on real interfaces or in the lab."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path

import click

from ccssniff.ui.errors import UsageFailure

# The stacks load on demand, so that `ccssniff decode` does not pay for them.

PROTOCOLS = ("din", "iso2", "iso20")
MODES = ("dc", "ac")
LISTEN_VIEWS = ("full", "filtering")


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
@click.option("--tls", is_flag=True,
              help="ISO 15118-2 over TLS 1.2 (server authentication), ISO 15118-20 over TLS 1.3 (mutual); "
                   "the keys go into the pcapng as a Decryption Secrets Block.")
@click.option("--pki", "pki_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Test PKI from 'ccssniff pki create' (default with --tls: a fresh one).")
@click.option("--keylog", type=click.Path(dir_okay=False, path_type=Path),
              help="With --tls: also append the session keys to this NSS key log file.")
@click.option("--pnc", is_flag=True, help="With --tls and iso2: Plug & Charge (contract chain in PaymentDetailsReq, "
                                          "AuthorizationReq signed with the contract key, checked by the EVSE).")
@click.option("--netns", is_flag=True,
              help="Run the real thing instead (root): network namespaces, the powerline simulator, 'emulate evse' "
                   "and 'emulate pev' over kernel TCP in real time; -w gets the EVSE's recording.")
@click.option("--listen", "listen_view", type=click.Choice(LISTEN_VIEWS),
              help="With --netns: 'ccssniff listen' on a third modem (full view, or filtering like a stock AR7420); "
                   "its recording goes next to -w as NAME-listen.pcapng.")
@click.option("--netns-prefix", metavar="PREFIX",
              help="With --netns: names of the namespaces and interfaces start with this (default: ccs<PID>).")
@simulation_options
def lab(output, protocol, mode, charge_time, seed, start_time, tls, pki_dir, keylog, pnc, netns, listen_view,
        netns_prefix, **simulation) -> None:
    """Run both stacks in one process and record the session as a real wire carries it.

    No root and no network needed: the frames (HomePlug SLAC, IPv6 neighbour discovery, SDP,
    TCP, V2GTP with EXI) get timestamps from a simulated clock, so a 60 s charge takes well
    under a second. Prints the outcome and the messages sent; exit status 1 if the session failed.

    With --netns (root) the same session runs as real processes instead: network namespaces joined
    by the powerline simulator, 'emulate evse' and 'emulate pev' over kernel TCP in real time, and
    with --listen a 'ccssniff listen' beside them; the namespaces are removed at the end, also on
    Ctrl-C. Prints the outcome, the messages and how the recording decodes.

    \b
    Examples:
      ccssniff emulate lab -w lab.pcapng                        DIN 70121 DC, 60 s of charging
      ccssniff emulate lab --protocol iso2 --mode ac -w ac.pcapng
      ccssniff emulate lab --protocol iso20 --charge-time 0 --start-soc 75 --target-soc 80 -w full.pcapng
      ccssniff emulate lab --config lab.toml --evse-max-power 50000 -w limited.pcapng
      ccssniff decode lab.pcapng --summary                       then look at what was made
      ccssniff emulate lab --protocol iso20 --tls -w tls13.pcapng   Wireshark decrypts it as it is
      sudo ccssniff emulate lab --netns --charge-time 5 -w real.pcapng   real processes, kernel TCP
      sudo ccssniff emulate lab --netns --listen filtering -w real.pcapng   and a sniffer beside them
    """
    if (pki_dir or keylog) and not tls:
        raise UsageFailure("--pki and --keylog need --tls")
    if netns:
        given = [name for name in ("tls", "pnc", "start_time")
                 if click.get_current_context().get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise UsageFailure(f"--{given[0].replace('_', '-')} is not available with --netns")
        simulation_params(**simulation)  # bad parameters fail here, not in both sides
        netns_lab(output, protocol, mode, charge_time, seed, listen_view, netns_prefix, simulation)
        return
    if listen_view or netns_prefix:
        raise UsageFailure("--listen and --netns-prefix need --netns")
    from ccssniff.capture.pcapng import PcapngWriter
    from ccssniff.emulate.lab import LabConfig, run_lab

    config = LabConfig(protocol=protocol, mode=mode, params=simulation_params(**simulation),
                       charge_time=charge_time or None, seed=seed, start_time=start_time, tls=tls, pki_dir=pki_dir,
                       pnc=pnc)
    started = time.perf_counter()
    try:
        with PcapngWriter(output) as writer:
            result = run_lab(config, lambda frame, at, comment: writer.write(frame, timestamp=at, comment=comment),
                             writer.write_secrets)
        if keylog and result.keylog:
            with open(keylog, "a") as file:
                file.write(result.keylog)
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
    if result.tls:
        click.echo(f"TLS: {result.tls}; keys in the capture (Decryption Secrets Block)")
    click.echo(", ".join(f"{name} x{count}" for name, count in counts.items()))
    if not result.ok:
        raise SystemExit(1)


SIMULATION_OPTIONS = {"config_file": "--config", "start_soc": "--start-soc", "target_soc": "--target-soc",
                      "capacity_kwh": "--capacity", "evse_max_current": "--evse-max-current",
                      "evse_max_voltage": "--evse-max-voltage", "evse_max_power": "--evse-max-power"}


def netns_lab(output, protocol, mode, charge_time, seed, listen_view, prefix, simulation) -> None:
    """`lab --netns`: run the session in namespaces, then say how it went and how its recording decodes."""
    from ccssniff.capture.reader import CaptureFormatError, read_packets
    from ccssniff.decode.events import V2G
    from ccssniff.decode.trace import decode_trace
    from ccssniff.emulate import lab_netns, netns as namespaces

    prefix = prefix or lab_netns.default_prefix()
    if lab_netns.check_prefix(prefix):
        raise UsageFailure(lab_netns.check_prefix(prefix))
    reason = namespaces.unavailable_reason()
    if reason:
        raise UsageFailure(f"--netns: {reason}")
    try:
        output.open("wb").close()  # the EVSE writes it from its namespace; fail here, not there
    except OSError as exc:
        raise UsageFailure(f"cannot write {output}: {exc.strerror or exc}") from None
    options = [part for key, value in simulation.items() if value is not None
               for part in (SIMULATION_OPTIONS[key], str(value))]
    config = lab_netns.NetnsLabConfig(output=output, protocol=protocol, mode=mode, charge_time=charge_time or None,
                                      seed=seed, listen=listen_view, prefix=prefix, emulate_options=options)
    try:
        result = lab_netns.run_netns_lab(config, on_step=lambda text: click.echo(f"lab: {text}", err=True))
    except lab_netns.LabInterrupted as exc:
        raise UsageFailure(f"interrupted ({exc}); namespaces removed") from None
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        raise UsageFailure(f"--netns: {exc}") from None
    if output.stat().st_size == 0:
        raise UsageFailure(f"the EVSE recorded nothing to {output}: {result.evse.reason}")
    counts: Counter = Counter()
    frames = 0

    def count(event, _packet) -> None:
        if event.kind == V2G:
            counts[event.name] += 1

    def packets():
        nonlocal frames
        for packet in read_packets(output):
            frames += 1
            yield packet

    try:
        summary = decode_trace(packets(), on_event=count).to_dict()
    except CaptureFormatError as exc:
        raise UsageFailure(f"the EVSE's recording {output} does not decode: {exc}") from None
    status = "completed" if result.ok else "FAILED"
    click.echo(f"{protocol} {mode}: session {status} ({result.reason}); {frames} frames, "
               f"{sum(counts.values())} V2G messages, {result.elapsed:.1f} s in network namespaces -> {output}")
    click.echo(", ".join(f"{name} x{number}" for name, number in counts.items()))
    decoded = decoded_outcomes(summary)
    click.echo("decoded: " + "; ".join(f"{part} {text}" for part, text in decoded))
    if result.listen_recording is not None:
        click.echo(listen_line(listen_view, result))
    sessions = summary["sessions"]
    if not result.ok or not sessions or sessions[-1]["outcome"]["result"] != "completed":
        raise SystemExit(1)


def decoded_outcomes(summary: dict) -> list[tuple[str, str]]:
    """(part, "completed" or "failed: cause") for SLAC, SDP and each V2G session of a summary."""
    def text(outcome: dict) -> str:
        return outcome["result"] + (f": {outcome['cause']}" if outcome.get("cause") else "")

    parts = [(name.upper(), text(summary[name]["outcome"])) for name in ("slac", "sdp") if summary.get(name)]
    parts += [(f"V2G ({session['protocol'] or 'protocol unknown'})", f"{text(session['outcome'])}, {session['end']}")
              for session in summary["sessions"]]
    return parts or [("nothing", "no SLAC, SDP or V2G in the recording")]


def listen_line(view: str, result) -> str:
    from ccssniff.decode.events import V2G

    records = result.listen_records
    if not records or records[-1].get("kind") != "summary":
        return f"listen ({view} view): ended without a summary -> {result.listen_recording}"
    listen = records[-1]["listen"]
    live = sum(1 for record in records if record.get("kind") == V2G)
    hidden = "; unicast traffic hidden by its modem" if listen.get("unicast_hidden") else ""
    return (f"listen ({view} view): {'joined' if listen.get('joined') else 'did not join'}, "
            f"{live} V2G messages decoded live{hidden} -> {result.listen_recording}")


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
    @click.option("--tls", is_flag=True, help="TLS as ISO 15118 asks (iso2: TLS 1.2 server auth; iso20: TLS 1.3 "
                                              "mutual); SDP asks for / answers security 0x00.")
    @click.option("--pki", "pki_dir", type=click.Path(file_okay=False, path_type=Path),
                  help="Test PKI from 'ccssniff pki create' (default with --tls: a fresh one; both sides must "
                       "share one).")
    @click.option("--keylog", type=click.Path(dir_okay=False, path_type=Path),
                  help="With --tls: append the TLS keys to this NSS key log file.")
    @click.option("--disclose-keys", is_flag=True,
                  help="With --tls: send the key-log lines over UDP (port 52345) into the trace, as test systems do.")
    @click.option("--pnc", is_flag=True, help="With --tls, ISO 15118-2: Plug & Charge with the PKI's contract "
                                              "certificate (the car signs, the charger checks).")
    @simulation_options
    def command(interface, protocols, mode, no_slac, modem, port, charge_time, timeout, relaxed_timing,
                record, seed, show_key, tls, pki_dir, keylog, disclose_keys, pnc, **simulation):
        import asyncio

        from ccssniff.capture.live import LinkError
        from ccssniff.emulate.driver import DriverError, EmulatorConfig, Progress, run_side
        from ccssniff.ui.live import live_progress

        config = EmulatorConfig(interface=interface, protocols=tuple(protocols) or ("din",), mode=mode,
                                params=simulation_params(**simulation), slac=not no_slac, modem=modem,
                                charge_time=charge_time or None, timeout=timeout, record=record, seed=seed,
                                relaxed_timing=relaxed_timing, show_key=show_key, tls=tls,
                                pki_dir=pki_dir, keylog=keylog, disclose_keys=disclose_keys, pnc=pnc,
                                **({"port": port} if side == "evse" else {"peer_port": port}))
        if (pki_dir or keylog or disclose_keys or pnc) and not tls:
            raise UsageFailure("--pki, --keylog, --disclose-keys and --pnc need --tls")
        progress = Progress(soc=config.params.battery.start_soc)
        try:
            with live_progress(progress, title=f"{side.upper()} on {interface}"):
                result = asyncio.run(run_side(side, config, progress))
        except DriverError as exc:
            raise UsageFailure(str(exc)) from None
        except PermissionError:
            raise UsageFailure(f"no permission to use {interface}: run as root or with CAP_NET_RAW") from None
        except LinkError as exc:
            raise UsageFailure(str(exc)) from None
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
