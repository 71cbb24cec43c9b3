"""``ccssniff listen``: the live loop. Frames from the interface go to the pcapng file as they
arrive, to the join machine (which answers with frames to send), and on to the decode pipeline
through ``decode_trace``, so the summary at the end is the one ``decode --summary`` makes.

Everything protocol-like lives in sans-IO parts (``join.JoinMachine``, ``ActivityMeter``,
``StationCounts``); this module moves frames, keeps deadlines and handles stopping.
"""

from __future__ import annotations

import errno
import logging
import select
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from ccssniff.capture import join as jn
from ccssniff.capture.live import CCS_FILTER, LinkError, LiveLink
from ccssniff.capture.pcapng import PcapngWriter
from ccssniff.capture.reader import Packet
from ccssniff.capture.split import SessionFiles
from ccssniff.decode.trace import decode_trace
from ccssniff.homeplug import MmeError, VsSnifferInd, VsSnifferReq, format_hex, parse_frame
from ccssniff.homeplug.keys import NetworkKey, render_key
from ccssniff.homeplug.vendor import vendor_of

log = logging.getLogger(__name__)

ETHERTYPE_HOMEPLUG = b"\x88\xe1"
ETHERTYPE_IPV6 = b"\x86\xdd"
LINKTYPE_ETHERNET = 1
SDP_PORT = 15118
POLL = 0.2  # s: the longest the loop sleeps without looking at the stop flag
DRAIN_TIME = 0.5  # s: reading what the kernel still holds after a stop, at most
KEY_FIELDS = ("nmk", "new_key")
HIDDEN_AFTER = 5.0  # s after SDP without a unicast TCP segment before we call the traffic hidden
HIDDEN_TEXT = ("unicast traffic between EV and EVSE is hidden by the local modem (a filtering modem, "
               "e.g. AR7420/QCA7420 with stock firmware); what you can do: use a modem that forwards "
               "everything (a QCA7005 with sniffer firmware, a commercial CCS sniffer), or record on the "
               "charger or the car itself; --activity shows how much traffic the modem hides")


def key_text(value: Any, show: bool) -> Any:
    """An NMK as output shows it: in full with ``--show-key``, else masked as every output masks it."""
    if value is None:
        return None
    if not isinstance(value, (bytes, bytearray, NetworkKey)):
        try:
            value = bytes.fromhex(str(value).replace(":", ""))
        except ValueError:
            return value if show else "<key hidden>"
    return render_key(value, show)


@dataclass
class ListenConfig:
    interface: str
    output: Path | None = None
    bpf: str | None = CCS_FILTER
    join: bool = True
    nmk: bytes | None = None
    nid: bytes | None = None
    key_source: str = "--nmk"
    modem_mac: bytes | None = None
    activity: bool = False
    show_key: bool = False
    duration: float | None = None  # stop by itself after this many seconds
    split_directory: Path | None = None  # one pcapng per charging session in there
    ring: int | None = None  # keep only the newest N session files


class StationCounts:
    """Per source MAC: how many frames of each kind the local modem let through."""

    KINDS = ("SLAC", "HomePlug", "SDP", "ND", "TCP", "V2G", "other")  # V2G: TCP segments starting a V2GTP PDU

    def __init__(self) -> None:
        self.by_mac: dict[str, Counter] = defaultdict(Counter)
        self.sdp_time: float | None = None
        self.tcp_frames = 0

    def add(self, frame: bytes, now: float) -> None:
        if len(frame) < 14:
            return
        kind = self.kind(frame)
        self.by_mac[format_hex(frame[6:12])][kind] += 1
        if kind == "SDP" and self.sdp_time is None:
            self.sdp_time = now
        elif kind in ("TCP", "V2G"):
            self.tcp_frames += 1

    @staticmethod
    def kind(frame: bytes) -> str:
        ethertype = frame[12:14]
        if ethertype == ETHERTYPE_HOMEPLUG:
            mmtype = frame[15] | frame[16] << 8 if len(frame) >= 17 else 0
            return "SLAC" if 0x6064 <= mmtype <= 0x607F else "HomePlug"
        if ethertype == ETHERTYPE_IPV6 and len(frame) >= 54:
            next_header = frame[20]
            if next_header == 6:
                payload = 54 + (frame[66] >> 4) * 4 if len(frame) > 66 else len(frame)
                return "V2G" if frame[payload:payload + 2] == b"\x01\xfe" else "TCP"
            if next_header == 17 and SDP_PORT in (int.from_bytes(frame[54:56], "big"),
                                                  int.from_bytes(frame[56:58], "big")):
                return "SDP"
            if next_header == 58 and frame[54] in (135, 136):
                return "ND"
        return "other"

    def hidden(self, now: float) -> bool:
        """SDP seen a while ago, and still no TCP: the unicast between the two is not reaching us."""
        return self.sdp_time is not None and self.tcp_frames == 0 and now - self.sdp_time >= HIDDEN_AFTER

    def to_dict(self) -> dict[str, dict[str, int]]:
        return {mac: dict(counts) for mac, counts in sorted(self.by_mac.items())}


