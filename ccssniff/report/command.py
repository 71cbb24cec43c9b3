"""``ccssniff report FILE... -o report.html``: charging sessions as a page read at a glance."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from ccssniff.capture.reader import CaptureFormatError
from ccssniff.ui.errors import UsageFailure

_PROGRESS_MIN_BYTES = 2 * 1024 * 1024  # below this a file decodes faster than a bar can draw
_RECORD_OVERHEAD = 32  # approximate bytes of pcap/pcapng framing per packet


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("report.html"),
              show_default=True, help="The HTML page (self-contained: open it anywhere, no network).")
@click.option("--pdf", "pdf_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a PDF: a page of facts per trace, then one figure per page.")
@click.option("--png", "png_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write every figure as a PNG into this directory.")
@click.option("--csv", "csv_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write the numbers behind the figures as CSV files into this directory.")
def report(files: tuple[Path, ...], output: Path, pdf_path: Path | None, png_dir: Path | None,
           csv_dir: Path | None) -> None:
    """Report the charging sessions in FILES (pcap or pcapng) as one HTML page: outcome and first
    cause, phases against the standard's timeouts, values and limits over time with the limiting
    side, response times, the SLAC attenuation profile and ladder, verdicts with frame numbers.
    Several files get a comparison table first.

    \b
    Examples:
      ccssniff report session.pcapng -o report.html
      ccssniff report a.pcapng b.pcapng c.pcapng -o fleet.html      comparison table first
      ccssniff report session.pcapng -o r.html --pdf r.pdf --png figures/ --csv tables/
    """
    try:
        from ccssniff.report.analyse import analyse_file
        from ccssniff.report.exports import write_csv, write_pdf, write_png
        from ccssniff.report.page import render_page
    except ImportError as error:  # matplotlib is an install requirement, but a broken install says so
        raise UsageFailure(f"the report needs matplotlib ({error}); install it with: pip install ccssniff") from None
    reports = []
    failures = 0
    for path in files:
        try:
            reports.append(_analyse(path, analyse_file))
        except (CaptureFormatError, OSError) as error:
            if len(files) == 1:
                raise UsageFailure(str(error)) from None
            UsageFailure(f"{path}: {error}").show()
            failures += 1
    if not reports:
        raise UsageFailure("none of the files could be read")
    html, plots = render_page(reports)
    output.write_text(html, encoding="utf-8")
    written = [output]
    if png_dir is not None:
        written += write_png(plots, png_dir)
    if pdf_path is not None:
        written.append(write_pdf(reports, plots, pdf_path))
    if csv_dir is not None:
        written += write_csv(reports, csv_dir)
    sessions = sum(len(item.sessions) for item in reports)
    click.echo(f"{output}: {len(reports)} trace(s), {sessions} V2G session(s)"
               + (f"; {len(written) - 1} more file(s) written" if len(written) > 1 else ""), err=True)
    if failures:
        raise SystemExit(2)


def _analyse(path: Path, analyse_file):
    """Decode one trace, with a progress bar on stderr when that is a terminal and the file is big."""
    try:
        size = os.path.getsize(path)
    except OSError:
        size = 0
    if not sys.stderr.isatty() or size < _PROGRESS_MIN_BYTES:
        return analyse_file(path)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task(path.name, total=size)

    def advance(count: int, packet) -> None:
        if not count % 1024:
            bar.update(task, advance=1024 * (len(packet.data) + _RECORD_OVERHEAD))

    with bar:
        return analyse_file(path, on_packet=advance)
