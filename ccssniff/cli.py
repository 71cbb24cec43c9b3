"""The ``ccssniff`` command line: a click group that the subpackages add their commands to."""

from __future__ import annotations

import logging
import warnings

import click

from ccssniff import __version__
from ccssniff.capture.command import listen
from ccssniff.capture.modem_command import modem
from ccssniff.capture.reader import CaptureFormatError
from ccssniff.batch.command import batch
from ccssniff.decode.command import decode
from ccssniff.emulate.command import emulate
from ccssniff.emulate.pki_command import pki
from ccssniff.report.command import report
from ccssniff.wireshark.command import wireshark
from ccssniff.ui.errors import UsageFailure

_LOG_LEVELS = {0: logging.WARNING, 1: logging.INFO}


class _Group(click.Group):
    """Turns input errors raised deep inside a command into one-line failures (exit status 2),
    and shows warnings about the input (e.g. a capture cut off) as one line each on stderr."""

    def invoke(self, ctx: click.Context):
        with warnings.catch_warnings():
            warnings.simplefilter("always", UserWarning)
            plain_showwarning = warnings.showwarning

            def show(message, category, filename, lineno, file=None, line=None):
                if issubclass(category, UserWarning):
                    click.secho(f"warning: {message}", fg="yellow", err=True)
                else:
                    plain_showwarning(message, category, filename, lineno, file, line)

            warnings.showwarning = show
            try:
                return super().invoke(ctx)
            except CaptureFormatError as exc:
                raise UsageFailure(str(exc)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="ccssniff")
@click.option("-v", "--verbose", count=True, help="Log to stderr: -v progress, -vv debug detail.")
def cli(verbose: int) -> None:
    """See, decode and make the digital side of CCS charging: HomePlug Green PHY (SLAC),
    SDP, V2GTP and the EXI messages of DIN 70121 / ISO 15118-2 / ISO 15118-20.

    \b
    Examples:
      ccssniff decode session.pcapng           list what happened in a trace
      ccssniff decode session.pcapng --json    the same as JSON lines
      ccssniff -v decode session.pcapng        with progress on stderr
      ccssniff emulate lab -w lab.pcapng       make a reference session, no hardware
      ccssniff report session.pcapng -o r.html a page of plots, phases and verdicts
    """
    logging.basicConfig(
        level=_LOG_LEVELS.get(verbose, logging.DEBUG),
        format="%(levelname)s %(name)s: %(message)s",
        force=True,  # each invocation (also in tests) sets its own level
    )


cli.add_command(batch)
cli.add_command(decode)
cli.add_command(emulate)
cli.add_command(pki)
cli.add_command(listen)
cli.add_command(modem)
cli.add_command(report)
cli.add_command(wireshark)


def main() -> None:
    cli(prog_name="ccssniff")
