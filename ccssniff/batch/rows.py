"""Rows of the three tables, built from the decode pipeline's events and the session summary.

Plain Python (no pyarrow here), so the rules are easy to read and to test. Every row builder
takes the session-model keys when the summary has them and leaves the column empty (None) when
it does not: the summary grows, the table schema stays.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from ccssniff.decode import events as ev
from ccssniff.decode.body import content_of
from ccssniff.decode.events import Event
from ccssniff.standards.physical import is_physical_value, physical_value

# Phase names of the session model -> column names (seconds).
PHASE_COLUMNS = {"handshake": "handshake_s", "setup": "setup_s", "cable check": "cable_check_s",
                 "pre-charge": "pre_charge_s", "charge loop": "charge_loop_s", "stop": "stop_s"}
# Who limited the power (session model's words) -> share column.
LIMIT_COLUMNS = {"EV request (below the EVSE's offer)": "limited_by_ev_share",
                 "EVSE current limit": "limited_by_evse_current_share",
                 "EVSE voltage limit": "limited_by_evse_voltage_share",
                 "EVSE power limit": "limited_by_evse_power_share"}
# Typed message columns: column -> element names that carry the value, in order of preference
# (DIN / ISO 15118-2 names first, then ISO 15118-20's).
PHYSICAL_COLUMNS = {
    "ev_target_voltage": ("EVTargetVoltage",),
    "ev_target_current": ("EVTargetCurrent",),
    "ev_target_power": ("EVTargetPower",),
    "evse_present_voltage": ("EVSEPresentVoltage",),
    "evse_present_current": ("EVSEPresentCurrent",),
    "ev_maximum_voltage": ("EVMaximumVoltageLimit", "EVMaximumVoltage"),
    "ev_maximum_current": ("EVMaximumCurrentLimit", "EVMaximumChargeCurrent", "EVMaxCurrent"),
    "ev_maximum_power": ("EVMaximumPowerLimit", "EVMaximumChargePower"),
    "evse_maximum_voltage": ("EVSEMaximumVoltageLimit", "EVSEMaximumVoltage", "EVSENominalVoltage"),
    "evse_maximum_current": ("EVSEMaximumCurrentLimit", "EVSEMaximumChargeCurrent", "EVSEMaxCurrent"),
    "evse_maximum_power": ("EVSEMaximumPowerLimit", "EVSEMaximumChargePower"),
}
SOC_NAMES = ("EVRESSSOC", "PresentSOC")
_WANTED = {name for names in PHYSICAL_COLUMNS.values() for name in names} | set(SOC_NAMES) | {"ResponseCode"}
_COLUMN_OF_NAME = {name: (column, rank) for column, names in PHYSICAL_COLUMNS.items()
                   for rank, name in enumerate(names)}
_SEARCH_DEPTH = 4
_VALUES_KEPT = 1024  # messages whose derived values are kept: bounds the memory, not the correctness  # DIN nests EVRESSSOC in DC_EVStatus; ISO 15118-20 targets sit in a control mode


def json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


try:  # several times faster on message bodies; the batch extra brings it
    import orjson

    def _encode(value: Any) -> str:
        return orjson.dumps(value, default=json_default).decode()
except ImportError:
    _encode = json.JSONEncoder(default=json_default, ensure_ascii=False, separators=(",", ":")).encode


def to_json(value: Any) -> str:
    return _encode(value)


def find_elements(content: Mapping[str, Any], wanted: set[str] = _WANTED, depth: int = _SEARCH_DEPTH) -> dict:
    """First occurrence (breadth first) of each wanted element name in a message's content."""
    found: dict[str, Any] = {}
    level: list[Mapping[str, Any]] = [content]
    for _ in range(depth):
        deeper: list[Mapping[str, Any]] = []
        for mapping in level:
            for key, value in mapping.items():
                if key in wanted and key not in found:
                    found[key] = value
                if isinstance(value, dict):
                    deeper.append(value)
        if not deeper:
            break
        level = deeper
    return found


def physical_columns(elements: Mapping[str, Any]) -> dict[str, float | None]:
    columns: dict[str, float | None] = dict.fromkeys(PHYSICAL_COLUMNS)
    ranks: dict[str, int] = {}
    for name, value in elements.items():
        target = _COLUMN_OF_NAME.get(name)
        if target is None or not is_physical_value(value):
            continue
        column, rank = target
        if rank < ranks.get(column, len(_COLUMN_OF_NAME)):
            ranks[column] = rank
            columns[column] = physical_value(value, name)[0]
    return columns


def soc_of(elements: Mapping[str, Any]) -> float | None:
    for name in SOC_NAMES:
        value = elements.get(name)
        if value is not None:
            return float(value)
    return None


