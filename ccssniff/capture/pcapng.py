"""Write pcapng files that stay valid at every moment.

Each block goes to the file in one ``write`` call on an unbuffered file (or a write plus
``flush`` on a file object handed in), so a recording stopped by Ctrl-C or an exception ends
after its last complete packet and opens in Wireshark as it is. Only a fatal signal (SIGKILL,
an unhandled SIGTERM) can stop the kernel inside one write at a page boundary; then the last
block is cut, which Wireshark and our reader report while still reading every packet before it.
"""

from __future__ import annotations

import os
import struct
import time
from decimal import ROUND_HALF_EVEN, Decimal
from typing import BinaryIO, Union

__all__ = ["PcapngWriter", "TLS_KEY_LOG"]

_SHB = 0x0A0D0D0A
_IDB = 1
_EPB = 6
_DSB = 0x0A
TLS_KEY_LOG = 0x544C534B  # Decryption Secrets Block type: NSS key log text
_BYTE_ORDER_MAGIC = 0x1A2B3C4D

_OPT_END = 0
_OPT_COMMENT = 1
_SHB_USERAPPL = 4
_IF_NAME = 2
_IF_TSRESOL = 9

_NANOSECONDS = 9  # if_tsresol: 10^-9 s

_block_header = struct.Struct("<II").pack
_epb_fields = struct.Struct("<IIIII").pack
_option_header = struct.Struct("<HH").pack


def _option(code: int, value: bytes) -> bytes:
    return _option_header(code, len(value)) + value + bytes(-len(value) % 4)


def _options(options: list[bytes]) -> bytes:
    return b"".join(options) + _option_header(_OPT_END, 0) if options else b""


def _block(kind: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return _block_header(kind, length) + body + length.to_bytes(4, "little")


class PcapngWriter:
    """Write packets to a little-endian pcapng file with nanosecond timestamps.

    ``target`` is a path (created or truncated) or a binary file object (written from its
    current position and left open by :meth:`close`). Interface 0 gets ``linktype`` and
    ``snaplen``; :meth:`add_interface` declares more. Use as a context manager or call
    :meth:`close`.
    """

    def __init__(
        self,
        target: Union[str, os.PathLike, BinaryIO],
        linktype: int = 1,
        snaplen: int = 65535,
        application: str = "ccssniff",
        interface_name: Union[str, None] = None,
    ):
        if isinstance(target, (str, os.PathLike)):
            self._file = open(target, "wb", buffering=0)
            self._owned = True
        else:
            self._file = target
            self._owned = False
        self._flush = getattr(self._file, "flush", None)
        self._snaplens: list[int] = []
        section_header = _block(
            _SHB,
            struct.pack("<IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1)  # section length unknown
            + _options([_option(_SHB_USERAPPL, application.encode())]),
        )
        self._emit(section_header + self._interface_block(linktype, snaplen, interface_name))

    def add_interface(self, linktype: int, name: Union[str, None] = None, snaplen: int = 65535) -> int:
        """Declare another interface and return its id for :meth:`write`."""
        self._emit(self._interface_block(linktype, snaplen, name))
        return len(self._snaplens) - 1

    def write(
        self,
        data: bytes,
        timestamp: Union[float, int, Decimal, None] = None,
        comment: Union[str, None] = None,
        interface: int = 0,
        orig_len: Union[int, None] = None,
        timestamp_ns: Union[int, None] = None,
    ) -> None:
        """Append one packet; ``timestamp`` in seconds since the epoch (default: now), or
        ``timestamp_ns`` in nanoseconds (what a live capture has, without conversions).

        Data longer than the interface's snap length is cut to it; ``orig_len`` (default the
        length of ``data``) records the length on the wire.
        """
        if not 0 <= interface < len(self._snaplens):
            raise ValueError(f"interface {interface} was not declared (have {len(self._snaplens)})")
        if timestamp_ns is not None:
            nanoseconds = timestamp_ns
        elif timestamp is None:
            nanoseconds = time.time_ns()
        else:
            # A float's shortest repr is the value the caller meant (1.1 means 1.1 s, not the
            # binary neighbour 1.100000000000000088...), so convert from that, exactly.
            exact = Decimal(repr(timestamp)) if isinstance(timestamp, float) else Decimal(timestamp)
            nanoseconds = int(exact.scaleb(9).to_integral_value(ROUND_HALF_EVEN))
        data = bytes(data)
        if orig_len is None:
            orig_len = len(data)
        snaplen = self._snaplens[interface]
        if snaplen and len(data) > snaplen:
            data = data[:snaplen]
        options = _options([_option(_OPT_COMMENT, comment.encode())] if comment else [])
        body = (
            _epb_fields(interface, nanoseconds >> 32, nanoseconds & 0xFFFFFFFF, len(data), orig_len)
            + data
            + bytes(-len(data) % 4)
            + options
        )
        self._emit(_block(_EPB, body))

    def write_secrets(self, data: Union[bytes, str], secrets_type: int = TLS_KEY_LOG) -> None:
        """A Decryption Secrets Block: Wireshark decrypts the packets after it with these keys.

        ``data`` is NSS key-log text for :data:`TLS_KEY_LOG`; write it before the packets it opens.
        """
        if isinstance(data, str):
            data = data.encode("ascii")
        self._emit(_block(_DSB, struct.pack("<II", secrets_type, len(data)) + data + bytes(-len(data) % 4)))

    def close(self) -> None:
        if self._file is not None and self._owned:
            self._file.close()
        self._file = None

    def __enter__(self) -> PcapngWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _interface_block(self, linktype: int, snaplen: int, name: Union[str, None]) -> bytes:
        options = [_option(_IF_TSRESOL, bytes([_NANOSECONDS]))]
        if name:
            options.insert(0, _option(_IF_NAME, name.encode()))
        self._snaplens.append(snaplen)
        return _block(_IDB, struct.pack("<HHI", linktype, 0, snaplen) + _options(options))

    def _emit(self, block: bytes) -> None:
        if self._file is None:
            raise ValueError("write to a closed PcapngWriter")
        written = self._file.write(block)
        if written is not None and written < len(block):
            # An unbuffered file may take only part of a block (e.g. a signal in the middle).
            view = memoryview(block)
            while written < len(block):
                written += self._file.write(view[written:])
        if self._flush is not None:
            self._flush()
