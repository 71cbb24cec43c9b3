"""``ccssniff batch``: a corpus of real captures, lab sessions and broken files into Parquet tables,
checked file by file against what ``ccssniff decode --summary --json`` says; resume; a real Dask cluster
(``dask scheduler`` and two ``dask worker`` processes on loopback); the README's DuckDB queries."""
from __future__ import annotations

import gzip
import io
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner

pa = pytest.importorskip("pyarrow", reason="the batch extra (pyarrow) is not installed")
pq = pytest.importorskip("pyarrow.parquet")
pc = pytest.importorskip("pyarrow.compute")
duckdb = pytest.importorskip("duckdb", reason="the batch extra (duckdb) is not installed")
pytest.importorskip("distributed", reason="the batch extra (dask[distributed]) is not installed")

from ccssniff.batch.inputs import expand  # noqa: E402
from ccssniff.batch.rows import LIMIT_COLUMNS, PHASE_COLUMNS, PHYSICAL_COLUMNS, SOC_NAMES  # noqa: E402
from ccssniff.capture.pcapng import PcapngWriter  # noqa: E402
from ccssniff.cli import cli  # noqa: E402
from ccssniff.decode.schema import decoder_available  # noqa: E402
from ccssniff.emulate.lab import LabConfig, run_lab  # noqa: E402
from ccssniff.emulate.physics import BatteryParams, PowerStageParams, SimulationParams  # noqa: E402

pytestmark = pytest.mark.skipif(not decoder_available(), reason="openv2gx (the EXI decoder) is not importable")

REPO = Path(__file__).resolve().parents[1]
LAB_SESSIONS = 410
PROTOCOL_MODES = (("din", "dc"), ("iso2", "dc"), ("iso2", "ac"), ("iso20", "dc"), ("iso20", "ac"))
CLUSTER_CAPTURES = "everest/BMW"
BROKEN_UNREADABLE = ("garbage.pcapng", "empty.pcap", "notes.pcap")


# --- the corpus ------------------------------------------------------------------------------------

def _pcap(frames: list[tuple[bytes, float]]) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for data, at in frames:
        seconds = int(at)
        out.append(struct.pack("<IIII", seconds, int(round((at - seconds) * 1e6)), len(data), len(data)) + data)
    return b"".join(out)


