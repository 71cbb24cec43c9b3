"""The three tables' Arrow schemas, and writers that stream rows into Parquet in bounded chunks."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from ccssniff.batch.rows import LIMIT_COLUMNS, PHASE_COLUMNS, PHYSICAL_COLUMNS

TABLES = ("sessions", "messages", "events")
CHUNK_ROWS = 2048  # rows held per table before they go to the file: bounds a worker's memory
_MERGED_ROW_GROUP = 65536

_text, _int, _float, _bool = pa.string(), pa.int64(), pa.float64(), pa.bool_()
_FILE = [("file", _text), ("file_hash", _text)]

SCHEMAS = {
    "sessions": pa.schema(_FILE + [
        ("kind", _text), ("session", _int), ("start_time", _float), ("first_frame", _int), ("last_frame", _int),
        ("ev_mac", _text), ("evse_mac", _text), ("ev_vendor", _text), ("evse_vendor", _text),
        ("evccid", _text), ("evseid", _text), ("session_id", _text),
        ("protocol", _text), ("protocol_assumed", _bool), ("energy_transfer_mode", _text),
        ("payment_option", _text), ("tls", _bool), ("tls_version", _text),
        ("outcome", _text), ("cause", _text), ("cause_frame", _int), ("end", _text),
        ("slac_s", _float), ("sdp_s", _float), *[(column, _float) for column in PHASE_COLUMNS.values()],
        ("power_peak_w", _float), ("power_mean_w", _float), ("current_max_a", _float), ("voltage_max_v", _float),
        ("soc_start", _float), ("soc_end", _float), ("energy_wh", _float),
        *[(column, _float) for column in LIMIT_COLUMNS.values()], ("limited_by_evse_share", _float),
        ("messages", _int), ("errors", _int), ("sequence_violations", _int), ("schema_violations", _int),
    ]),
    "messages": pa.schema(_FILE + [
        ("session", _int), ("frame", _int), ("timestamp", _float), ("time", _float), ("direction", _text),
        ("schema", _text), ("name", _text), ("response_code", _text), ("response_time", _float),
        *[(column, _float) for column in PHYSICAL_COLUMNS], ("soc", _float),
        ("schema_violations", pa.list_(_text)), ("body", _text),
    ]),
    "events": pa.schema(_FILE + [
        ("kind", _text), ("name", _text), ("session", _int), ("frame", _int), ("timestamp", _float),
        ("time", _float), ("direction", _text), ("message", _text), ("detail", _text), ("fields", _text),
        ("caused_by", _text),
    ]),
}


class ChunkedWriter:
    """Collects rows of one table and writes them as a Parquet row group every CHUNK_ROWS rows.

    The file is created on the first flush, so a table without rows leaves no part file.
    """

    def __init__(self, path: Path, table: str) -> None:
        self.path = path
        self.schema = SCHEMAS[table]
        self.rows: list[dict] = []
        self.count = 0
        self._writer: pq.ParquetWriter | None = None

    def add(self, row: dict) -> None:
        self.rows.append(row)
        if len(self.rows) >= CHUNK_ROWS:
            self.flush()

    def extend(self, rows: Iterable[dict]) -> None:
        for row in rows:
            self.add(row)

    def flush(self) -> None:
        if not self.rows:
            return
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")
        self._writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
        self.count += len(self.rows)
        self.rows = []

    def close(self) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def discard(self) -> None:
        self.rows = []
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.path.unlink(missing_ok=True)


def merge_parts(parts: Iterable[Path], target: Path, table: str) -> int:
    """Concatenate part files into one Parquet file (written beside, then renamed into place).

    Reads one part at a time and writes row groups of up to _MERGED_ROW_GROUP rows, so memory
    stays bounded by one row group however many parts there are. Returns the row count.
    """
    schema = SCHEMAS[table]
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    pending: list[pa.RecordBatch] = []
    pending_rows = total = 0
    with pq.ParquetWriter(temporary, schema, compression="zstd") as writer:
        for part in parts:
            for batch in pq.ParquetFile(part).iter_batches(batch_size=_MERGED_ROW_GROUP):
                pending.append(batch)
                pending_rows += batch.num_rows
                if pending_rows >= _MERGED_ROW_GROUP:
                    writer.write_table(pa.Table.from_batches(pending, schema=schema))
                    total += pending_rows
                    pending, pending_rows = [], 0
        if pending:
            writer.write_table(pa.Table.from_batches(pending, schema=schema))
            total += pending_rows
    os.replace(temporary, target)
    return total
