"""``ccssniff emulate`` as a user meets it: bad interfaces, the help texts, what ``pev --port`` does."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from ccssniff.capture.reader import read_packets
from ccssniff.cli import cli
from ccssniff.emulate import netns
from ccssniff.emulate.command import emulate

MISSING = "ccsKnosuch0"


@pytest.mark.parametrize("side", ["evse", "pev"])
@pytest.mark.parametrize("extra", [(), ("-w", "{tmp}/rec.pcapng"), ("--no-slac",), ("--no-slac", "-w", "{tmp}/r.pcapng")],
                         ids=["plain", "write", "no-slac", "no-slac-write"])
def test_missing_interface_is_one_line_and_exit_2(tmp_path, side, extra):
    args = [part.format(tmp=tmp_path) for part in extra]
    result = CliRunner().invoke(cli, ["emulate", side, MISSING, *args])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [f"error: no network interface named {MISSING!r}"]
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "rec.pcapng").exists() and not (tmp_path / "r.pcapng").exists()


def test_every_emulate_option_is_described():
    for command in emulate.commands.values():
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help and len(param.help) > 10, f"{command.name} {param.opts}"


def test_pev_port_says_what_the_car_does_with_it():
    def port_help(side):
        text = CliRunner().invoke(cli, ["emulate", side, "--help"], terminal_width=200).output
        return " ".join(text.split("--port", 1)[1].split())
    assert "car connects to" in port_help("pev") and "SDP" in port_help("pev")
    assert "charger listens on" in port_help("evse")


def test_lab_help_examples_run_as_written(tmp_path):
    text = CliRunner().invoke(cli, ["emulate", "lab", "--help"], terminal_width=200).output
    examples = [line.strip() for line in text.splitlines() if line.strip().startswith("ccssniff emulate lab")]
    assert len(examples) >= 3
    for number, example in enumerate(examples):
        words = shlex.split(re.split(r"\s{2,}", example)[0])[1:]  # the command, without its comment
        target = tmp_path / f"example{number}.pcapng"
        words[words.index("-w") + 1] = str(target)
        if "--config" in words:
            config = tmp_path / "lab.toml"
            config.write_text("[evse]\nmax_power = 80000\n")
            words[words.index("--config") + 1] = str(config)
        result = CliRunner().invoke(cli, words)
        assert result.exit_code == 0, (example, result.output)
        assert "session completed" in result.output and len(list(read_packets(target))) > 100


@pytest.mark.skipif(netns.unavailable_reason() is not None, reason=str(netns.unavailable_reason()))
def test_pev_connects_to_the_port_it_is_given(tmp_path, monkeypatch):
    """The charger listens on 50000 and announces it; a car told --port 50001 tries that port."""
    monkeypatch.setattr(netns, "PREFIX", "ccsK")
    base = [sys.executable, "-c", "from ccssniff.cli import main; main()", "emulate"]
    with netns.Namespaces(2) as (ev, evse):
        ev_if, evse_if = netns.veth(ev, evse)
        charger = evse.popen(base + ["evse", evse_if, "--modem", "none", "--port", "50000", "--timeout", "30"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        car = ev.popen(base + ["pev", ev_if, "--modem", "none", "--port", "50001", "--timeout", "30"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        output, _ = car.communicate(timeout=45)
        charger.kill()
        charger.communicate(timeout=10)
    assert car.returncode == 2, output
    lines = output.strip().splitlines()
    assert len(lines) == 1 and re.fullmatch(r"error: cannot connect to the charger at \[fe80::[0-9a-f:]+\]:50001: .+",
                                            lines[0]), output