class ActivityMeter:
    """The PHY activity VS_SNIFFER.IND reports: frames per source TEI, unicast between which TEIs,
    beacons per NID. It sees frames the modem does not forward, payloads excepted."""

    def __init__(self) -> None:
        self.indications = 0
        self.frames_by_source: Counter = Counter()
        self.unicast: Counter = Counter()
        self.beacons: Counter = Counter()
        self.first: float | None = None
        self.last: float | None = None

    def add(self, indication: VsSnifferInd, now: float) -> None:
        self.indications += 1
        self.first = now if self.first is None else self.first
        self.last = now
        frame = indication.frame
        if "nid" in frame:
            self.beacons[frame["nid"]] += 1
        elif "stei" in frame:
            self.frames_by_source[frame["stei"]] += 1
            if frame["dtei"] != 0xFF:
                self.unicast[f"{frame['stei']}->{frame['dtei']}"] += 1

    def to_dict(self) -> dict[str, Any]:
        seconds = (self.last - self.first) if self.first is not None and self.last > self.first else None
        return {
            "indications": self.indications,
            "frames_by_source_tei": {str(tei): count for tei, count in sorted(self.frames_by_source.items())},
            "frames_per_second": round(sum(self.frames_by_source.values()) / seconds, 1) if seconds else None,
            "unicast_frames": sum(self.unicast.values()),
            "unicast_by_tei": dict(self.unicast),
            "beacons_by_nid": dict(self.beacons),
        }


@dataclass
class ListenState:
    """What the live view and the summary show of the capture and the join."""

    interface: str
    frames: int = 0
    written: int = 0
    state: str = jn.FINDING_MODEM
    steps: list[str] = field(default_factory=list)
    local_modem: dict[str, Any] | None = None
    nid: str | None = None
    nmk: str | None = None
    key_source: str | None = None
    joined: bool = False
    join_failure: str | None = None
    members: list[dict[str, Any]] = field(default_factory=list)
    modems_seen: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: StationCounts = field(default_factory=StationCounts)
    activity: ActivityMeter | None = None
    record_error: str | None = None
    dropped: int = 0
    hidden: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = {
            "interface": self.interface, "frames": self.frames, "frames_written": self.written,
            "dropped_by_kernel": self.dropped, "join_state": self.state, "joined": self.joined,
            "join_failure": self.join_failure, "nid": self.nid, "nmk": self.nmk, "key_source": self.key_source,
            "local_modem": self.local_modem, "members": self.members,
            "modems_seen": list(self.modems_seen.values()), "stations": self.counts.to_dict(),
            "unicast_hidden": self.hidden, "steps": self.steps,
        }
        if self.hidden:
            out["unicast_hidden_text"] = HIDDEN_TEXT
        if self.activity is not None:
            out["activity"] = self.activity.to_dict()
        if self.record_error:
            out["record_error"] = self.record_error
        return out


