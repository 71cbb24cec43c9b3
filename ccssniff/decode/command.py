"""``ccssniff decode FILE...``: a trace in, the whole charging session out."""
from __future__ import annotations

import contextlib
import itertools
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from ccssniff.capture.reader import CaptureFormatError, read_packets, require_decodable_link
from ccssniff.decode.filter import GRAMMAR_HELP, FilterError, compile_filter
from ccssniff.decode.frames import FrameWriter
from ccssniff.decode.keylog import KeyLog
from ccssniff.decode.pipeline import Pipeline
from ccssniff.decode.schema import FORCEABLE
from ccssniff.decode.session import TraceSession
from ccssniff.decode.trace import decode_trace
from ccssniff.decode.trace_keys import keys_in_capture
from ccssniff.decode.trace_keys import keys_in_capture
from ccssniff.ui.errors import UsageFailure
from ccssniff.ui.jsonl import JsonLinesWriter
from ccssniff.ui.summary import render_summary
from ccssniff.ui.timeline import TimelineWriter
from ccssniff.ui.xmlout import XmlWriter

# Below this size a file decodes faster than a progress bar can draw.
_PROGRESS_MIN_BYTES = 2 * 1024 * 1024
_RECORD_OVERHEAD = 32  # approximate bytes of pcap/pcapng framing per packet, for the progress bar
STDIN = "-"


@click.command(epilog=GRAMMAR_HELP)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, allow_dash=True))
@click.option("--json", "as_json", is_flag=True, help="JSON lines on stdout, one event each, with the full body.")
@click.option("--xml", "as_xml", is_flag=True, help="Each V2G message as XML; other events as XML comments.")
@click.option("--hex", "with_hex", is_flag=True, help="Add the raw V2GTP payload to every message.")
@click.option("--summary", is_flag=True,
              help="A report per trace instead of the timeline (with --json: one summary object at the end).")
@click.option("--schema", type=click.Choice(FORCEABLE), default=None,
              help="Decode every V2G message with this schema, whatever the handshake says.")
@click.option("-Y", "--filter", "expression", metavar="EXPR",
              help="Show only the events EXPR selects (grammar below); the summary still covers the whole trace.")
@click.option("-c", "--count", "frame_limit", type=click.IntRange(min=1), metavar="N",
              help="Stop after reading N frames (of each file).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write the output (timeline, JSON, XML or summary) to this file instead of stdout.")
