"""Corrupted traces through the decode pipeline (not a test: tests/test_decode_tcp_hardening.py and
tests/test_decode_memory.py hold the crafted cases).

Each trace is a random window of a reference capture (the lab captures of ../captures and, when
present, a few real ones of ../shared/captures), corrupted by one to three mutations:

  reorder    frames shuffled within small windows (TCP reordering)
  overlap    TCP segments re-sent overlapping, with some bytes changed, before or after the original
  split      TCP segments cut into pieces of 1 to 9 bytes, some pieces swapped
  length     V2GTP length fields replaced by lies (0, 1, 262144, 65535, 2^32-1, real +/- k)
  flip       random bits flipped anywhere in random frames
  truncate   frames cut short, and the trace cut at a random frame

and decoded with ``decode_trace`` (pipeline and session model, EXI included). Property: nothing
raises. Prints the count, the mutation counts, the slowest trace (seed to reproduce) and the peak
resident memory of the process.

    PYTHONPATH=. python bench/fuzz_traces.py --traces 10000 [--seed 1] [--window 120]
    PYTHONPATH=. python bench/fuzz_traces.py --replay SEED   # one trace again, with its traceback
"""
from __future__ import annotations

import argparse
import random
import sys
import time
import traceback
import warnings
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "captures"
sys.path.insert(0, str(REPO))

from ccssniff.capture.reader import read_packets  # noqa: E402
from ccssniff.decode.trace import decode_trace  # noqa: E402

REAL = ["josev/iso20.pcapng", "pyplc/2023-05-24_pyPlc_with_Ioniq93prcSoc.pcapng",
        "everest/BYD/Atto3/2023-04-18T15-31-50.525Z-2_config-dc-iso2/ethernet-traffic.dump",
        "tux-evse/2024-03-28_iso15118-20_ac3ph_6_tls1.3.pcapng"]
LIES = (0, 1, 7, 65535, 262_144, 262_143, 0xFFFFFFFF)


def sources() -> list[list[SimpleNamespace]]:
    paths = sorted((REPO / "captures").glob("*.pcapng")) + [SHARED / name for name in REAL if (SHARED / name).exists()]
    traces = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in paths:
            traces.append([SimpleNamespace(index=p.index, timestamp=p.timestamp, linktype=p.linktype, data=p.data)
                           for p in read_packets(path)])
    return traces


def tcp_payload_at(data: bytes) -> int | None:
    """Offset of the TCP payload in an Ethernet/IPv6 frame, or None."""
    if len(data) < 74 or data[12:14] != b"\x86\xdd" or data[20] != 6:
        return None
    start = 54 + (data[66] >> 4) * 4
    return start if start <= len(data) else None


def with_tcp(data: bytes, seq_delta: int, payload: bytes) -> bytes:
    """The same TCP frame with its payload replaced and its sequence number moved."""
    start = tcp_payload_at(data)
    seq = (int.from_bytes(data[58:62], "big") + seq_delta) & 0xFFFFFFFF
    header = bytearray(data[:start])
    header[58:62] = seq.to_bytes(4, "big")
    header[18:20] = (start - 54 + len(payload)).to_bytes(2, "big")
    return bytes(header) + payload


def reorder(rng, frames):
    out = list(frames)
    for _ in range(rng.randint(1, 6)):
        start = rng.randrange(len(out))
        window = out[start:start + rng.randint(2, 8)]
        rng.shuffle(window)
        out[start:start + len(window)] = window
    return out


def data_frames(frames):
    return [n for n, f in enumerate(frames) if (s := tcp_payload_at(f.data)) is not None and s < len(f.data)]


def overlap(rng, frames):
    out = list(frames)
    candidates = data_frames(out)
    # from the back, so that inserting a copy does not move the frames still to be copied
    for n in sorted(rng.sample(candidates, min(len(candidates), rng.randint(1, 4))), reverse=True):
        original = out[n]
        start = tcp_payload_at(original.data)
        payload = bytearray(original.data[start:])
        shift = rng.randint(-4, 4)
        if shift < 0:
            payload[:0] = bytes(rng.randrange(256) for _ in range(-shift))
        else:
            del payload[:shift]
        for _ in range(rng.randint(0, 3)):
            if payload:
                payload[rng.randrange(len(payload))] ^= 1 << rng.randrange(8)
        copy = SimpleNamespace(**vars(original))
        copy.data = with_tcp(original.data, shift, bytes(payload))
        out.insert(n + (1 if rng.random() < 0.5 else 0), copy)
    return out


