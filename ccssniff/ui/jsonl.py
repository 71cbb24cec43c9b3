"""JSON lines: one object per event with the full decoded body; bytes as hex."""
from __future__ import annotations

import json
from typing import Any, TextIO

from ccssniff.decode.events import Event
from ccssniff.homeplug.keys import reveal_keys
from ccssniff.ui.values import id_texts


def _default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def event_record(event: Event, start: float, with_payload: bool, show_key: bool = False) -> dict[str, Any]:
    record: dict[str, Any] = {"kind": event.kind, "time": round(event.time - start, 6),
                              "timestamp": event.time, "frame": event.frame, "name": event.name}
    if event.connection is not None:
        record["connection"] = event.connection
    if event.direction is not None:
        record["direction"] = event.direction
    if event.fields:
        record.update(reveal_keys(event.fields, show_key))  # network keys stay masked unless asked
    if event.message is not None:
        record["schema"] = event.message.schema
        record["body"] = event.message
        record.update(id_texts(event.message))
    if event.payload_type is not None:
        record["payload_type"] = f"{event.payload_type:#06x}"
    if event.payload is not None and (with_payload or event.kind == "error"):
        record["payload"] = event.payload.hex()
    return record


class JsonLinesWriter:
    def __init__(self, stream: TextIO, with_payload: bool = False, file_label: str | None = None,
                 show_key: bool = False) -> None:
        self._write = stream.write
        self._with_payload = with_payload
        self._file_label = file_label
        self._show_key = show_key
        self._encode = json.JSONEncoder(default=_default, ensure_ascii=False, separators=(",", ":")).encode

    def event(self, event: Event, start: float) -> None:
        record = event_record(event, start, self._with_payload, self._show_key)
        if self._file_label is not None:
            record["file"] = self._file_label
        self._write(self._encode(record) + "\n")

    def summary(self, summary: dict[str, Any]) -> None:
        record = {"kind": "summary", **summary}
        if self._file_label is not None:
            record["file"] = self._file_label
        self._write(self._encode(record) + "\n")
