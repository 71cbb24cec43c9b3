"""Raw Ethernet for the sans-IO frame machines, over the one link layer (``capture.live.LiveLink``,
pcap-ct), and an asyncio driver for them.

``run_machine`` drives anything with ``receive_frame(frame, now)``, ``on_timer(now)`` and
``next_deadline()`` that returns outputs with a ``.frame`` to send (the SLAC machines); the
other outputs are handed to ``on_output`` and the run ends when ``until(output)`` is true.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

from ccssniff.capture.live import LiveLink


def open_link(interface: str) -> LiveLink:
    """Every Ethernet frame arriving on ``interface``, non-blocking; it sends whole frames too.

    It lives in the network namespace of the calling thread at the time of the call. Frames
    this host sends out are not received, so a bridge never hears its own echo.
    """
    return LiveLink(interface, bpf=None, incoming_only=True)


def receive_frames(link: LiveLink) -> Iterator[bytes]:
    """The frames waiting on ``link``; none once its interface is gone (a namespace being removed)."""
    try:
        frames = link.read()
    except OSError:
        return
    for _stamp, frame in frames:
        yield frame


async def run_machine(machine: Any, link: LiveLink, *, start: bool = True,
                      until: Callable[[Any], bool], on_output: Callable[[Any], None] = lambda _: None,
                      clock: Callable[[], float] = time.monotonic) -> Any:
    """Run ``machine`` on ``link`` until an output satisfies ``until``; return that output."""
    loop = asyncio.get_running_loop()
    arrived = asyncio.Event()
    loop.add_reader(link.fileno(), arrived.set)
    try:
        pending = list(machine.start(clock())) if start else []
        while True:
            for output in pending:
                frame = getattr(output, "frame", None)
                if frame is not None:
                    link.send(frame)
                    continue
                on_output(output)
                if until(output):
                    return output
            pending = []
            deadline = machine.next_deadline()
            timeout = None if deadline is None else max(deadline - clock(), 0.0)
            try:
                await asyncio.wait_for(arrived.wait(), timeout)
            except TimeoutError:
                pass
            arrived.clear()
            for frame in receive_frames(link):
                pending += machine.receive_frame(frame, clock())
            pending += machine.on_timer(clock())
    finally:
        loop.remove_reader(link.fileno())
