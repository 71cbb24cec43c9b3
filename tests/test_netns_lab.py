"""`ccssniff emulate lab --netns`: the lab's session as real processes in network namespaces,
through the powerline simulator, with `ccssniff listen` beside it; nothing left behind."""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ccssniff.capture.reader import read_packets
from ccssniff.cli import cli
from ccssniff.decode.events import V2G
from ccssniff.decode.trace import decode_trace
from ccssniff.emulate import netns

CLI = [sys.executable, "-c", "from ccssniff.cli import main; main()"]
LAB_TIMEOUT = 120
needs_namespaces = pytest.mark.skipif(netns.unavailable_reason() is not None, reason=str(netns.unavailable_reason()))


def lab(prefix: str, output, *options: str) -> list[str]:
    return CLI + ["emulate", "lab", "--netns", "--netns-prefix", prefix, "-w", str(output), *options]


def leftovers(prefix: str) -> list[str]:
    """Namespaces, interfaces of the root namespace and processes that carry ``prefix``."""
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout.split()
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    return ([name for name in names if name.startswith(prefix)]
            + [line for line in links.splitlines() if f" {prefix}" in line]
            + [command for command in command_lines() if prefix in command])


def command_lines() -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            found.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            pass  # ended meanwhile
    return found


def v2g_names(path) -> tuple[list[str], dict]:
    names: list[str] = []
    trace = decode_trace(read_packets(path), on_event=lambda e, _: names.append(e.name) if e.kind == V2G else None)
    return names, trace.to_dict()


@needs_namespaces
def test_a_real_iso2_session_through_the_simulator_is_recorded_and_decodes_completed(tmp_path):
    prefix = f"ccsN{secrets.token_hex(3)}"
    output = tmp_path / "real.pcapng"
    done = subprocess.run(lab(prefix, output, "--protocol", "iso2", "--charge-time", "2", "--capacity", "0.5",
                              "--listen", "full"),
                          capture_output=True, text=True, timeout=LAB_TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    outcome = done.stdout.splitlines()
    assert outcome[0].startswith("iso2 dc: session completed (") and outcome[0].endswith(f"-> {output}")
    assert "CurrentDemandReq x" in outcome[1]
    assert outcome[2].startswith("decoded: SLAC completed; SDP completed; V2G (ISO 15118-2) completed")
    assert outcome[3].startswith("listen (full view): joined, ")
    assert f"{prefix}-line" in done.stderr  # the namespaces it made carry the prefix

    names, summary = v2g_names(output)
    assert names[0] == "supportedAppProtocolReq" and names[-1] == "SessionStopRes"
    [session] = summary["sessions"]
    assert session["outcome"]["result"] == "completed" and session["protocol"] == "ISO 15118-2"
    assert summary["slac"]["outcome"]["result"] == "completed"
    assert session["soc"]["last"] > session["soc"]["min"]  # the kernel carried a real charge
    # the sniffer beside them decoded the same session from its own modem
    listened, _ = v2g_names(tmp_path / "real-listen.pcapng")
    assert listened == names
    assert leftovers(prefix) == []


@needs_namespaces
def test_a_charger_that_cannot_reach_the_battery_voltage_fails_the_session_with_exit_1(tmp_path):
    prefix = f"ccsN{secrets.token_hex(3)}"
    output = tmp_path / "weak.pcapng"
    done = subprocess.run(lab(prefix, output, "--charge-time", "2", "--evse-max-voltage", "10"),
                          capture_output=True, text=True, timeout=LAB_TIMEOUT)
    assert done.returncode == 1, done.stdout + done.stderr
    first, _, decoded = done.stdout.splitlines()[:3]
    assert first.startswith("din dc: session FAILED (PreCharge")
    assert decoded.startswith("decoded: SLAC completed; SDP completed; V2G (DIN SPEC 70121) failed: ")
    [session] = v2g_names(output)[1]["sessions"]
    assert session["outcome"]["result"] == "failed"
    assert leftovers(prefix) == []


@needs_namespaces
def test_sigterm_mid_session_removes_namespaces_veths_and_processes(tmp_path):
    prefix = f"ccsN{secrets.token_hex(3)}"
    process = subprocess.Popen(lab(prefix, tmp_path / "cut.pcapng", "--charge-time", "30", "--listen", "filtering"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while "emulate evse and pev" not in process.stderr.readline():
            assert time.monotonic() < deadline and process.poll() is None, "the lab did not start its sides"
        time.sleep(3)  # mid-session: SLAC or V2G under way
        assert len([name for name in leftovers(prefix) if name.startswith(prefix)]) == 4  # namespaces
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 2
    assert "interrupted (SIGTERM); namespaces removed" in errors
    assert leftovers(prefix) == []


def test_without_root_one_line_and_exit_2(tmp_path, monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    result = CliRunner().invoke(cli, ["emulate", "lab", "--netns", "-w", str(tmp_path / "x.pcapng")])
    assert result.exit_code == 2
    assert result.output.strip() == "error: --netns: network namespaces need root"
    assert not (tmp_path / "x.pcapng").exists()


@pytest.mark.parametrize("options,complaint", [
    (["--netns", "--tls"], "--tls is not available with --netns"),
    (["--netns", "--netns-prefix", "abc"], "--netns-prefix 'abc'"),
    (["--netns", "--netns-prefix", "ccs0123456789"], "at most 15 characters"),
    (["--listen", "full"], "--listen and --netns-prefix need --netns"),
])
def test_options_that_do_not_fit_are_refused(tmp_path, options, complaint):
    result = CliRunner().invoke(cli, ["emulate", "lab", *options, "-w", str(tmp_path / "x.pcapng")])
    assert result.exit_code == 2 and complaint in result.output