@click.option("-w", "--write", "frames_file", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write the frames of the events -Y selects to this pcapng file (all frames read without -Y).")
@click.option("--keylog", "keylog_files", multiple=True, type=click.Path(path_type=Path),
              help="TLS keys in the NSS key log format (SSLKEYLOGFILE); may be repeated. Keys the trace "
                   "carries itself (key-log lines in UDP, pcapng Decryption Secrets Blocks) are always used.")
@click.option("--inject-secrets", is_flag=True,
              help="With -w: put every TLS key (from the trace and --keylog) into the written file as a "
                   "Decryption Secrets Block, so Wireshark decrypts it with no settings.")
@click.option("--show-key", is_flag=True,
              help="Show HomePlug network keys (NMK) in full; by default only their first and last byte.")
def decode(files: tuple[Path, ...], as_json: bool, as_xml: bool, with_hex: bool, summary: bool,
           schema: str | None, expression: str | None, frame_limit: int | None, output: Path | None,
           frames_file: Path | None, keylog_files: tuple[Path, ...], inject_secrets: bool,
           show_key: bool) -> None:
    """Decode the traces FILES (pcap or pcapng; - reads standard input): SLAC, SDP, TCP and every V2G message.

    \b
    Examples:
      ccssniff decode session.pcapng              timeline of the whole session
      ccssniff decode session.pcapng --summary    protocol, IDs, phases, values, who limited the power
      ccssniff decode a.pcapng b.pcapng --json    JSON lines (each with "file" when several files)
      ccssniff decode trace.pcap --schema din     force DIN 70121 for a trace without handshake
      tcpdump -i eth0 -w - | ccssniff decode -    a live capture from stdin (pcap or pcapng)
      ccssniff decode s.pcapng -Y 'CurrentDemand* and EVTargetCurrent > 100'
      ccssniff decode s.pcapng -Y 'kind == sequence' -w problems.pcapng -o problems.txt
      ccssniff decode tls.pcapng --keylog keys.log                decrypt TLS with a key log
      ccssniff decode tls.pcapng --inject-secrets -w out.pcapng   the keys into the capture, for Wireshark
    """
    if as_json and as_xml:
        raise UsageFailure("--json and --xml exclude each other")
    if inject_secrets and frames_file is None:
        raise UsageFailure("--inject-secrets needs -w FILE")
    given_keys = _read_keylogs(keylog_files)
    if list(files).count(Path(STDIN)) > 1:
        raise UsageFailure("standard input (-) can be read only once")
    try:
        selected = compile_filter(expression) if expression is not None else None
    except FilterError as error:
        raise UsageFailure(f"--filter: {error}") from None
    with contextlib.ExitStack() as stack:
        stdout = _open_output(output, stack, live=Path(STDIN) in files)
        frames = _open_frames(frames_file, stack)
        failures = 0
        for path in files:
            try:
                packets = require_decodable_link(_read(path))
            except CaptureFormatError as error:
                if len(files) == 1:
                    raise UsageFailure(str(error)) from None
                UsageFailure(str(error)).show()
                failures += 1
                continue
            if frame_limit is not None:
                packets = itertools.islice(packets, frame_limit)
            if frames is not None:
                packets = frames.keep(packets)
            label = _label(path) if len(files) > 1 else None
            console = Console(file=stdout, soft_wrap=True, highlight=False)
            if as_json:
                writer: Any = JsonLinesWriter(stdout, with_hex, label, show_key=show_key)
            elif as_xml:
                writer = XmlWriter(stdout, with_hex, show_key=show_key)
            else:
                writer = TimelineWriter(console, with_hex, show_key=show_key)
                if label is not None and not summary:
                    writer.heading(label)
            show_events = not summary or as_json
            on_event = _selecting(selected, writer.event if show_events else None, frames)
            keys = _keys_for(path, given_keys)
            if frames is not None and inject_secrets:
                frames.add_secrets(keys.nss_text())
            trace = _decode_file(path, packets, Pipeline(schema=schema, keys=keys), on_event,
                                 _progress_wanted(path, summary, output))
            if frames is not None:
                frames.finish_file()
            if summary:
                if as_json:
                    writer.summary(trace.to_dict())
                else:
                    render_summary(console, trace, _label(path))
            elif isinstance(writer, TimelineWriter) and selected is None:
                writer.outcomes(trace.to_dict())
        stdout.flush()
    if failures:
        raise SystemExit(2)


def _label(path: Path) -> str:
    return "<stdin>" if str(path) == STDIN else str(path)


def _read(path: Path) -> Iterator:
    if str(path) != STDIN:
        return read_packets(path)
    return read_packets(_Stream(click.get_binary_stream("stdin")))


class _Stream:
    """Standard input as the reader needs it: a pipe hands over what it has at once, so that
    ``tcpdump -w - | ccssniff decode -`` shows events as they come, not per megabyte."""

    name = "<stdin>"

    def __init__(self, stream: Any) -> None:
        self._read = getattr(stream, "read1", stream.read)

    def read(self, size: int = -1) -> bytes:
        return self._read(size)


def _open_output(output: Path | None, stack: contextlib.ExitStack, live: bool = False):
    """stdout or the -o file; line-buffered for a live capture on stdin, so that each event
    reaches the next program in a pipe as it happens (tshark -l)."""
    if output is None:
        reconfigure = getattr(sys.stdout, "reconfigure", None)
        if live and reconfigure is not None:
            reconfigure(line_buffering=True)
        return sys.stdout
    try:
        return stack.enter_context(open(output, "w", encoding="utf-8", buffering=1 if live else -1))
    except OSError as error:
        raise UsageFailure(f"cannot write {output}: {error.strerror or error}") from None


def _open_frames(frames_file: Path | None, stack: contextlib.ExitStack) -> FrameWriter | None:
    if frames_file is None:
        return None
    try:
        return stack.enter_context(FrameWriter(frames_file))
    except OSError as error:
        raise UsageFailure(f"cannot write {frames_file}: {error.strerror or error}") from None


def _selecting(selected: Any, show: Any, frames: FrameWriter | None) -> Any:
    """The event sink: events that pass the filter go to the output and mark their frames."""
    if selected is None and frames is None:
        return show
    if frames is not None and selected is None:
        frames.select_all()

    def sink(event: Any, start: float) -> None:
        if selected is not None and not selected(event):
            return
        if frames is not None:
            frames.select(event.frame)
        if show is not None:
            show(event, start)

    return sink


def _keys_for(path: Path, given: KeyLog) -> KeyLog:
    """The keys for one trace: those given, and every key the file itself holds wherever it is (a
    first pass), so that keys disclosed after their handshake still open it. Standard input is
    read once: its keys count from where they appear."""
    keys = KeyLog()
    keys.merge(given)
    if str(path) != STDIN:
        try:
            keys.merge(keys_in_capture(path).keys)
        except CaptureFormatError:
            pass  # the real pass reports how far the capture can be read
    return keys


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


def _progress_wanted(path: Path, summary: bool, output: Path | None = None) -> bool:
    """Only on a terminal, and only where the bar does not fight with the timeline for it."""
    on_terminal = sys.stdout.isatty() and output is None
    if str(path) == STDIN or not sys.stderr.isatty() or (on_terminal and not summary):
        return False
    try:
        return os.path.getsize(path) >= _PROGRESS_MIN_BYTES
    except OSError:
        return False


def _decode_file(path: Path, packets: Iterable, pipeline: Pipeline, on_event: Any,
                 progress: bool) -> TraceSession:
    if not progress:
        return decode_trace(packets, pipeline=pipeline, on_event=on_event)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task(path.name, total=os.path.getsize(path))

    def advance(count: int, packet: Any) -> None:
        if not count % 1024:
            bar.update(task, advance=1024 * (len(packet.data) + _RECORD_OVERHEAD))

    with bar:
        return decode_trace(packets, pipeline=pipeline, on_event=on_event, on_packet=advance)
