"""The Lua EXI runtime of the Wireshark dissectors, run by plain Lua 5.1, 5.2 and 5.4 outside
Wireshark, decodes every vector of ../shared/vectors to the field values openv2gx gives; and the
committed Lua data files are what the generator writes today."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

import openv2gx
from ccssniff.capture.reader import read_packets
from ccssniff.decode.body import content_of
from ccssniff.decode.trace import decode_trace
from ccssniff.wireshark.fields import message_fields
from openv2gx.lua_export import render, load_tables
from wireshark_values import canonical, grammar_of

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO / "lua_dissectors" / "ccs15118"
DRIVER = REPO / "tests" / "lua" / "decode_stdin.lua"
VECTOR_FILES = ("appHandshake.jsonl", "din.jsonl", "iso2.jsonl", "iso20.jsonl")


def test_committed_lua_tables_match_the_generator(tmp_path):
    for name, text in render(load_tables()).items():
        committed = DATA_DIR / name
        assert committed.read_text(encoding="utf-8") == text, f"{name} is stale: run python -m openv2gx.lua_export"


def test_no_lua_file_in_the_data_folder():
    # Wireshark would run every *.lua below its plugin folder as a script
    assert not list(DATA_DIR.rglob("*.lua"))


@pytest.fixture(scope="module")
def vectors(shared_dir):
    found = []
    for name in VECTOR_FILES:
        for line in (shared_dir / "vectors" / name).read_text(encoding="utf-8").splitlines():
            vector = json.loads(line)
            found.append((grammar_of(vector), vector["exi_hex"]))
    invalid = shared_dir / "vectors" / "invalid.jsonl"
    for line in invalid.read_text(encoding="utf-8").splitlines():
        vector = json.loads(line)
        if vector.get("exi_hex") and vector.get("schema") in ("din", "iso2", "appHandshake"):
            found.append((vector["schema"], vector["exi_hex"]))
    return found


@pytest.fixture(scope="module")
def expected(vectors):
    out = []
    for grammar, exi_hex in vectors:
        try:
            message = openv2gx.decode(bytes.fromhex(exi_hex), grammar)
        except openv2gx.DecodeError:
            out.append(None)
            continue
        out.append((message.name, Counter((name[4:], canonical(value)) for name, value in message_fields(message))))
    return out


def run_lua(interpreter: str, vectors) -> list:
    stdin = "".join(f"{grammar} {exi_hex}\n" for grammar, exi_hex in vectors)
    done = subprocess.run([interpreter, str(DRIVER), str(DATA_DIR)], input=stdin.encode(),
                          capture_output=True, timeout=120, check=True)
    results = []
    current = None
    for line in done.stdout.decode("utf-8").splitlines():
        if line.startswith("MSG "):
            current = [line[4:], Counter()]
        elif line.startswith("ERR "):
            current = None
        elif line == "END":
            results.append(None if current is None else (current[0], current[1]))
            current = None
        else:
            path, value = line.split("\t", 1)
            current[1][(path, value)] += 1
    return results


@pytest.mark.parametrize("interpreter", ["lua5.1", "lua5.2", "lua5.4"])
def test_lua_interpreters_decode_the_vectors_like_openv2gx(interpreter, vectors, expected):
    if shutil.which(interpreter) is None:
        pytest.skip(f"{interpreter} is not installed (Debian package {interpreter})")
    results = run_lua(interpreter, vectors)
    assert len(results) == len(vectors)
    decoded = 0
    for (grammar, exi_hex), want, got in zip(vectors, expected, results):
        assert (got is None) == (want is None), f"{grammar} {exi_hex[:60]}: lua {got and got[0]}, openv2gx {want and want[0]}"
        if want is not None:
            assert got[0] == want[0]
            assert got[1] == want[1], f"{grammar} {want[0]}: {(got[1] - want[1]) or (want[1] - got[1])}"
            decoded += 1
    assert decoded > 900


@pytest.mark.parametrize("interpreter", ["lua5.1", "lua5.4"])
def test_an_empty_unit_leaves_the_physical_value_decoded(interpreter):
    """A PhysicalValue whose Unit element is empty (EXI's non-strict grammars allow it) still
    decodes: the value is there, the unit is not, and the runtime raises no Lua error."""
    if shutil.which(interpreter) is None:
        pytest.skip(f"{interpreter} is not installed (Debian package {interpreter})")
    capture = REPO / "captures" / "din_dc.pcapng"
    events = []
    decode_trace(read_packets(capture), on_event=lambda event, start: events.append(event))
    response = next(e for e in events if e.name == "CurrentDemandRes")
    message = openv2gx.decode(response.payload, "din")
    content_of(message)["EVSEPresentVoltage"]["Unit"] = None
    payload = openv2gx.encode(message, lenient=True)
    assert openv2gx.decode(payload, "din").schema_violations  # the empty Unit is really in the bits
    done = subprocess.run([interpreter, str(DRIVER), str(DATA_DIR)], input=f"din {payload.hex()}\n".encode(),
                          capture_output=True, timeout=60, check=True)
    lines = done.stdout.decode().splitlines()
    assert lines[0] == "MSG CurrentDemandRes" and lines[-1] == "END", lines[:3]
    voltage = [line for line in lines if line.startswith("din.CurrentDemandRes.EVSEPresentVoltage\t")]
    want = response.message.body["EVSEPresentVoltage"]
    assert voltage and float(voltage[0].split("\t")[1]) == pytest.approx(want["Value"] * 10 ** want["Multiplier"])
