"""`emulate evse --tls` and `emulate pev --tls` in two network namespaces: real kernel TCP under
Python's ssl. The recorded pcapng carries the keys (DSB), decodes completely and stock tshark
decrypts it; --disclose-keys puts the key-log lines into the trace as UDP, --keylog into a file."""
from __future__ import annotations

import subprocess
import sys

import pytest

from ccssniff.capture.reader import read_packets
from ccssniff.decode.events import ERROR, SDP, TLS, V2G
from ccssniff.decode.pipeline import Pipeline
from ccssniff.decode.trace_keys import keys_in_capture
from ccssniff.emulate import netns
from ccssniff.emulate.pki import create_pki
from tshark_tls import tshark_v2gtp_count

pytestmark = pytest.mark.skipif(netns.unavailable_reason() is not None,
                                reason=str(netns.unavailable_reason()))
SESSION_TIMEOUT = 60


def emulator(side, interface, protocol, record, pki, *extra):
    return [sys.executable, "-c", "from ccssniff.cli import main; main()", "emulate", side, interface,
            "--protocol", protocol, "--modem", "none", "--no-slac", "--charge-time", "1",
            "--timeout", str(SESSION_TIMEOUT), "--seed", "7", "-w", str(record), "--tls", "--pki", str(pki), *extra]


@pytest.mark.parametrize("protocol,version", [("iso2", "TLS 1.2"), ("iso20", "TLS 1.3")])
def test_evse_and_pev_over_tls_record_a_capture_that_decrypts(tmp_path, monkeypatch, tshark, protocol, version):
    """ISO-2 runs Plug & Charge: the EV signs AuthorizationReq, the EVSE checks it."""
    monkeypatch.setattr(netns, "PREFIX", "ccsS")  # this branch's tag in namespace and veth names
    pki = tmp_path / "pki"
    create_pki().write(pki)
    keylog = tmp_path / "ev.keys"
    pnc = ("--pnc",) if protocol == "iso2" else ()
    with netns.Namespaces(2) as (ev, evse):
        ev_if, evse_if = netns.veth(ev, evse)
        charger = evse.popen(emulator("evse", evse_if, protocol, tmp_path / "evse.pcapng", pki, "--disclose-keys", *pnc),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        car = ev.popen(emulator("pev", ev_if, protocol, tmp_path / "pev.pcapng", pki, "--keylog", str(keylog), *pnc),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        car_output, _ = car.communicate(timeout=SESSION_TIMEOUT + 10)
        charger_output, _ = charger.communicate(timeout=15)
    assert car.returncode == 0, car_output + "\nEVSE:\n" + charger_output
    assert charger.returncode == 0, charger_output

    for record in ("evse.pcapng", "pev.pcapng"):
        path = tmp_path / record
        found = keys_in_capture(path)
        assert found.from_blocks > 0  # the recording starts with its Decryption Secrets Block
        assert found.from_packets > 0  # and the EVSE disclosed its keys over UDP
        pipeline = Pipeline(keys=found.keys)
        events = []
        for packet in read_packets(path):
            events += pipeline.feed(packet)
        events += pipeline.finish()
        messages = [e for e in events if e.kind == V2G]
        assert messages[0].message.name == "supportedAppProtocolReq"
        assert messages[-1].message.name == "SessionStopRes"
        assert all(e.fields.get("decrypted") for e in messages)
        assert [e for e in events if e.kind == ERROR] == []
        assert {e.fields["security"] for e in events if e.kind == SDP} == {"TLS"}
        [summary] = [e for e in events if e.kind == TLS and e.name == "TLS session"]
        assert summary.fields["version"] == version
        assert ("Certificate" in summary.fields["handshake_ev"]) is (protocol == "iso20")
        assert tshark_v2gtp_count(tshark, path) == len(messages)  # stock tshark, no settings
        if pnc:
            [authorization] = [e for e in messages if e.message.name == "AuthorizationReq"]
            assert authorization.fields["signature"]["result"] == "valid"
            [answer] = [e for e in messages if e.message.name == "AuthorizationRes"]
            assert answer.message.body["ResponseCode"] == "OK"
    assert "CLIENT" in keylog.read_text()
