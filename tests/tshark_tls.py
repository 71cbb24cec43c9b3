"""What tshark decrypts: the V2GTP messages in the TLS stream it follows."""
from __future__ import annotations

import subprocess


def tshark_lines(tshark, *args) -> list[str]:
    result = subprocess.run([tshark, *map(str, args)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def tshark_v2gtp_count(tshark, path, *options) -> int:
    """V2GTP messages in the decrypted TLS stream tshark follows (both directions)."""
    streams = {0: bytearray(), 1: bytearray()}
    started = False
    for line in tshark_lines(tshark, "-r", path, *options, "-q", "-z", "follow,tls,raw,0"):
        if line.startswith("Node 1:"):
            started = True
        elif started and line.strip() and not line.startswith("="):
            streams[1 if line.startswith("\t") else 0] += bytes.fromhex(line.strip())
    count = 0
    for data in streams.values():
        position = 0
        while position + 8 <= len(data):
            assert data[position:position + 2] == b"\x01\xfe"
            position += 8 + int.from_bytes(data[position + 4:position + 8], "big")
            count += 1
    return count
