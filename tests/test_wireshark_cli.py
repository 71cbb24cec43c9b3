"""``ccssniff wireshark install/path/open``: installed dissectors and profile work in real tshark."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from ccssniff.cli import cli
from ccssniff.wireshark.install import personal_config_dir

REPO = Path(__file__).resolve().parents[1]
CAPTURE = REPO / "captures" / "iso20_dc.pcapng"


def test_personal_folders_per_platform(tmp_path):
    assert personal_config_dir({"APPDATA": r"C:\Users\a\AppData\Roaming"}, "win32") == \
        Path(r"C:\Users\a\AppData\Roaming") / "Wireshark"
    assert personal_config_dir({"HOME": str(tmp_path)}, "darwin") == tmp_path / ".config" / "wireshark"
    assert personal_config_dir({"HOME": str(tmp_path), "XDG_CONFIG_HOME": "/x"}, "linux") == Path("/x/wireshark")
    (tmp_path / ".wireshark").mkdir()
    assert personal_config_dir({"HOME": str(tmp_path)}, "linux") == tmp_path / ".wireshark"
    assert personal_config_dir({"WIRESHARK_CONFIG_DIR": "/w", "HOME": str(tmp_path)}, "linux") == Path("/w")


def test_install_with_profile_then_tshark_uses_both(tshark, tmp_path):
    env = {**os.environ, "WIRESHARK_CONFIG_DIR": str(tmp_path)}
    result = CliRunner().invoke(cli, ["wireshark", "install", "--profile"], env=env)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "plugins" / "ccs15118.lua").is_file()
    assert not list((tmp_path / "plugins" / "ccs15118").glob("*.lua"))
    assert (tmp_path / "profiles" / "CCS15118" / "colorfilters").is_file()
    path = CliRunner().invoke(cli, ["wireshark", "path"], env=env)
    assert path.output.strip() == f"{tmp_path / 'plugins'}\tinstalled"
    # no -X lua_script: the personal plugin folder alone loads the dissectors; -C picks the profile
    done = subprocess.run([tshark, "-n", "-C", "CCS15118", "-r", str(CAPTURE), "-Y", 'v2g.msg == "DC_ChargeLoopRes"'],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines and all(" DC_ChargeLoopRes iso20 OK " in line for line in lines)


def test_install_into_a_chosen_folder(tmp_path):
    result = CliRunner().invoke(cli, ["wireshark", "install", "--path", str(tmp_path / "p")])
    assert result.exit_code == 0
    assert (tmp_path / "p" / "ccs15118" / "din.ltab").is_file()


def test_open_with_tshark_arguments(tshark):
    result = subprocess.run(
        [sys.executable, "-c", "from ccssniff.cli import main; main()",
         "wireshark", "open", str(CAPTURE), "--tshark", "-Y 'v2g.msg == \"SessionSetupReq\"' -T fields -e v2g.msg"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["SessionSetupReq"]


def test_open_reports_bad_arguments_in_one_line():
    result = CliRunner().invoke(cli, ["wireshark", "open", str(CAPTURE), "--tshark", "-Y 'unclosed"])
    assert result.exit_code == 2
    assert "--tshark" in result.output


def test_open_hands_the_traces_own_tls_keys_to_tshark(tshark, shared_dir):
    capture = shared_dir / "captures" / "dsv2gshark" / "ISO-20_TLS13_DC_DS5366_Josev.pcapng"
    args = ["-Y", "v2g", "-T", "fields", "-e", "v2g.msg"]
    plain = subprocess.run([tshark, "-n", "-X", f"lua_script:{REPO / 'lua_dissectors' / 'ccs15118.lua'}",
                            "-r", str(capture), *args], capture_output=True, text=True, timeout=60)
    assert plain.stdout.split() == []  # encrypted: nothing to decode without the keys
    opened = subprocess.run(
        [sys.executable, "-c", "from ccssniff.cli import main; main()", "wireshark", "open", str(capture),
         "--tshark", " ".join(args)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert opened.returncode == 0, opened.stderr
    assert "4 TLS key log line(s)" in opened.stderr
    names = opened.stdout.split()
    assert names[:2] == ["supportedAppProtocolReq", "supportedAppProtocolRes"]
    assert "DC_ChargeLoopReq" in names and "SessionStopRes" in names
    keys = subprocess.run([tshark, "-n", "-X", f"lua_script:{REPO / 'lua_dissectors' / 'ccs15118.lua'}",
                           "-r", str(capture), "-Y", "keylog15118", "-T", "fields", "-e", "keylog15118.label"],
                          capture_output=True, text=True, timeout=60)
    assert sorted(keys.stdout.split()) == sorted(["CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                                                  "SERVER_TRAFFIC_SECRET_0", "CLIENT_TRAFFIC_SECRET_0"])


def test_key_log_lines_are_recognised_and_other_text_is_not():
    from ccssniff.wireshark.keylog import key_log_lines
    line = "CLIENT_RANDOM " + "ab" * 32 + " " + "cd" * 48
    assert key_log_lines((line + "\n").encode()) == [line]
    assert key_log_lines(b"M-SEARCH * HTTP/1.1\r\n") == []
    assert key_log_lines(b"\xff\xfe") == []


def test_every_filter_of_the_profile_compiles(tshark):
    from ccssniff.wireshark.install import COLOUR_RULES, FILTER_BUTTONS, IO_GRAPHS
    expressions = [expr for _, expr in FILTER_BUTTONS] + [expr for _, expr, _, _ in COLOUR_RULES]
    expressions += [field for _, field, _ in IO_GRAPHS]
    script = REPO / "lua_dissectors" / "ccs15118.lua"
    for expression in expressions:
        done = subprocess.run([tshark, "-n", "-X", f"lua_script:{script}", "-r", str(CAPTURE), "-c", "50",
                               "-Y", expression], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{expression}: {done.stderr}"
