"""Record every frame of one interface to pcapng until SIGTERM or SIGINT.

Usage: python3 record.py INTERFACE FILE. Prints "recording" once libpcap is open, so the caller
knows no frame of the session is lost. Independent of the emulators' own ``-w``, so the tests
judge a session by what crossed the wire, not by what one side believes it sent.
"""
from __future__ import annotations

import select
import signal
import sys

import pcap

from ccssniff.capture.pcapng import PcapngWriter


def main(interface: str, path: str) -> None:
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    handle = pcap.pcap(name=interface, promisc=True, immediate=True, timeout_ms=50, timestamp_in_ns=True)
    # libpcap's read timeout does not fire on an idle link, so wait in select() and poll the flag.
    handle.setnonblock(True)
    with PcapngWriter(path, linktype=handle.datalink(), interface_name=interface) as writer:
        print("recording", flush=True)
        while not stopping:
            select.select([handle.fileno()], [], [], 0.1)
            for stamp, frame in handle.readpkts():
                writer.write(bytes(frame), timestamp=stamp / 1e9)
    handle.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
