"""The report's figures, drawn with matplotlib (Agg, no display) and returned as SVG text.

Every artist that shows data carries a ``gid`` starting with ``data-``, so the page (and its
tests) can tell a plot with data from an empty frame.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402  (after the backend is chosen)

from ccssniff.decode.measurements import (LIMITED_BY_CURRENT, LIMITED_BY_EV, LIMITED_BY_POWER,  # noqa: E402
                                     LIMITED_BY_VOLTAGE)
from ccssniff.report.collect import (METER, PRESENT_POWER, SOC, TARGET_POWER, PhaseSpan,  # noqa: E402
                                     SessionData, SlacData)

matplotlib.rcParams.update({
    "svg.fonttype": "none",       # text stays text: small, searchable, sharp when printed
    "svg.hashsalt": "ccssniff",   # the same input gives the same file
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
})

WIDTH = 11.5  # inches: fits 1280 px and an A4 page in landscape at 100 %
LIMITER_COLOURS = {LIMITED_BY_EV: "#4caf50", LIMITED_BY_CURRENT: "#ff9800",
                   LIMITED_BY_VOLTAGE: "#9c27b0", LIMITED_BY_POWER: "#f44336"}
OVER_LIMIT = "#d32f2f"
WITHIN_LIMIT = "#1976d2"
NO_LIMIT = "#78909c"
_LIMIT_WORDS = ("Maximum", "Max", "Limit")


@dataclass
class Plot:
    """One figure of the report: a file-friendly name, a caption and the figure itself."""

    name: str
    caption: str
    figure: Figure


def is_limit(name: str) -> bool:
    return any(word in name for word in _LIMIT_WORDS)


def svg_text(figure: Figure, prefix: str) -> str:
    """The figure as an inline <svg> element whose ids are unique on the page (``prefix``)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r'id="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', text)
    text = re.sub(r'url\(#([^)]+)\)', lambda m: f"url(#{prefix}-{m.group(1)})", text)
    text = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}-{m.group(1)}"', text)
    # Scale with the page instead of keeping the fixed size in points.
    text = re.sub(r'<svg([^>]*?) width="[^"]+" height="[^"]+"', r'<svg\1', text, count=1)
    return text


# --- phases ------------------------------------------------------------------------------------

@dataclass
class PhaseBar:
    phase: str
    span: PhaseSpan
    duration: float  # as the page states it (the decode summary's where it has this phase)
    limit: float | None
    limit_name: str | None

    @property
    def over_limit(self) -> bool:
        return self.limit is not None and self.duration > self.limit


def phases_plot(bars: Sequence[PhaseBar], origin: float, title: str) -> Plot:
    height = 0.9 + 0.32 * max(1, len(bars))
    figure = Figure(figsize=(WIDTH, height), layout="constrained")
    axes = figure.add_subplot()
    total = max((bar.span.last_time - origin for bar in bars), default=1.0) or 1.0
    minimum_width = total / 400  # a few-millisecond phase still shows
    for row, bar in enumerate(bars):
        colour = OVER_LIMIT if bar.over_limit else (WITHIN_LIMIT if bar.limit is not None else NO_LIMIT)
        start = bar.span.first_time - origin
        artist = axes.barh(row, max(bar.duration, minimum_width), left=start, color=colour, height=0.6)
        for patch in artist.patches:
            patch.set_gid(f"data-phase-{row}")
        label = f"{bar.duration:.3f} s"
        if bar.limit is not None:
            label += f"  (limit {bar.limit:g} s)"
        axes.text(start + max(bar.duration, minimum_width) + total * 0.005, row, label, va="center", fontsize=8)
        if bar.limit is not None and bar.limit < total * 3:
            axes.plot([start + bar.limit] * 2, [row - 0.4, row + 0.4], color=OVER_LIMIT, linewidth=1,
                      linestyle=":")
    axes.set_yticks(range(len(bars)), [bar.phase for bar in bars])
    axes.invert_yaxis()
    axes.set_xlim(0, total * 1.25)
    axes.set_xlabel("seconds since the first event of the trace")
    axes.set_title(title)
    return Plot("phases", "Phases against the standard's limits (red: over the limit; dotted: the limit)", figure)


# --- electrical values ----------------------------------------------------------------------------

_METER_PANEL = "meter"  # the meter counts up from its own zero: a panel of its own, not beside requests
_PANELS = (("V", "voltage (V)"), ("A", "current (A)"), ("W", "power (kW)"), ("Wh", "energy (kWh)"),
           (_METER_PANEL, "meter reading (kWh)"))
_SCALE = {"W": 1e-3, "Wh": 1e-3, "V": 1.0, "A": 1.0, _METER_PANEL: 1e-3}


def _panel(name: str, unit: str | None) -> str | None:
    return _METER_PANEL if name == METER else unit


def _shade(axes, bands: Iterable[list], origin: float, panel: int) -> None:
    for number, (start, end, limiter) in enumerate(bands):
        if end > start:
            patch = axes.axvspan(start - origin, end - origin, color=LIMITER_COLOURS.get(limiter, "#bbb"),
                                 alpha=0.15, linewidth=0)
            patch.set_gid(f"data-band-{panel}-{number}")