def split(rng, frames):
    out = []
    chosen = set(rng.sample(data_frames(frames), min(len(data_frames(frames)), rng.randint(1, 5))))
    for n, frame in enumerate(frames):
        if n not in chosen:
            out.append(frame)
            continue
        start = tcp_payload_at(frame.data)
        payload, offset, pieces = frame.data[start:], 0, []
        while offset < len(payload):
            size = rng.randint(1, 9)
            piece = SimpleNamespace(**vars(frame))
            piece.data = with_tcp(frame.data, offset, payload[offset:offset + size])
            pieces.append(piece)
            offset += size
        if len(pieces) > 2 and rng.random() < 0.5:
            i = rng.randrange(len(pieces) - 1)
            pieces[i], pieces[i + 1] = pieces[i + 1], pieces[i]
        out += pieces
    return out


def length(rng, frames):
    out = list(frames)
    for n in data_frames(out):
        start = tcp_payload_at(out[n].data)
        if out[n].data[start:start + 2] == b"\x01\xfe" and rng.random() < 0.3:
            data = bytearray(out[n].data)
            real = int.from_bytes(data[start + 4:start + 8], "big")
            lie = rng.choice(LIES + (real + rng.randint(-5, 40),)) & 0xFFFFFFFF
            data[start + 4:start + 8] = lie.to_bytes(4, "big")
            out[n] = SimpleNamespace(**{**vars(out[n]), "data": bytes(data)})
    return out


def flip(rng, frames):
    out = list(frames)
    for _ in range(rng.randint(1, 20)):
        n = rng.randrange(len(out))
        data = bytearray(out[n].data)
        if data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        out[n] = SimpleNamespace(**{**vars(out[n]), "data": bytes(data)})
    return out


def truncate(rng, frames):
    out = list(frames)
    for _ in range(rng.randint(0, 5)):
        n = rng.randrange(len(out))
        out[n] = SimpleNamespace(**{**vars(out[n]), "data": out[n].data[:rng.randrange(len(out[n].data) + 1)]})
    return out[:rng.randint(max(1, len(out) // 2), len(out))]


MUTATIONS = {"reorder": reorder, "overlap": overlap, "split": split, "length": length, "flip": flip,
             "truncate": truncate}


def corrupted(traces, seed: int, window: int):
    rng = random.Random(seed)
    trace = rng.choice(traces)
    start = rng.randrange(max(1, len(trace) - window))
    frames = trace[start:start + rng.randint(window // 4, window)]
    kinds = rng.sample(sorted(MUTATIONS), rng.randint(1, 3))
    for kind in kinds:
        if frames:
            frames = MUTATIONS[kind](rng, frames)
    for index, frame in enumerate(frames, 1):
        frame.index = index
    return kinds, frames


def peak_mib() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1, help="seed of the first trace; trace i uses seed + i")
    parser.add_argument("--window", type=int, default=120, help="most frames taken from a capture per trace")
    parser.add_argument("--replay", type=int, default=None, help="decode the trace of this seed, show any traceback")
    args = parser.parse_args()
    traces = sources()
    if args.replay is not None:
        kinds, frames = corrupted(traces, args.replay, args.window)
        print(f"seed {args.replay}: {', '.join(kinds)}, {len(frames)} frames")
        session = decode_trace(frames)
        print(session.to_dict())
        return
    counts = dict.fromkeys(MUTATIONS, 0)
    failures, slowest, frames_total = [], (0.0, None, None), 0
    started = time.perf_counter()
    for seed in range(args.seed, args.seed + args.traces):
        kinds, frames = corrupted(traces, seed, args.window)
        for kind in kinds:
            counts[kind] += 1
        frames_total += len(frames)
        began = time.perf_counter()
        try:
            decode_trace(frames).to_dict()
        except Exception as error:  # the property under test: nothing raises
            failures.append((seed, kinds, f"{type(error).__name__}: {error}"))
            if len(failures) <= 3:
                traceback.print_exc()
        elapsed = time.perf_counter() - began
        if elapsed > slowest[0]:
            slowest = (elapsed, seed, f"{', '.join(kinds)}; {len(frames)} frames")
    total = time.perf_counter() - started
    print(f"{args.traces} corrupted traces ({frames_total} frames) in {total:.1f} s from {len(traces)} captures")
    print("mutations: " + ", ".join(f"{kind} {count}" for kind, count in counts.items()))
    print(f"slowest trace: seed {slowest[1]} ({slowest[2]}) {slowest[0] * 1000:.1f} ms")
    print(f"peak memory (VmHWM): {peak_mib():.0f} MiB")
    print(f"exceptions: {len(failures)}")
    for seed, kinds, text in failures[:20]:
        print(f"  seed {seed} ({', '.join(kinds)}): {text}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
