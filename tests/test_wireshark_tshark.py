"""The Lua dissectors in real tshark: for every lab capture and every capture of ../shared/captures,
the messages and field values tshark shows equal what ``ccssniff decode --json`` shows for the
same frames; display filters on message names and physical values count the same frames; fuzzed
EXI in valid V2GTP frames never raises a Lua error."""

from __future__ import annotations

import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
import struct
import random
import shutil
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner

import openv2gx
from ccssniff.capture.pcapng import PcapngWriter
from ccssniff.cli import cli
from ccssniff.decode.trace_keys import keys_in_capture
from ccssniff.emulate.wire import TCP_ACK, TCP_PSH, ethernet, link_local_from_mac, tcp
from ccssniff.wireshark.fields import message_fields
from openv2gx.lua_export import all_fields, load_tables
from tshark_versions import VERSIONS, tshark_command
from wireshark_values import canonical

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "lua_dissectors" / "ccs15118.lua"
LAB_CAPTURES = sorted((REPO / "captures").glob("*.pcapng"))
FIELDS = {"v2g." + path: (ftype, values) for path, _, ftype, values in all_fields(load_tables())}


def shared_captures(shared_dir: Path) -> list[Path]:
    return sorted(p for p in (shared_dir / "captures").rglob("*")
                  if p.suffix in (".pcap", ".pcapng") and p.is_file())


@pytest.fixture(scope="session", params=VERSIONS)
def tshark(request):
    """(argv prefix, environment) of one tshark version."""
    return tshark_command(request.param)


@lru_cache(maxsize=None)
def readable_script() -> Path:
    """The dissectors where any user can read them: Wireshark 4.4 runs as nobody, and the checkout
    (or ../shared) may sit below a folder only root can enter."""
    folder = Path(tempfile.mkdtemp(prefix="ccsW-lua-"))
    shutil.copytree(SCRIPT.parent, folder / "lua_dissectors")
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder / "lua_dissectors" / SCRIPT.name


def run_tshark(tshark, capture: Path, *args: str) -> subprocess.CompletedProcess:
    """tshark with our dissectors on ``capture``, handed over on stdin (opened here, so the user
    tshark runs as needs no read access to it)."""
    command, env = tshark
    with open(capture, "rb") as stream:
        return subprocess.run([*command, "-n", "-X", f"lua_script:{readable_script()}", "-r", "-", *args],
                              stdin=stream, capture_output=True, text=True, timeout=300, env=env)


def normalise(field: str, text):
    """tshark's JSON text of a field -> canonical text of the value."""
    ftype, values = FIELDS.get(field, ("string", None))
    if values:
        return values[int(text)]
    if ftype == "double":
        return "%.9g" % float(text)
    if ftype in ("uint8", "uint16", "uint32", "int32", "uint64", "int64"):
        return str(int(text))
    if ftype == "boolean":
        return "true" if text in ("1", "True", "true") else "false"
    if ftype == "bytes":
        return text.replace(":", "").lower()
    return text


def expected_value(field: str, value):
    ftype = FIELDS.get(field, ("string", None))[0]
    if ftype == "double":
        return "%.9g" % float(value)
    if ftype == "bytes":
        return str(value).lower()
    return canonical(value)


def tshark_fields(layer) -> Counter:
    found = Counter()

    def walk(node):
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        for key, value in node.items():
            if isinstance(value, (dict, list)) and key.endswith("_tree"):
                walk(value)
            elif isinstance(value, dict):
                walk(value)
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                walk(value)
            else:
                for item in value if isinstance(value, list) else [value]:
                    if key in FIELDS and FIELDS[key][0] != "none":
                        found[(key, normalise(key, item))] += 1

    walk(layer)
    return found


def keylog_options(capture: Path) -> list[str]:
    """Give tshark the TLS keys the trace itself discloses, as ccssniff decode uses them."""
    text = keys_in_capture(capture).keys.nss_text()
    if not text:
        return []
    folder = Path(tempfile.mkdtemp(prefix="ccsW-keys-"))
    folder.chmod(0o755)  # Wireshark 4.4 runs as nobody
    path = folder / f"{capture.stem}.keys"
    path.write_text(text)
    path.chmod(0o644)
    return ["-o", f"tls.keylog_file:{path}"]


