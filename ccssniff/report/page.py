"""The report as one self-contained HTML page: inline SVG, inline CSS, no network, no JavaScript
needed (a few lines of it only make the comparison table sortable).

Numbers a test or a reader may check carry ``data-value`` with the unrounded figure beside
the rounded text; elements carry ``data-key`` with the summary field they come from.
"""
from __future__ import annotations

import datetime
from html import escape
from pathlib import Path
from typing import Any, Iterable

from ccssniff import __version__
from ccssniff.report.analyse import FileReport, SessionReport, trace_level_verdicts
from ccssniff.report.collect import SlacData, Verdict
from ccssniff.report.plots import (Plot, attenuation_plot, phases_plot, response_plot, svg_text,
                                   values_plot)

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1a1a1a;
       max-width: 1240px; margin: 0 auto; padding: 16px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 20px; border-bottom: 2px solid #1976d2; padding-bottom: 2px; }
h3 { font-size: 17px; margin-top: 28px; } h4 { font-size: 15px; margin: 18px 0 6px; }
figure { margin: 8px 0 16px; } figure svg { width: 100%; height: auto; display: block; }
figcaption { font-size: 12px; color: #555; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #eef3f8; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
dl.facts { display: grid; grid-template-columns: max-content 1fr max-content 1fr; gap: 2px 14px; margin: 8px 0; }
dl.facts dt { color: #555; } dl.facts dd { margin: 0; font-weight: 600; }
.outcome-completed { color: #2e7d32; } .outcome-failed { color: #c62828; } .outcome-incomplete { color: #ef6c00; }
.over { color: #c62828; font-weight: 600; } .note { color: #555; font-style: italic; }
ul.verdicts li { margin: 2px 0; } ul.verdicts ul { margin: 2px 0 6px; }
th.sortable { cursor: pointer; }
table.ladder { width: 100%; table-layout: fixed; font-size: 12px; }
table.ladder td, table.ladder th { border: none; border-left: 1px solid #bbb; padding: 1px 6px; }
table.ladder th:nth-child(-n+2), table.ladder td:nth-child(-n+2) { width: 70px; border-left: none; }
table.ladder td.arrow { border-bottom: 2px solid #1976d2; text-align: center; color: #0d47a1; white-space: nowrap;
                        overflow: hidden; text-overflow: ellipsis; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  section.session, section.trace { break-before: page; }
  figure, table, dl { break-inside: avoid; }
  th.sortable { cursor: auto; }
}
"""

# Sorting only: the page reads the same without it.
_SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (header, column) {
    header.classList.add("sortable");
    header.title = "sort";
    header.addEventListener("click", function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var ascending = header.getAttribute("data-order") !== "ascending";
      header.setAttribute("data-order", ascending ? "ascending" : "descending");
      function key(row) {
        var cell = row.cells[column], value = cell.getAttribute("data-value");
        var number = parseFloat(value !== null ? value : cell.textContent);
        return isNaN(number) ? cell.textContent.trim().toLowerCase() : number;
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (typeof x !== typeof y) { x = String(x); y = String(y); }
        return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


# The decode summary's measured quantities as the page names them (others: the key in words).
_RANGE_LABELS = {"voltage": "EVSE present voltage", "current": "EVSE present current",
                 "power": "power (present voltage x current)", "soc": "SOC"}


def _time(epoch: float | None) -> str:
    if epoch is None:
        return "unknown"
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _number(value: Any, digits: int = 3, unit: str = "") -> str:
    """A table cell with the figure rounded for reading and exact in data-value."""
    if value is None:
        return '<td class="num">&ndash;</td>'
    text = f"{value:,.{digits}f}" + (f" {unit}" if unit else "")
    return f'<td class="num" data-value="{value!r}">{escape(text)}</td>'


def _fact(label: str, value: Any, key: str | None = None) -> str:
    shown = "&ndash;" if value is None or value == "" else escape(str(value))
    attribute = f' data-key="{escape(key)}"' if key else ""
    return f"<dt>{escape(label)}</dt><dd{attribute}>{shown}</dd>"


def _outcome(outcome: Any) -> tuple[str, str, str]:
    """(result, cause, frame) as text; the decode summary's outcome where it gives one."""
    if not isinstance(outcome, dict):
        return "not stated by the decoder", "", ""
    frame = outcome.get("frame")
    return (str(outcome.get("result") or "unknown"), str(outcome.get("cause") or ""),
            "" if frame is None else str(frame))


def _figure(plot: Plot | None, prefix: str, missing: str) -> str:
    if plot is None:
        return f'<p class="note">{escape(missing)}</p>'
    svg = svg_text(plot.figure, prefix)
    return (f'<figure class="plot" data-plot="{escape(plot.name)}">{svg}'
            f"<figcaption>{escape(plot.caption)}</figcaption></figure>")


class PageBuilder:
    """Collects the figures it draws (for --png and --pdf) while it writes the page."""

    def __init__(self) -> None:
        self.plots: list[tuple[str, Plot]] = []  # (file-name stem, plot)
        self._ids = 0

    def _prefix(self) -> str:
        self._ids += 1
        return f"f{self._ids}"

    def _keep(self, stem: str, plot: Plot | None) -> Plot | None:
        if plot is not None:
            self.plots.append((stem, plot))
        return plot

    # --- the page ---------------------------------------------------------------------------

    def page(self, reports: list[FileReport]) -> str:
        parts = ['<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
                 '<meta name="viewport" content="width=device-width, initial-scale=1">',
                 f"<title>{escape(self._title(reports))}</title><style>{_STYLE}</style></head><body>",
                 f"<header><h1>{escape(self._title(reports))}</h1>"
                 f'<p class="note">ccssniff {escape(__version__)} &middot; {len(reports)} file(s) &middot; '
                 "times in seconds since each trace's first event, frame numbers as Wireshark shows them</p>"
                 "</header>"]
        rows = [(report, session) for report in reports for session in report.sessions]
        if len(reports) > 1 or len(rows) > 1:
            parts.append(self.comparison(reports))
        for number, report in enumerate(reports, 1):
            parts.append(self.trace(report, number))
        parts.append(f"<script>{_SORT_SCRIPT}</script></body></html>\n")
        return "".join(parts)

    @staticmethod
    def _title(reports: list[FileReport]) -> str:
        if len(reports) == 1:
            return f"Charging session report: {Path(reports[0].path).name}"
        return f"Charging session report: {len(reports)} traces"

    def comparison(self, reports: list[FileReport]) -> str:
        head = ("file", "session", "EVSE vendor", "EV vendor", "protocol", "outcome", "cable check (s)",
                "pre-charge (s)", "peak power (kW)", "limiting side")
        rows = []
        for report in reports:
            vendors = (report.summary.get("evse_vendor"), report.summary.get("ev_vendor"))
            if not report.sessions:
                slac = _outcome((report.summary.get("slac") or {}).get("outcome"))[0]
                rows.append(f"<tr><td>{escape(Path(report.path).name)}</td><td>&ndash;</td>"
                            f"<td>{escape(str(vendors[0] or ''))}</td><td>{escape(str(vendors[1] or ''))}</td>"
                            f"<td>no V2G session</td><td>SLAC: {escape(slac)}</td>"
                            + '<td class="num">&ndash;</td>' * 3 + "<td></td></tr>")
            for session in report.sessions:
                entry = session.summary
                phases = entry.get("phases") or {}
                power = (entry.get("power") or {}).get("max")
                limited = entry.get("limited_by") or {}
                limiter = max(limited, key=limited.get) if limited else ""
                result = _outcome(entry.get("outcome"))[0]
                rows.append(
                    f'<tr data-connection="{session.data.connection}"><td>{escape(Path(report.path).name)}</td>'
                    f'<td class="num">{session.data.connection}</td>'
                    f"<td>{escape(str(vendors[0] or ''))}</td><td>{escape(str(vendors[1] or ''))}</td>"
                    f"<td>{escape(str(entry.get('protocol') or ''))}</td><td>{escape(result)}</td>"
                    + _number(phases.get("cable check")) + _number(phases.get("pre-charge"))
                    + _number(None if power is None else power / 1000, 1)
                    + f"<td>{escape(limiter)}</td></tr>")
        header = "".join(f"<th>{escape(name)}</th>" for name in head)
        return (f'<section class="comparison" id="comparison"><h2>Comparison</h2>'
                f'<table class="sortable"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
                '<p class="note">Click a column heading to sort (needs JavaScript).</p></section>')

    def trace(self, report: FileReport, number: int) -> str:
        summary, data = report.summary, report.data
        stem = plot_stem(number, report.path)
        slac = summary.get("slac") or {}
        slac_result, slac_cause, slac_frame = _outcome(slac.get("outcome"))
        if slac.get("outcome") is None and data.slac.ladder:
            slac_result = "matched (CM_SLAC_MATCH.CNF seen)" if data.slac.matched else "no CM_SLAC_MATCH.CNF seen"
        facts = [
            _fact("file", report.path, "file"),
            _fact("frames", f"{summary.get('frames', 0)} (1 to {summary.get('frames', 0)})", "frames"),
            _fact("start", _time(data.start), "start_time"),
            _fact("duration", f"{(data.end or 0) - (data.start or 0):.3f} s" if data.start else None, "duration"),
            _fact("charger modem vendor", summary.get("evse_vendor"), "evse_vendor"),
            _fact("car modem vendor", summary.get("ev_vendor"), "ev_vendor"),
            _fact("EVSE MAC", summary.get("evse_mac") or (data.slac.responders[0] if data.slac.responders else None),
                  "evse_mac"),
            _fact("EV MAC", summary.get("ev_mac") or data.slac.ev_mac, "ev_mac"),
            _fact("SLAC", " ".join(x for x in (slac_result, slac_cause and f"({slac_cause})",
                                               slac_frame and f"frame {slac_frame}") if x) if data.slac.ladder
                  else "not in the trace", "slac"),
            _fact("SDP security requested", ", ".join(map(str, summary.get("sdp_security_requested") or [])) or None,
                  "sdp_security_requested"),
            _fact("V2G sessions", len(report.sessions), "sessions"),
            _fact("decode errors", summary.get("errors", 0), "errors"),
        ]
        parts = [f'<section class="trace" id="trace-{number}" data-file="{escape(report.path)}">',
                 f"<h2>{escape(Path(report.path).name)}</h2>",
                 f'<section class="header trace-header"><dl class="facts">{"".join(facts)}</dl></section>']
        if not report.sessions:
            parts.append(self.phases(report.trace_bars, report.origin, f"{stem}_trace", "Phases"))
        parts.append(self.slac(report, stem))
        if not report.sessions:
            parts.append('<p class="note">No V2G session in this trace: no values, response times or phases '
                         "after SDP to show.</p>")
            parts.append(self.verdicts([], [], [], report.data.trace_verdicts, summary.get("verdicts")))
        else:
            outside = trace_level_verdicts(summary, [session.data for session in report.sessions])
            if outside or report.data.trace_verdicts:
                parts.append(self.verdicts([], [], [], report.data.trace_verdicts, outside)
                             .replace("<h4>Verdicts</h4>", "<h4>Verdicts outside the V2G sessions</h4>", 1))
        for session in report.sessions:
            parts.append(self.session(report, session, stem))
        parts.append("</section>")
        return "".join(parts)

    def slac(self, report: FileReport, stem: str) -> str:
        slac = report.data.slac
        if not slac.ladder:
            return ('<section class="slac"><h3>SLAC</h3><p class="note">No SLAC messages in this trace '
                    "(captured behind the modem, or a stack without SLAC).</p></section>")
        rows = []
        for mac, groups in slac.attenuation.items():
            average = sum(groups) / len(groups) if groups else None
            rows.append(f"<tr><td>{escape(mac)}</td><td class=\"num\">{slac.attenuation_frames.get(mac, '')}</td>"
                        f"<td class=\"num\">{len(groups)}</td>{_number(average, 1, 'dB')}</tr>")
        table = ("<table><thead><tr><th>EVSE answering</th><th>frame (CM_ATTEN_CHAR.IND)</th><th>groups</th>"
                 f"<th>average attenuation</th></tr></thead><tbody>{''.join(rows)}</tbody></table>") if rows else ""
        cross = (f'<p class="over">{len(slac.responders)} EVSEs answered the EV\'s CM_SLAC_PARAM.REQ '
                 "(cross-coupling): their profiles side by side.</p>") if len(slac.responders) > 1 else ""
        attenuation = self._keep(f"{stem}_slac_attenuation", attenuation_plot(slac))
        return ('<section class="slac"><h3>SLAC</h3>' + cross + table
                + _figure(attenuation, self._prefix(), "No CM_ATTEN_CHAR.IND in this trace: no attenuation profile.")
                + _ladder(slac, report.origin)
                + "</section>")

    def session(self, report: FileReport, session: SessionReport, stem: str) -> str:
        entry, data = session.summary, session.data
        name = f"{stem}_session{data.connection}"
        result, cause, frame = _outcome(entry.get("outcome"))
        tls = entry.get("tls")
        tls_text = "no" if not tls else ("yes: " + ", ".join(f"{k} {v}" for k, v in tls.items()))
        start = entry.get("start_time") if entry.get("start_time") is not None else data.first_time
        first_frame = entry.get("first_frame") if entry.get("first_frame") is not None else data.first_frame
        last_frame = entry.get("last_frame") if entry.get("last_frame") is not None else data.last_frame
        duration = entry.get("duration") if entry.get("duration") is not None else \
            (data.last_time or 0) - (data.first_time or 0)
        energy = entry.get("energy_wh")
        facts = [
            _fact("outcome", result, "outcome.result"),
            _fact("first cause", cause or None, "outcome.cause"),
            _fact("cause frame", frame or None, "outcome.frame"),
            _fact("ended by", entry.get("end"), "end"),
            _fact("protocol", (entry.get("protocol") or "unknown") + (" (assumed)" if entry.get("protocol_assumed")
                                                                       else ""), "protocol"),
            _fact("energy transfer mode", entry.get("energy_transfer_mode"), "energy_transfer_mode"),
            _fact("EVCCID", entry.get("EVCCID"), "EVCCID"),
            _fact("EVSEID", entry.get("EVSEID"), "EVSEID"),
            _fact("EVSEID as text", entry.get("EVSEID_text"), "EVSEID_text"),
            _fact("SessionID", entry.get("SessionID"), "SessionID"),
            _fact("payment", entry.get("payment_option"), "payment_option"),
            _fact("charger modem vendor", report.summary.get("evse_vendor"), "evse_vendor"),
            _fact("car modem vendor", report.summary.get("ev_vendor"), "ev_vendor"),
            _fact("TLS", tls_text, "tls"),
            _fact("start", _time(start), "start_time"),
            _fact("duration", f"{duration:.3f} s", "duration"),
            _fact("frames", f"{first_frame} to {last_frame}", "frames"),
            _fact("V2G messages", entry.get("messages"), "messages"),
            _fact("peak power", _kilowatts((entry.get("power") or {}).get("max")), "power.max"),
            _fact("energy", None if energy is None else f"{energy / 1000:.3f} kWh ({entry.get('energy_source')})",
                  "energy_wh"),
        ]
        outcome_class = f"outcome-{escape(result)}" if result in ("completed", "failed", "incomplete") else ""
        parts = [f'<section class="session" id="{escape(name)}" data-connection="{data.connection}">',
                 f'<h3>Session {data.connection}: {escape(str(entry.get("protocol") or "unknown protocol"))} '
                 f'&middot; <span class="{outcome_class}">{escape(result)}</span></h3>',
                 f'<section class="header"><h4>Header</h4><dl class="facts">{"".join(facts)}</dl></section>']
        parts.append(self.phases(report.trace_bars + session.bars, report.origin, name,
                                 f"Phases of session {data.connection}"))
        parts.append(self.values(report, session, name))
        parts.append(self.response_times(report, session, name))
        first_frame = (entry.get("outcome") or {}).get("frame") if result == "failed" else None
        if "outcome" not in entry and session.verdict_groups:  # a decoder that states no outcome
            first_frame = session.verdict_groups[0][0].frame
        parts.append(self.verdicts(session.verdict_groups, data.schema_violations, data.tls_findings, [],
                                   None, data.dropped_verdicts, first_frame))
        parts.append("</section>")
        return "".join(parts)

    def phases(self, bars: list, origin: float, name: str, title: str) -> str:
        if not bars:
            return '<section class="phases"><h4>Phases</h4><p class="note">No phases in this trace.</p></section>'
        plot = self._keep(f"{name}_phases", phases_plot(bars, origin, title))
        rows = []
        for bar in bars:
            over = ' class="over"' if bar.over_limit else ""
            limit = _number(bar.limit, 1, "s")
            rows.append(f'<tr data-phase="{escape(bar.phase)}"><td{over}>{escape(bar.phase)}</td>'
                        f"{_number(bar.span.first_time - origin)}{_number(bar.duration)}{limit}"
                        f"<td>{escape(bar.limit_name or '')}</td>"
                        f'<td class="num">{bar.span.first_frame}&ndash;{bar.span.last_frame}</td></tr>')
        table = ("<table class=\"phase-table\"><thead><tr><th>phase</th><th>start (s)</th><th>duration (s)</th>"
                 "<th>limit</th><th>limit from</th><th>frames</th></tr></thead>"
                 f"<tbody>{''.join(rows)}</tbody></table>")
        return f'<section class="phases"><h4>Phases</h4>{_figure(plot, self._prefix(), "")}{table}</section>'

    def values(self, report: FileReport, session: SessionReport, name: str) -> str:
        entry = session.summary
        plot = self._keep(f"{name}_values", values_plot(session.data, report.origin, session.shares,
                                                        f"Values of session {session.data.connection}"))
        rows = []
        limited = entry.get("limited_by") or {}
        for who, seconds in limited.items():
            share = session.shares.get(who)
            rows.append(f'<tr data-limiter="{escape(who)}"><td>{escape(who)}</td>{_number(seconds)}'
                        f"{_number(None if share is None else share * 100, 1, '%')}</tr>")
        limiting = ("<table class=\"limiting\"><thead><tr><th>limiting side</th><th>time (s)</th><th>share</th></tr>"
                    f"</thead><tbody>{''.join(rows)}</tbody></table>") if rows else \
            '<p class="note">No charge-loop responses that say who limits (AC, or no charge loop).</p>'
        ranges = []
        for key, measured in entry.items():
            if isinstance(measured, dict) and {"min", "max", "last"} <= set(measured):
                label = _RANGE_LABELS.get(key, key.replace("_", " "))
                unit = measured.get("unit") or ""
                ranges.append(f'<tr data-key="{key}"><td>{escape(label)}</td>{_number(measured.get("min"), 1, unit)}'
                              f'{_number(measured.get("max"), 1, unit)}{_number(measured.get("last"), 1, unit)}</tr>')
        range_table = ("<table class=\"ranges\"><thead><tr><th>quantity</th><th>min</th><th>max</th><th>last</th>"
                       f"</tr></thead><tbody>{''.join(ranges)}</tbody></table>") if ranges else ""
        thinned = sum(1 for series in session.data.series.values() if series.seen > len(series))
        note = (f'<p class="note">{thinned} long series drawn thinned out (minimum and maximum of every '
                "few points kept).</p>") if thinned else ""
        return (f'<section class="values"><h4>Electrical values</h4>'
                f'{_figure(plot, self._prefix(), "No electrical values in this session.")}{note}'
                f"{limiting}{range_table}</section>")

    def response_times(self, report: FileReport, session: SessionReport, name: str) -> str:
        data = session.data
        plot = self._keep(f"{name}_response_times", response_plot(data, report.origin,
                                                                  f"Response times of session {data.connection}"))
        rows = []
        for entry in sorted(data.slowest, key=lambda item: -item.seconds):
            over = ' class="over"' if entry.timeout is not None and entry.seconds > entry.timeout else ""
            rows.append(f"<tr><td{over}>{escape(entry.message)}</td>{_number(entry.seconds * 1000, 1, 'ms')}"
                        f"{_number(None if entry.timeout is None else entry.timeout * 1000, 0, 'ms')}"
                        f"{_number(entry.time - report.origin)}<td class=\"num\">{entry.frame}</td></tr>")
        table = ("<table class=\"slowest\"><thead><tr><th>slowest responses</th><th>response time</th><th>timeout</th>"
                 "<th>at (s)</th><th>frame</th></tr></thead>" f"<tbody>{''.join(rows)}</tbody></table>") if rows else ""
        late = (f'<p><span data-key="late_responses" class="{"over" if data.late_responses else ""}">'
                f"{data.late_responses}</span> response(s) came later than their V2G_EVCC_Msg_Timeout.</p>")
        return (f'<section class="response-times"><h4>Response times</h4>'
                f'{_figure(plot, self._prefix(), "No request answered in this session.")}{late}{table}</section>')

    def verdicts(self, groups: list[tuple[Verdict, list[Verdict]]], schema: list[Verdict], tls: list[Verdict],
                 trace_errors: list[Verdict], summary_verdicts: Any, dropped: int = 0,
                 first_frame: int | None = None) -> str:
        parts = ['<section class="verdicts"><h4>Verdicts</h4>']
        if groups:
            items = []
            for cause, following in groups:
                children = "".join(f"<li>{_verdict(verdict)}</li>" for verdict in following)
                label = "first cause" if cause.frame == first_frame else "finding"
                items.append(f'<li class="cause"><strong>{label}:</strong> {_verdict(cause)}'
                             + (f"<ul>{children}</ul>" if children else "") + "</li>")
            parts.append(f'<ul class="verdicts">{"".join(items)}</ul>')
        elif isinstance(summary_verdicts, list) and summary_verdicts:
            parts.append('<ul class="verdicts">' + "".join(
                f"<li>{_verdict(Verdict(str(v.get('kind')), str(v.get('name')), int(v.get('frame') or 0), 0.0, str(v.get('text'))))}</li>"
                for v in summary_verdicts) + "</ul>")
        else:
            parts.append('<p class="note">No sequence or timing violations.</p>')
        if trace_errors:
            parts.append("<h4>Decode errors</h4><ul class=\"verdicts\">"
                         + "".join(f"<li>{_verdict(verdict)}</li>" for verdict in trace_errors) + "</ul>")
        parts.append("<h4>Schema violations</h4>")
        if schema:
            parts.append('<ul class="verdicts">' + "".join(f"<li>{_verdict(v)}</li>" for v in schema) + "</ul>")
        else:
            parts.append('<p class="note">No schema violations reported by the codec.</p>')
        if tls:
            parts.append("<h4>TLS</h4><ul class=\"verdicts\">"
                         + "".join(f"<li>{_verdict(v)}</li>" for v in tls) + "</ul>")
        if dropped:
            parts.append(f'<p class="note">{dropped} more findings not listed.</p>')
        parts.append("</section>")
        return "".join(parts)


def _ladder(slac: SlacData, origin: float) -> str:
    """The SLAC message ladder as a table: one column per station, an arrow per message."""
    lanes: list[str] = []
    for mac in ([slac.ev_mac] if slac.ev_mac else []) + slac.responders:
        if mac not in lanes:
            lanes.append(mac)
    for step in slac.ladder:
        for mac in (step.src, step.dst):
            if mac not in lanes and not mac.startswith("ff:ff") and len(lanes) < 6:
                lanes.append(mac)
    roles = {slac.ev_mac: "EV"} if slac.ev_mac else {}
    roles.update({mac: "EVSE" if len(slac.responders) == 1 else f"EVSE {n}"
                  for n, mac in enumerate(slac.responders, 1)})
    names = [f"{roles.get(mac, 'station')}<br>{escape(mac)}" for mac in lanes] + ["broadcast"]
    broadcast = len(lanes)
    rows = []
    for step in slac.ladder:
        source = lanes.index(step.src) if step.src in lanes else broadcast
        target = lanes.index(step.dst) if step.dst in lanes else broadcast
        if target == source:
            target = broadcast
        low, high = sorted((source, target))
        arrow = f"{escape(step.name)} &#9654;" if target > source else f"&#9664; {escape(step.name)}"
        title = f' title="{escape(step.detail)}"' if step.detail else ""
        cells = ["<td></td>"] * low + [f'<td class="arrow" colspan="{high - low + 1}"{title}>{arrow}</td>'] \
            + ["<td></td>"] * (len(names) - 1 - high)
        rows.append(f'<tr><td class="num">{step.time - origin:.3f}</td><td class="num">{step.frame}</td>'
                    f'{"".join(cells)}</tr>')
    head = "".join(f"<th>{name}</th>" for name in names)
    more = (f'<p class="note">The first {len(slac.ladder)} messages; {slac.ladder_dropped} more in the trace.</p>'
            if slac.ladder_dropped else "")
    return (f'<h4>SLAC ladder</h4><table class="ladder"><thead><tr><th>time (s)</th><th>frame</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>{more}')


def plot_stem(number: int, path: str) -> str:
    """File names of a trace's figures start with this (numbered: many traces share a name)."""
    return f"{number:02d}_{Path(path).stem}"


def _verdict(verdict: Verdict) -> str:
    return (f'<span class="frame" data-frame="{verdict.frame}">frame {verdict.frame}</span>: '
            f"<em>{escape(verdict.kind)}</em> {escape(verdict.name)} &ndash; {escape(verdict.text)}")


def _kilowatts(watts: Any) -> str | None:
    return None if watts is None else f"{watts / 1000:.1f} kW"


def render_page(reports: Iterable[FileReport]) -> tuple[str, list[tuple[str, Plot]]]:
    """The HTML page and the figures drawn for it (stem, plot)."""
    builder = PageBuilder()
    html = builder.page(list(reports))
    return html, builder.plots
