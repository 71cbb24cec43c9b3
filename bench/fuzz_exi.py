"""Long fuzzing run of the EXI codec (not a test: the suite has tests/test_openv2gx_fuzz.py).

With atheris (coverage-guided libFuzzer; `pip install atheris`), the corpus is seeded with every
vector of ../shared/vectors. The first input byte picks the grammar and fragment mode, the rest is
the stream. Without atheris a seeded random mutator does the same for --seconds.

Properties: decoding raises nothing but DecodeError; what decodes either encodes to bytes that
decode to the same message, or the encoder refuses it with EncodeError.

    python3 bench/fuzz_exi.py --seconds 600            # atheris when installed
    python3 bench/fuzz_exi.py --seconds 600 --random   # the plain random mutator
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))

try:
    import atheris
except ImportError:
    atheris = None

if atheris is not None:
    with atheris.instrument_imports():
        import openv2gx
else:
    import openv2gx

SCHEMAS = openv2gx.SCHEMAS


def one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    schema = SCHEMAS[data[0] % len(SCHEMAS)]
    fragment = bool(data[0] & 0x80)
    stream = data[1:]
    try:
        message = openv2gx.decode(stream, schema, fragment=fragment)
    except openv2gx.DecodeError:
        return
    try:
        encoded = openv2gx.encode(message, schema, fragment=fragment)
    except openv2gx.EncodeError:
        return
    again = openv2gx.decode(encoded, schema, fragment=fragment)
    if again != message:
        raise AssertionError(f"{schema}: re-encoded message decodes differently: {stream.hex()}")


def seeds() -> list[bytes]:
    found = []
    for path in sorted((SHARED / "vectors").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            grammar = record.get("grammar")
            if grammar not in SCHEMAS:
                continue
            data = bytes.fromhex(record.get("exi_hex") or record.get("payload_hex") or "")
            selector = SCHEMAS.index(grammar) | (0x80 if record.get("fragment") else 0)
            found.append(bytes([selector]) + data)
    return found


def mutate(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        if choice < 0.5 and len(data) > 2:
            bit = rng.randrange(8, len(data) * 8)
            data[bit // 8] ^= 0x80 >> (bit % 8)
        elif choice < 0.7:
            del data[rng.randint(2, max(2, len(data))):]
        elif choice < 0.85:
            data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        else:
            position = rng.randrange(1, max(2, len(data)))
            data[position:position] = bytes([rng.randrange(256)])
    return bytes(data)


def random_run(seconds: float, seed: int) -> None:
    rng = random.Random(seed)
    corpus = seeds() or [b"\x01\x80"]
    inputs = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        one_input(mutate(rng, rng.choice(corpus)))
        inputs += 1
    elapsed = time.monotonic() - start
    print(f"random mutator: {inputs} inputs in {elapsed:.0f} s ({inputs / elapsed:.0f}/s), "
          f"seed {seed}, {len(corpus)} seed vectors, no property violated")


def atheris_run(seconds: int) -> None:
    corpus = Path(tempfile.mkdtemp(prefix="openv2gx-fuzz-"))
    for number, data in enumerate(seeds()):
        (corpus / f"seed{number:05d}").write_bytes(data)
    print(f"atheris: {len(list(corpus.iterdir()))} seed inputs in {corpus}", flush=True)
    print(f"atheris: a failing input is written to {corpus}/crash-*", flush=True)
    atheris.Setup([sys.argv[0], f"-max_total_time={seconds}", "-max_len=20000", f"-artifact_prefix={corpus}/",
                   str(corpus)], one_input)
    atheris.Fuzz()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--random", action="store_true", help="use the random mutator even if atheris is installed")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    if atheris is None or args.random:
        if atheris is None:
            print("atheris is not installed; running the random mutator instead")
        random_run(args.seconds, args.seed)
    else:
        atheris_run(args.seconds)


if __name__ == "__main__":
    main()