class FileRows:
    """Turns one trace's events into message and event rows as they come (``on_event``), and its
    summary into session rows at the end (``session_rows``). Holds O(connections) state only."""

    def __init__(self, file: str, file_hash: str) -> None:
        self.file = file
        self.file_hash = file_hash
        self._requests: dict[int, float] = {}  # connection -> time of its last request
        self._macs: dict[str, str] = {}  # ev_mac / evse_mac from CM_SLAC_MATCH, when the summary lacks them
        self._values: dict[int, tuple] = {}  # id(message) -> (message, _values_of(message))

    # --- per event ------------------------------------------------------------------------
    def on_event(self, event: Event, start: float) -> tuple[dict | None, list[dict]]:
        """(message row or None, event rows) for one event."""
        kind = event.kind
        if kind == ev.V2G and event.message is not None:
            return self._message_row(event, start)
        if event.is_problem:
            return None, [self._event_row(event, start)]
        if kind == ev.HOMEPLUG and event.name.startswith("CM_SLAC_MATCH"):
            for field, column in (("pev_mac", "ev_mac"), ("evse_mac", "evse_mac")):
                if field in event.fields:
                    self._macs[column] = str(event.fields[field])
        return None, []

    def _message_row(self, event: Event, start: float) -> tuple[dict, list[dict]]:
        message = event.message
        name = event.name
        connection = event.connection
        physical, soc, code, violations, body = self._values_of(message)
        response_time = None
        if name.endswith("Req"):
            self._requests[connection] = event.time
        elif name.endswith("Res"):
            asked = self._requests.pop(connection, None)
            if asked is not None:
                response_time = round(event.time - asked, 6)
        row = {
            "file": self.file, "file_hash": self.file_hash, "session": connection, "frame": event.frame,
            "timestamp": event.time, "time": round(event.time - start, 6), "direction": event.direction,
            "schema": message.schema, "name": name, "response_code": code, "response_time": response_time,
            **physical, "soc": soc, "schema_violations": list(violations), "body": body,
        }
        event_rows = [self._schema_row(event, start, text) for text in violations]
        return row, event_rows

    def _values_of(self, message: Any) -> tuple:
        """(typed columns, SOC, ResponseCode, schema violations, body JSON) of a decoded message.

        The decoder hands out one object per distinct payload it has cached, and real sessions
        repeat most messages byte for byte, so these are kept per object (the entry holds the
        object, so its id cannot be reused while the entry lives)."""
        entry = self._values.get(id(message))
        if entry is not None and entry[0] is message:
            return entry[1]
        elements = find_elements(content_of(message))
        code = elements.get("ResponseCode")
        values = (physical_columns(elements), soc_of(elements), None if code is None else str(code),
                  tuple(str(text) for text in getattr(message, "schema_violations", None) or ()),
                  _encode(message))
        if len(self._values) >= _VALUES_KEPT:
            self._values.clear()
        self._values[id(message)] = (message, values)
        return values

    def _event_row(self, event: Event, start: float) -> dict:
        fields = event.fields
        return {"file": self.file, "file_hash": self.file_hash, "kind": event.kind, "name": event.name,
                "session": event.connection, "frame": event.frame, "timestamp": event.time,
                "time": round(event.time - start, 6), "direction": event.direction,
                "message": _text_or_none(fields.get("message")),
                "detail": _text_or_none(fields.get("detail", fields.get("reason"))),
                "fields": _encode(fields) if fields else None, "caused_by": None}

    def _schema_row(self, event: Event, start: float, text: str) -> dict:
        return {"file": self.file, "file_hash": self.file_hash, "kind": "schema", "name": "schema violation",
                "session": event.connection, "frame": event.frame, "timestamp": event.time,
                "time": round(event.time - start, 6), "direction": event.direction, "message": event.name,
                "detail": text, "fields": None, "caused_by": None}

    # --- per file -------------------------------------------------------------------------
    def verdict_rows(self, summary: Mapping[str, Any]) -> list[dict]:
        """The session model's verdicts, each with the first cause it is grouped under."""
        rows = []
        for verdict in summary.get("verdicts") or ():
            if not isinstance(verdict, Mapping):
                continue
            caused_by = verdict.get("caused_by")
            rows.append({"file": self.file, "file_hash": self.file_hash, "kind": "verdict",
                         "name": _text_or_none(verdict.get("name")), "session": verdict.get("connection"),
                         "frame": verdict.get("frame"), "timestamp": None, "time": None, "direction": None,
                         "message": _text_or_none(verdict.get("kind")), "detail": _text_or_none(verdict.get("text")),
                         "fields": _encode(verdict),
                         "caused_by": caused_by if caused_by is None or isinstance(caused_by, str)
                         else _encode(caused_by)})
        return rows

    def session_rows(self, summary: Mapping[str, Any]) -> list[dict]:
        rows = [self._v2g_row(summary, session) for session in summary.get("sessions", ())]
        rows[:0] = self._slac_rows(summary)
        return rows

    def _common(self, summary: Mapping[str, Any]) -> dict:
        return {"file": self.file, "file_hash": self.file_hash,
                "ev_mac": summary.get("ev_mac") or self._macs.get("ev_mac"),
                "evse_mac": summary.get("evse_mac") or self._macs.get("evse_mac"),
                "ev_vendor": summary.get("ev_vendor"), "evse_vendor": summary.get("evse_vendor")}

    def _slac_rows(self, summary: Mapping[str, Any]) -> list[dict]:
        """A row per SLAC run the summary lists; one for the trace's SLAC when it only says it was there."""
        slac = summary.get("slac")
        slac = slac if isinstance(slac, Mapping) else {}
        runs = slac.get("runs")
        run_list = slac.get("run_list")
        listed = [run for run in run_list if isinstance(run, Mapping)] if isinstance(run_list, list) else []
        phases = summary.get("phases") or {}
        if not listed:
            seen = "SLAC" in phases or (isinstance(runs, int) and not isinstance(runs, bool) and runs > 0)
            if not seen:
                return []
            listed = [{"duration": slac.get("duration", phases.get("SLAC"))}]
        rows = []
        for number, run in enumerate(listed, start=1):
            row = empty_session_row()
            row.update(self._common(summary))
            for key in ("ev_mac", "evse_mac"):
                row[key] = run.get(key) or slac.get(key) or row[key]
            outcome = run.get("outcome") or slac.get("outcome") or {}
            row.update(kind="slac", session=number, start_time=run.get("start_time"),
                       first_frame=run.get("first_frame"), last_frame=run.get("last_frame"),
                       slac_s=run.get("duration"), end=run.get("end"), **_outcome(outcome))
            rows.append(row)
        return rows

    def _v2g_row(self, summary: Mapping[str, Any], session: Mapping[str, Any]) -> dict:
        row = empty_session_row()
        row.update(self._common(summary))
        connection = session.get("connection")
        phases = session.get("phases") or {}
        tls = session.get("tls")
        row.update(
            kind="v2g", session=connection, start_time=session.get("start_time"),
            first_frame=session.get("first_frame"), last_frame=session.get("last_frame"),
            evccid=_text_or_none(session.get("EVCCID")), evseid=_text_or_none(session.get("EVSEID")),
            session_id=_text_or_none(session.get("SessionID")), protocol=session.get("protocol"),
            protocol_assumed=session.get("protocol_assumed"),
            energy_transfer_mode=_text_or_none(session.get("energy_transfer_mode")),
            payment_option=_text_or_none(session.get("payment_option")),
            tls=tls is not None, tls_version=tls.get("version") if isinstance(tls, Mapping) else None,
            end=session.get("end"), **_outcome(session.get("outcome") or {}),
            sdp_s=(summary.get("phases") or {}).get("SDP"),
            power_peak_w=_range(session, "power", "max"),
            power_mean_w=_range(session, "power", "mean"),
            current_max_a=_range(session, "current", "max"), voltage_max_v=_range(session, "voltage", "max"),
            soc_start=_range(session, "soc", "first"), soc_end=_range(session, "soc", "last"),
            energy_wh=session.get("energy_wh"),
            messages=session.get("messages"), errors=session.get("errors"),
            sequence_violations=session.get("sequence_violations"),
            schema_violations=session.get("schema_violations"),
        )
        for phase, column in PHASE_COLUMNS.items():
            row[column] = phases.get(phase)
        limited = session.get("limited_by") or {}
        total = sum(limited.values())
        if total > 0:
            for who, column in LIMIT_COLUMNS.items():
                row[column] = limited.get(who, 0.0) / total
            row["limited_by_evse_share"] = sum(seconds for who, seconds in limited.items()
                                               if who.startswith("EVSE")) / total
        return row