class Listener:
    """One listen run; ``run(on_event)`` returns the decoded trace when stopped."""

    def __init__(self, config: ListenConfig, *, on_join: Callable[[Any], None] = lambda _: None) -> None:
        self.config = config
        self.state = ListenState(config.interface, activity=ActivityMeter() if config.activity else None)
        self.on_join = on_join
        self._stopping = False
        self.link: LiveLink | None = None
        self.machine: jn.JoinMachine | None = None
        self._writer: PcapngWriter | SessionFiles | None = None
        self._sniffer_on = False
        self._sent: list[tuple[int, bytes]] = []  # frames we sent, for the pipeline

    def stop(self, *_args: Any) -> None:
        """Safe from a signal handler: the loop ends within ``POLL`` seconds."""
        self._stopping = True

    def run(self, on_event: Callable | None = None):
        config = self.config
        self.link = LiveLink(config.interface, bpf=config.bpf)
        try:
            try:
                self._open_recording()
            except OSError as exc:
                target = config.split_directory or config.output
                raise LinkError(f"cannot write {target}: {exc.strerror or exc}") from None
            self.machine = jn.JoinMachine(self.link.mac, modem_mac=config.modem_mac, nmk=config.nmk,
                                          nid=config.nid, join=config.join, key_source=config.key_source)
            return decode_trace(self._packets(), on_event=on_event)
        finally:
            self._close()

    def _open_recording(self) -> None:
        config = self.config
        if config.split_directory is not None:
            self._writer = SessionFiles(config.split_directory, self.link.linktype, config.interface, config.ring)
        elif config.output is not None:
            self._writer = PcapngWriter(config.output, linktype=self.link.linktype, interface_name=config.interface)

    def _close(self) -> None:
        if self._sniffer_on and self.link is not None:
            try:
                self._sniffer(False)
            except OSError:
                pass
        if self.link is not None:
            try:
                self.state.dropped = self.link.dropped()
            except OSError:
                pass
            self.link.close()
        if self._writer is not None:
            self._writer.close()

    # --- the loop --------------------------------------------------------------------------------

    def _packets(self) -> Iterator[Packet]:
        link, machine, state = self.link, self.machine, self.state
        ethernet = link.linktype == LINKTYPE_ETHERNET
        self._handle(machine.start(time.time()))
        end = time.time() + self.config.duration if self.config.duration else None
        index = 0
        while not self._stopping:
            now = time.time()
            if end is not None and now >= end:
                break
            deadline = machine.next_deadline()
            wait = POLL if deadline is None else min(POLL, max(0.0, deadline - now))
            select.select([link], [], [], wait)
            for nanoseconds, frame in link.read():
                index += 1
                state.frames += 1
                seconds = nanoseconds / 1e9
                self._record(frame, nanoseconds)
                if ethernet:
                    state.counts.add(frame, seconds)
                    if frame[12:14] == ETHERTYPE_HOMEPLUG:
                        self._handle(machine.receive_frame(frame, seconds))
                        if state.activity is not None and frame[15:17] == b"\x36\xa0":
                            self._meter(frame, seconds)
                yield Packet(index, seconds, link.linktype, frame, 0, None, len(frame))
                for nanoseconds, frame in self._sent:
                    index += 1
                    yield Packet(index, nanoseconds / 1e9, link.linktype, frame, 0, None, len(frame))
                self._sent.clear()
            now = time.time()
            self._handle(machine.on_timer(now))
            for nanoseconds, frame in self._sent:
                index += 1
                yield Packet(index, nanoseconds / 1e9, link.linktype, frame, 0, None, len(frame))
            self._sent.clear()
            state.hidden = state.hidden or state.counts.hidden(now)
        # what the kernel still holds was on the wire before the stop: take it, within bounds
        drain_until = time.monotonic() + DRAIN_TIME
        while time.monotonic() < drain_until:
            waiting = link.read()
            if not waiting:
                break
            for nanoseconds, frame in waiting:
                index += 1
                state.frames += 1
                self._record(frame, nanoseconds)
                if ethernet:
                    state.counts.add(frame, nanoseconds / 1e9)
                yield Packet(index, nanoseconds / 1e9, link.linktype, frame, 0, None, len(frame))
        state.hidden = state.hidden or (state.counts.sdp_time is not None and state.counts.tcp_frames == 0)

    def _send(self, frame: bytes) -> None:
        """Send, and record what we sent: libpcap does not show a handle its own frames."""
        self.link.send(frame)
        nanoseconds = time.time_ns()
        self._record(frame, nanoseconds)
        self.state.frames += 1
        self._sent.append((nanoseconds, frame))

    def _record(self, frame: bytes, nanoseconds: int) -> None:
        if self._writer is None:
            return
        try:
            self._writer.write(frame, timestamp_ns=nanoseconds)
            self.state.written += 1
        except OSError as exc:
            reason = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
            target = self.config.split_directory or self.config.output
            self.state.record_error = (f"recording stopped after frame {self.state.written}: {reason}; "
                                       f"{target} is valid up to there, live decoding goes on")
            log.error(self.state.record_error)
            self._writer = None  # the last write may be partial; the reader stops before it

    def _meter(self, frame: bytes, seconds: float) -> None:
        try:
            message = parse_frame(frame)
        except (MmeError, ValueError):
            return
        if isinstance(message, VsSnifferInd):
            self.state.activity.add(message, seconds)

    def _sniffer(self, on: bool) -> None:
        target = self.machine.modem_mac or jn.LOCAL_MODEM
        self._send(VsSnifferReq(dst=target, src=self.link.mac, control=int(on)).build_frame(pad=True))
        self._sniffer_on = on
        self._step(f"VS_SNIFFER.REQ {'on' if on else 'off'} to {target}")

    def _step(self, text: str) -> None:
        self.state.steps.append(text)
        self.on_join(jn.Step(self.state.state, text))

    def _handle(self, outputs: list) -> None:
        state, show = self.state, self.config.show_key
        for output in outputs:
            if isinstance(output, jn.SendFrame):
                self._send(output.frame)
                continue
            state.state = self.machine.state
            if isinstance(output, jn.Step):
                state.steps.append(output.text)
            elif isinstance(output, jn.ModemFound):
                record = {"mac": str(output.mac), "firmware": output.firmware, "device": output.device,
                          "vendor": vendor_of(output.mac), "local": output.local}
                state.modems_seen[str(output.mac)] = record
                if output.local:
                    state.local_modem = record
                    if self.config.activity:
                        self._sniffer(True)
            elif isinstance(output, jn.KeyTaken):
                state.nid, state.nmk = format_hex(output.nid), key_text(output.nmk, show)
                state.key_source = output.source
                state.joined, state.join_failure = False, None
            elif isinstance(output, jn.Joined):
                state.joined = True
                state.members = [member.to_dict() for member in output.members]
                if self.config.activity:
                    self._sniffer(True)  # the restart on the new key turned sniffer mode off
            elif isinstance(output, jn.JoinFailed):
                state.join_failure = output.reason
            if isinstance(output, jn.Step) and "no modem answered" in output.text and self.config.activity:
                self._sniffer(True)
            self.on_join(output)
