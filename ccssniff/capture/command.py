"""``ccssniff listen IFACE``: sniff a charging session live, joining the car-charger network."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from ccssniff.ui.errors import UsageFailure

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def parse_key(text: str, size: int, what: str) -> bytes:
    try:
        value = bytes.fromhex(text.replace(":", "").replace("-", "").replace(" ", ""))
    except ValueError:
        raise UsageFailure(f"{what} must be hex, e.g. {'00' * size}") from None
    if len(value) != size:
        raise UsageFailure(f"{what} has {size} bytes, not {len(value)}")
    return value


def key_options(nmk: str | None, nid: str | None, passphrase: str | None) -> tuple[bytes | None, bytes | None, str]:
    from ccssniff.homeplug import nid_from_nmk, nmk_from_passphrase

    if nmk and passphrase:
        raise UsageFailure("--nmk and --passphrase exclude each other")
    if nid and not nmk:
        raise UsageFailure("--nid goes with --nmk")
    if passphrase:
        key = nmk_from_passphrase(passphrase)
        return key, nid_from_nmk(key), "--passphrase"
    if nmk:
        key = parse_key(nmk, 16, "--nmk")
        return key, parse_key(nid, 7, "--nid") if nid else nid_from_nmk(key), "--nmk"
    return None, None, "CM_SLAC_MATCH.CNF"


@click.command()
@click.argument("interface")
@click.option("-w", "--write", "output", type=click.Path(dir_okay=False, path_type=Path),
              help="pcapng file: every frame as it arrives, valid at any moment.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines on stdout: events, join steps, the summary.")
@click.option("--no-join", is_flag=True, help="Only watch; never set a key on the local modem.")
@click.option("--nmk", metavar="HEX", help="Join this network at once (16-byte NMK).")
@click.option("--nid", metavar="HEX", help="The NID that goes with --nmk (default: derived from it).")
@click.option("--passphrase", metavar="TEXT", help="Join the network of this HomePlug password at once.")
@click.option("--modem", "modem_mac", metavar="MAC", help="The local modem's MAC (default: the one answering VS_SW_VER).")
@click.option("--activity", is_flag=True, help="QCA sniffer mode: the PHY activity meter, also of hidden frames.")
@click.option("--show-key", is_flag=True, help="Show the NMK in full (it is the session's secret).")
@click.option("--all", "capture_all", is_flag=True, help="Capture every frame, not only HomePlug and IPv6.")
@click.option("-f", "--filter", "bpf", metavar="EXPR", help="Your own BPF capture filter.")
@click.option("--split-sessions", "split_directory", type=click.Path(file_okay=False, path_type=Path),
              help="One pcapng per charging session in this directory (named by start time and charger MAC).")
@click.option("--ring", type=click.IntRange(min=1), help="With --split-sessions: keep only the newest N files.")
@click.option("--duration", type=click.FloatRange(min=0.1), help="Stop after this many seconds.")
def listen(interface: str, output: Path | None, as_json: bool, no_join: bool, nmk: str | None, nid: str | None,
           passphrase: str | None, modem_mac: str | None, activity: bool, show_key: bool, capture_all: bool,
           bpf: str | None, split_directory: Path | None, ring: int | None, duration: float | None) -> None:
    """Sniff a charging session on INTERFACE (a HomePlug modem's Ethernet side): record it,
    join the car-charger network from the sniffed CM_SLAC_MATCH.CNF and decode it live.

    Ctrl-C (or SIGTERM, SIGHUP) stops; the file is complete up to the last frame, and the
    summary that `ccssniff decode --summary` prints follows.

    \b
    Examples:
      ccssniff listen eth0 -w session.pcapng           join, record, decode live
      ccssniff listen eth0 --no-join --json            only watch, JSON lines
      ccssniff listen eth0 --nmk 00112233445566778899aabbccddeeff --activity
      ccssniff listen eth0 --split-sessions sessions/ --ring 100   a modem left on a charger
    """
    from ccssniff.capture.listen import ListenConfig, Listener
    from ccssniff.capture.live import CCS_FILTER, LinkError
    from ccssniff.homeplug import parse_mac

    if output and split_directory:
        raise UsageFailure("-w and --split-sessions exclude each other")
    if ring and not split_directory:
        raise UsageFailure("--ring goes with --split-sessions")
    if capture_all and bpf:
        raise UsageFailure("--all and --filter exclude each other")
    key, network, source = key_options(nmk, nid, passphrase)
    if no_join and key is not None:
        raise UsageFailure("--no-join and a key exclude each other")
    try:
        modem = parse_mac(modem_mac) if modem_mac else None
    except ValueError:
        raise UsageFailure(f"--modem: {modem_mac!r} is not a MAC address") from None
    config = ListenConfig(interface=interface, output=output, bpf=None if capture_all else (bpf or CCS_FILTER),
                          join=not no_join, nmk=key, nid=network, key_source=source, modem_mac=modem,
                          activity=activity, show_key=show_key, duration=duration,
                          split_directory=split_directory, ring=ring)
    view = _View(as_json, show_key)
    listener = Listener(config, on_join=view.join_output)
    view.state = listener.state
    previous = {number: signal.signal(number, listener.stop) for number in STOP_SIGNALS}
    try:
        with view.live():
            trace = listener.run(on_event=view.event)
    except LinkError as exc:
        raise UsageFailure(str(exc)) from None
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    view.summary(trace, listener.state.to_dict(), str(output or interface))


class _View:
    """Where events go: JSON lines, or the timeline (with a live table on a terminal)."""

    def __init__(self, as_json: bool, show_key: bool) -> None:
        from ccssniff.decode.session import TraceSession
        from ccssniff.ui.jsonl import JsonLinesWriter
        from ccssniff.ui.timeline import TimelineWriter

        self.as_json = as_json
        self.show_key = show_key
        self.state: Any = None
        self.model = TraceSession()  # the live copy of the session model, for the table
        self.console = Console(file=sys.stdout, soft_wrap=True, highlight=False)
        self.json = JsonLinesWriter(sys.stdout) if as_json else None
        self.timeline = TimelineWriter(self.console)
        self.lines: list[str] = []
        self._live: Any = None

    @contextlib.contextmanager
    def live(self):
        if self.as_json or not sys.stderr.isatty():
            yield
            return
        from rich.live import Live

        from ccssniff.ui.listen_view import render_live

        console = Console(stderr=True)
        from ccssniff.ui.timeline import TimelineWriter

        self.timeline = TimelineWriter(console)
        with Live(render_live(self.state, self.model, self.lines), console=console, refresh_per_second=4,
                  get_renderable=lambda: render_live(self.state, self.model, self.lines)) as live:
            self._live = live
            yield
        self._live = None

    def event(self, event: Any, start: float) -> None:
        from ccssniff.capture.listen import KEY_FIELDS, key_text

        for name in KEY_FIELDS:
            if name in event.fields:
                event.fields[name] = key_text(event.fields[name], self.show_key)
        self.model.add(event)
        if self.json is not None:
            self.json.event(event, start)
            sys.stdout.flush()
        elif event.name != "VS_SNIFFER.IND":  # 30-50 a second: the activity meter sums them up
            self.timeline.event(event, start)
            sys.stdout.flush()

    def join_output(self, output: Any) -> None:
        from ccssniff.capture import join as jn

        if isinstance(output, jn.Step):
            text = output.text
        elif isinstance(output, jn.ModemFound):
            text = f"{'local' if output.local else 'remote'} modem {output.mac}: {output.firmware}"
        elif isinstance(output, jn.KeyTaken):
            from ccssniff.capture.listen import key_text
            text = f"key from {output.source}: NID {output.nid.hex()} NMK {key_text(output.nmk.hex(), self.show_key)}"
        elif isinstance(output, jn.Joined):
            text = "joined the AVLN " + output.nid.hex() + " with " + ", ".join(
                f"{m.mac} (host {m.host_mac}, {m.firmware or 'firmware unknown'})" for m in output.members)
        elif isinstance(output, jn.JoinFailed):
            text = f"join failed: {output.reason}"
        else:
            return
        self.lines.append(text)
        if self.json is not None:
            record = {"kind": "listen", "name": type(output).__name__, "timestamp": time.time(), "text": text}
            if isinstance(output, jn.Joined):
                record["members"] = [m.to_dict() for m in output.members]
            sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
            sys.stdout.flush()
        elif self._live is None:
            click.echo(f"listen: {text}", err=True)

    def summary(self, trace: Any, listen: dict[str, Any], title: str) -> None:
        summary = trace.to_dict()
        summary["listen"] = listen
        if self.json is not None:
            self.json.summary(summary)
            sys.stdout.flush()
            return
        from ccssniff.ui.listen_view import render_listen_summary
        from ccssniff.ui.summary import render_summary

        render_summary(self.console, trace, title)
        render_listen_summary(self.console, listen)

