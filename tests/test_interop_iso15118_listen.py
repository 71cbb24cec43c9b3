"""`ccssniff listen` beside an independent stack: iso15118's EVCC (PyPI package ``iso15118``)
charges at our EVSE through the powerline simulator. There is no SLAC in that session, so
listen joins by the known key (``--nmk``) and decodes the session live from a full-view port."""
from __future__ import annotations

import importlib.util
import json
import shutil
import signal
import subprocess
import sys
import time

import pytest

from ccssniff.decode.events import V2G
from ccssniff.emulate import netns
from interop.iso15118_peer import Iso15118Peer
from interop.session import RELAXED_TIMING, SESSION_TIMEOUT

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


def test_listen_joins_by_key_and_decodes_an_iso15118_evcc_session_live(tmp_path):
    with netns.Namespaces(4) as (charger, car, sniff, line):
        charger_if, line_charger = netns.veth(charger, line, checksum_offload=False)
        car_if, line_car = netns.veth(car, line, checksum_offload=False)
        sniff_if, line_sniff = netns.veth(sniff, line, checksum_offload=False)
        medium = line.popen([sys.executable, "-m", "ccssniff.emulate.powerline", "--port", f"evse={line_charger}",
                             "--port", f"ev={line_car}", "--port", f"sniff={line_sniff}:full", "--restart-delay", "0.3",
                             "--nmk", NMK, "--keyed", "ev", "--keyed", "evse"], stdout=subprocess.PIPE, text=True)
        assert medium.stdout.readline().strip() == "ready"
        with open(tmp_path / "listen.jsonl", "w") as out:
            listener = sniff.popen(CLI + ["listen", sniff_if, "--nmk", NMK, "-w", str(tmp_path / "l.pcapng"), "--json"],
                                   stdout=out, stderr=subprocess.PIPE, text=True)
            time.sleep(2.0)
            ours = charger.popen(CLI + ["emulate", "evse", charger_if, "--no-slac", "--modem", "none", "--protocol",
                                        "din", "--timeout", str(SESSION_TIMEOUT - 5), "--seed", "1",
                                        "--relaxed-timing", str(RELAXED_TIMING)],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            peer = Iso15118Peer("evcc", car, car_if, "din", tmp_path / "evcc")
            try:
                our_output, _ = ours.communicate(timeout=SESSION_TIMEOUT)
            finally:
                peer.stop()
            time.sleep(1.0)
            listener.send_signal(signal.SIGINT)
            _, errors = listener.communicate(timeout=20)
    assert listener.returncode == 0, errors
    records = [json.loads(line) for line in (tmp_path / "listen.jsonl").read_text().splitlines()]
    assert any(r["kind"] == "listen" and r["name"] == "Joined" for r in records), records[:20]
    live = [r["name"] for r in records if r["kind"] == V2G]
    assert live[:2] == ["supportedAppProtocolReq", "supportedAppProtocolRes"], (live, our_output, peer.log()[-3000:])
    assert "CurrentDemandReq" in live, (live, our_output)
    summary = records[-1]
    assert summary["listen"]["unicast_hidden"] is False and summary["sessions"][0]["protocol"] == "DIN SPEC 70121"
