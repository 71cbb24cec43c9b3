"""The --summary report: one table per V2G session of a trace, from the session model."""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from ccssniff.decode.session import PHASES, TraceSession


def _number(value: float | None, unit: str | None) -> str:
    if value is None:
        return "-"
    return f"{value:.6g} {unit or ''}".strip()


def _range(values: dict[str, Any] | None) -> str:
    if values is None:
        return "-"
    unit = values["unit"]
    return (f"min {_number(values['min'], unit)}, max {_number(values['max'], unit)}, "
            f"last {_number(values['last'], unit)}")


def render_summary(console: Console, trace: TraceSession, title: str) -> None:
    summary = trace.to_dict()
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("item", style="bold")
    table.add_column("value")
    table.add_row("frames", str(summary["frames"]))
    table.add_row("HomePlug messages", str(summary["homeplug_messages"]))
    for phase in ("SLAC", "SDP"):
        if phase in summary["phases"]:
            table.add_row(f"{phase} duration", f"{summary['phases'][phase]:.3f} s")
    if summary["sdp_security_requested"]:
        table.add_row("SDP security requested", ", ".join(map(str, summary["sdp_security_requested"])))
    if summary["errors"]:
        table.add_row("errors outside V2G", str(summary["errors"]), style="red")
    console.print(table)
    for session in summary["sessions"]:
        console.print(_session_table(session))


def _session_table(session: dict[str, Any]) -> Table:
    protocol = session["protocol"] or "unknown"
    if session["protocol_assumed"]:
        protocol += " (assumed: no handshake in the trace)"
    table = Table(title=f"V2G connection {session['connection']}", show_header=False, title_justify="left")
    table.add_column("item", style="bold")
    table.add_column("value")
    table.add_row("protocol", protocol)
    for key in ("EVCCID", "EVSEID", "SessionID"):
        table.add_row(key, str(session[key] or "-"))
    table.add_row("energy transfer mode", str(session["energy_transfer_mode"] or "-"))
    table.add_row("payment option", str(session["payment_option"] or "-"))
    for phase in PHASES:
        if phase in session["phases"]:
            table.add_row(f"{phase} duration", f"{session['phases'][phase]:.3f} s")
    for quantity in ("voltage", "current", "power", "soc"):
        table.add_row(quantity if quantity != "soc" else "SOC", _range(session[quantity]))
    loop_total = sum(session["limited_by"].values())
    for who, seconds in sorted(session["limited_by"].items(), key=lambda item: -item[1]):
        share = f" ({100 * seconds / loop_total:.0f} %)" if loop_total else ""
        table.add_row("power limited by", f"{who}: {seconds:.1f} s{share}")
    table.add_row("messages", str(session["messages"]))
    if session["tls"]:
        tls = session["tls"]
        table.add_row("TLS", f"{tls.get('version') or 'version not visible'}, {tls['record_count']} records, "
                             f"handshake EV {', '.join(tls['handshake_ev']) or '-'}; "
                             f"EVSE {', '.join(tls['handshake_evse']) or '-'}"
                             + _tls_decryption(tls), style="yellow")
    if session["errors"]:
        table.add_row("decode errors", str(session["errors"]), style="red")
    if session["sequence_violations"]:
        table.add_row("sequence violations", str(session["sequence_violations"]), style="red")
    if session["end"]:
        table.add_row("end", session["end"])
    return table


def _tls_decryption(tls: dict) -> str:
    if tls.get("keys") == "found":
        failed = tls.get("failed_records") or 0
        return f"; decrypted {tls.get('decrypted_records', 0)} records" + (f", {failed} failed" if failed else "")
    if tls.get("hint"):
        return f"; {tls['hint']}"
    return ""
