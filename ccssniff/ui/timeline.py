"""The default output: a rich timeline, one line per event, problems highlighted."""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from ccssniff.decode import events as ev
from ccssniff.decode.body import content_of
from ccssniff.decode.events import Event
from ccssniff.homeplug.keys import NetworkKey, render_key
from ccssniff.ui.values import key_values

_STYLES = {ev.HOMEPLUG: "cyan", ev.NEIGHBOR: "dim", ev.SDP: "magenta", ev.CONNECTION: "blue",
           ev.SCHEMA: "bold blue", ev.TLS: "yellow", ev.SEQUENCE: "bold red", ev.ERROR: "bold red"}
_ARROWS = {ev.EV_TO_EVSE: "EV -> EVSE", ev.EVSE_TO_EV: "EVSE -> EV"}
_HEX_SHOWN = 64  # bytes of an undecodable payload shown on the line


def _value_text(value: Any, show_key: bool = False) -> str:
    if isinstance(value, NetworkKey):
        return render_key(value, show_key)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value_text(v, show_key)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_value_text(v, show_key) for v in value) + "]"
    return str(value)


def describe(event: Event, show_key: bool = False) -> str:
    """The event's values as one line of text (without time, direction and name); network keys
    masked unless ``show_key``."""
    if event.kind == ev.V2G and event.message is not None:
        parts = [f"{name}={text}" for name, text in key_values(event.message)]
        if "warnings" in event.fields:
            parts.append("warnings: " + "; ".join(event.fields["warnings"]))
        if "signature" in event.fields:
            verdict = event.fields["signature"]
            problems = [r["digest"] for r in verdict["references"] if r["digest"] != "valid"]
            if verdict["signature"] != "valid":
                problems.append(verdict["signature"])
            parts.append(f"signature {verdict['result']}" + (f" ({'; '.join(problems)})" if problems else ""))
        if "certificates" in event.fields:
            parts.append("certificates: " + ", ".join(f"{c['role']} {c.get('subject', c.get('error'))}"
                                                      for c in event.fields["certificates"]))
        if "schema_violations" in event.fields:
            parts.append("schema violations: " + "; ".join(event.fields["schema_violations"]))
        return "  ".join(parts)
    if event.kind == ev.SEQUENCE:
        return event.fields.get("detail", "")
    parts = [f"{name}={_value_text(value, show_key)}" for name, value in event.fields.items()]
    if event.kind == ev.ERROR and event.payload:
        shown = event.payload[:_HEX_SHOWN].hex()
        parts.append(f"hex={shown}{'...' if len(event.payload) > _HEX_SHOWN else ''} ({len(event.payload)} bytes)")
    return "  ".join(parts)


class TimelineWriter:
    def __init__(self, console: Console, with_payload: bool = False, show_key: bool = False) -> None:
        self._console = console
        self._with_payload = with_payload
        self._show_key = show_key

    def heading(self, text: str) -> None:
        self._console.rule(text)

    def event(self, event: Event, start: float) -> None:
        line = Text(no_wrap=False)
        line.append(f"{event.time - start:10.3f} ", style="dim")
        line.append(f"{_ARROWS.get(event.direction, ''):11}", style="green" if event.direction == ev.EV_TO_EVSE else "yellow")
        style = _STYLES.get(event.kind, "")
        # a message that breaks the schema (decoded as sent) is marked, its violations shown
        violated = "schema_violations" in event.fields
        if event.kind == ev.V2G:
            code = event.message is not None and _failed(event.message)
            style = "bold red" if code else "bold magenta" if violated else "bold"
        name = event.name if event.kind not in (ev.ERROR, ev.SEQUENCE) else f"{event.kind}: {event.name}"
        line.append(f"{name:30} ", style=style)
        line.append(describe(event, self._show_key), style="red" if event.is_problem else "magenta" if violated else "")
        if self._with_payload and event.payload is not None and event.kind != ev.ERROR:
            line.append(f"  hex={event.payload.hex()}", style="dim")
        self._console.print(line, soft_wrap=True)

    def outcomes(self, summary: dict) -> None:
        """After the timeline: how SLAC, SDP and each V2G connection ended, and why (the session model's)."""
        rows = [("SLAC", (summary.get("slac") or {}).get("outcome")), ("SDP", (summary.get("sdp") or {}).get("outcome"))]
        rows += [(f"V2G connection {s['connection']}", s["outcome"]) for s in summary["sessions"]]
        for label, outcome in rows:
            if outcome is None:
                continue
            line = Text(f"{label}: ", style="bold")
            line.append(outcome["result"], style=_OUTCOME_STYLES.get(outcome["result"], ""))
            if outcome["cause"]:
                line.append(f" - {outcome['cause']}")
            self._console.print(line, soft_wrap=True)


_OUTCOME_STYLES = {"completed": "green", "failed": "bold red", "incomplete": "yellow"}


def _failed(message: Any) -> bool:
    code = content_of(message).get("ResponseCode")
    return isinstance(code, str) and code.startswith("FAILED")
