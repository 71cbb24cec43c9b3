"""The bundled captures are exactly what the commands in captures/README.md make, and decode."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from ccssniff.cli import cli

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
COMMANDS = re.findall(r"`ccssniff (emulate lab [^`]+)`", (CAPTURES / "README.md").read_text())


def test_every_bundled_capture_has_its_command():
    written = {Path(shlex.split(command)[-1]).name for command in COMMANDS}
    assert written == {p.name for p in CAPTURES.glob("*.pcapng")}
    assert len(written) == 5


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: shlex.split(c)[-1])
def test_command_makes_the_bundled_capture_byte_for_byte(tmp_path, command):
    arguments = shlex.split(command)
    bundled = CAPTURES / Path(arguments[-1]).name
    arguments[-1] = str(tmp_path / bundled.name)
    run = CliRunner().invoke(cli, arguments)
    assert run.exit_code == 0, run.output
    assert (tmp_path / bundled.name).read_bytes() == bundled.read_bytes()


@pytest.mark.parametrize("capture", sorted(CAPTURES.glob("*.pcapng")), ids=lambda p: p.name)
def test_bundled_capture_decodes_without_errors(capture):
    run = CliRunner().invoke(cli, ["decode", "--json", str(capture)])
    assert run.exit_code == 0, run.output
    events = [json.loads(line) for line in run.output.splitlines()]
    kinds = [e["kind"] for e in events]
    assert "error" not in kinds and "sequence" not in kinds
    assert kinds.count("v2g") > 300
    names = [e["name"] for e in events if e["kind"] == "v2g"]
    assert names[0] == "supportedAppProtocolReq" and names[-1] == "SessionStopRes"


@pytest.mark.parametrize("capture", sorted(CAPTURES.glob("*.pcapng")), ids=lambda p: p.name)
def test_bundled_capture_summary_names_the_protocol(capture):
    run = CliRunner().invoke(cli, ["decode", "--summary", str(capture)])
    assert run.exit_code == 0, run.output
    protocol = {"din": "DIN SPEC 70121", "iso2": "ISO 15118-2", "iso20": "ISO 15118-20"}[capture.name.split("_")[0]]
    assert protocol in run.output
