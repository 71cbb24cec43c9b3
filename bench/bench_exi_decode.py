"""EXI decode throughput of openv2gx per message type, next to the Java EXIficient codec (the one the
PyPI package iso15118 drives through py4j), measured in the same run on the same messages.

Inputs: every vector of ../shared/vectors (all schemas and variants) and the EXI payloads of
sessions.jsonl (realistic values). Prints messages/s and microseconds per message per message type,
then the typical charging-loop messages (CurrentDemandReq/Res, ChargingStatusReq/Res,
PreChargeReq/Res, DC_ChargeLoopReq/Res) together, and the ratio to Java on those.

    python3 bench/bench_exi_decode.py [--seconds 0.2] [--java-rounds 20] [--no-java]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict

from exi_peers import JAVA_NAMESPACE, SHARED, TYPICAL, best_rate, java_codec  # noqa: E402

import openv2gx  # noqa: E402

VECTOR_FILES = ("appHandshake", "din", "iso2", "iso20", "sessions")


def load_messages():
    """(grammar, message name, source, bytes, variant) of every EXI document (fragments are left out:
    they are signature inputs, not messages on the wire)."""
    found = []
    for name in VECTOR_FILES:
        path = SHARED / "vectors" / f"{name}.jsonl"
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if not record.get("grammar") or record.get("fragment"):
                continue
            data = bytes.fromhex(record.get("exi_hex") or record["payload_hex"])
            found.append((record["grammar"], record.get("message") or record.get("root"), name, data,
                          record.get("variant", "session")))
    return found


def rate(messages, seconds: float) -> float:
    """Messages per second decoding the list over and over for about ``seconds`` (best of 3)."""
    decode = openv2gx.decode

    def run_all():
        for grammar, _, _, data, _ in messages:
            decode(data, grammar)
    return best_rate(run_all, len(messages), seconds)


def java_rate(codec, messages, rounds: int):
    """Messages per second of the Java decoder (py4j call included, as iso15118 pays it)."""
    usable = []
    for item in messages:
        grammar, _, _, data, _ = item
        try:
            codec.decode(data, JAVA_NAMESPACE[grammar])
            usable.append(item)
        except Exception:  # EXICodec.jar rejects some vectors; time only what it decodes
            continue
    if not usable:
        return 0.0, 0
    start = time.perf_counter()
    for _ in range(rounds):
        for grammar, _, _, data, _ in usable:
            codec.decode(data, JAVA_NAMESPACE[grammar])
    return rounds * len(usable) / (time.perf_counter() - start), len(usable)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.2, help="time per message type")
    parser.add_argument("--java-rounds", type=int, default=20)
    parser.add_argument("--no-java", action="store_true")
    args = parser.parse_args()

    messages = load_messages()
    if not messages:
        sys.exit(f"no vectors in {SHARED / 'vectors'}")
    for grammar, _, _, data, _ in messages:  # load the tables before timing
        openv2gx.decode(data, grammar)
    by_type = defaultdict(list)
    for item in messages:
        by_type[(item[0], item[1])].append(item)

    print(f"openv2gx decode, {len(messages)} messages, {len(by_type)} message types "
          f"(Python {sys.version.split()[0]})")
    print(f"{'grammar':22} {'message':40} {'n':>3} {'bytes':>6} {'msg/s':>9} {'us/msg':>8}")
    rates = {}
    for (grammar, name), items in sorted(by_type.items()):
        rates[(grammar, name)] = rate(items, args.seconds)
        size = statistics.mean(len(item[3]) for item in items)
        mark = " *" if name in TYPICAL else ""
        print(f"{grammar:22} {name:40} {len(items):3} {size:6.0f} {rates[(grammar, name)]:9.0f} "
              f"{1e6 / rates[(grammar, name)]:8.1f}{mark}")

    # typical = the charging-loop messages at realistic sizes: the sessions between independent
    # stacks and the "typ" variant of the vectors (min/max/rand stretch lengths and lists)
    typical = [item for item in messages
               if item[1] in TYPICAL and item[4].split("#")[0] in ("session", "typ")]
    every_variant = [item for item in messages if item[1] in TYPICAL]
    overall = rate(messages, args.seconds * 5)
    typical_rate = rate(typical, args.seconds * 5)
    every_variant_rate = rate(every_variant, args.seconds * 5)
    print()
    print(f"all messages ({len(messages)}):{'':19} {overall:9.0f} msg/s {1e6 / overall:8.1f} us/msg")
    print(f"typical (* above, sessions + typ, {len(typical):3}): {typical_rate:9.0f} msg/s "
          f"{1e6 / typical_rate:8.1f} us/msg   target >= 20000 msg/s")
    print(f"* above, every variant ({len(every_variant):3}):{'':8} {every_variant_rate:9.0f} msg/s "
          f"{1e6 / every_variant_rate:8.1f} us/msg")

    if args.no_java:
        print("\nJava EXIficient (iso15118): skipped (--no-java)")
        return
    codec, why = java_codec()
    if codec is None:
        print(f"\nJava EXIficient (iso15118): cannot run: {why}")
        return
    print(f"\nJava EXIficient {codec.get_version()} through py4j (iso15118), same messages:")
    for label, items, ours in (("typical", typical, typical_rate),
                               ("* every variant", every_variant, every_variant_rate)):
        java, usable = java_rate(codec, items, args.java_rounds)
        if not usable:
            print(f"  {label}: the Java codec decoded none of them")
            continue
        print(f"  {label:16} ({usable:3} decodable): {java:9.0f} msg/s {1e6 / java:8.1f} us/msg; "
              f"openv2gx / Java = {ours / java:.0f}x")


if __name__ == "__main__":
    main()
