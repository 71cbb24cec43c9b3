"""`ccssniff listen` on a veth in network namespaces (needs root):

1. latency from a CM_SLAC_MATCH.CNF on the wire to our CM_SET_KEY.REQ on the wire, both stamped by
   the kernel on the peer's side (the peer plays the local modem: it answers VS_SW_VER);
2. the frames per second the live loop (pcapng writing + Pipeline.feed + JSON lines) takes before
   the kernel drops frames: small IPv6/UDP frames at stepped rates.

Prints figures; asserts nothing. Run: sudo python3 bench/bench_listen.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time

from ccssniff.capture.live import LiveLink
from ccssniff.emulate import netns
from ccssniff.homeplug import CmSetKeyReq, CmSlacMatchCnf, MacAddress, VsSwVerCnf, VsSwVerReq, nid_from_nmk, parse_frame

CLI = [sys.executable, "-c", "from ccssniff.cli import main; main()"]
MODEM = MacAddress("00:b0:52:00:00:42")
EV = MacAddress("02:00:00:00:0e:01")
FIRMWARE = b"MAC-QCA7420-1.5.0.26-01-20200114-CS\0"


def start_listen(namespace, interface: str, output: str, *options: str) -> subprocess.Popen:
    return namespace.popen(CLI + ["listen", interface, "-w", output, "--json", *options],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def wait_frames(link: LiveLink, seconds: float):
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        select.select([link], [], [], left)
        yield from link.read()


def latency(listening, peer, listen_if: str, peer_if: str, runs: int) -> list[float]:
    with peer.entered():
        modem = LiveLink(peer_if, bpf="ether proto 0x88e1")
        meter = LiveLink(peer_if, bpf="ether proto 0x88e1")  # sees what `modem` sends, too
    with tempfile.TemporaryDirectory() as directory:
        listener = start_listen(listening, listen_if, os.path.join(directory, "l.pcapng"))
        try:
            host = None
            for _stamp, frame in wait_frames(modem, 10.0):  # answer the first VS_SW_VER as the local modem
                message = parse_frame(frame) if frame[12:14] == b"\x88\xe1" else None
                if isinstance(message, VsSwVerReq):
                    host = message.src
                    modem.send(VsSwVerCnf(dst=host, src=MODEM, device_id=0x20, version_length=len(FIRMWARE),
                                          version=FIRMWARE.ljust(254, b"\0")).build_frame(pad=True))
                    break
            time.sleep(0.5)
            figures = []
            for run in range(runs):
                nmk = os.urandom(16)
                modem.send(CmSlacMatchCnf(dst=EV, src=MODEM, pev_mac=EV, evse_mac=MODEM, run_id=os.urandom(8),
                                          nid=nid_from_nmk(nmk), nmk=nmk).build_frame(pad=True))
                sent_at = None
                for stamp, frame in wait_frames(meter, 2.0):
                    message = parse_frame(frame) if frame[12:14] == b"\x88\xe1" else None
                    if isinstance(message, CmSlacMatchCnf) and message.nmk == nmk:
                        sent_at = stamp
                    elif isinstance(message, CmSetKeyReq) and message.new_key == nmk and sent_at is not None:
                        figures.append((stamp - sent_at) / 1e6)
                        break
                time.sleep(0.1)
            return figures
        finally:
            listener.terminate()
            listener.communicate(timeout=20)
            modem.close()
            meter.close()


def udp_frame(source: MacAddress, number: int) -> bytes:
    payload = number.to_bytes(4, "big") + bytes(4)
    udp = b"\x30\x39\x30\x3a" + (8 + len(payload)).to_bytes(2, "big") + b"\0\0" + payload
    ipv6 = b"\x60\0\0\0" + len(udp).to_bytes(2, "big") + b"\x11\x40" + bytes(32)
    return b"\x33\x33\0\0\0\x01" + bytes(source) + b"\x86\xdd" + ipv6 + udp


def throughput(listening, peer, listen_if: str, peer_if: str, rate: int, seconds: float) -> dict:
    import socket

    with peer.entered():  # a plain AF_PACKET socket: the traffic generator needs no libpcap
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        sock.bind((peer_if, 0))
        sock.setblocking(False)
    frames = [udp_frame(MacAddress("02:00:00:00:00:01"), n) for n in range(256)]
    with tempfile.TemporaryDirectory() as directory:
        listener = start_listen(listening, listen_if, os.path.join(directory, "t.pcapng"), "--no-join")
        time.sleep(1.5)
        sent = 0
        start = time.perf_counter()
        try:
            while (elapsed := time.perf_counter() - start) < seconds:
                due = int(elapsed * rate)
                while sent < due:
                    try:
                        sock.send(frames[sent & 255])
                    except BlockingIOError:
                        break
                    sent += 1
            elapsed = time.perf_counter() - start
            time.sleep(1.0)
        finally:
            sock.close()
            listener.terminate()
            output, _ = listener.communicate(timeout=60)
    summary = json.loads(output.splitlines()[-1])["listen"]
    udp = sum(counts.get("other", 0) for counts in summary["stations"].values())
    return {"target": rate, "sent_per_s": sent / elapsed, "sent": sent, "captured": udp,
            "dropped": summary["dropped_by_kernel"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer runs and rates")
    arguments = parser.parse_args()
    reason = netns.unavailable_reason()
    if reason:
        sys.exit(f"cannot run: {reason}")
    with netns.Namespaces(2) as (listening, peer):
        listen_if, peer_if = netns.veth(listening, peer)
        figures = latency(listening, peer, listen_if, peer_if, 5 if arguments.quick else 20)
        if figures:
            print(f"CM_SLAC_MATCH.CNF -> CM_SET_KEY.REQ on the wire: {len(figures)} runs, median "
                  f"{statistics.median(figures):.2f} ms, min {min(figures):.2f} ms, max {max(figures):.2f} ms")
        else:
            print("no CM_SET_KEY.REQ seen")
        rates = (10_000, 40_000) if arguments.quick else (10_000, 20_000, 40_000, 80_000, 160_000)
        for rate in rates:
            result = throughput(listening, peer, listen_if, peer_if, rate, 3.0)
            print(f"target {result['target']:>7} frames/s: sent {result['sent_per_s']:>9.0f}/s ({result['sent']}), "
                  f"listen captured {result['captured']}, kernel dropped {result['dropped']}")


if __name__ == "__main__":
    main()
