"""``ccssniff decode FILE...``: a trace in, the whole charging session out."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Iterable

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from ccssniff.capture.reader import CaptureFormatError, read_packets, require_decodable_link
from ccssniff.decode.pipeline import Pipeline
from ccssniff.decode.schema import FORCEABLE
from ccssniff.decode.session import TraceSession
from ccssniff.decode.trace import decode_trace
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
def decode(files: tuple[Path, ...], as_json: bool, as_xml: bool, with_hex: bool, summary: bool,
           schema: str | None) -> None:
    """Decode the traces FILES (pcap or pcapng): SLAC, SDP, TCP and every V2G message.

    \b
    Examples:
      ccssniff decode session.pcapng              timeline of the whole session
      ccssniff decode session.pcapng --summary    protocol, IDs, phases, values, who limited the power
      ccssniff decode a.pcapng b.pcapng --json    JSON lines (each with "file" when several files)
      ccssniff decode trace.pcap --schema din     force DIN 70121 for a trace without handshake
    """
    if as_json and as_xml:
        raise UsageFailure("--json and --xml exclude each other")
    stdout = sys.stdout
    failures = 0
    for path in files:
        try:
            packets = require_decodable_link(read_packets(path))
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
        trace = _decode_file(path, packets, Pipeline(schema=schema), writer if show_events else None,
                             _progress_wanted(path, summary))
        if summary:
            if as_json:
                writer.summary(trace.to_dict())
            else:
                render_summary(console, trace, str(path))
    stdout.flush()
    if failures:
        raise SystemExit(2)


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
