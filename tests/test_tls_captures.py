"""The dsV2Gshark TLS captures decrypted with their own keys, with --keylog, and written back with a DSB.

The reference is tshark: it decrypts with the same keys, and we count the V2GTP messages in the
TLS stream it follows. The key-log packets of these captures go to UDP port 52345.
"""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ccssniff.cli import cli
from tshark_tls import tshark_lines, tshark_v2gtp_count

CAPTURES = ["ISO-20_TLS13_DC_DS5366_Josev", "ISO-2_AC_PnC_TLS_Contract_MeteringReceipt_DS5366_RiseV2G",
            "ISO-2_DC_PnC_TLS_CertInstallation_DS5366_RiseV2G", "ISO-2_DC_PnC_TLS_CertUpdate_DS5366_RiseV2G",
            "ISO-2_DC_PnC_TLS_Contract_DS5366_RiseV2G"]
KEY_PORT_FILTER = "udp.port == 52345"


@pytest.fixture(scope="module")
def prepared(shared_dir, tshark, tmp_path_factory):
    """Per capture: its keys (as tshark extracts them), a copy without key packets, tshark's count."""
    folder = tmp_path_factory.mktemp("tls")
    out = {}
    for name in CAPTURES:
        path = shared_dir / "captures" / "dsv2gshark" / f"{name}.pcapng"
        keylog = folder / f"{name}.keys"
        payloads = tshark_lines(tshark, "-r", path, "-Y", KEY_PORT_FILTER, "-T", "fields", "-e", "data.data")
        keylog.write_bytes(b"".join(bytes.fromhex(p) + b"\n" for p in payloads))
        stripped = folder / f"{name}.stripped.pcapng"
        tshark_lines(tshark, "-r", path, "-Y", f"not ({KEY_PORT_FILTER})", "-w", stripped)
        count = tshark_v2gtp_count(tshark, path, "-o", f"tls.keylog_file:{keylog}")
        assert count > 50
        out[name] = (path, keylog, stripped, count)
    return out


def decode_json(*args) -> tuple[int, list[dict], str]:
    result = CliRunner().invoke(cli, ["decode", *map(str, args), "--json"], prog_name="ccssniff")
    return result.exit_code, [json.loads(line) for line in result.stdout.splitlines()], result.stderr


@pytest.mark.parametrize("name", CAPTURES)
def test_capture_decrypts_with_its_own_keys_as_tshark_does(prepared, name):
    path, _, _, expected = prepared[name]
    code, events, _ = decode_json(path)
    assert code == 0
    messages = [e for e in events if e["kind"] == "v2g"]
    assert len(messages) == expected
    assert all(m.get("decrypted") is True for m in messages)
    assert [e for e in events if e["kind"] == "error"] == []
    [summary] = [e for e in events if e["kind"] == "tls" and e["name"] == "TLS session"]
    assert summary["keys"] == "found" and summary["failed_records"] == 0 and summary["undecrypted_records"] == 0


@pytest.mark.parametrize("name", CAPTURES[:2])
def test_capture_without_key_packets_decrypts_with_keylog(prepared, name):
    _, keylog, stripped, expected = prepared[name]
    code, events, _ = decode_json(stripped)
    assert code == 0 and not [e for e in events if e["kind"] == "v2g"]
    assert any(e["kind"] == "tls" and e["name"] == "no keys" and "--keylog" in e["hint"] for e in events)
    code, events, _ = decode_json(stripped, "--keylog", keylog)
    assert code == 0
    assert sum(e["kind"] == "v2g" and e["decrypted"] for e in events) == expected


def test_inject_secrets_writes_a_capture_stock_tshark_decrypts(prepared, tshark, tmp_path):
    _, keylog, stripped, expected = prepared[CAPTURES[0]]
    written = tmp_path / "with-keys.pcapng"
    code, _, stderr = decode_json(stripped, "--keylog", keylog, "--inject-secrets", "-w", written)
    assert code == 0, stderr
    assert tshark_v2gtp_count(tshark, written) == expected  # no options: the DSB carries the keys
    assert tshark_v2gtp_count(tshark, stripped) == 0
    code, events, _ = decode_json(written)  # and we read the DSB back
    assert sum(e["kind"] == "v2g" for e in events) == expected


def test_keys_of_another_session_leave_it_encrypted_without_error(prepared):
    _, other_keys, _, _ = prepared[CAPTURES[1]]
    _, _, stripped, _ = prepared[CAPTURES[4]]
    code, events, _ = decode_json(stripped, "--keylog", other_keys)
    assert code == 0
    assert not [e for e in events if e["kind"] in ("v2g", "error")]
    assert any(e["kind"] == "tls" and e["name"] == "no keys" for e in events)


def test_a_key_log_of_garbage_is_one_error_line(prepared, tmp_path):
    _, _, stripped, _ = prepared[CAPTURES[0]]
    garbage = tmp_path / "garbage.log"
    garbage.write_bytes(b"\x00\xffnot a key log\nCLIENT_RANDOM 12 34\n")
    code, events, stderr = decode_json(stripped, "--keylog", garbage)
    assert code == 2 and events == []
    assert stderr.startswith("error: ") and len(stderr.strip().splitlines()) == 1
    code, _, stderr = decode_json(stripped, "--keylog", tmp_path / "absent.log")
    assert code == 2 and "cannot read key log" in stderr


def test_inject_secrets_needs_an_output(prepared):
    _, _, stripped, _ = prepared[CAPTURES[0]]
    code, _, stderr = decode_json(stripped, "--inject-secrets")
    assert code == 2 and "-w" in stderr


@pytest.mark.parametrize("name", [CAPTURES[0], CAPTURES[4]])
def test_keys_at_the_end_of_the_file_still_decrypt_it_all(prepared, tshark, tmp_path, name):
    """Key-log packets after everything they decrypt: the first pass over the file finds them."""
    from ccssniff.capture.pcapng import PcapngWriter
    from ccssniff.capture.reader import read_packets

    path, _, _, expected = prepared[name]
    key_frames = {int(n) for n in tshark_lines(tshark, "-r", path, "-Y", KEY_PORT_FILTER, "-T", "fields",
                                               "-e", "frame.number")}
    moved = tmp_path / "keys-last.pcapng"
    packets = list(read_packets(path))
    with PcapngWriter(moved, linktype=packets[0].linktype) as writer:
        for packet in [p for p in packets if p.index not in key_frames] + \
                [p for p in packets if p.index in key_frames]:
            writer.write(packet.data, packet.timestamp)
    code, events, _ = decode_json(moved)
    assert code == 0
    assert sum(e["kind"] == "v2g" and e["decrypted"] for e in events) == expected
    assert [e for e in events if e["kind"] == "error"] == []
