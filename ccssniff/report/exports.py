"""The report's numbers and figures outside the page: CSV tables, PNG images, one PDF."""
from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Iterable

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from ccssniff.report.analyse import FileReport
from ccssniff.report.page import plot_stem
from ccssniff.report.plots import WIDTH, Plot


def _safe(stem: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)


def _write(path: Path, header: Iterable[str], rows: Iterable[Iterable]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_csv(reports: list[FileReport], directory: Path) -> list[Path]:
    """One CSV per table: comparison, phases, values, response times, limiting side, SLAC."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    comparison, phases, values, responses, limiting, ladder, attenuation = [], [], [], [], [], [], []
    for report in reports:
        origin = report.origin
        name = report.path
        for bar in report.trace_bars:
            phases.append((name, "", bar.phase, round(bar.span.first_time - origin, 6), bar.duration, bar.limit,
                           bar.span.first_frame, bar.span.last_frame))
        for step in report.data.slac.ladder:
            ladder.append((name, round(step.time - origin, 6), step.frame, step.name, step.src, step.dst))
        for mac, groups in report.data.slac.attenuation.items():
            attenuation.extend((name, mac, group, value) for group, value in enumerate(groups))
        for session in report.sessions:
            entry, data = session.summary, session.data
            connection = data.connection
            limited = entry.get("limited_by") or {}
            outcome = entry.get("outcome") if isinstance(entry.get("outcome"), dict) else {}
            comparison.append((name, connection, report.summary.get("evse_vendor"), report.summary.get("ev_vendor"),
                               entry.get("protocol"), outcome.get("result"), outcome.get("cause"),
                               (entry.get("phases") or {}).get("cable check"),
                               (entry.get("phases") or {}).get("pre-charge"),
                               (entry.get("power") or {}).get("max"),
                               max(limited, key=limited.get) if limited else None))
            for bar in session.bars:
                phases.append((name, connection, bar.phase, round(bar.span.first_time - origin, 6), bar.duration,
                               bar.limit, bar.span.first_frame, bar.span.last_frame))
            for series_name, series in data.series.items():
                values.extend((name, connection, series_name, series.unit, round(time - origin, 6), value)
                              for time, value in zip(series.times, series.values))
            for message, series in data.response_times.items():
                timeout = data.table.msg_timeout(message) if data.table is not None else None
                responses.extend((name, connection, message, round(time - origin, 6), round(seconds, 6), timeout)
                                 for time, seconds in zip(series.times, series.values))
            for who, seconds in limited.items():
                limiting.append((name, connection, who, seconds, session.shares.get(who)))
    written.append(_write(directory / "comparison.csv",
                          ("file", "session", "evse_vendor", "ev_vendor", "protocol", "outcome", "cause",
                           "cable_check_s", "pre_charge_s", "peak_power_w", "limiting_side"), comparison))
    written.append(_write(directory / "phases.csv", ("file", "session", "phase", "start_s", "duration_s",
                                                     "limit_s", "first_frame", "last_frame"), phases))
    written.append(_write(directory / "values.csv", ("file", "session", "quantity", "unit", "time_s", "value"),
                          values))
    written.append(_write(directory / "response_times.csv", ("file", "session", "message", "time_s",
                                                             "response_s", "timeout_s"), responses))
    written.append(_write(directory / "limiting_side.csv", ("file", "session", "limiting_side", "seconds",
                                                            "share"), limiting))
    written.append(_write(directory / "slac_ladder.csv", ("file", "time_s", "frame", "message", "src", "dst"),
                          ladder))
    written.append(_write(directory / "slac_attenuation.csv", ("file", "evse_mac", "group", "attenuation_db"),
                          attenuation))
    return written


def write_png(plots: list[tuple[str, Plot]], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, plot in plots:
        path = directory / f"{_safe(stem)}.png"
        plot.figure.savefig(path, format="png", dpi=110, bbox_inches="tight")
        written.append(path)
    return written


def _text_page(lines: list[str]) -> Figure:
    figure = Figure(figsize=(WIDTH, 8.0))
    figure.text(0.02, 0.98, "\n".join(lines), va="top", ha="left", family="monospace", fontsize=8)
    return figure


def write_pdf(reports: list[FileReport], plots: list[tuple[str, Plot]], path: Path) -> Path:
    """A page of facts per trace, then its figures, one per page."""
    with PdfPages(path) as pdf:
        for number, report in enumerate(reports, 1):
            stem = plot_stem(number, report.path) + "_"
            lines = [f"Charging session report: {report.path}", f"frames: {report.summary.get('frames')}", ""]
            for session in report.sessions:
                entry = session.summary
                outcome = entry.get("outcome") if isinstance(entry.get("outcome"), dict) else {}
                lines += [f"session {session.data.connection}: {entry.get('protocol')}",
                          f"  outcome: {outcome.get('result', 'not stated')}  cause: {outcome.get('cause') or '-'}",
                          f"  EVCCID {entry.get('EVCCID')}  EVSEID {entry.get('EVSEID')}",
                          f"  energy transfer mode: {entry.get('energy_transfer_mode')}",
                          f"  frames {session.data.first_frame} to {session.data.last_frame}"]
                for bar in session.bars:
                    limit = f" (limit {bar.limit:g} s)" if bar.limit is not None else ""
                    lines.append(f"    {bar.phase:<22}{bar.duration:10.3f} s{limit}{'  OVER' if bar.over_limit else ''}")
                for who, share in session.shares.items():
                    lines.append(f"    limited by {who}: {share:.0%}")
                for cause, following in session.verdict_groups:
                    lines.append(f"    first cause: frame {cause.frame} {cause.name} - {cause.text}")
                    lines += [f"      then frame {v.frame} {v.name} - {v.text}" for v in following[:20]]
                lines.append("")
            pdf.savefig(_text_page(lines[:90]))
            for figure_stem, plot in plots:
                if figure_stem.startswith(stem):
                    pdf.savefig(plot.figure, bbox_inches="tight")
    return path
