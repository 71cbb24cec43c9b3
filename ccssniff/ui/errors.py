"""The one way a command reports unusable input: a red line on stderr and exit status 2."""

from __future__ import annotations

import click

__all__ = ["UsageFailure"]


class UsageFailure(click.ClickException):
    """Raise from a command when its input cannot be used (bad file, bad value).

    click prints it as one line, ``error: <message>``, in red on stderr, and exits with 2.
    """

    exit_code = 2

    def show(self, file=None) -> None:
        click.secho(f"error: {self.format_message()}", fg="red", err=True, file=file)
