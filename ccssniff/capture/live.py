"""Live raw Ethernet through libpcap (pcap-ct): the one link layer of listen and the modem commands.

    link = LiveLink("eth0")                      # HomePlug and IPv6 only; bpf=None: everything
    for nanoseconds, frame in link.read():       # non-blocking: what is waiting, maybe nothing
        ...
    link.send(frame)                             # a whole Ethernet frame
    select([link], ...)                          # it has a fileno()

The handle is non-blocking, and by default hands over frames in blocks that the kernel closes
after at most 1 ms (TPACKET_V3): about 1 ms of latency, and a ring that packs small frames
tightly. ``immediate=True`` gives each frame at once but uses one ring slot of the snap length
per frame, so a burst of small frames overflows it far sooner. It opens in the network namespace
of the calling thread.
"""

from __future__ import annotations

import fcntl
import socket
import struct

CCS_FILTER = "ether proto 0x88e1 or ip6 or (vlan and (ether proto 0x88e1 or ip6))"
SIOCGIFHWADDR = 0x8927
BUFFER_BYTES = 32 * 1024 * 1024  # kernel ring: seconds of a saturated HomePlug GP link


class LinkError(OSError):
    """The interface cannot be captured on or sent to; the text says why."""


def interface_mac(interface: str) -> bytes:
    """The interface's MAC, asked of the kernel in the calling thread's network namespace
    (/sys/class/net shows the namespace sysfs was mounted in, which may be another)."""
    request = struct.pack("256s", interface.encode()[:15])
    try:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
            answer = fcntl.ioctl(sock, SIOCGIFHWADDR, request)
    except OSError:
        raise LinkError(f"no network interface named {interface!r}") from None
    return answer[18:24]


class LiveLink:
    def __init__(self, interface: str, *, bpf: str | None = CCS_FILTER, promisc: bool = True,
                 buffer_size: int = BUFFER_BYTES, immediate: bool = False, incoming_only: bool = False) -> None:
        try:
            import pcap
        except ImportError:  # pragma: no cover - a dependency of the package
            raise LinkError("live capture needs pcap-ct (pip install pcap-ct) and libpcap") from None
        self.interface = interface
        self.mac = interface_mac(interface)
        try:
            self.handle = pcap.pcap(name=interface, promisc=promisc, immediate=immediate, timeout_ms=1,
                                    timestamp_in_ns=True, buffer_size=buffer_size)
        except OSError as exc:
            text = str(exc)
            if "ermission" in text or "not permitted" in text:
                raise LinkError(f"no permission to capture on {interface}: run as root or with CAP_NET_RAW") from None
            raise LinkError(f"cannot capture on {interface}: {text}") from None
        try:
            if bpf:
                self.handle.setfilter(bpf)
            self.handle.setnonblock(True)
            if incoming_only:  # a bridge port: not what this host (or another handle) sends out
                self.handle.setdirection(pcap.PCAP_D_IN)
        except OSError as exc:
            self.handle.close()
            raise LinkError(f"capture filter {bpf!r}: {exc}") from None
        self.linktype = self.handle.datalink()

    def fileno(self) -> int:
        return self.handle.fileno()

    def read(self) -> list[tuple[int, bytes]]:
        """The frames waiting now, as (nanoseconds since the epoch, frame)."""
        return self.handle.readpkts()  # pcap-ct hands out bytes already

    def send(self, frame: bytes) -> None:
        try:
            self.handle.sendpacket(frame)
        except OSError as exc:
            raise LinkError(f"cannot send on {self.interface}: {exc}") from None

    def dropped(self) -> int:
        """Frames the kernel or the interface dropped because we did not read fast enough."""
        _received, dropped, interface_dropped = self.handle.stats()
        return dropped + interface_dropped

    def close(self) -> None:
        self.handle.close()

    def __enter__(self) -> LiveLink:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
