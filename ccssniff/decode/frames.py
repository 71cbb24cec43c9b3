"""``decode -w``: the frames behind the events a user selected, written to pcapng as they pass.

Events name the frame that completed them, and arrive after that frame was read (a V2G message
after its last TCP segment, a timeout at the end of the trace). So recent frames wait in a
window until no event can select them any more, then go to the file in capture order, if
selected. The window bounds memory on endless stdin captures; an event that names a frame
older than the window (none of the pipeline's events do) cannot bring it back.
"""
from __future__ import annotations

import collections
from pathlib import Path
from typing import Any, Iterable, Iterator

from ccssniff.capture.pcapng import PcapngWriter

WINDOW = 20_000  # frames held back for events still to come


class FrameWriter:
    """Collects selected frame numbers and writes those frames, in order, to a pcapng file."""

    def __init__(self, path: Path, window: int = WINDOW) -> None:
        self._file = open(path, "wb", buffering=0)  # opened now, so a bad path fails before decoding
        self._writer: PcapngWriter | None = None
        self._interfaces: dict[tuple[int, int], int] = {}
        self._window = window
        self._held: collections.deque = collections.deque()
        self._selected: set[int] = set()
        self._everything = False
        self.written = 0

    def select_all(self) -> None:
        self._everything = True

    def select(self, frame: int) -> None:
        self._selected.add(frame)

    def keep(self, packets: Iterable[Any]) -> Iterator[Any]:
        """Pass ``packets`` through, holding each until events can no longer select it."""
        held = self._held
        for packet in packets:
            if self._everything:
                yield packet
                self._write(packet)
                continue
            held.append(packet)
            yield packet
            while len(held) > self._window:
                self._release(held.popleft())

    def finish_file(self) -> None:
        """The trace ended (its last events are out): write what was selected, forget the rest."""
        while self._held:
            self._release(self._held.popleft())
        self._selected.clear()

    def _release(self, packet: Any) -> None:
        if packet.index in self._selected:
            self._selected.discard(packet.index)
            self._write(packet)

    def _write(self, packet: Any) -> None:
        key = (packet.interface, packet.linktype)
        if self._writer is None:
            self._writer = PcapngWriter(self._file, linktype=packet.linktype)
            self._interfaces[key] = 0
        interface = self._interfaces.get(key)
        if interface is None:
            interface = self._interfaces[key] = self._writer.add_interface(packet.linktype)
        self._writer.write(packet.data, timestamp=packet.timestamp, comment=packet.comment,
                           interface=interface, orig_len=packet.orig_len)
        self.written += 1

    def close(self) -> None:
        if self._writer is None:
            self._writer = PcapngWriter(self._file)  # an empty capture, still a valid file
        self._file.close()

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
