"""Raw Ethernet on Linux (AF_PACKET) and an asyncio driver for the sans-IO frame machines.

``run_machine`` drives anything with ``receive_frame(frame, now)``, ``on_timer(now)`` and
``next_deadline()`` that returns outputs with a ``.frame`` to send (the SLAC machines); the
other outputs are handed to ``on_output`` and the run ends when ``until(output)`` is true.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4  # pkttype of the frames this host sent itself
MAX_FRAME = 1518


def open_raw_socket(interface: str) -> socket.socket:
    """A non-blocking AF_PACKET socket that sends and receives whole Ethernet frames on ``interface``.

    It lives in the network namespace of the calling thread at the time of the call.
    """
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        sock.bind((interface, 0))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def receive_frames(sock: socket.socket) -> Iterator[bytes]:
    """The frames waiting on a non-blocking raw socket, without the ones this host sent."""
    while True:
        try:
            frame, address = sock.recvfrom(MAX_FRAME)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the interface went down or away (its namespace is being removed)
            return
        if address[2] != PACKET_OUTGOING:
            yield frame


async def run_machine(machine: Any, sock: socket.socket, *, start: bool = True,
                      until: Callable[[Any], bool], on_output: Callable[[Any], None] = lambda _: None,
                      clock: Callable[[], float] = time.monotonic) -> Any:
    """Run ``machine`` on ``sock`` until an output satisfies ``until``; return that output."""
    loop = asyncio.get_running_loop()
    arrived = asyncio.Event()
    loop.add_reader(sock.fileno(), arrived.set)
    try:
        pending = list(machine.start(clock())) if start else []
        while True:
            for output in pending:
                frame = getattr(output, "frame", None)
                if frame is not None:
                    await loop.sock_sendall(sock, frame)
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
            for frame in receive_frames(sock):
                pending += machine.receive_frame(frame, clock())
            pending += machine.on_timer(clock())
    finally:
        loop.remove_reader(sock.fileno())
