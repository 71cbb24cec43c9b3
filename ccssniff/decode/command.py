"""``ccssniff decode FILE...``: a trace in, the whole charging session out."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Iterable

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from ccssniff.capture.pcapng import PcapngWriter
from ccssniff.capture.reader import CaptureFormatError, read_packets
from ccssniff.decode.keylog import KeyLog
from ccssniff.decode.pipeline import Pipeline
from ccssniff.decode.schema import FORCEABLE
from ccssniff.decode.session import TraceSession
from ccssniff.decode.trace import decode_trace
from ccssniff.decode.trace_keys import keys_in_capture
from ccssniff.ui.errors import UsageFailure
from ccssniff.ui.jsonl import JsonLinesWriter
from ccssniff.ui.summary import render_summary
from ccssniff.ui.timeline import TimelineWriter
from ccssniff.ui.xmlout import XmlWriter

# Below this size a file decodes faster than a progress bar can draw.
_PROGRESS_MIN_BYTES = 2 * 1024 * 1024
_RECORD_OVERHEAD = 32  # approximate bytes of pcap/pcapng framing per packet, for the progress bar


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="JSON lines on stdout, one event each, with the full body.")
@click.option("--xml", "as_xml", is_flag=True, help="Each V2G message as XML; other events as XML comments.")
@click.option("--hex", "with_hex", is_flag=True, help="Add the raw V2GTP payload to every message.")
@click.option("--summary", is_flag=True,
              help="A report per trace instead of the timeline (with --json: one summary object at the end).")
@click.option("--schema", type=click.Choice(FORCEABLE), default=None,
              help="Decode every V2G message with this schema, whatever the handshake says.")
@click.option("--keylog", "keylog_files", multiple=True, type=click.Path(path_type=Path),
              help="TLS keys in the NSS key log format (SSLKEYLOGFILE); may be repeated. Keys the trace "
                   "carries itself (key-log lines in UDP, pcapng Decryption Secrets Blocks) are always used.")
@click.option("-w", "--write", "output", type=click.Path(path_type=Path), default=None,
              help="Also write the capture's packets to this pcapng file.")
@click.option("--inject-secrets", is_flag=True,
              help="With -w: put every TLS key (from the trace and --keylog) into the written file as a "
                   "Decryption Secrets Block, so Wireshark decrypts it with no settings.")
def decode(files: tuple[Path, ...], as_json: bool, as_xml: bool, with_hex: bool, summary: bool,
           schema: str | None, keylog_files: tuple[Path, ...], output: Path | None, inject_secrets: bool) -> None:
    """Decode the traces FILES (pcap or pcapng): SLAC, SDP, TCP and every V2G message.

    \b
    Examples:
      ccssniff decode session.pcapng              timeline of the whole session
      ccssniff decode session.pcapng --summary    protocol, IDs, phases, values, who limited the power
      ccssniff decode a.pcapng b.pcapng --json    JSON lines (each with "file" when several files)
      ccssniff decode trace.pcap --schema din     force DIN 70121 for a trace without handshake
      ccssniff decode tls.pcapng --keylog keys.log                      decrypt TLS with a key log
      ccssniff decode tls.pcapng --keylog keys.log --inject-secrets -w out.pcapng
                                                  write the keys into the capture for Wireshark
    """
    if as_json and as_xml:
        raise UsageFailure("--json and --xml exclude each other")
    if inject_secrets and output is None:
        raise UsageFailure("--inject-secrets needs -w FILE")
    if output is not None and len(files) != 1:
        raise UsageFailure("-w takes the packets of one input file")
    given_keys = _read_keylogs(keylog_files)
    stdout = sys.stdout
    failures = 0
    for path in files:
        try:
            packets = read_packets(path)
        except CaptureFormatError as error:
            if len(files) == 1:
                raise UsageFailure(str(error)) from None
            UsageFailure(str(error)).show()
            failures += 1
            continue
        label = str(path) if len(files) > 1 else None
        console = Console(file=stdout, soft_wrap=True, highlight=False)
        if as_json:
            writer: Any = JsonLinesWriter(stdout, with_hex, label)
        elif as_xml:
            writer = XmlWriter(stdout, with_hex)
        else:
            writer = TimelineWriter(console, with_hex)
            if label is not None and not summary:
                writer.heading(label)
        show_events = not summary or as_json
        keys = KeyLog()
        keys.merge(given_keys)
        try:
            keys.merge(keys_in_capture(path).keys)
        except CaptureFormatError:
            pass  # the real pass reports how far the capture can be read
        if output is not None:
            packets = _copy_to(packets, output, keys.nss_text() if inject_secrets else None)
        trace = _decode_file(path, packets, Pipeline(schema=schema, keys=keys), writer if show_events else None,
                             _progress_wanted(path, summary))
        if summary:
            if as_json:
                writer.summary(trace.to_dict())
            else:
                render_summary(console, trace, str(path))
    stdout.flush()
    if failures:
        raise SystemExit(2)


def _read_keylogs(paths: tuple[Path, ...]) -> KeyLog:
    keys = KeyLog()
    for path in paths:
        try:
            added = keys.add_file(path)
        except OSError as error:
            raise UsageFailure(f"cannot read key log {path}: {error.strerror or error}") from None
        if not added:
            raise UsageFailure(f"{path} holds no usable key-log line (NSS format: LABEL CLIENT_RANDOM SECRET)"
                               + (f"; {keys.first_rejection}" if keys.first_rejection else ""))
    if keys.rejected:
        click.secho(f"warning: {keys.rejected} key-log line(s) skipped ({keys.first_rejection})",
                    fg="yellow", err=True)
    return keys


def _copy_to(packets: Iterable, output: Path, secrets: str | None) -> Iterable:
    """Pass the packets on while writing them to ``output`` (with the keys first, when given)."""
    try:
        writer = PcapngWriter(output, linktype=1)
    except OSError as error:
        raise UsageFailure(f"cannot write {output}: {error.strerror or error}") from None
    interfaces = {1: 0}
    with writer:
        if secrets:
            writer.write_secrets(secrets)
        for packet in packets:
            interface = interfaces.get(packet.linktype)
            if interface is None:
                interface = interfaces[packet.linktype] = writer.add_interface(packet.linktype)
            writer.write(packet.data, packet.timestamp, comment=packet.comment, interface=interface,
                         orig_len=packet.orig_len)
            yield packet


def _progress_wanted(path: Path, summary: bool) -> bool:
    """Only on a terminal, and only where the bar does not fight with the timeline for it."""
    if not sys.stderr.isatty() or (sys.stdout.isatty() and not summary):
        return False
    try:
        return os.path.getsize(path) >= _PROGRESS_MIN_BYTES
    except OSError:
        return False


def _decode_file(path: Path, packets: Iterable, pipeline: Pipeline, writer: Any,
                 progress: bool) -> TraceSession:
    if not progress:
        return decode_trace(packets, pipeline=pipeline, on_event=writer.event if writer is not None else None)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task(path.name, total=os.path.getsize(path))

    def advance(count: int, packet: Any) -> None:
        if not count % 1024:
            bar.update(task, advance=1024 * (len(packet.data) + _RECORD_OVERHEAD))

    with bar:
        return decode_trace(packets, pipeline=pipeline, on_event=writer.event if writer is not None else None,
                            on_packet=advance)
