"""`ccssniff listen` and `ccssniff modem`: unusable input gives one line and exit status 2."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ccssniff.capture.listen import KEY_FIELDS, StationCounts, key_text
from ccssniff.cli import cli
from ccssniff.emulate import netns


@pytest.mark.parametrize("arguments,message", [
    (["listen", "eth0", "--ring", "3"], "--ring goes with --split-sessions"),
    (["listen", "eth0", "--nmk", "0011"], "--nmk has 16 bytes, not 2"),
    (["listen", "eth0", "--nmk", "zz"], "--nmk must be hex"),
    (["listen", "eth0", "--nid", "00" * 7], "--nid goes with --nmk"),
    (["listen", "eth0", "--no-join", "--passphrase", "x"], "--no-join and a key exclude each other"),
    (["listen", "eth0", "--nmk", "00" * 16, "--passphrase", "x"], "exclude each other"),
    (["listen", "eth0", "--all", "-f", "ip6"], "--all and --filter exclude each other"),
    (["listen", "eth0", "-w", "a.pcapng", "--split-sessions", "d"], "exclude each other"),
    (["listen", "eth0", "--modem", "not-a-mac"], "is not a MAC address"),
    (["listen", "ccsLnothere0"], "no network interface named 'ccsLnothere0'"),
    (["modem", "set-key", "eth0"], "give exactly one of --nmk, --passphrase, --random"),
    (["modem", "list", "ccsLnothere0"], "no network interface named 'ccsLnothere0'"),
])
def test_unusable_input_is_one_line_and_status_2(arguments, message):
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_keys_are_masked_unless_asked():
    key = "00112233445566778899aabbccddeeff"
    masked = key_text(key, False)
    assert key not in masked.replace(":", "") and masked.startswith("00:**") and masked.endswith("**:ff")
    assert key_text(key, True).replace(":", "") == key and key_text(bytes(16), False).startswith("00:**")
    assert set(KEY_FIELDS) == {"nmk", "new_key"}  # the HomePlug fields that carry an NMK


def test_frames_are_counted_per_source_and_kind():
    counts = StationCounts()
    source = bytes.fromhex("020000000001")
    ipv6 = bytes(6) + source + b"\x86\xdd"
    tcp = ipv6 + b"\x60" + bytes(5) + b"\x06\x40" + bytes(32) + bytes(12) + b"\x50" + bytes(7)
    counts.add(tcp + b"\x01\xfe\x80\x01" + bytes(4), 1.0)  # a V2GTP PDU
    counts.add(tcp, 1.1)  # a bare ACK
    counts.add(ipv6 + b"\x60" + bytes(5) + b"\x11\x40" + bytes(32) + b"\x3b\x0e\x3b\x0e" + bytes(4) + bytes(10), 0.5)
    counts.add(bytes(6) + source + b"\x88\xe1" + b"\x01\x64\x60" + bytes(40), 0.1)
    assert counts.to_dict() == {"02:00:00:00:00:01": {"V2G": 1, "TCP": 1, "SDP": 1, "SLAC": 1}}
    assert not counts.hidden(100.0)  # TCP was seen
    quiet = StationCounts()
    quiet.add(ipv6 + b"\x60" + bytes(5) + b"\x11\x40" + bytes(32) + b"\x3b\x0e\x3b\x0e" + bytes(4) + bytes(10), 0.0)
    assert not quiet.hidden(1.0) and quiet.hidden(10.0)


@pytest.mark.skipif(netns.unavailable_reason() is not None, reason=str(netns.unavailable_reason()))
def test_a_recording_that_cannot_be_written_is_refused_at_once():
    import sys

    with netns.Namespaces(2) as (a, b):
        interface, _ = netns.veth(a, b)
        done = a.run(sys.executable, "-c", "from ccssniff.cli import main; main()", "listen", interface,
                     "-w", "/dev/full", "--duration", "1", check=False, timeout=30)
    assert done.returncode == 2 and "cannot write /dev/full: No space left on device" in done.stderr
