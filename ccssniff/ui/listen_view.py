"""The live view of ``ccssniff listen``: join steps, the AVLN, the modems, SLAC/SDP progress, the
latest values of the session and what the local modem hides (rich, stderr, terminals only)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ccssniff.decode.session import TraceSession


def _last(session: Any, name: str) -> str:
    values = getattr(session, name).to_dict()
    if values is None:
        return "-"
    return f"{values['last']:.6g} {values['unit'] or ''}".strip()


def render_live(state: Any, model: TraceSession, last_lines: list[str]) -> Group:
    table = Table(title=f"listening on {state.interface}", show_header=False, min_width=60, title_justify="left")
    table.add_column("item", style="bold")
    table.add_column("value")
    table.add_row("frames", f"{state.frames} ({state.written} written)")
    table.add_row("join", state.state + (" - " + state.steps[-1] if state.steps else ""))
    modem = state.local_modem
    table.add_row("local modem", f"{modem['mac']} {modem['firmware']}" if modem else "-")
    if state.nid:
        table.add_row("AVLN", f"NID {state.nid}  NMK {state.nmk}  from {state.key_source}")
    for member in state.members:
        table.add_row("member", f"{member['mac']} (host {member['host_mac']}) {member['firmware'] or ''} "
                                f"{member['vendor'] or ''}")
    if state.join_failure:
        table.add_row("join failed", Text(state.join_failure, style="red"))
    phases = ", ".join(f"{name} {span.duration:.2f} s" for name, span in model.phases.items())
    table.add_row("SLAC / SDP", phases or "-")
    if model.sessions:
        session = list(model.sessions.values())[-1]
        table.add_row("protocol", session.protocol or "-")
        table.add_row("V2G messages", str(session.messages))
        table.add_row("U / I / P / SOC", " / ".join(_last(session, name) for name in ("voltage", "current", "power", "soc")))
        if session.limited_by:
            table.add_row("limited by", ", ".join(f"{who} {seconds:.1f} s" for who, seconds in session.limited_by.items()))
    if state.activity is not None:
        activity = state.activity.to_dict()
        table.add_row("PHY activity", f"{activity['indications']} indications, {activity['unicast_frames']} unicast "
                                      f"frames, sources (TEI) {activity['frames_by_source_tei']}")
    if state.hidden:
        from ccssniff.capture.listen import HIDDEN_TEXT

        table.add_row("hidden", Text(HIDDEN_TEXT, style="yellow"))
    if state.record_error:
        table.add_row("recording", Text(state.record_error, style="red"))
    return Group(table, Text("\n".join(last_lines[-8:]), style="dim"))


def render_listen_summary(console: Any, listen: dict[str, Any]) -> None:
    table = Table(title="listen", show_header=False, title_justify="left")
    table.add_column("item", style="bold")
    table.add_column("value")
    table.add_row("frames", f"{listen['frames']} captured, {listen['frames_written']} written, "
                            f"{listen['dropped_by_kernel']} dropped by the kernel")
    table.add_row("join", f"{listen['join_state']}" + (f": {listen['join_failure']}" if listen["join_failure"] else ""))
    if listen["local_modem"]:
        table.add_row("local modem", f"{listen['local_modem']['mac']} {listen['local_modem']['firmware']}")
    if listen["nid"]:
        table.add_row("AVLN", f"NID {listen['nid']}  NMK {listen['nmk']}  from {listen['key_source']}")
    for member in listen["members"]:
        table.add_row("member", f"{member['mac']} (host {member['host_mac']}) {member['firmware'] or ''} "
                                f"{member['vendor'] or ''}")
    for mac, counts in listen["stations"].items():
        table.add_row(f"from {mac}", ", ".join(f"{kind} {count}" for kind, count in counts.items()))
    if "activity" in listen:
        activity = listen["activity"]
        table.add_row("PHY activity", f"{activity['indications']} VS_SNIFFER.IND, {activity['unicast_frames']} "
                                      f"unicast frames {activity['unicast_by_tei']}, beacons {activity['beacons_by_nid']}")
    if listen["unicast_hidden"]:
        table.add_row("hidden", Text(listen["unicast_hidden_text"], style="yellow"))
    if listen.get("record_error"):
        table.add_row("recording", Text(listen["record_error"], style="red"))
    console.print(table)
