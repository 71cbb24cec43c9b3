"""The ``openv2gx`` command line: decode and encode EXI messages, and answer OpenV2Gx command strings.

Two ways to call it:

* subcommands: ``openv2gx decode --schema din 809a...`` / ``openv2gx encode --schema din msg.json``
* the single-argument command strings of the original OpenV2Gx program (``openv2gx DD809a...``,
  ``openv2gx EDI_<sid>_<soc>_<amps>_<volts>``), answered with one JSON object (see compat.py).
"""

from __future__ import annotations

import importlib.metadata
import json
import sys

import click

from . import compat
from .decoder import decode
from .encoder import encode
from .errors import DecodeError, EncodeError, UnknownSchemaError
from .jsonin import from_json
from .tables import SCHEMAS
from .xmlin import from_xml

DECODE_SCHEMAS = SCHEMAS + ("iso20", "auto")


class InputError(ValueError):
    """A line of input that is not a hex message."""


def parse_hex(text: str) -> bytes:
    """Hex with optional ``0x`` prefixes and any whitespace, as people paste it."""
    compact = "".join(text.split())
    if compact[:2].lower() == "0x":
        compact = compact[2:]
    compact = compact.replace(":", "")
    try:
        return bytes.fromhex(compact)
    except ValueError:
        raise InputError(f"not hex: {compact[:40]!r}") from None


class OpenV2GxGroup(click.Group):
    """A click group that also takes an OpenV2Gx command string in place of a subcommand.

    Whatever is not a subcommand is an OpenV2Gx command string: scripts written for OpenV2Gx
    read one JSON object from every call, so an unknown or malformed one (``Q123``, ``D``,
    ``DZ12``) is answered with its error object, not with a usage text."""

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return "openv2gx-command", openv2gx_command, args
        return super().resolve_command(ctx, args)


def distribution_version() -> str:
    try:
        return importlib.metadata.version("ccssniff")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


@click.group(cls=OpenV2GxGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(distribution_version(), "-V", "--version", prog_name="openv2gx",
                      message="%(prog)s %(version)s (grammars: " + ", ".join(SCHEMAS) + ")")
def main():
    """Schema-informed EXI codec for V2G messages (appHandshake, DIN 70121, ISO 15118-2, ISO 15118-20).

    \b
    Examples:
      openv2gx decode --schema din 809a0200000000139faf9bd1400420400000
      openv2gx decode --schema auto --file messages.txt --xml
      openv2gx decode --schema din 809a... | openv2gx encode --schema din -
      openv2gx DD809a0200000000139faf9bd1400420400000      (OpenV2Gx command string)
      openv2gx EDI_0102030405060708_55_120_380              (OpenV2Gx: encode CurrentDemandReq)
    """


@main.command("decode")
@click.argument("messages", nargs=-1)
@click.option("--schema", "-s", type=click.Choice(DECODE_SCHEMAS), default="auto", show_default=True,
              help="grammar; 'auto' tries them all, 'iso20' the ISO 15118-20 ones")
@click.option("--file", "-f", "path", type=click.File("r"), help="read hex messages from a file, one per line")
@click.option("--xml", "as_xml", is_flag=True, help="print XML instead of JSON")
@click.option("--fragment", is_flag=True, help="decode an EXI fragment (signature input) instead of a document")
def decode_command(messages, schema, path, as_xml, fragment):
    """Decode hex EXI messages (arguments, --file, or standard input: one message per line).

    Prints one JSON object per message (or XML with --xml). A line that does not decode gives
    one line on stderr; the others still decode, and the exit status is then 2.

    \b
    Examples:
      openv2gx decode --schema din 809a0200000000139faf9bd1400420400000
      openv2gx decode --schema iso2 --xml 0x8098...
      echo 80400040 | openv2gx decode --schema appHandshake
    """
    if messages:
        lines = list(messages)
    else:
        lines = (path or click.get_text_stream("stdin")).read().splitlines()
    failed = 0
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        label = f"message {number}" if messages else f"line {number}"
        try:
            message = decode(parse_hex(line), schema, fragment=fragment)
        except (InputError, DecodeError) as exc:
            click.echo(f"error: {label}: {exc}", err=True)
            failed += 1
            continue
        for warning in message.warnings:
            click.echo(f"{label}: {warning}", err=True)
        for violation in message.schema_violations:
            click.echo(f"{label}: schema violation (decoded as sent): {violation}", err=True)
        click.echo(message.to_xml() if as_xml else message.to_json())
    if failed:
        sys.exit(2)


@main.command("encode")
@click.argument("source", type=click.File("r"), default="-")
@click.option("--schema", "-s", type=click.Choice(SCHEMAS), required=True, help="grammar to encode with")
@click.option("--fragment", is_flag=True, help="encode an EXI fragment instead of a document")
@click.option("--lenient", is_flag=True,
              help="write values past the schema's facets that the bits carry, and empty (null) typed "
                   "elements, as captured messages have them (decode reports them as schema violations)")
def encode_command(source, schema, fragment, lenient):
    """Encode messages given as JSON (what `decode` prints; one object per line) or XML (starting with '<').

    Prints the EXI stream as hex, one line per message.

    \b
    Examples:
      openv2gx encode --schema din message.json
      openv2gx decode --schema din 809a... | openv2gx encode --schema din -
      openv2gx encode --schema iso2 message.xml
      openv2gx decode -s iso2 8098... | openv2gx encode -s iso2 --lenient -
    """
    text = source.read()
    if text.lstrip().startswith("<"):
        documents = [("XML", text)]
    else:
        documents = [(f"line {n}", line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not documents:
        click.echo("error: no message on the input", err=True)
        sys.exit(2)
    failed = 0
    for label, document in documents:
        try:
            if label == "XML":
                message = from_xml(document, schema, fragment=fragment)
            else:
                message = from_json(document, schema, fragment=fragment)
            click.echo(encode(message, schema, fragment=fragment, lenient=lenient).hex())
        except (EncodeError, UnknownSchemaError) as exc:
            click.echo(f"error: {label}: {exc}", err=True)
            failed += 1
    if failed:
        sys.exit(2)


@click.command("openv2gx-command", context_settings={"ignore_unknown_options": True})
@click.argument("command", nargs=-1)
def openv2gx_command(command):
    """Answer one OpenV2Gx command string with the JSON object OpenV2Gx printed."""
    if len(command) == 1:
        answer = compat.run_command(command[0])
    else:
        answer = compat.answer(error=f"one command string expected, got {len(command)} arguments")
    click.echo(json.dumps(answer))
    # the JSON carries the error for scripts; the status says whether there is any result at all
    if answer["error"] and not answer["result"] and not answer["msgName"]:
        sys.exit(2)


if __name__ == "__main__":
    main()
