"""A live view of a running emulator: phase, protocol, voltage, current, SOC (stderr, terminals only)."""

from __future__ import annotations

import contextlib
import sys
import threading

from rich.console import Console
from rich.live import Live
from rich.table import Table


def render(progress, title: str) -> Table:
    table = Table(title=title, show_header=False, min_width=40)
    table.add_row("phase", progress.phase)
    table.add_row("protocol", progress.protocol or "-")
    table.add_row("last message", progress.last_message or "-")
    table.add_row("messages", str(progress.messages))
    table.add_row("voltage", f"{progress.voltage:7.1f} V")
    table.add_row("current", f"{progress.current:7.1f} A")
    table.add_row("SOC", f"{progress.soc:5.1f} %")
    return table


@contextlib.contextmanager
def live_progress(progress, title: str):
    if not sys.stderr.isatty():
        yield
        return
    console = Console(stderr=True)
    stop = threading.Event()
    with Live(render(progress, title), console=console, refresh_per_second=4, transient=False) as live:
        def refresh():
            while not stop.wait(0.25):
                live.update(render(progress, title))
        thread = threading.Thread(target=refresh, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=1)
            live.update(render(progress, title))
