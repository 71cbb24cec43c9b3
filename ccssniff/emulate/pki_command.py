"""``ccssniff pki create DIR``: the test PKI of ccssniff/emulate/pki.py as PEM files."""
from __future__ import annotations

from pathlib import Path

import click

from ccssniff.ui.errors import UsageFailure


@click.group()
def pki() -> None:
    """Test certificates for TLS and Plug & Charge in the emulators (tests and labs only)."""


@pki.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--emaid", default="DEZZZC12345678X", show_default=True, help="eMAID in the contract certificate.")
@click.option("--days", type=click.IntRange(min=1), default=365, show_default=True, help="Validity of the leaves.")
def create(directory: Path, emaid: str, days: int) -> None:
    """Make a TEST PKI in DIRECTORY: V2G root, CPO sub-CAs and SECC leaf; OEM root, sub-CAs and
    provisioning certificate; MO root, sub-CAs and contract certificate (ECDSA secp256r1).

    For tests and labs only: the keys are unencrypted and the roots are made up.

    \b
    Example:
      ccssniff pki create lab-pki && ccssniff emulate evse eth0 --tls --pki lab-pki
    """
    from ccssniff.emulate.pki import TEST_ONLY_NOTE, create_pki

    try:
        written = create_pki(emaid=emaid, days=days).write(directory)
    except OSError as error:
        raise UsageFailure(f"cannot write {directory}: {error.strerror or error}") from None
    click.echo(TEST_ONLY_NOTE.strip())
    click.echo(f"{len(written)} files in {directory}")
