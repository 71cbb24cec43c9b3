"""The ccssniff command group: version, help, verbosity, one-line failures and warnings."""

from __future__ import annotations

import logging
import subprocess
import sys

import click
from click.testing import CliRunner

from ccssniff import __version__
from ccssniff.capture.pcapng import PcapngWriter
from ccssniff.cli import cli
from ccssniff.ui.errors import UsageFailure


def run(*args):
    return CliRunner().invoke(cli, list(args), prog_name="ccssniff")


def test_version():
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"ccssniff, version {__version__}"


def test_help_lists_examples_and_working_commands():
    result = run("--help")
    assert result.exit_code == 0
    assert "Examples:" in result.stdout and "ccssniff decode session.pcapng" in result.stdout
    for name in cli.list_commands(click.Context(cli)):
        assert run(name, "--help").exit_code == 0, name


def test_not_a_capture_fails_with_one_line_and_status_2(tmp_path):
    text_file = tmp_path / "notes.txt"
    text_file.write_text("this is no capture\n")
    result = run("decode", str(text_file))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: {text_file} is not a pcap or pcapng capture (it starts with 74 68 69 73)"
    ]


def test_missing_file_fails_with_one_line_and_status_2(tmp_path):
    result = run("decode", str(tmp_path / "absent.pcapng"))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"error: cannot read {tmp_path / 'absent.pcapng'}: No such file or directory"]


def test_cut_off_capture_reads_with_one_warning_line(tmp_path):
    path = tmp_path / "cut.pcapng"
    with PcapngWriter(path) as writer:
        for n in range(3):
            writer.write(bytes([n]) * 60)
    path.write_bytes(path.read_bytes()[:-10])
    result = run("decode", str(path))
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        f"warning: {path} is cut off in the middle of a packet; read the 2 complete packets before the cut"
    ]


def test_usage_failure_is_one_red_line_with_status_2():
    @cli.command("fail-for-test")
    def fail_for_test():
        raise UsageFailure("the value 7 is out of range")

    try:
        result = CliRunner().invoke(cli, ["fail-for-test"], color=True)
    finally:
        cli.commands.pop("fail-for-test")
    assert result.exit_code == 2
    assert result.stderr == "\x1b[31merror: the value 7 is out of range\x1b[0m\n"


def test_verbosity_sets_the_log_level(tmp_path):
    path = tmp_path / "one.pcapng"
    with PcapngWriter(path) as writer:
        writer.write(bytes(60))
    levels = {}
    for flags, expected in (((), logging.WARNING), (("-v",), logging.INFO), (("-vv",), logging.DEBUG)):
        assert run(*flags, "decode", str(path)).exit_code == 0
        levels[flags] = logging.getLogger().level
        assert levels[flags] == expected


def test_console_script_is_installed():
    result = subprocess.run(
        [sys.executable, "-c", "from ccssniff.cli import main; main()", "--version"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0 and result.stdout.strip() == f"ccssniff, version {__version__}"
