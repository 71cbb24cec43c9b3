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


_RESULT_STYLES = {"completed": "green", "failed": "bold red", "incomplete": "yellow"}


def _outcome(outcome: dict[str, Any] | None) -> tuple[str, str]:
    if outcome is None:
        return "-", ""
    text = outcome["result"]
    if outcome.get("cause"):
        text += f": {outcome['cause']}"
    return text, _RESULT_STYLES.get(outcome["result"], "")


def render_summary(console: Console, trace: TraceSession, title: str) -> None:
    summary = trace.to_dict()
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("item", style="bold")
    table.add_column("value")
    table.add_row("frames", str(summary["frames"]))
    table.add_row("HomePlug messages", str(summary["homeplug_messages"]))
    slac = summary["slac"]
    if slac is not None:
        text, style = _outcome(slac["outcome"])
        table.add_row("SLAC", text, style=style)
        if slac["duration"] is not None:
            table.add_row("SLAC duration", f"{slac['duration']:.3f} s ({slac['runs']} run(s))")
        for role in ("ev", "evse"):
            if slac.get(f"{role}_mac"):
                vendor = summary.get(f"{role}_vendor")
                table.add_row(f"{role.upper()} MAC", slac[f"{role}_mac"] + (f" ({vendor})" if vendor else ""))
        if len(slac["evse_macs"]) > 1:
            table.add_row("EVSEs answering", ", ".join(slac["evse_macs"]), style="yellow")
    sdp = summary["sdp"]
    if sdp is not None:
        text, style = _outcome(sdp["outcome"])
        table.add_row("SDP", text, style=style)
        if sdp["duration"] is not None:
            table.add_row("SDP duration", f"{sdp['duration']:.3f} s")
        table.add_row("SDP security", f"requested {', '.join(map(str, sdp['security_requested'])) or '-'}, "
                                      f"offered {sdp['security_offered'] or '-'}")
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
    text, style = _outcome(session["outcome"])
    if session["outcome"]["frame"] is not None and session["outcome"]["result"] != "completed":
        text += f" [frame {session['outcome']['frame']}]"
    table.add_row("outcome", text, style=style)
    table.add_row("end", session["end"])
    table.add_row("frames", f"{session['first_frame']}-{session['last_frame']}")
    table.add_row("protocol", protocol)
    for key in ("EVCCID", "EVSEID", "SessionID"):
        value = str(session[key] or "-")
        if key == "EVSEID" and session.get("EVSEID_text"):
            value = f"{session['EVSEID_text']} (hex {value})"
        table.add_row(key, value)
    table.add_row("energy transfer mode", str(session["energy_transfer_mode"] or "-"))
    table.add_row("payment option", str(session["payment_option"] or "-"))
    for phase in PHASES:
        if phase in session["phases"]:
            table.add_row(f"{phase} duration", f"{session['phases'][phase]:.3f} s")
    for quantity, label in _QUANTITIES:
        if session.get(quantity) is not None or quantity in ("voltage", "current", "power", "soc"):
            table.add_row(label, _range(session.get(quantity)))
    if session["energy_wh"] is not None:
        table.add_row("energy", f"{session['energy_wh']:.1f} Wh")
    if session["pre_charge"]:
        table.add_row("pre-charge", ", ".join(f"{k} {v:g}" for k, v in session["pre_charge"].items()))
    if session["welding_detection"]:
        welding = session["welding_detection"]
        table.add_row("welding detection", f"{welding.get('voltage_first', 0):g} V -> "
                                           f"{welding.get('voltage_last', 0):g} V in {welding.get('duration', 0):.2f} s")
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
    if session.get("signatures"):
        counts = session["signatures"]
        style = "red" if counts.get("invalid") else ("yellow" if counts.get("unverifiable") else "green")
        table.add_row("signatures", ", ".join(f"{n} {result}" for result, n in sorted(counts.items())), style=style)
    if session["schema_violations"]:
        table.add_row("schema violations", str(session["schema_violations"]), style="yellow")
    if session["sequence_violations"]:
        follow = session["follow_on_verdicts"]
        extra = f" ({follow} follow from the first cause)" if follow else ""
        table.add_row("sequence violations", f"{session['sequence_violations']}{extra}", style="red")
    return table


# (summary key, label); present values, targets, limits; shown when the session has them
_QUANTITIES = (("voltage", "voltage"), ("current", "current"), ("power", "power"), ("soc", "SOC"),
               ("ev_target_voltage", "EV target voltage"), ("ev_target_current", "EV target current"),
               ("evse_max_current", "EVSE max current"), ("evse_max_voltage", "EVSE max voltage"),
               ("evse_max_power", "EVSE max power"), ("evse_nominal_voltage", "EVSE nominal voltage"),
               ("ev_max_current", "EV max current"), ("ev_max_voltage", "EV max voltage"),
               ("ev_max_power", "EV max power"), ("meter_reading", "meter reading"))


def _tls_decryption(tls: dict) -> str:
    if tls.get("keys") == "found":
        failed = tls.get("failed_records") or 0
        return f"; decrypted {tls.get('decrypted_records', 0)} records" + (f", {failed} failed" if failed else "")
    if tls.get("hint"):
        return f"; {tls['hint']}"
    return ""
