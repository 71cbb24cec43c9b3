"""Where Wireshark looks for personal Lua plugins and profiles, and copying ours there."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

def _lua_dir() -> Path:
    """The entry script's folder: beside the package in a source tree, <prefix>/share/ccssniff
    where pip installed it (setup.cfg's data_files)."""
    source = Path(__file__).resolve().parents[2] / "lua_dissectors"
    if (source / "ccs15118.lua").is_file():
        return source
    return Path(sys.prefix) / "share" / "ccssniff" / "lua_dissectors"


#: the entry script and its data folder
LUA_DIR = _lua_dir()
ENTRY_SCRIPT = "ccs15118.lua"
DATA_FOLDER = "ccs15118"
PROFILE_NAME = "CCS15118"


def entry_script() -> Path:
    return LUA_DIR / ENTRY_SCRIPT


def personal_config_dir(environ=None, platform: str | None = None) -> Path:
    """Wireshark's personal configuration folder: WIRESHARK_CONFIG_DIR if set; %APPDATA%\\Wireshark
    on Windows; otherwise $XDG_CONFIG_HOME/wireshark (default ~/.config/wireshark), or the legacy
    ~/.wireshark where only that one exists (Linux and macOS alike)."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if environ.get("WIRESHARK_CONFIG_DIR"):
        return Path(environ["WIRESHARK_CONFIG_DIR"])
    home = Path(environ.get("HOME") or environ.get("USERPROFILE") or Path.home())
    if platform.startswith("win"):
        appdata = environ.get("APPDATA")
        return Path(appdata) / "Wireshark" if appdata else home / "AppData" / "Roaming" / "Wireshark"
    xdg = environ.get("XDG_CONFIG_HOME")
    modern = Path(xdg) / "wireshark" if xdg else home / ".config" / "wireshark"
    legacy = home / ".wireshark"
    if not modern.exists() and legacy.is_dir():
        return legacy
    return modern


def plugin_dir(environ=None, platform: str | None = None) -> Path:
    return personal_config_dir(environ, platform) / "plugins"


def install_plugin(target: Path) -> list[Path]:
    """Copy the entry script and its data folder into ``target``; returns what was written."""
    target.mkdir(parents=True, exist_ok=True)
    written = [target / ENTRY_SCRIPT]
    shutil.copyfile(LUA_DIR / ENTRY_SCRIPT, target / ENTRY_SCRIPT)
    data_target = target / DATA_FOLDER
    if data_target.exists():
        shutil.rmtree(data_target)
    shutil.copytree(LUA_DIR / DATA_FOLDER, data_target)
    written.append(data_target)
    return written


# --- the profile -----------------------------------------------------------------------------

COLUMNS = [
    ("No.", "%m"), ("Time", "%t"), ("Source", "%s"), ("Destination", "%d"), ("Protocol", "%p"),
    ("Message", "%Cus:v2g.msg:0:R"), ("Schema", "%Cus:v2g.schema:0:R"),
    ("Response", "%Cus:v2g.response_code:0:R"),
    ("U (V)", "%Cus:v2g.EVSEPresentVoltage:0:R"), ("I (A)", "%Cus:v2g.EVSEPresentCurrent:0:R"),
    ("I target (A)", "%Cus:v2g.EVTargetCurrent:0:R"), ("SOC (%)", "%Cus:v2g.soc:0:R"),
    ("Info", "%i"),
]

FILTER_BUTTONS = [
    ("V2G", "v2gtp || sdp15118"),
    ("Errors", "v2g.error || v2gtp.bad_version || v2gtp.bad_length || _ws.expert.severity >= error"),
    ("Charge loop", 'v2g.msg matches "^(CurrentDemand|ChargingStatus|DC_ChargeLoop|AC_ChargeLoop)"'),
    ("Failed responses", 'v2g.response_code matches "^(?i)failed"'),
    ("Handshake", 'v2g.schema == "appHandshake" || sdp15118'),
]

# name, filter, background, foreground (16-bit RGB, Wireshark's colorfilters format)
COLOUR_RULES = [
    ("V2G failed response", 'v2g.response_code matches "^(?i)failed"', (65535, 45000, 45000), (0, 0, 0)),
    ("V2G malformed EXI", "v2g.error || v2gtp.bad_version || v2gtp.bad_length", (50000, 0, 0), (65535, 65535, 65535)),
    ("V2G handshake and SDP", 'sdp15118 || v2g.schema == "appHandshake"', (55000, 60000, 65535), (0, 0, 0)),
    ("V2G charge loop", 'v2g.msg matches "^(CurrentDemand|ChargingStatus|DC_ChargeLoop|AC_ChargeLoop)"',
     (58000, 65535, 58000), (0, 0, 0)),
]

# name, field plotted as its average per interval, colour
IO_GRAPHS = [
    ("EVSE voltage (V)", "v2g.EVSEPresentVoltage", "#1f77b4"),
    ("EVSE current (A)", "v2g.EVSEPresentCurrent", "#d62728"),
    ("EV target current (A)", "v2g.EVTargetCurrent", "#ff7f0e"),
    ("Power (W)", "v2g.power", "#2ca02c"),
    ("SOC (%)", "v2g.soc", "#9467bd"),
]


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def profile_files() -> dict[str, str]:
    columns = ",\n\t".join(f"{_quote(title)}, {_quote(fmt)}" for title, fmt in COLUMNS)
    preferences = (
        "# ccssniff profile for CCS charging traces (ccssniff wireshark install --profile)\n"
        f"gui.column.format:\n\t{columns}\n"
    )
    buttons = "".join(f'"TRUE",{_quote(label)},{_quote(expr)},""\n' for label, expr in FILTER_BUTTONS)
    colours = "".join(
        f"@{name}@{expr}@[{bg[0]},{bg[1]},{bg[2]}][{fg[0]},{fg[1]},{fg[2]}]\n"
        for name, expr, bg, fg in COLOUR_RULES
    )
    graphs = "".join(
        f'"TRUE",{_quote(name)},{_quote(field)},{_quote(colour)},"Line","AVG(Y Field)",{_quote(field)},"None","1"\n'
        for name, field, colour in IO_GRAPHS
    )
    return {"preferences": preferences, "dfilter_buttons": buttons, "colorfilters": colours, "io_graphs": graphs}


def install_profile(config_dir: Path) -> Path:
    target = config_dir / "profiles" / PROFILE_NAME
    target.mkdir(parents=True, exist_ok=True)
    for name, text in profile_files().items():
        (target / name).write_text(text, encoding="utf-8")
    return target
