"""``ccssniff wireshark``: install the Lua dissectors, show where they go, open a trace with them."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import click

from ccssniff.ui.errors import UsageFailure
from ccssniff.wireshark import install as installer
from ccssniff.wireshark.keylog import keys_in_capture


@click.group()
def wireshark() -> None:
    """Wireshark dissectors for SDP, V2GTP and every EXI message (pure Lua; tested on Wireshark 4.0 and 4.4).

    \b
    Examples:
      ccssniff wireshark install              copy them to your personal plugin folder
      ccssniff wireshark install --profile    and add the CCS15118 profile (columns, buttons, colours)
      ccssniff wireshark path                 where they go (and whether they are there)
      ccssniff wireshark open session.pcapng  start Wireshark with them, without installing
      ccssniff wireshark open s.pcapng --tshark "-Y 'v2g.msg == \\"CurrentDemandReq\\"'"
    """


@wireshark.command()
@click.option("--path", "target", type=click.Path(file_okay=False, path_type=Path),
              help="Plugin folder to install into (default: Wireshark's personal plugin folder).")
@click.option("--profile", is_flag=True,
              help=f"Also install the {installer.PROFILE_NAME} profile: columns, filter buttons, colouring rules, I/O graphs.")
def install(target: Path | None, profile: bool) -> None:
    """Copy the dissectors (one script and its data folder) into Wireshark's plugin folder."""
    folder = target or installer.plugin_dir()
    try:
        written = installer.install_plugin(folder)
        if profile:
            written.append(installer.install_profile(installer.personal_config_dir() if target is None
                                                     else folder.parent))
    except OSError as error:
        raise UsageFailure(f"cannot install into {folder}: {error.strerror or error}") from None
    for path in written:
        click.echo(path)
    click.echo("Restart Wireshark (or Analyze > Reload Lua Plugins) to load them.", err=True)


@wireshark.command()
def path() -> None:
    """Print the personal plugin folder the dissectors install into, and whether they are there."""
    folder = installer.plugin_dir()
    state = "installed" if (folder / installer.ENTRY_SCRIPT).is_file() else "not installed"
    click.echo(f"{folder}\t{state}")


def _key_log_file(capture: Path) -> Path | None:
    """TLS secrets the trace itself discloses (NSS key log lines over UDP), written to a key log
    file for Wireshark, so that the first pass already decrypts; None if there are none."""
    tshark = shutil.which("tshark")
    if tshark is None:
        return None
    lines = keys_in_capture(tshark, str(capture))
    if not lines:
        return None
    handle, name = tempfile.mkstemp(prefix="ccssniff-keylog-", suffix=".txt")
    with os.fdopen(handle, "w", encoding="ascii") as file:
        file.write("\n".join(lines) + "\n")
    click.echo(f"{len(lines)} TLS key log line(s) from the trace handed to Wireshark ({name})", err=True)
    return Path(name)


@wireshark.command(name="open")
@click.argument("capture", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tshark", "tshark_args", metavar="ARGS", default=None,
              help="Run tshark with these arguments (one string, shell-quoted) instead of Wireshark.")
def open_capture(capture: Path, tshark_args: str | None) -> None:
    """Open CAPTURE in Wireshark (or tshark) with the dissectors loaded, without installing them."""
    program = "tshark" if tshark_args is not None else "wireshark"
    executable = shutil.which(program)
    if executable is None:
        raise UsageFailure(f"{program} is not installed or not on PATH")
    command = [executable, "-X", f"lua_script:{installer.entry_script()}", "-r", str(capture)]
    key_file = _key_log_file(capture)
    if key_file is not None:
        command += ["-o", f"tls.keylog_file:{key_file}"]
    if tshark_args:
        try:
            command += shlex.split(tshark_args)
        except ValueError as error:
            raise UsageFailure(f"--tshark: {error}") from None
    if program == "wireshark":
        subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=os.environ.copy())
        click.echo(f"Wireshark started on {capture}", err=True)
        return
    try:
        done = subprocess.run(command)
    finally:
        if key_file is not None:  # Wireshark (above) keeps reading it; tshark is done with it
            key_file.unlink(missing_ok=True)
    if done.returncode != 0:
        raise SystemExit(done.returncode)
