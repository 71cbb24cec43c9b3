"""One trace into its part of the tables: the task every worker runs, local process or Dask worker.

A task reads its file (local path or fsspec URL), hashes the content, and skips the file when
OUTDIR already holds a finished part with that hash. Otherwise it decodes the trace, streaming
message and event rows into Parquet part files in chunks, and writes the session rows at the end.
A small JSON marker, written last, says the part is complete; the marker is what resume and the
merge look at, so a worker killed half-way leaves nothing that counts.
"""
from __future__ import annotations

import hashlib
import json
import os
import resource
import time
import warnings
from pathlib import Path
from typing import Any, BinaryIO

from ccssniff.batch.rows import FileRows, file_event_row
from ccssniff.batch.tables import TABLES, ChunkedWriter
from ccssniff.capture.reader import CaptureFormatError, CaptureWarning, read_packets
from ccssniff.decode.trace import decode_trace

PARTS = "parts"
_HASH_CHUNK = 1 << 20
# Statuses of a finished task
DECODED, SKIPPED, UNREADABLE, FAILED = "decoded", "skipped", "unreadable", "failed"


def is_url(source: str) -> bool:
    return "://" in source


def open_source(source: str) -> BinaryIO:
    if is_url(source):
        import fsspec

        return fsspec.open(source, "rb").open()
    return open(source, "rb")


def content_hash(source: str) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open_source(source) as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def part_path(outdir: Path, file_hash: str, table: str) -> Path:
    return outdir / PARTS / f"{file_hash}.{table}.parquet"


def marker_path(outdir: Path, file_hash: str) -> Path:
    return outdir / PARTS / f"{file_hash}.json"


def read_marker(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def process_file(source: str, outdir: str) -> dict[str, Any]:
    """Decode ``source`` into part files under ``outdir``; return what happened (JSON-ready)."""
    started = time.perf_counter()
    cpu_started = time.process_time()
    out = Path(outdir)
    (out / PARTS).mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"file": source, "hash": None, "status": None, "frames": 0, "sessions": 0,
                              "messages": 0, "events": 0, "cpu_started": cpu_started}
    try:
        file_hash = result["hash"] = content_hash(source)
    except (OSError, ValueError) as exc:
        # Without content there is no hash to resume by: one error row under a hash of the name.
        file_hash = result["hash"] = "name-" + hashlib.blake2b(source.encode(), digest_size=16).hexdigest()
        detail = f"cannot read {source}: {getattr(exc, 'strerror', None) or exc}"
        return _finish(out, result, UNREADABLE, started,
                       events=[file_event_row(source, None, "error", "unreadable file", detail)])
    marker = read_marker(marker_path(out, file_hash))
    if marker is not None and marker.get("status") != FAILED:
        return {**marker, "file": source, "status": SKIPPED, "first_file": marker.get("file"), "worker": os.getpid(),
                "seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu_started}
    return _decode(source, out, file_hash, result, started)


def _decode(source: str, out: Path, file_hash: str, result: dict, started: float) -> dict[str, Any]:
    writers = {table: ChunkedWriter(_temporary(part_path(out, file_hash, table)), table) for table in TABLES}
    rows = FileRows(source, file_hash)
    messages, events = writers["messages"], writers["events"]

    def on_event(event, start):
        message_row, event_rows = rows.on_event(event, start)
        if message_row is not None:
            messages.add(message_row)
        if event_rows:
            events.extend(event_rows)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with open_source(source) as stream:
                trace = decode_trace(read_packets(stream), on_event=on_event)
        except CaptureFormatError as exc:
            for writer in writers.values():
                writer.discard()
            return _finish(out, result, UNREADABLE, started,
                           events=[file_event_row(source, file_hash, "error", "unreadable file", str(exc))])
        except Exception as exc:  # a decoder bug must not end the batch; the file is retried next run
            for writer in writers.values():
                writer.discard()
            detail = f"decoding stopped: {type(exc).__name__}: {exc}"
            return _finish(out, result, FAILED, started,
                           events=[file_event_row(source, file_hash, "error", "decode failed", detail)])
    for warning in caught:
        name = "capture damaged" if issubclass(warning.category, CaptureWarning) else warning.category.__name__
        events.add(file_event_row(source, file_hash, "warning", name, str(warning.message)))
    summary = trace.to_dict()
    writers["sessions"].extend(rows.session_rows(summary))
    events.extend(rows.verdict_rows(summary))
    result["frames"] = summary.get("frames", 0)
    for writer in writers.values():
        writer.close()
    for table, writer in writers.items():
        if writer.count:
            os.replace(writer.path, part_path(out, file_hash, table))
    return _finish(out, result, DECODED, started, counts={t: w.count for t, w in writers.items()})


def _finish(out: Path, result: dict, status: str, started: float, *, events: list[dict] | None = None,
            counts: dict[str, int] | None = None) -> dict[str, Any]:
    file_hash = result["hash"]
    if events:
        writer = ChunkedWriter(_temporary(part_path(out, file_hash, "events")), "events")
        writer.extend(events)
        writer.close()
        os.replace(writer.path, part_path(out, file_hash, "events"))
        counts = {"sessions": 0, "messages": 0, "events": writer.count}
    result.update(counts or {})
    result["status"] = status
    result["tables"] = [table for table in TABLES if result.get(table)]
    result["peak_rss_kib"] = peak_rss_kib()
    result["worker"] = os.getpid()
    result["seconds"] = time.perf_counter() - started
    result["cpu_seconds"] = time.process_time() - result.pop("cpu_started")
    temporary = _temporary(marker_path(out, file_hash))
    temporary.write_text(json.dumps(result))
    os.replace(temporary, marker_path(out, file_hash))
    return result


def peak_rss_kib() -> int:
    """This process's peak resident set (VmHWM on Linux; ru_maxrss elsewhere)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")
