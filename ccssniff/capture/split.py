"""One pcapng per charging session, for a modem left on a charger for days (``listen --split-sessions``).

A session starts with a CM_SLAC_PARAM.REQ after at least ``SESSION_GAP`` seconds without SLAC;
the file is named by its start time (UTC) and, once its CM_SLAC_PARAM.CNF names it, the
charger's MAC. Frames between sessions stay in the file of the session before (or, before the
first one, in the file the capture started with). ``ring``: keep only the newest N files.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ccssniff.capture.pcapng import PcapngWriter

SESSION_GAP = 20.0  # s without SLAC before a CM_SLAC_PARAM.REQ counts as a new plug-in
CM_SLAC_PARAM_REQ = b"\x64\x60"
CM_SLAC_PARAM_CNF = b"\x65\x60"
UNKNOWN = "unknown"


def _is_slac(frame: bytes) -> bool:
    return len(frame) >= 17 and frame[12:14] == b"\x88\xe1" and 0x6064 <= (frame[15] | frame[16] << 8) <= 0x607F


class SessionFiles:
    """Writes each frame to the file of its session; same ``write`` as a PcapngWriter."""

    def __init__(self, directory: Path, linktype: int, interface: str, ring: int | None = None) -> None:
        if ring is not None and ring < 1:
            raise ValueError("--ring keeps at least one file")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.linktype, self.interface, self.ring = linktype, interface, ring
        self.files: list[Path] = []  # made by this run, oldest first
        self._writer: PcapngWriter | None = None
        self._named = False  # the current file carries its charger's MAC
        self._has_slac = False
        self._last_slac: float | None = None

    @property
    def current(self) -> Path | None:
        return self.files[-1] if self.files else None

    def write(self, frame: bytes, timestamp_ns: int) -> None:
        seconds = timestamp_ns / 1e9
        if _is_slac(frame):
            kind = frame[15:17]
            quiet = self._last_slac is None or seconds - self._last_slac >= SESSION_GAP
            if kind == CM_SLAC_PARAM_REQ and quiet and (self._writer is None or self._has_slac):
                self._open(seconds)
            elif kind == CM_SLAC_PARAM_CNF and not self._named and self._writer is not None:
                self._name_after(frame[6:12])
            self._last_slac = seconds
            self._has_slac = True
        if self._writer is None:
            self._open(seconds)
        self._writer.write(frame, timestamp_ns=timestamp_ns)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _open(self, seconds: float) -> None:
        self.close()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(seconds))
        path = self._unique(f"{stamp}-{UNKNOWN}")
        self._writer = PcapngWriter(path, linktype=self.linktype, interface_name=self.interface)
        self.files.append(path)
        self._named = self._has_slac = False
        while self.ring is not None and len(self.files) > self.ring:
            self.files.pop(0).unlink(missing_ok=True)

    def _name_after(self, charger: bytes) -> None:
        old = self.files[-1]
        mac = "-".join(f"{b:02x}" for b in charger)
        new = self._unique(old.name[: -len(f"-{UNKNOWN}.pcapng")] + f"-{mac}")
        os.rename(old, new)  # the open file keeps being written under its new name
        self.files[-1] = new
        self._named = True

    def _unique(self, stem: str) -> Path:
        path = self.directory / f"{stem}.pcapng"
        number = 1
        while path.exists():
            number += 1
            path = self.directory / f"{stem}-{number}.pcapng"
        return path
