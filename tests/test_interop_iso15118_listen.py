"""`ccssniff listen` beside an independent stack (PyPI package ``iso15118``) in the session,
through the powerline simulator: their EVCC charging at our EVSE, and our PEV charging at their
SECC. There is no SLAC in those sessions, so the two stations' modems hold a key from the start and
listen joins by it (``--nmk``), then decodes the session live from a full-view port."""
from __future__ import annotations

import importlib.util
import json
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest

from ccssniff.capture.reader import read_packets
from ccssniff.decode.events import V2G
from ccssniff.decode.trace import decode_trace
from ccssniff.emulate import netns
from interop.iso15118_peer import SECC_READY, Iso15118Peer
from interop.session import PEER_START_TIMEOUT, RELAXED_TIMING, SESSION_TIMEOUT, our_command, wait_for_ours

NMK = "8f9e0d1c2b3a49586776859403a2b1c0"
CLI = [sys.executable, "-c", "from ccssniff.cli import main; main()"]


def _requirements() -> str | None:
    if netns.unavailable_reason():
        return netns.unavailable_reason()
    if shutil.which("java") is None:
        return "no Java runtime (Debian package default-jre-headless): iso15118's EXI codec runs on it"
    if importlib.util.find_spec("iso15118") is None:
        return "the PyPI package iso15118 is missing: pip install -e '.[test]'"
    return None


pytestmark = pytest.mark.skipif(_requirements() is not None, reason=str(_requirements()))


@contextmanager
def powerline_with_listener(tmp_path):
    """Charger and car namespaces keyed into one AVLN, and listen (--nmk) on a full-view port.

    Yields (charger, charger_if, car, car_if); listen is stopped at the end, and its JSON lines
    are in tmp_path/listen.jsonl, its recording in tmp_path/listen.pcapng."""
    with netns.Namespaces(4) as (charger, car, sniff, line):
        charger_if, line_charger = netns.veth(charger, line, checksum_offload=False)
        car_if, line_car = netns.veth(car, line, checksum_offload=False)
        sniff_if, line_sniff = netns.veth(sniff, line, checksum_offload=False)
        medium = line.popen([sys.executable, "-m", "ccssniff.emulate.powerline", "--port", f"evse={line_charger}",
                             "--port", f"ev={line_car}", "--port", f"sniff={line_sniff}:full", "--restart-delay", "0.3",
                             "--nmk", NMK, "--keyed", "ev", "--keyed", "evse"], stdout=subprocess.PIPE, text=True)
        assert medium.stdout.readline().strip() == "ready"
        with open(tmp_path / "listen.jsonl", "w") as out:
            listener = sniff.popen(CLI + ["listen", sniff_if, "--nmk", NMK, "-w", str(tmp_path / "listen.pcapng"),
                                          "--json"], stdout=out, stderr=subprocess.PIPE, text=True)
            time.sleep(2.0)
            yield charger, charger_if, car, car_if
            time.sleep(1.0)
            listener.send_signal(signal.SIGINT)
            _, errors = listener.communicate(timeout=20)
    assert listener.returncode == 0, errors


def listen_records(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "listen.jsonl").read_text().splitlines()]


def test_listen_joins_by_key_and_decodes_an_iso15118_evcc_session_live(tmp_path):
    with powerline_with_listener(tmp_path) as (charger, charger_if, car, car_if):
        ours = charger.popen(CLI + ["emulate", "evse", charger_if, "--no-slac", "--modem", "none", "--protocol",
                                    "din", "--timeout", str(SESSION_TIMEOUT - 5), "--seed", "1",
                                    "--relaxed-timing", str(RELAXED_TIMING)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        peer = Iso15118Peer("evcc", car, car_if, "din", tmp_path / "evcc")
        try:
            our_output, _ = ours.communicate(timeout=SESSION_TIMEOUT)
        finally:
            peer.stop()
    records = listen_records(tmp_path)
    assert any(r["kind"] == "listen" and r["name"] == "Joined" for r in records), records[:20]
    live = [r["name"] for r in records if r["kind"] == V2G]
    assert live[:2] == ["supportedAppProtocolReq", "supportedAppProtocolRes"], (live, our_output, peer.log()[-3000:])
    assert "CurrentDemandReq" in live, (live, our_output)
    summary = records[-1]
    assert summary["listen"]["unicast_hidden"] is False and summary["sessions"][0]["protocol"] == "DIN SPEC 70121"


def test_listen_joins_by_key_and_decodes_our_pev_at_an_iso15118_secc_live(tmp_path):
    with powerline_with_listener(tmp_path) as (charger, charger_if, car, car_if):
        peer = Iso15118Peer("secc", charger, charger_if, "iso2", tmp_path / "secc")
        try:
            assert peer.wait_for_log(SECC_READY, PEER_START_TIMEOUT), peer.log()[-3000:]
            with open(tmp_path / "pev.log", "wb") as log:
                ours = car.popen(our_command("pev", car_if, "iso2"), stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT)
            returncode = wait_for_ours(ours, peer)
        finally:
            peer.stop()
    our_output = (tmp_path / "pev.log").read_text(errors="replace")
    assert returncode == 0, (our_output[-2000:], peer.log()[-3000:])
    records = listen_records(tmp_path)
    [joined] = [r for r in records if r["kind"] == "listen" and r["name"] == "Joined"]
    assert len(joined["members"]) == 2  # both stations' modems answered in the keyed AVLN
    live = [r["name"] for r in records if r["kind"] == V2G]
    assert live[:2] == ["supportedAppProtocolReq", "supportedAppProtocolRes"], (live, our_output)
    assert "CurrentDemandReq" in live and live[-2:] == ["SessionStopReq", "SessionStopRes"], live
    summary = records[-1]
    assert summary["listen"]["joined"] and summary["listen"]["unicast_hidden"] is False
    [session] = summary["sessions"]
    assert session["protocol"] == "ISO 15118-2" and session["outcome"]["result"] == "completed", session["outcome"]
    # listen's recording decodes offline to what it decoded live
    offline = []
    decode_trace(read_packets(tmp_path / "listen.pcapng"),
                 on_event=lambda e, _: offline.append(e.name) if e.kind == V2G else None)
    assert offline == live
