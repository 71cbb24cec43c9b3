"""Peak memory of hostile traces stays under the bound at default settings (issue 18, item 3).

Each trace is generated frame by frame inside a child process that decodes it with
``decode_trace`` (the one entry point every command uses) and then reports its own peak resident
size (VmHWM) with a few facts about what it decoded; the parent asserts both.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BOUND_KIB = 150 * 1024

_PRELUDE = r'''
import json, struct, sys
from types import SimpleNamespace
from ccssniff.decode import events as ev
from ccssniff.decode.trace import decode_trace
from ccssniff.decode.v2gtp import build_header

def ipv6(src, dst, payload):
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x86\xdd" + \
        struct.pack("!IHBB16s16s", 6 << 28, len(payload), 6, 64, src, dst) + payload

def tcp(src, dst, sport, dport, seq, payload=b"", flags=0x18, ack=0):
    return ipv6(src, dst, struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack, 5 << 4, flags,
                                      65535, 0, 0) + payload)

def address(n):
    return b"\xfe\x80" + bytes(10) + n.to_bytes(4, "big")

EVSE = address(0xFFFFFFFF)
counts = {}

def count(event, start):
    key = f"{event.kind}:{event.name}"
    counts[key] = counts.get(key, 0) + 1

def packets(frames):
    for index, data in enumerate(frames, 1):
        yield SimpleNamespace(index=index, timestamp=1000.0 + index * 1e-3, linktype=1, data=data)

def report(trace):
    peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:")).split()[1]
    print(json.dumps({"peak_kib": int(peak), "counts": counts, "sessions": len(trace.sessions)}))
'''

SYN_FLOOD = r'''
def frames():
    for n in range(100_000):
        yield tcp(address(n // 60000), EVSE, 1024 + n % 60000, 15118, n * 7919, flags=0x02)
report(decode_trace(packets(frames()), on_event=count))
'''

OUT_OF_ORDER = r'''
# 1,000 connections, each with 200 kB behind a lost first byte (V2GTP messages that never complete)
chunk = bytes(1400)
def frames():
    for n in range(1000):
        ev_address, port = address(n), 20000 + n
        yield tcp(ev_address, EVSE, port, 15118, 99, flags=0x02)
        yield tcp(EVSE, ev_address, 15118, port, 4999, flags=0x12, ack=100)
        for offset in range(1, 200_000, len(chunk)):
            yield tcp(ev_address, EVSE, port, 15118, 100 + offset, chunk, ack=5000)
report(decode_trace(packets(frames()), on_event=count))
'''

UNFINISHED_MESSAGES = r'''
# 700 connections, each sending 230 kB of a V2GTP message that claims 250,000 bytes and never ends
chunk = bytes(1400)
def frames():
    for n in range(700):
        ev_address, port = address(n), 20000 + n
        yield tcp(ev_address, EVSE, port, 15118, 99, flags=0x02)
        yield tcp(EVSE, ev_address, 15118, port, 4999, flags=0x12, ack=100)
        data = build_header(0x8001, 250_000) + bytes(230_000)
        for offset in range(0, len(data), len(chunk)):
            yield tcp(ev_address, EVSE, port, 15118, 100 + offset, data[offset:offset + len(chunk)], ack=5000)
report(decode_trace(packets(frames()), on_event=count))
'''

EVERY_BOUND_AT_ONCE = r'''
# 2,040 connections (just under the limit); in each direction a message of 8 kB still arriving
# (it claims 20,000 bytes) and then 30 kB of out-of-order data behind a lost byte
chunk = bytes(1000)
def frames():
    for n in range(2040):
        ev_address, port = address(n), 10000 + n
        yield tcp(ev_address, EVSE, port, 15118, 99, flags=0x02)
        yield tcp(EVSE, ev_address, 15118, port, 4999, flags=0x12, ack=100)
        for src, dst, sport, dport, base in ((ev_address, EVSE, port, 15118, 100),
                                             (EVSE, ev_address, 15118, port, 5000)):
            data = build_header(0x8001, 20_000) + bytes(8_000)
            for offset in range(0, len(data), 1000):
                yield tcp(src, dst, sport, dport, base + offset, data[offset:offset + 1000])
            for offset in range(len(data) + 1, len(data) + 30_000, 1000):
                yield tcp(src, dst, sport, dport, base + offset, chunk)
report(decode_trace(packets(frames()), on_event=count))
'''

LARGE_MESSAGES = r'''
# 20 distinct ISO 15118-2 messages of about 143 kB, each decoding to about 13 MB of objects
import openv2gx
def message(session, transforms):
    return {"V2G_Message": {"Header": {"SessionID": session, "Signature": {
        "SignedInfo": {"CanonicalizationMethod": {"@Algorithm": "c"}, "SignatureMethod": {"@Algorithm": "s"},
                       "Reference": [{"Transforms": {"Transform": [{"@Algorithm": "t", "#children": [
                           {"XPath": "p%d" % (k % 10)} for k in range(transforms)]}]},
                           "DigestMethod": {"@Algorithm": "d"}, "DigestValue": b"dddd"}]},
        "SignatureValue": {"#text": b"v"}}}, "Body": {"AuthorizationReq": {}}}}
# One encoding, made distinct by the SessionID bytes (found by encoding a small twin twice).
big = openv2gx.encode(message(b"\x00\x00", 39_500), "iso2")
zero, one = openv2gx.encode(message(b"\x00\x00", 1), "iso2"), openv2gx.encode(message(b"\xff\xff", 1), "iso2")
first = next(i for i in range(len(zero)) if zero[i] != one[i])
last = max(i for i in range(len(zero)) if zero[i] != one[i]) + 1
variants = [big[:first] + openv2gx.encode(message(bytes([n, n]), 1), "iso2")[first:last] + big[last:]
            for n in range(20)]
assert len(set(variants)) == 20 and len(big) > 140_000
EV = address(1)
def frames():
    yield tcp(EV, EVSE, 50000, 15118, 99, flags=0x02)
    yield tcp(EVSE, EV, 15118, 50000, 4999, flags=0x12, ack=100)
    seq = 100
    for payload in variants:
        data = build_header(0x8001, len(payload)) + payload
        for offset in range(0, len(data), 1400):
            yield tcp(EV, EVSE, 50000, 15118, seq + offset, data[offset:offset + 1400], ack=5000)
        seq += len(data)
report(decode_trace(packets(frames()), on_event=count))
'''


def peak_of(body: str) -> dict:
    result = subprocess.run([sys.executable, "-c", _PRELUDE + body], capture_output=True, text=True,
                            timeout=300, cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_syn_flood_of_100000_connections_stays_bounded_and_is_reported():
    outcome = peak_of(SYN_FLOOD)
    assert outcome["peak_kib"] < BOUND_KIB
    assert outcome["counts"].get("error:TCP limits") == 2  # the first eviction, then the total
    assert "connection:TCP connection" not in outcome["counts"]  # none of them carried V2G


def test_thousand_connections_with_200kb_out_of_order_each_stay_bounded():
    outcome = peak_of(OUT_OF_ORDER)
    assert outcome["peak_kib"] < BOUND_KIB
    assert outcome["counts"]["connection:TCP connection"] == 1000
    assert outcome["counts"]["connection:TCP connection open at end of capture"] == 1000
    assert outcome["counts"]["error:stream"] >= 1000  # each reports its lost first byte


def test_700_connections_each_with_an_unfinished_230kb_message_stay_bounded():
    outcome = peak_of(UNFINISHED_MESSAGES)
    assert outcome["peak_kib"] < BOUND_KIB
    assert outcome["counts"]["connection:TCP connection"] == 700
    # once the bound is reached, held messages are dropped and reported; the rest end with the capture
    assert outcome["counts"]["error:stream"] >= 700


def test_2040_connections_holding_data_in_every_buffer_stay_bounded():
    outcome = peak_of(EVERY_BOUND_AT_ONCE)
    assert outcome["peak_kib"] < BOUND_KIB
    assert outcome["counts"]["connection:TCP connection"] == 2040
    assert outcome["counts"]["error:TCP buffer"] > 0  # the trace's bound was reached and reported


def test_twenty_distinct_large_messages_do_not_fill_the_payload_cache():
    outcome = peak_of(LARGE_MESSAGES)
    assert outcome["peak_kib"] < BOUND_KIB
    assert outcome["counts"]["v2g:AuthorizationReq"] == 20