SESSION_COLUMNS = (
    "file", "file_hash", "kind", "session", "start_time", "first_frame", "last_frame",
    "ev_mac", "evse_mac", "ev_vendor", "evse_vendor", "evccid", "evseid", "session_id",
    "protocol", "protocol_assumed", "energy_transfer_mode", "payment_option", "tls", "tls_version",
    "outcome", "cause", "cause_frame", "end",
    "slac_s", "sdp_s", *PHASE_COLUMNS.values(),
    "power_peak_w", "power_mean_w", "current_max_a", "voltage_max_v", "soc_start", "soc_end", "energy_wh",
    *LIMIT_COLUMNS.values(), "limited_by_evse_share",
    "messages", "errors", "sequence_violations", "schema_violations",
)


def empty_session_row() -> dict:
    return dict.fromkeys(SESSION_COLUMNS)


def file_event_row(file: str, file_hash: str | None, kind: str, name: str, detail: str) -> dict:
    """A row about the whole file: unreadable, cut off, or a decode that broke down."""
    return {"file": file, "file_hash": file_hash, "kind": kind, "name": name, "session": None, "frame": None,
            "timestamp": None, "time": None, "direction": None, "message": None, "detail": detail,
            "fields": None, "caused_by": None}


def _outcome(outcome: Mapping[str, Any]) -> dict:
    return {"outcome": outcome.get("result"), "cause": outcome.get("cause"), "cause_frame": outcome.get("frame")}


def _range(session: Mapping[str, Any], quantity: str, key: str) -> float | None:
    values = session.get(quantity)
    return values.get(key) if isinstance(values, Mapping) else None


def _text_or_none(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)