def values_plot(session: SessionData, origin: float, shares: dict[str, float], title: str) -> Plot | None:
    panels = [(unit, label) for unit, label in _PANELS
              if any(_panel(name, series.unit) == unit and len(series) for name, series in session.series.items()
                     if name != SOC)]
    if not panels:
        return None
    end = (session.last_time or origin) - origin
    figure = Figure(figsize=(WIDTH, 2.3 * len(panels) + 0.8), layout="constrained")
    axes_list = figure.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for panel, (axes, (unit, label)) in enumerate(zip(axes_list, panels)):
        scale = _SCALE[unit]
        _shade(axes, session.limiter_bands, origin, panel)
        for index, (name, series) in enumerate(sorted(session.series.items())):
            if _panel(name, series.unit) != unit or not len(series) or name == SOC:
                continue
            times = [time - origin for time in series.times]
            values = [value * scale for value in series.values]
            if is_limit(name) or name == METER:
                # A limit holds from when it was announced until the next one: steps to the end.
                times, values = times + [end], values + [values[-1]]
                (line,) = axes.step(times, values, where="post", linestyle="--" if is_limit(name) else "-",
                                    linewidth=1.1, label=name)
            else:
                style = ":" if "Target" in name or name == TARGET_POWER else "-"
                (line,) = axes.plot(times, values, linestyle=style, linewidth=1.4, label=_short(name),
                                    marker="." if len(times) < 3 else None)
            line.set_gid(f"data-{unit}-{index}")
        axes.set_ylabel(label)
        if unit == "W" and SOC in session.series and len(session.series[SOC]):
            soc = session.series[SOC]
            twin = axes.twinx()
            (line,) = twin.plot([time - origin for time in soc.times], soc.values, color="black",
                                linewidth=1, alpha=0.6, label="SOC (%)")
            line.set_gid("data-soc")
            twin.set_ylabel("SOC (%)")
            twin.grid(False)
            twin.legend(loc="lower right", fontsize=7)
        axes.legend(loc="upper left", fontsize=7, ncol=3, framealpha=0.8)
    if SOC in session.series and len(session.series[SOC]) and not any(unit == "W" for unit, _ in panels):
        axes = axes_list[-1].twinx()
        soc = session.series[SOC]
        (line,) = axes.plot([time - origin for time in soc.times], soc.values, color="black", linewidth=1,
                            alpha=0.6, label="SOC (%)")
        line.set_gid("data-soc")
        axes.set_ylabel("SOC (%)")
        axes.grid(False)
    axes_list[-1].set_xlabel("seconds since the first event of the trace")
    axes_list[0].set_title(title)
    if shares:
        from matplotlib.patches import Patch
        handles = [Patch(color=LIMITER_COLOURS.get(who, "#bbb"), alpha=0.4, label=f"{who}: {share:.0%}")
                   for who, share in shares.items()]
        figure.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8,
                      title="limiting side (share of charge-loop time)", title_fontsize=8)
    return Plot("values", "Electrical values over time; shaded: who limited the power", figure)


def _short(name: str) -> str:
    return name.split(" (")[0] if name in (PRESENT_POWER, TARGET_POWER) else name


# --- response times ------------------------------------------------------------------------------

def response_plot(session: SessionData, origin: float, title: str) -> Plot | None:
    if not session.response_times:
        return None
    figure = Figure(figsize=(WIDTH, 3.6), layout="constrained")
    axes = figure.add_subplot()
    colours = matplotlib.colormaps["tab20"]
    reach = max(((session.last_time or origin) - (session.first_time or origin)) * 0.01, 0.05)
    for index, (message, series) in enumerate(sorted(session.response_times.items())):
        colour = colours(index % 20)
        points = axes.scatter([time - origin for time in series.times], [value * 1000 for value in series.values],
                              s=8, color=colour, label=message)
        points.set_gid(f"data-rt-{index}")
        timeout = session.table.msg_timeout(message) if session.table is not None else None
        if timeout is not None and series.times:
            times = series.times  # the timeout drawn where the message was timed, a little wider
            axes.hlines(timeout * 1000, times[0] - origin - reach, times[-1] - origin + reach, colors=[colour],
                        linestyles="--", linewidth=1)
    axes.set_yscale("log")
    axes.set_ylabel("response time (ms, log)")
    axes.set_xlabel("seconds since the first event of the trace")
    axes.set_title(title)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    return Plot("response_times", "Response time of each request; dashed: that message's V2G_EVCC_Msg_Timeout",
                figure)


# --- SLAC ----------------------------------------------------------------------------------------

def attenuation_plot(slac: SlacData) -> Plot | None:
    if not slac.attenuation:
        return None
    count = len(slac.attenuation)
    figure = Figure(figsize=(WIDTH, 2.8), layout="constrained")
    axes_list = figure.subplots(1, count, sharey=True, squeeze=False)[0]
    for index, (axes, (mac, groups)) in enumerate(zip(axes_list, slac.attenuation.items())):
        bars = axes.bar(range(len(groups)), groups, color=WITHIN_LIMIT, width=0.8)
        for number, patch in enumerate(bars.patches):
            patch.set_gid(f"data-atten-{index}-{number}")
        average = sum(groups) / len(groups)
        axes.axhline(average, color=OVER_LIMIT, linewidth=1, linestyle="--", label=f"average {average:.1f} dB")
        axes.set_title(f"EVSE {mac}", fontsize=9)
        axes.set_xlabel("carrier group")
        axes.legend(loc="upper right", fontsize=7)
    axes_list[0].set_ylabel("attenuation (dB)")
    caption = "Attenuation the EVSE reported in CM_ATTEN_CHAR.IND, per carrier group"
    if count > 1:
        caption += f" ({count} EVSEs answered: cross-coupling, side by side)"
    return Plot("slac_attenuation", caption, figure)