def _lab_capture(number: int) -> tuple[str, bytes]:
    protocol, mode = PROTOCOL_MODES[number % len(PROTOCOL_MODES)]
    evse = PowerStageParams(max_current=(15.0, 40.0, 80.0, 200.0)[number // 5 % 4],
                            max_power=(100_000.0, 30_000.0)[number // 20 % 2],
                            ac_max_current=(32.0, 10.0)[number // 5 % 2])
    battery = BatteryParams(start_soc=10.0 + (number * 7) % 60, capacity_kwh=(40.0, 77.0)[number % 2])
    config = LabConfig(protocol=protocol, mode=mode, params=SimulationParams(evse=evse, battery=battery),
                       charge_time=0.2 + (number % 4) * 0.3, seed=number, slac=number % 3 != 0,
                       start_time=1_767_225_600.0 + number * 3600)
    frames: list[tuple[bytes, float, str | None]] = []
    run_lab(config, lambda frame, at, comment: frames.append((frame, at, comment)))
    kind = number % 7
    stem = f"lab/{protocol}_{mode}/{number:04d}"
    if kind == 5:
        return stem + ".pcap", _pcap([(frame, at) for frame, at, _ in frames])
    buffer = io.BytesIO()
    with PcapngWriter(buffer) as writer:
        for frame, at, comment in frames:
            writer.write(frame, timestamp=at, comment=comment)
    if kind == 6:
        return stem + ".pcapng.gz", gzip.compress(buffer.getvalue(), compresslevel=1)
    return stem + ".pcapng", buffer.getvalue()


@pytest.fixture(scope="session")
def corpus(tmp_path_factory, shared_dir) -> dict:
    """Real captures (../shared/captures, read where they are), lab sessions of every protocol and
    mode with varied parameters, and broken files; built once per test session."""
    root = tmp_path_factory.mktemp("batch_corpus")
    for number in range(LAB_SESSIONS):
        name, data = _lab_capture(number)
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    broken = root / "broken"
    broken.mkdir()
    (broken / "garbage.pcapng").write_bytes(bytes(range(256)) * 8)
    (broken / "empty.pcap").write_bytes(b"")
    (broken / "notes.pcap").write_text("this is not a capture\n")
    whole = (root / "lab/din_dc/0000.pcapng").read_bytes()
    (broken / "cut.pcapng").write_bytes(whole[: len(whole) * 2 // 3 + 5])
    captures = shared_dir / "captures"
    sources = expand([str(captures), str(root / "lab"), str(broken / "*")])
    return {"root": root, "captures": captures, "sources": sources,
            "args": [str(captures), str(root / "lab"), str(broken / "*")]}


def batch(*args):
    return CliRunner().invoke(cli, ["batch", *map(str, args)], prog_name="ccssniff")


@pytest.fixture(scope="session")
def local_run(corpus, tmp_path_factory):
    outdir = tmp_path_factory.mktemp("batch_local")
    result = batch(*corpus["args"], "-o", outdir, "--jobs", "2")
    assert result.exit_code == 0, result.output
    return outdir, result


@pytest.fixture(scope="session")
def reference(corpus) -> dict:
    """What ``ccssniff decode --summary --json`` gives, file by file: {file: (records, summary)}."""
    result = CliRunner().invoke(cli, ["decode", "--summary", "--json", *corpus["sources"]], prog_name="ccssniff")
    assert result.exit_code == 2  # the broken files; every other file is decoded
    per_file: dict[str, list] = defaultdict(list)
    for line in result.stdout.splitlines():
        record = json.loads(line)
        per_file[record.pop("file")].append(record)
    return {file: (records[:-1], records[-1]) for file, records in per_file.items()}


def _rows(outdir: Path, table: str) -> dict[str, list[dict]]:
    by_file: dict[str, list[dict]] = defaultdict(list)
    for row in pq.read_table(outdir / f"{table}.parquet").to_pylist():
        by_file[row["file"]].append(row)
    return by_file


# --- independent readings of the decode output ----------------------------------------------------

def _content(body: dict) -> dict:
    root_name = next(iter(body))
    root = body[root_name]
    if root_name == "V2G_Message":
        inner = root.get("Body", {})
        return next(iter(inner.values())) if inner else {}
    return root


def _shallowest(content: dict, name: str):
    level = [content]
    while level:
        for mapping in level:
            if name in mapping:
                return mapping[name]
        level = [value for mapping in level for value in mapping.values() if isinstance(value, dict)]
    return None


def _number(value, name):
    if not isinstance(value, dict) or "Value" not in value:
        return None
    exponent = value.get("Multiplier", value.get("Exponent", 0)) or 0
    return value["Value"] / 10 ** -exponent if exponent < 0 else float(value["Value"] * 10 ** exponent)


def _expected_message(record: dict) -> dict:
    content = _content(record["body"])
    expected = {"session": record["connection"], "frame": record["frame"], "timestamp": record["timestamp"],
                "time": record["time"], "direction": record.get("direction"), "schema": record["schema"],
                "name": record["name"]}
    code = _shallowest(content, "ResponseCode")
    expected["response_code"] = None if code is None else str(code)
    for column, names in PHYSICAL_COLUMNS.items():
        expected[column] = next((n for n in (_number(_shallowest(content, name), name) for name in names)
                                 if n is not None), None)
    expected["soc"] = next((float(v) for v in (_shallowest(content, n) for n in SOC_NAMES) if v is not None), None)
    return expected


# --- tests -----------------------------------------------------------------------------------------

def test_corpus_is_large_and_varied(corpus):
    sources = corpus["sources"]
    assert len(sources) >= 500
    assert sum(s.endswith(".pcap") for s in sources) > 50 and sum(s.endswith(".gz") for s in sources) > 50
    assert not any(s.endswith((".md", "LICENSE")) for s in sources)  # folders: captures only
    assert sum(s.startswith(str(corpus["captures"])) for s in sources) >= 90


def test_tables_equal_decode_file_by_file(corpus, local_run, reference):
    outdir, _ = local_run
    sessions, messages, events = (_rows(outdir, table) for table in ("sessions", "messages", "events"))
    decoded = [s for s in corpus["sources"] if s in reference]
    assert len(decoded) == len(corpus["sources"]) - len(BROKEN_UNREADABLE)
    typed_values = 0
    for file in decoded:
        records, summary = reference[file]
        v2g = [r for r in records if r["kind"] == "v2g"]
        rows = messages.get(file, [])
        assert len(rows) == len(v2g), file
        last_request: dict[int, float] = {}
        for row, record in zip(rows, v2g):
            expected = _expected_message(record)
            assert {key: row[key] for key in expected} == expected, (file, record["frame"])
            assert json.loads(row["body"]) == record["body"]
            if record["name"].endswith("Req"):
                last_request[record["connection"]] = record["timestamp"]
                assert row["response_time"] is None
            elif record["name"].endswith("Res") and record["connection"] in last_request:
                assert row["response_time"] == pytest.approx(
                    record["timestamp"] - last_request.pop(record["connection"]), abs=2e-6)
            typed_values += row["evse_present_voltage"] is not None
        _check_sessions(file, summary, sessions.get(file, []))
        problems = [(r["kind"], r["name"], r["frame"], r.get("connection")) for r in records
                    if r["kind"] in ("sequence", "error")]
        assert [(e["kind"], e["name"], e["frame"], e["session"]) for e in events.get(file, [])
                if e["kind"] in ("sequence", "error")] == problems, file
        verdicts = [(v.get("name"), v.get("frame"), v.get("text")) for v in summary.get("verdicts") or ()]
        assert [(e["name"], e["frame"], e["detail"]) for e in events.get(file, [])
                if e["kind"] == "verdict"] == verdicts, file
    assert typed_values > 5000


def _check_sessions(file: str, summary: dict, rows: list[dict]) -> None:
    slac_rows = [r for r in rows if r["kind"] == "slac"]
    v2g_rows = [r for r in rows if r["kind"] == "v2g"]
    slac = summary.get("slac") or {}
    runs = slac.get("run_list") or []
    # one row per SLAC run of the session model, with that run's duration and outcome
    assert len(slac_rows) == len(runs), file
    for row, run in zip(slac_rows, runs):
        assert row["slac_s"] == run["duration"], file
        assert row["outcome"] == run["outcome"]["result"] and row["cause"] == run["outcome"]["cause"], file
    assert [r["session"] for r in v2g_rows] == [s["connection"] for s in summary["sessions"]], file
    for row, session in zip(v2g_rows, summary["sessions"]):
        outcome = session.get("outcome") or {}
        assert (row["protocol"], row["evccid"], row["evseid"], row["session_id"]) == \
            (session["protocol"], session["EVCCID"], session["EVSEID"], session["SessionID"])
        assert (row["messages"], row["errors"], row["sequence_violations"]) == \
            (session["messages"], session["errors"], session["sequence_violations"])
        assert (row["outcome"], row["cause"], row["start_time"]) == \
            (outcome.get("result"), outcome.get("cause"), session.get("start_time"))
        assert row["energy_transfer_mode"] == session["energy_transfer_mode"]
        assert row["tls"] == (session["tls"] is not None)
        for phase, column in PHASE_COLUMNS.items():
            assert row[column] == session["phases"].get(phase), (file, column)
        assert row["power_peak_w"] == (session["power"] or {}).get("max")
        assert row["soc_end"] == (session["soc"] or {}).get("last")
        total = sum(session["limited_by"].values())
        for who, column in LIMIT_COLUMNS.items():
            assert row[column] == (pytest.approx(session["limited_by"].get(who, 0) / total) if total else None)
        # power, energy, SOC and schema violations are the session model's, as decode reports them
        assert row["power_mean_w"] == (session["power"] or {}).get("mean")
        assert row["soc_start"] == (session["soc"] or {}).get("first")
        assert row["energy_wh"] == session["energy_wh"]
        assert row["schema_violations"] == session["schema_violations"]


def test_broken_files_are_rows_and_the_batch_goes_on(corpus, local_run):
    outdir, result = local_run
    events = _rows(outdir, "events")
    broken = corpus["root"] / "broken"
    for name in BROKEN_UNREADABLE:
        rows = events[str(broken / name)]
        assert len(rows) == 1 and rows[0]["kind"] == "error" and rows[0]["name"] == "unreadable file", rows
        assert str(broken / name) in rows[0]["detail"]
    cut = events[str(broken / "cut.pcapng")]
    assert [r["name"] for r in cut if r["kind"] == "warning"] == ["capture damaged"]
    sessions = _rows(outdir, "sessions")
    assert all(str(broken / name) not in sessions for name in BROKEN_UNREADABLE)
    assert f"{len(corpus['sources'])} files: {len(corpus['sources']) - 3} decoded, 3 unreadable" in result.stderr


def test_every_protocol_and_mode_is_in_the_tables(local_run):
    outdir, _ = local_run
    with duckdb.connect() as db:
        found = db.execute(f"SELECT DISTINCT protocol, energy_transfer_mode FROM '{outdir}/sessions.parquet' "
                           "WHERE kind = 'v2g' AND file LIKE '%/lab/%'").fetchall()
        limited = db.execute(f"SELECT count(*) FILTER (WHERE limited_by_evse_share > 0.5), "
                             f"count(*) FILTER (WHERE limited_by_ev_share > 0.5) "
                             f"FROM '{outdir}/sessions.parquet'").fetchone()
    protocols = {protocol for protocol, _ in found}
    assert {"DIN SPEC 70121", "ISO 15118-2", "ISO 15118-20"} <= protocols
    assert len(found) >= 5  # DC and AC transfer modes under the ISO protocols
    assert limited[0] > 0 and limited[1] > 0  # the EVSE limits some sessions, the EV others


def test_rerun_skips_everything_and_keeps_the_tables(corpus, local_run, tmp_path):
    outdir, _ = local_run
    before = {t: pq.read_table(outdir / f"{t}.parquet") for t in ("sessions", "messages", "events")}
    result = batch(*corpus["args"], "-o", outdir, "--jobs", "2")
    assert result.exit_code == 0, result.output
    assert f"{len(corpus['sources'])} files: {len(corpus['sources'])} skipped;" in result.stderr
    assert "new rows: 0 sessions, 0 messages, 0 events" in result.stderr
    for table, old in before.items():
        assert pq.read_table(outdir / f"{table}.parquet").equals(old), table


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def test_a_real_dask_cluster_gives_the_same_tables(corpus, local_run, tmp_path):
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    dask = [sys.executable, "-m", "dask"]
    processes = [subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                   "--no-dashboard"], env=env, cwd=tmp_path,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for number in range(2):
            processes.append(subprocess.Popen(
                [*dask, "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                 "--name", f"ccsB-worker-{number}", "--local-directory", str(tmp_path / f"w{number}")],
                env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 90
        while True:
            try:
                with Client(address, timeout=5) as client:
                    client.wait_for_workers(2, timeout=max(1, deadline - time.monotonic()))
                    workers = client.scheduler_info()["workers"]
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        assert len(workers) == 2
        outdir = tmp_path / "tables"
        # real captures, lab sessions (pcapng, pcap, gzip), broken files: every kind of input
        lab = corpus["root"] / "lab"
        args = [str(corpus["captures"] / CLUSTER_CAPTURES), str(lab / "din_dc"), str(lab / "iso20_ac"),
                corpus["args"][-1]]
        result = batch(*args, "-o", outdir, "--scheduler", address)
        assert result.exit_code == 0, result.output
    finally:
        for process in reversed(processes):
            _stop(process)
    files = pa.array(expand(args))
    assert len(files) > 150
    local_dir, _ = local_run
    for table in ("sessions", "messages", "events"):
        local = pq.read_table(local_dir / f"{table}.parquet")
        local = local.filter(pc.is_in(local["file"], value_set=files))
        remote = pq.read_table(outdir / f"{table}.parquet")
        assert local.num_rows > 0 and remote.equals(local), (table, _first_difference(local, remote))


def _first_difference(local, remote) -> str:
    """Where two tables part, for the failure message."""
    if local.num_rows != remote.num_rows:
        return f"{local.num_rows} rows here, {remote.num_rows} there"
    for name in local.column_names:
        if name not in remote.column_names:
            return f"column {name} missing"
        a, b = local[name].to_pylist(), remote[name].to_pylist()
        for row, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return f"column {name}, row {row} ({local['file'][row]}): {x!r} != {y!r}"
    return "same values, different schema or chunking"


def _readme_queries() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Many traces", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, re.S)


def test_readme_queries_run_on_the_tables(local_run):
    outdir, _ = local_run
    queries = _readme_queries()
    assert len(queries) >= 3
    sessions = pq.read_table(outdir / "sessions.parquet").to_pylist()
    with duckdb.connect() as db:
        answers = [db.execute(query.replace("tables/", f"{outdir}/")).fetchall() for query in queries]
    cable, failures, limited = answers[:3]
    cable_rows = [r for r in sessions if r["kind"] == "v2g" and r["cable_check_s"] is not None]
    assert sum(row[1] for row in cable) == len(cable_rows)
    failed = [r for r in sessions if r["kind"] == "v2g" and r["outcome"] not in (None, "completed")]
    assert sum(row[-1] for row in failures) == len(failed)
    charging = [r for r in sessions if r["kind"] == "v2g" and r["limited_by_evse_share"] is not None]
    assert sum(row[1] for row in limited) == len(charging)
    assert {row[0] for row in limited} == {r["protocol"] for r in charging}


def test_summary_prints_the_tables(corpus, tmp_path):
    result = batch(str(corpus["root"] / "lab" / "din_dc"), "-o", tmp_path, "--summary", "--jobs", "1")
    assert result.exit_code == 0, result.output
    for title in ("Cable check per charger", "Failure causes per car", "Sessions limited by the EVSE"):
        assert title in result.stdout
    assert "DIN SPEC 70121" in result.stdout


def test_fsspec_urls_give_the_rows_of_the_local_paths(corpus, local_run, tmp_path):
    folder = corpus["root"] / "lab" / "iso20_ac"
    result = batch(f"file://{folder}/*.pcapng", "-o", tmp_path, "--jobs", "1")
    assert result.exit_code == 0, result.output
    remote = pq.read_table(tmp_path / "messages.parquet")
    files = pa.array(sorted(set(remote["file"].to_pylist())))
    assert files.to_pylist()[0].startswith(f"file://{folder}/") and len(files) > 30
    local = pq.read_table(local_run[0] / "messages.parquet")
    local = local.filter(pc.is_in(local["file"], value_set=pa.array([f[len("file://"):] for f in files.to_pylist()])))
    assert remote.drop_columns(["file"]).equals(local.drop_columns(["file"]))


def test_nothing_to_read_is_a_usage_error(tmp_path):
    result = batch(tmp_path / "nothing-here", "-o", tmp_path / "out")
    assert result.exit_code == 2 and "no such file" in result.stderr
