"""Packet-file reading throughput: ccssniff's reader next to dpkt's and pyshark's, same file, same run.

Generates a pcapng of --frames frames (HomePlug SLAC MMEs mixed with IPv6/TCP frames carrying
V2GTP, every 100th frame with a comment) and the same frames as a pcap, then prints frames/s
for each reader, the ratios, and MMEs/s parsed by ccssniff.homeplug. pyshark (tshark
underneath, dissecting every frame) is timed on the first --pyshark-frames frames only and
extrapolated; the output says so.

    python3 bench/bench_read.py [--frames 500000] [--pyshark-frames 2000]
"""

from __future__ import annotations

import argparse
import random
import struct
import tempfile
import time
from pathlib import Path

import dpkt

from ccssniff.capture.link import decode_link
from ccssniff.capture.pcapng import PcapngWriter
from ccssniff.capture.reader import read_packets
from ccssniff.homeplug import parse_frame

EV_MAC = bytes.fromhex("0200000000ee")
EVSE_MAC = bytes.fromhex("0200000000cc")
BROADCAST = b"\xff" * 6


def homeplug_frame(rng: random.Random) -> bytes:
    """A SLAC MME: CM_SLAC_PARAM.REQ, CM_MNBC_SOUND.IND or CM_ATTEN_CHAR.IND (MMV 1)."""
    run_id = rng.randbytes(8)
    kind = rng.randrange(3)
    if kind == 0:
        mmtype, payload = 0x6064, bytes([0, 0]) + run_id  # application type, security type, RunID
    elif kind == 1:
        mmtype, payload = 0x6076, bytes([0, 0]) + bytes(17) + bytes([rng.randrange(10)]) + run_id + bytes(8) + rng.randbytes(16)
    else:
        mmtype, payload = 0x606E, bytes([0, 0]) + EV_MAC + bytes(17) + bytes(17) + run_id + bytes([10, 58]) + rng.randbytes(58)
    header = BROADCAST + EV_MAC + b"\x88\xe1" + bytes([1]) + struct.pack("<H", mmtype) + b"\x00\x00"
    frame = header + payload
    return frame + bytes(max(0, 60 - len(frame)))


def tcp_frame(rng: random.Random) -> bytes:
    """An IPv6/TCP frame whose payload starts with a V2GTP header (EXI body random)."""
    body = rng.randbytes(rng.randrange(20, 300))
    v2gtp = b"\x01\xfe\x80\x01" + struct.pack(">I", len(body)) + body
    tcp = struct.pack(">HHIIBBHHH", 15118, 50000, rng.getrandbits(32), rng.getrandbits(32), 0x50, 0x18, 8192, 0, 0)
    ipv6 = struct.pack(">IHBB", 0x60000000, len(tcp) + len(v2gtp), 6, 64) + bytes(16) + bytes(16)
    src, dst = (EV_MAC, EVSE_MAC) if rng.random() < 0.5 else (EVSE_MAC, EV_MAC)
    return dst + src + b"\x86\xdd" + ipv6 + tcp + v2gtp


def generate(folder: Path, frames: int, pyshark_frames: int) -> tuple[Path, Path, Path]:
    rng = random.Random(15118)
    pcapng_path, pcap_path, subset_path = folder / "bench.pcapng", folder / "bench.pcap", folder / "subset.pcapng"
    with open(pcapng_path, "wb") as ng_file, open(pcap_path, "wb") as pcap_file, open(subset_path, "wb") as subset_file:
        ng = PcapngWriter(ng_file)
        subset = PcapngWriter(subset_file)
        pcap = dpkt.pcap.Writer(pcap_file, linktype=dpkt.pcap.DLT_EN10MB)
        timestamp = 1_700_000_000.0
        for n in range(frames):
            frame = homeplug_frame(rng) if rng.random() < 0.3 else tcp_frame(rng)
            timestamp += 0.0005
            comment = f"frame {n}" if n % 100 == 0 else None
            ng.write(frame, timestamp=timestamp, comment=comment)
            pcap.writepkt(frame, ts=timestamp)
            if n < pyshark_frames:
                subset.write(frame, timestamp=timestamp, comment=comment)
    return pcapng_path, pcap_path, subset_path


