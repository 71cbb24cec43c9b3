"""A real capture (a car against a real charger, from ../shared/captures) replayed onto a veth
with tcpreplay: `ccssniff listen` records it completely, decodes it live like `decode` does
offline, and puts a CM_SET_KEY.REQ with the sniffed NMK on the wire."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ccssniff.capture.reader import read_packets
from ccssniff.decode.events import V2G
from ccssniff.decode.trace import decode_trace
from ccssniff.emulate import netns
from ccssniff.emulate.rawlink import open_link
from ccssniff.homeplug import CmSetKeyReq, CmSlacMatchCnf, parse_frame

CAPTURE = Path(__file__).resolve().parents[2] / "shared" / "captures" / "everest" / "Audi" / "Q4" / "dc-dinspec-1.dump"
CLI = [sys.executable, "-c", "from ccssniff.cli import main; main()"]

pytestmark = [
    pytest.mark.skipif(netns.unavailable_reason() is not None, reason=str(netns.unavailable_reason())),
    pytest.mark.skipif(shutil.which("tcpreplay") is None, reason="tcpreplay (Debian package tcpreplay) is not installed"),
    pytest.mark.skipif(not CAPTURE.exists(), reason=f"{CAPTURE} is absent (../shared not here)"),
]


def test_a_replayed_real_session_is_recorded_completely_decoded_live_and_joined(tmp_path):
    recording = tmp_path / "listen.pcapng"
    original = list(read_packets(CAPTURE))
    [match] = [parse_frame(p.data) for p in original if p.data[12:14] == b"\x88\xe1" and p.data[15:17] == b"\x7d\x60"]
    on_the_wire: list[bytes] = []
    with netns.Namespaces(2) as (listening, peer):
        listen_if, peer_if = netns.veth(listening, peer, mtu=1500)
        with peer.entered():
            wire = open_link(peer_if)  # what reaches the peer's side: our CM_SET_KEY.REQ
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                on_the_wire.extend(frame for _, frame in wire.read())
                time.sleep(0.01)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        with open(tmp_path / "out.jsonl", "w") as out:
            listener = listening.popen(CLI + ["listen", listen_if, "-w", str(recording), "--all", "--json"],
                                       stdout=out, stderr=subprocess.PIPE, text=True)
            time.sleep(2.0)  # listen has given up finding a modem: keys go to the QCA local address
            replay = peer.run("tcpreplay", "-i", peer_if, "--pps", "2000", str(CAPTURE), timeout=60)
            assert f"Successful packets:        {len(original)}" in replay.stdout, replay.stdout
            time.sleep(1.0)
            listener.send_signal(signal.SIGINT)
            _, errors = listener.communicate(timeout=20)
        stop.set()
        watcher.join(5)
        wire.close()
    assert listener.returncode == 0, errors
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    listen_mac = records[-1]["listen"]["local_modem"]
    recorded = [p.data for p in read_packets(recording)]
    replayed = [frame for frame in recorded if frame in {p.data for p in original}]
    assert replayed == [p.data for p in original]  # every frame, in order, byte for byte
    offline: list[str] = []
    decode_trace(iter(original), on_event=lambda e, _: offline.append(e.message.name) if e.kind == V2G else None)
    live = [r["name"] for r in records if r["kind"] == V2G]
    assert len(live) > 100 and live == offline
    assert listen_mac is None  # nothing on this veth answers VS_SW_VER
    set_keys = [parse_frame(f) for f in on_the_wire if f[12:14] == b"\x88\xe1" and f[15:17] == b"\x08\x60"]
    assert isinstance(match, CmSlacMatchCnf)
    assert any(isinstance(m, CmSetKeyReq) and m.new_key == match.nmk and m.nid == match.nid for m in set_keys)
