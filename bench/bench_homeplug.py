"""ccssniff.homeplug throughput: MMEs parsed/s and built/s per message, and over real captures.

Each figure is the best of several timed rounds (the machine may be shared). The real-capture
figure parses every HomePlug frame of ../shared/captures (when that folder exists), already in
memory, so it measures parsing only.

    python3 bench/bench_homeplug.py [--rounds 5] [--number 20000]
"""

from __future__ import annotations

import argparse
import timeit
import warnings
from pathlib import Path

from ccssniff.capture.link import decode_link
from ccssniff.capture.reader import read_packets
from ccssniff.homeplug import (
    BROADCAST, CmAttenCharInd, CmAttenProfileInd, CmMnbcSoundInd, CmSetKeyReq, CmSlacMatchCnf,
    CmSlacParamReq, NetworkInfo, StationInfo, VsNwInfoCnf, VsSwVerCnf, parse_frame, parse_mac,
    parse_payload,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PEV = parse_mac("02:00:00:00:00:01")

SAMPLES = [
    CmSlacParamReq(src=PEV, dst=BROADCAST, run_id=bytes(range(8))),
    CmMnbcSoundInd(src=PEV, dst=BROADCAST, countdown=9, run_id=bytes(range(8))),
    CmAttenProfileInd(src=PEV, dst=BROADCAST, pev_mac=PEV, aag=list(range(58))),
    CmAttenCharInd(src=PEV, dst=PEV, source_address=PEV, num_sounds=10, aag=list(range(58))),
    CmSlacMatchCnf(src=PEV, dst=PEV, pev_mac=PEV, evse_mac=PEV, nid=bytes(7), nmk=bytes(range(16))),
    CmSetKeyReq(src=PEV, dst=PEV, nid=bytes(7), new_key=bytes(range(16))),
    VsSwVerCnf(src=PEV, dst=PEV, version=b"MAC-QCA7420-1.3.1".ljust(254, b"\0"), extension=bytes(20)),
    VsNwInfoCnf(src=PEV, dst=PEV, networks=[NetworkInfo(stations=[StationInfo(), StationInfo()])]),
]


def rate(function, number: int, rounds: int) -> float:
    return number / min(timeit.repeat(function, number=number, repeat=rounds))


def real_payloads() -> list[tuple[bytes, bytes, bytes]]:
    payloads = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in sorted((SHARED / "captures").rglob("*")):
            if path.suffix not in {".pcap", ".pcapng", ".dump"}:
                continue
            for packet in read_packets(path):
                frame = decode_link(packet.linktype, packet.data)
                if frame is not None and frame.ethertype == 0x88E1:
                    payloads.append((frame.payload, frame.src, frame.dst))
    return payloads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()
    print(f"{'message':<24} {'bytes':>5} {'parsed/s':>12} {'built/s':>12}")
    for msg in SAMPLES:
        frame = msg.build_frame(pad=True)
        parsed = rate(lambda frame=frame: parse_frame(frame), args.number, args.rounds)
        built = rate(msg.build_frame, args.number, args.rounds)
        print(f"{msg.name:<24} {len(frame):>5} {parsed:>12,.0f} {built:>12,.0f}")
    if (SHARED / "captures").is_dir():
        payloads = real_payloads()

        def parse_all() -> None:
            for payload, src, dst in payloads:
                parse_payload(payload, src, dst)

        frames_per_second = len(payloads) * rate(parse_all, 1, args.rounds)
        print(f"real captures: {len(payloads)} HomePlug frames, {frames_per_second:,.0f} MMEs parsed/s")
    else:
        print(f"real captures: skipped ({SHARED / 'captures'} is absent)")


if __name__ == "__main__":
    main()