def best_rate(count_frames, repeats: int = 3) -> tuple[float, int]:
    """Frames per second of the fastest of ``repeats`` runs of ``count_frames()``."""
    best, count = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        count = count_frames()
        best = min(best, time.perf_counter() - start)
    return count / best, count


def ours(path: Path) -> int:
    return sum(1 for _ in read_packets(path))


def ours_with_link(path: Path) -> int:
    count = 0
    for packet in read_packets(path):
        if decode_link(packet.linktype, packet.data) is not None:
            count += 1
    return count


def dpkt_pcapng(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in dpkt.pcapng.Reader(f))


def dpkt_pcap(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in dpkt.pcap.Reader(f))


def pyshark_count(path: Path) -> int:
    import pyshark

    capture = pyshark.FileCapture(str(path), keep_packets=False)
    try:
        return sum(1 for _ in capture)
    finally:
        capture.close()


def homeplug_rate(path: Path) -> tuple[float, int]:
    """MMEs parsed per second by ccssniff.homeplug.parse_frame (frames already in memory)."""
    frames = [p.data for p in read_packets(path) if p.data[12:14] == b"\x88\xe1"]

    def parse_all() -> int:
        for frame in frames:
            parse_frame(frame)
        return len(frames)

    return best_rate(parse_all)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=500_000)
    parser.add_argument("--pyshark-frames", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ccssniff-bench-") as folder:
        start = time.perf_counter()
        pcapng_path, pcap_path, subset_path = generate(Path(folder), args.frames, args.pyshark_frames)
        print(f"generated {args.frames} frames (30% SLAC MMEs, 70% IPv6/TCP/V2GTP) in {time.perf_counter() - start:.1f} s: "
              f"pcapng {pcapng_path.stat().st_size / 2**20:.1f} MiB, pcap {pcap_path.stat().st_size / 2**20:.1f} MiB")

        rows = []
        rate, count = best_rate(lambda: ours(pcapng_path))
        assert count == args.frames
        rows.append(("ccssniff read_packets, pcapng", rate, "frames/s"))
        ours_ng = rate
        rate, _ = best_rate(lambda: ours_with_link(pcapng_path))
        rows.append(("ccssniff read_packets + decode_link, pcapng", rate, "frames/s"))
        rate, count = best_rate(lambda: dpkt_pcapng(pcapng_path))
        assert count == args.frames
        rows.append(("dpkt.pcapng.Reader, pcapng", rate, "frames/s"))
        dpkt_ng = rate
        rate, count = best_rate(lambda: ours(pcap_path))
        assert count == args.frames
        rows.append(("ccssniff read_packets, pcap", rate, "frames/s"))
        ours_pcap = rate
        rate, count = best_rate(lambda: dpkt_pcap(pcap_path))
        assert count == args.frames
        rows.append(("dpkt.pcap.Reader, pcap", rate, "frames/s"))
        dpkt_pcap_rate = rate
        rate, count = best_rate(lambda: pyshark_count(subset_path), repeats=1)
        assert count == args.pyshark_frames
        rows.append((f"pyshark FileCapture(keep_packets=False), first {count} frames, extrapolated", rate, "frames/s"))
        pyshark_rate = rate

        rate, count = homeplug_rate(pcapng_path)
        rows.append((f"ccssniff.homeplug.parse_frame, the {count} MMEs of the file", rate, "MMEs/s"))

        width = max(len(name) for name, _, _ in rows)
        for name, value, unit in rows:
            print(f"{name:<{width}}  {value:>12,.0f} {unit}")
        print(f"ratio ccssniff / dpkt, pcapng:    {ours_ng / dpkt_ng:8.1f}x")
        print(f"ratio ccssniff / dpkt, pcap:      {ours_pcap / dpkt_pcap_rate:8.1f}x")
        print(f"ratio ccssniff / pyshark, pcapng: {ours_ng / pyshark_rate:8.0f}x")


if __name__ == "__main__":
    main()
