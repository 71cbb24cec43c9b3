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
