"""TLS key log lines (NSS format) that test systems disclose inside the trace, in UDP datagrams
(the convention of dsV2Gshark and EVerest), collected so that Wireshark gets them as a key log
file and decrypts on its first pass."""

from __future__ import annotations

import subprocess

NSS_LABELS = (
    "CLIENT_RANDOM", "CLIENT_EARLY_TRAFFIC_SECRET", "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0",
    "EARLY_EXPORTER_SECRET", "EXPORTER_SECRET",
)


def key_log_lines(payload: bytes) -> list[str]:
    """The NSS key log lines in one datagram (none if it is something else)."""
    try:
        text = payload.decode("ascii")
    except UnicodeDecodeError:
        return []
    found = []
    for line in text.splitlines():
        parts = line.strip().split()
        if len(parts) == 3 and parts[0] in NSS_LABELS and all(_is_hex(p) for p in parts[1:]):
            found.append(" ".join(parts))
    return found


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return len(text) >= 32


def keys_in_capture(tshark: str, capture: str) -> list[str]:
    """Every key log line in the UDP payloads of a capture, in order, without repeats."""
    done = subprocess.run([tshark, "-n", "-r", str(capture), "-Y", "udp", "-T", "fields", "-e", "udp.payload"],
                          capture_output=True, text=True, timeout=300)
    lines: list[str] = []
    for hex_payload in done.stdout.split():
        try:
            payload = bytes.fromhex(hex_payload.replace(":", ""))
        except ValueError:
            continue
        for line in key_log_lines(payload):
            if line not in lines:
                lines.append(line)
    return lines
