"""The tshark builds the Lua dissector tests run on: Debian's (Wireshark 4.0, Lua 5.2) and
Wireshark 4.4 (Lua 5.4) unpacked by scripts/fetch_wireshark44.sh, run through its own loader and,
because 4.4 refuses user Lua scripts as root, as the unprivileged user nobody."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

VERSIONS = ("4.0", "4.4")
WIRESHARK44 = Path(os.environ.get("CCSSNIFF_WIRESHARK44", "/opt/ccssniff-wireshark44"))


def tshark_command(version: str) -> tuple[list[str], dict]:
    """(argv prefix, environment) that runs tshark of that version; skips the test if absent."""
    env = dict(os.environ)
    if version == "4.0":
        path = shutil.which("tshark")
        if path is None:
            pytest.skip("tshark is not installed (Debian package tshark)")
        return [path], env
    root = WIRESHARK44 / "root"
    lib = root / "usr" / "lib" / "x86_64-linux-gnu"
    tshark = root / "usr" / "bin" / "tshark"
    if not tshark.is_file():
        pytest.skip(f"Wireshark 4.4 is not unpacked in {WIRESHARK44} (scripts/fetch_wireshark44.sh does it)")
    env.update(WIRESHARK_DATA_DIR=str(root / "usr" / "share" / "wireshark"),
               WIRESHARK_PLUGIN_DIR=str(lib / "wireshark" / "plugins" / "4.4"), HOME="/tmp")
    env.pop("WIRESHARK_CONFIG_DIR", None)
    command = [str(lib / "ld-linux-x86-64.so.2"), "--library-path",
               f"{lib}:{root / 'lib' / 'x86_64-linux-gnu'}", str(tshark)]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv (util-linux) is needed to run Wireshark 4.4 as an unprivileged user")
        command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] + command
    return command, env
