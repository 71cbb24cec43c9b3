"""Long fuzzing run of the EXI codec (not a test: the suite has tests/test_openv2gx_fuzz.py).

With atheris (coverage-guided libFuzzer; `pip install atheris`), the corpus is seeded with every
vector of ../shared/vectors. The first input byte picks the grammar and fragment mode, the rest is
the stream. Without atheris a seeded random mutator does the same for --seconds.

Properties: decoding raises nothing but DecodeError; what decodes either encodes to bytes that
decode to the same message (with the same schema_violations), or the encoder refuses it with
EncodeError.

Mutations of the random mutator: bit flips, truncations, appended and inserted bytes, and "empty
typed content" (a typed element of a seed emptied, or given a value past its facets that its bits
carry, written with the lenient encoder, then perhaps flipped further).

    python3 bench/fuzz_exi.py --seconds 600            # atheris when installed
    python3 bench/fuzz_exi.py --seconds 600 --random   # the plain random mutator
    python3 bench/fuzz_exi.py --random --inputs 1000000 --seconds 900
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import resource
import sys
import tempfile
import time
import traceback
from collections import Counter
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
from openv2gx.leaves import facet_breaking_values, leaves  # noqa: E402

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
    if again != message or again.schema_violations != message.schema_violations:
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


class TypedContent:
    """The "empty typed content" mutation: a seed decoded once, one of its typed elements emptied
    (None) or given a value past its facets, encoded again with the lenient encoder."""

    def __init__(self):
        self.decoded: dict[bytes, tuple] = {}

    def mutate(self, rng: random.Random, data: bytes) -> bytes:
        found = self.decoded.get(data)
        if found is None:
            found = self.decoded[data] = self._decode(data)
        if not found[1]:
            return data
        message, targets = found
        leaf, values = rng.choice(targets)
        old = leaf.get(message)
        leaf.set(message, rng.choice(values))
        try:
            return data[:1] + openv2gx.encode(message, lenient=True)
        except openv2gx.EncodeError:  # not every emptied element may be empty in that place
            return data
        finally:
            leaf.set(message, old)

    @staticmethod
    def _decode(data: bytes):
        schema = SCHEMAS[data[0] % len(SCHEMAS)]
        try:
            message = openv2gx.decode(data[1:], schema, fragment=bool(data[0] & 0x80))
        except openv2gx.DecodeError:
            return None, []
        targets = []
        for leaf in leaves(message):
            values = facet_breaking_values(leaf.datatype)
            if leaf.element and leaf.datatype.empty is None:
                values.append(None)
            if values:
                targets.append((leaf, values))
        return message, targets


TYPED_CONTENT = TypedContent()


def mutate(rng: random.Random, data: bytes) -> bytes:
    if rng.random() < 0.2:
        data = TYPED_CONTENT.mutate(rng, data)
        if rng.random() < 0.5:
            return data
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


#: how many of the slowest inputs are kept to be timed again at the end
SLOWEST_KEPT = 20


def _timed(data: bytes) -> float:
    began = time.perf_counter()
    try:
        one_input(data)
    except Exception:
        pass
    return time.perf_counter() - began


def random_run(seconds: float, seed: int, limit: int | None = None) -> int:
    """Runs until ``seconds`` pass or ``limit`` inputs are done; exceptions other than the
    codec's own errors are counted and shown, not fatal. Returns their number."""
    rng = random.Random(seed)
    corpus = seeds() or [b"\x01\x80"]
    inputs = 0
    slowest: list[tuple[float, bytes]] = []  # a heap of the SLOWEST_KEPT slowest (time, input)
    failures: Counter = Counter()
    first_failure = {}
    for data in corpus:  # compiles the generated code of the grammars first, outside the timing
        one_input(data)
    start = time.monotonic()
    clock = time.perf_counter
    while time.monotonic() - start < seconds and (limit is None or inputs < limit):
        data = mutate(rng, rng.choice(corpus))
        began = clock()
        try:
            one_input(data)
        except Exception as exc:  # the property: nothing but DecodeError/EncodeError gets here
            kind = f"{type(exc).__name__}: {str(exc)[:80]}"
            failures[kind] += 1
            first_failure.setdefault(kind, (data.hex(), traceback.format_exc()))
        took = clock() - began
        if len(slowest) < SLOWEST_KEPT:
            heapq.heappush(slowest, (took, data))
        elif took > slowest[0][0]:
            heapq.heapreplace(slowest, (took, data))
        inputs += 1
    elapsed = time.monotonic() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"random mutator: {inputs} inputs in {elapsed:.0f} s ({inputs / elapsed:.0f}/s), "
          f"seed {seed}, {len(corpus)} seed vectors")
    # The first input to reach a grammar's element also pays for compiling its generated code
    # (specialise.py), so the slowest inputs are timed again, best of three.
    first = max(slowest, default=(0.0, b""))
    again = max(((min(_timed(data) for _ in range(3)), data) for _, data in slowest), default=(0.0, b""))
    kept = Path(tempfile.gettempdir()) / f"openv2gx-fuzz-slowest-{seed}.bin"
    kept.write_bytes(again[1])
    print(f"slowest input on its first run: {first[0] * 1000:.1f} ms ({len(first[1])} bytes; "
          f"includes compiling the generated code of the grammar elements it met first)")
    print(f"slowest input timed again (best of 3): {again[0] * 1000:.1f} ms, {len(again[1])} bytes "
          f"(grammar {SCHEMAS[again[1][0] % len(SCHEMAS)] if again[1] else '-'}), kept in {kept}")
    print(f"peak memory (ru_maxrss): {peak:.0f} MB")
    print(f"exceptions other than DecodeError/EncodeError: {sum(failures.values())}")
    for kind, count in failures.most_common():
        hex_input, trace = first_failure[kind]
        print(f"  {count} x {kind}\n    first input: {hex_input}\n{trace}")
    return sum(failures.values())


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
    parser.add_argument("--inputs", type=int, default=None, help="stop after this many inputs (random mutator)")
    args = parser.parse_args()
    if atheris is None or args.random:
        if atheris is None:
            print("atheris is not installed; running the random mutator instead")
        sys.exit(1 if random_run(args.seconds, args.seed, args.inputs) else 0)
    else:
        atheris_run(args.seconds)


if __name__ == "__main__":
    main()
