"""`ccssniff listen` under bad input on the wire, stopped at random moments by SIGINT, SIGTERM,
SIGHUP or SIGKILL: the capture goes on through garbage, and the pcapng reads to its last frame."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from ccssniff.capture.reader import read_packets
from ccssniff.emulate import netns
from ccssniff.emulate.rawlink import open_link
from ccssniff.homeplug import BROADCAST, CmMnbcSoundInd, CmSlacMatchCnf, MacAddress

pytestmark = pytest.mark.skipif(netns.unavailable_reason() is not None, reason=str(netns.unavailable_reason()))
CLI = [sys.executable, "-c", "from ccssniff.cli import main; main()"]
PEER = MacAddress("02:00:00:00:00:aa")


def bad_frames(rng: random.Random) -> list[bytes]:
    match = CmSlacMatchCnf(dst=BROADCAST, src=PEER, nid=bytes(7), nmk=bytes(16)).build_frame()
    ipv6 = bytes(BROADCAST) + bytes(PEER) + b"\x86\xdd"
    frames = [
        match[:40],  # a CM_SLAC_MATCH.CNF cut short
        match[:19] + b"\x01\x00" + match[21:],  # ... and one whose length field lies
        bytes(BROADCAST) + bytes(PEER) + b"\x88\xe1\x01",  # an MME of one byte
        bytes(BROADCAST) + bytes(PEER) + b"\x88\xe1" + bytes([0, 0x36, 0xA0]) + b"\x00\xb0\x52",  # a cut VS_SNIFFER.IND
        ipv6 + b"\x60" + bytes(5) + b"\x06\x40" + bytes(32) + bytes(8),  # TCP header cut
        ipv6 + b"\x60\x00\x00\x00\x00\x20\x11\x40" + bytes(32) + b"\x3b\x0e\x3b\x0e\x00\x20\x00\x00" + b"\x01\xfe\x90\x00"
        + b"\xff" * 20,  # SDP with an impossible V2GTP length
        ipv6 + b"\x60\x00\x00\x00\x00\x30\x06\x40" + bytes(32) + b"\xc0\x00\xd4\x31" + bytes(8) + b"\x50\x18\xff\xff"
        + bytes(4) + b"\x01\xfe\x80\x01\xff\xff\xff\xff" + b"\x80" * 16,  # V2GTP announcing 4 GB
    ]
    frames += [CmMnbcSoundInd(dst=BROADCAST, src=PEER, countdown=n % 10, run_id=bytes(8), random=rng.randbytes(16))
               .build_frame(pad=True) for n in range(30)]  # a flood of sounds
    frames += [bytes(BROADCAST) + bytes(PEER) + b"\x88\xe1" + rng.randbytes(rng.randrange(0, 80)) for _ in range(40)]
    frames += [ipv6 + rng.randbytes(rng.randrange(0, 120)) for _ in range(40)]
    return [frame.ljust(60, b"\0") for frame in frames]


def blast(sock, frames: list[bytes], stop: threading.Event) -> None:
    while not stop.is_set():
        for frame in frames:
            try:
                sock.send(frame)
            except OSError:
                time.sleep(0.001)  # the queue is full: the listener reads slower than we send
        time.sleep(0.002)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_bad_input_never_stops_the_capture_and_any_stop_leaves_a_readable_file(tmp_path, stop_signal):
    rng = random.Random(stop_signal)
    recording = tmp_path / "listen.pcapng"
    with netns.Namespaces(2) as (listening, peer):
        listen_if, peer_if = netns.veth(listening, peer)
        with peer.entered():
            sock = open_link(peer_if)
        stop = threading.Event()
        sender = threading.Thread(target=blast, args=(sock, bad_frames(rng), stop), daemon=True)
        with open(tmp_path / "out.jsonl", "w") as out:
            # SIGHUP's run records with --split-sessions: no plug-in in the garbage, so one file
            target = ["--split-sessions", str(tmp_path / "split")] if stop_signal == signal.SIGHUP else \
                ["-w", str(recording)]
            listener = listening.popen(CLI + ["listen", listen_if, *target, "--no-join", "--json"],
                                       stdout=out, stderr=subprocess.PIPE, text=True)
            sender.start()
            try:
                time.sleep(2.0 + rng.random())  # start-up, then garbage for a random while
                assert listener.poll() is None, listener.stderr.read()
                listener.send_signal(stop_signal)
                _, errors = listener.communicate(timeout=20)
            finally:
                stop.set()
                sender.join(5)
                sock.close()
    if stop_signal == signal.SIGHUP:
        [recording] = (tmp_path / "split").iterdir()
        assert recording.name.endswith("-unknown.pcapng")
    packets = list(read_packets(recording))
    assert len(packets) > 100
    tshark = subprocess.run(["tshark", "-r", str(recording), "-T", "fields", "-e", "frame.number"],
                            capture_output=True, text=True, timeout=60)
    assert tshark.returncode == 0, tshark.stderr
    assert len(tshark.stdout.split()) == len(packets)
    if stop_signal == signal.SIGKILL:
        return
    assert listener.returncode == 0, errors
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    summary = records[-1]
    assert summary["kind"] == "summary"
    assert summary["listen"]["frames_written"] == len(packets)
    assert summary["errors"] > 0  # the garbage was reported, not fatal
    assert any(r["kind"] == "error" for r in records)