def per_frame_tshark(tshark, capture):
    done = run_tshark(tshark, capture, *keylog_options(capture), "-T", "json", "-J", "frame v2g",
                      "--no-duplicate-keys", "-Y", "v2g")
    assert "Lua" not in done.stderr and "error" not in done.stderr.lower(), done.stderr[:2000]
    frames = {}
    for packet in json.loads(done.stdout or "[]"):
        layers = packet["_source"]["layers"]
        number = int(layers["frame"]["frame.number"])
        v2g_layers = layers["v2g"] if isinstance(layers["v2g"], list) else [layers["v2g"]]
        names = []
        for layer in v2g_layers:
            msg = layer.get("v2g.msg")
            if msg is not None:
                names.append(msg)
        frames[number] = (sorted(names), tshark_fields(v2g_layers))
    return frames


@lru_cache(maxsize=None)
def per_frame_ccssniff(capture):
    result = CliRunner().invoke(cli, ["decode", str(capture), "--json"])
    frames = defaultdict(lambda: ([], Counter()))
    for line in result.output.splitlines():
        record = json.loads(line)
        if record.get("kind") != "v2g" or "body" not in record:
            continue
        message = openv2gx.Message(record["body"], schema=record["grammar"])
        names, fields = frames[record["frame"]]
        names.append(message.name)
        for field, value in message_fields(message):
            fields[(field, expected_value(field, value))] += 1
    return {number: (sorted(names), fields) for number, (names, fields) in frames.items()}


@pytest.fixture(scope="session")
def all_captures(shared_dir):
    return LAB_CAPTURES + shared_captures(shared_dir)


@pytest.fixture(scope="session")
def comparisons(tshark, all_captures):
    """tshark and ccssniff per frame, for every capture (computed once per session)."""
    with ThreadPoolExecutor(max_workers=2) as pool:  # tshark runs while Python decodes
        shown = {capture: pool.submit(per_frame_tshark, tshark, capture) for capture in all_captures}
        decoded = {capture: per_frame_ccssniff(capture) for capture in all_captures}
        return {capture: (shown[capture].result(), decoded[capture]) for capture in all_captures}


def test_every_capture_shows_the_messages_and_values_of_ccssniff_decode(comparisons):
    compared = 0
    for capture, (shown, decoded) in comparisons.items():
        decoded_frames = {n for n, (names, _) in decoded.items() if names}
        shown_frames = {n for n, (names, _) in shown.items() if names}
        assert shown_frames == decoded_frames, f"{capture.name}: frames differ {sorted(shown_frames ^ decoded_frames)[:10]}"
        for number in decoded_frames:
            assert shown[number][0] == decoded[number][0], f"{capture.name} frame {number}"
            want, got = decoded[number][1], shown[number][1]
            assert got == want, f"{capture.name} frame {number}: tshark extra {got - want}, missing {want - got}"
            compared += 1
    assert compared > 10000


def test_lab_captures_decode_every_message(comparisons):
    for capture in LAB_CAPTURES:
        shown, _ = comparisons[capture]
        names = [name for names, _ in shown.values() for name in names]
        assert any(name.startswith("supportedAppProtocol") for name in names)
        assert any("ChargeLoop" in name or "CurrentDemand" in name or "ChargingStatus" in name for name in names), capture.name


def count_frames(tshark, capture, display_filter):
    done = run_tshark(tshark, capture, "-Y", display_filter, "-T", "fields", "-e", "frame.number")
    assert done.returncode == 0, done.stderr
    return len(done.stdout.split())


