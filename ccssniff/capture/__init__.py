"""Packet files (pcap/pcapng read, pcapng write) and the link layer of captured frames."""

from .link import LinkFrame, decode_link
from .pcapng import PcapngWriter
from .reader import CaptureFormatError, CaptureWarning, Packet, read_packets

__all__ = [
    "CaptureFormatError",
    "CaptureWarning",
    "LinkFrame",
    "Packet",
    "PcapngWriter",
    "decode_link",
    "read_packets",
]
