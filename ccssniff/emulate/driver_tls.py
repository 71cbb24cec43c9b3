"""TLS for the real drivers: contexts on kernel TCP, the session keys logged, disclosed and recorded.

Python's ssl writes the keys of every handshake to a key-log file (``--keylog`` or a private
temporary one); after each handshake we read the new lines to disclose them over UDP as test
systems do (``--disclose-keys``) and to put them into the recording as a Decryption Secrets Block.
"""
from __future__ import annotations

import socket
import tempfile
from pathlib import Path

from ccssniff.emulate.tls import PkiFiles, client_context, server_context

# The dsV2Gshark captures carry their test system's key-log lines to this UDP port.
DISCLOSE_PORT = 52345
DISCLOSE_GROUP = "ff02::1"


class DriverTls:
    def __init__(self, protocols: tuple[str, ...], pki_dir: Path | None, keylog: Path | None) -> None:
        self.protocols = protocols
        self._temporary = None
        if keylog is None:
            self._temporary = tempfile.TemporaryDirectory(prefix="ccssniff-keys-")
            keylog = Path(self._temporary.name) / "keys.log"
        self.keylog = Path(keylog)
        self._read = self.keylog.stat().st_size if self.keylog.exists() else 0
        self.pki = PkiFiles(pki_dir)

    def server(self):
        return server_context(self.pki, self.protocols, str(self.keylog))

    def client(self):
        return client_context(self.pki, self.protocols, str(self.keylog))

    def new_keys(self) -> str:
        """Key-log lines written since the last call."""
        try:
            with open(self.keylog, "rb") as file:
                file.seek(self._read)
                data = file.read()
        except OSError:
            return ""
        self._read += len(data)
        return data.decode("ascii", "replace")

    @staticmethod
    def disclose(interface: str, keys: str) -> int:
        """One UDP datagram per key-log line to all nodes on the link; returns how many were sent."""
        scope = socket.if_nametoindex(interface)
        sent = 0
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as udp:
            udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, scope)
            for line in keys.splitlines():
                if line and not line.startswith("#"):
                    udp.sendto(line.encode("ascii") + b"\n", (DISCLOSE_GROUP, DISCLOSE_PORT, 0, scope))
                    sent += 1
        return sent

    def close(self) -> None:
        self.pki.close()
        if self._temporary is not None:
            self._temporary.cleanup()