def test_display_filters_on_message_name_and_physical_value(tshark):
    capture = REPO / "captures" / "din_dc.pcapng"
    decoded = per_frame_ccssniff(capture)
    loops = [fields for names, fields in decoded.values() if "CurrentDemandReq" in names]
    assert loops
    assert count_frames(tshark, capture, 'v2g.msg == "CurrentDemandReq"') == len(loops)
    responses = [fields for names, fields in decoded.values() if "CurrentDemandRes" in names]
    voltages = [float(value) for fields in responses for (field, value) in fields
                if field == "v2g.din.CurrentDemandRes.EVSEPresentVoltage"]
    threshold = sorted(voltages)[len(voltages) // 2]
    above = sum(1 for voltage in voltages if voltage > threshold)
    assert 0 < above < len(voltages)
    assert count_frames(tshark, capture, f"v2g.din.CurrentDemandRes.EVSEPresentVoltage > {threshold}") == above
    # the cross-schema field holds the value of every message that has one (PreCharge, WeldingDetection too)
    anywhere = sum(1 for names, fields in decoded.values()
                   if any(field.endswith(".EVSEPresentVoltage") and float(value) > threshold for field, value in fields))
    assert anywhere > above
    assert count_frames(tshark, capture, f"v2g.EVSEPresentVoltage > {threshold} && v2g.schema == \"din\"") == anywhere


def fuzzed_payloads(seed: int = 15118) -> list[tuple[int, bytes]]:
    rng = random.Random(seed)
    samples = []
    for name in ("din.jsonl", "iso2.jsonl", "iso20.jsonl", "appHandshake.jsonl"):
        path = REPO.parent / "shared" / "vectors" / name
        lines = path.read_text(encoding="utf-8").splitlines()
        for line in rng.sample(lines, 25):
            vector = json.loads(line)
            data = bytes.fromhex(vector["exi_hex"])
            ptype = 0x8001
            if vector["schema"] == "iso20":
                ptype = {"CommonMessages": 0x8002, "AC": 0x8003, "DC": 0x8004, "ACDP": 0x8005,
                         "WPT": 0x8006}[vector["namespace"].rsplit(":", 1)[-1]]
            samples.append((ptype, data))
    out = []
    for ptype, data in samples:
        flipped = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            bit = rng.randrange(len(flipped) * 8)
            flipped[bit // 8] ^= 0x80 >> (bit % 8)
        out.append((ptype, bytes(flipped)))
        out.append((ptype, data[: rng.randrange(1, len(data))]))
        out.append((ptype, b"\x80" + bytes(rng.randrange(256) for _ in range(rng.randint(1, 60)))))
    return out


def write_fuzz_capture(path: Path, payloads) -> None:
    ev_mac, evse_mac = bytes.fromhex("02ccee000001"), bytes.fromhex("02ccee000002")
    ev_ip, evse_ip = link_local_from_mac(ev_mac), link_local_from_mac(evse_mac)
    with PcapngWriter(path) as writer:
        for number, (payload_type, data) in enumerate(payloads):
            v2gtp = struct.pack("!BBHI", 1, 0xFE, payload_type, len(data)) + data
            segment = tcp(ev_ip, evse_ip, 40000 + number, 15118, 1, 1, TCP_PSH | TCP_ACK, v2gtp)
            writer.write(ethernet(evse_mac, ev_mac, 0x86DD, segment), timestamp=1767225600 + number)


@pytest.fixture()
def readable_dir():
    """A folder the unprivileged user running Wireshark 4.4 can read (pytest's tmp_path is private)."""
    folder = Path(tempfile.mkdtemp(prefix="ccssniff-lua-"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_fuzzed_exi_gives_expert_info_never_a_lua_error(tshark, readable_dir, shared_dir):
    payloads = fuzzed_payloads()
    capture = readable_dir / "fuzz.pcapng"
    write_fuzz_capture(capture, payloads)
    os.chmod(capture, 0o644)
    done = run_tshark(tshark, capture, "-V")
    assert done.returncode == 0, done.stderr
    assert "Lua Error" not in done.stdout and "dissector error" not in done.stdout
    assert "Lua" not in done.stderr
    assert done.stdout.count("V2G Transfer Protocol") == len(payloads)
    malformed = count_frames(tshark, capture, "v2g.error")
    assert malformed > len(payloads) // 3
    assert count_frames(tshark, capture, "_ws.expert.message contains \"at bit\"") == malformed


def test_io_stat_average_of_a_physical_value_equals_the_decoded_average(tshark):
    capture = REPO / "captures" / "din_dc.pcapng"
    voltages = [float(value) for names, fields in per_frame_ccssniff(capture).values()
                for field, value in fields if field.endswith(".EVSEPresentVoltage")]
    assert len(voltages) > 20
    done = run_tshark(tshark, capture, "-q", "-z", "io,stat,0,AVG(v2g.EVSEPresentVoltage)v2g.EVSEPresentVoltage")
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if "<>" in line)
    shown = float(row.split("|")[2])
    assert shown == pytest.approx(sum(voltages) / len(voltages), abs=1e-5)


def test_without_the_handshake_the_schema_is_assumed_and_said(tshark, readable_dir):
    capture = readable_dir / "no-handshake.pcapng"
    # frames 41 and 42 of the lab trace are supportedAppProtocolReq/Res
    subprocess.run(["editcap", str(REPO / "captures" / "iso2_dc.pcapng"), str(capture), "41", "42"], check=True)
    os.chmod(capture, 0o644)
    done = run_tshark(tshark, capture, "-Y", "v2g.schema_assumed", "-T", "fields", "-e", "v2g.msg")
    assert done.stdout.split() == ["SessionSetupReq"]
    assert count_frames(tshark, capture, "_ws.expert.message contains \"assuming ISO 15118-2\"") == 1
    full = count_frames(tshark, REPO / "captures" / "iso2_dc.pcapng", 'v2g.schema == "iso2"')
    assert count_frames(tshark, capture, 'v2g.schema == "iso2"') == full
