"""``ccssniff report``: the page's content against the decode summary, and a real browser opening it.

The lab captures of captures/ and five captures of ../shared/captures (a DIN DC, an ISO-2 AC, an
ISO-20 DC, a failed session, a SLAC failure) are rendered once per module; every check reads
the page the way a reader would (its tables, facts and figures), never the report's internals.
"""
from __future__ import annotations

import math
import os
import re
import shutil
import signal
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from ccssniff.cli import cli
from ccssniff.report.analyse import analyse_file
from ccssniff.report.page import render_page
from ccssniff.report.series import Series

REPO = Path(__file__).resolve().parents[1]
LAB_CAPTURES = sorted((REPO / "captures").glob("*.pcapng"))
SHARED_CAPTURES = {
    "DIN DC": "dsv2gshark/DIN_DC_DS5366_Josev.pcapng",
    "ISO-2 AC": "everest/VW/id.4/iso_15118-2_AC/2023-04-14T09-52-17.069Z-3_config-ac-iso2/ethernet-traffic.dump",
    "ISO-20 DC": "josev/iso20.pcapng",
    "failed session": "everest/Opel/Mokka-E/din_spec_70121/2023-04-14T14-24-51.377Z-8_config-josev-dc-dinspec_failure/"
                      "ethernet-traffic.dump",
    "SLAC failure": "pyplc/2023-05-03_TaycanLeftside_slacFail.pcapng",
}
SESSION_SECTIONS = ("header", "phases", "values", "response-times", "verdicts")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0", "--hide-scrollbars")


# --- a small DOM, enough to read the page ----------------------------------------------------------

class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: "Node | None") -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node] = []
        self.text_parts: list[str] = []

    @property
    def classes(self) -> list[str]:
        return self.attrs.get("class", "").split()

    def text(self) -> str:
        return "".join(self.text_parts + [child.text() for child in self.children]).strip()

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list["Node"]:
        return [node for node in self.walk() if (tag is None or node.tag == tag)
                and (cls is None or cls in node.classes)
                and all(node.attrs.get(key.replace("_", "-")) == value for key, value in attrs.items())]

    def find(self, *args, **kwargs) -> "Node":
        found = self.find_all(*args, **kwargs)
        assert found, f"no {args} {kwargs} under <{self.tag} {self.attrs}>"
        return found[0]


class _Builder(HTMLParser):
    VOID = {"meta", "br", "img", "hr", "input", "link"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = self.current = Node("#root", {}, None)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {key: value or "" for key, value in attrs}, self.current)
        self.current.children.append(node)
        if tag not in self.VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, {key: value or "" for key, value in attrs}, self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        self.current.text_parts.append(data)


def parse(html: str) -> Node:
    builder = _Builder()
    builder.feed(html)
    return builder.root


def cell_values(row: Node) -> list[float]:
    return [float(cell.attrs["data-value"]) for cell in row.find_all("td") if "data-value" in cell.attrs]


def fact(section: Node, key: str) -> str:
    return section.find("dd", data_key=key).text()


# --- rendering ---------------------------------------------------------------------------------

def _render(paths: list[Path]):
    reports = [analyse_file(path) for path in paths]
    html, plots = render_page(reports)
    return reports, html, parse(html)


@pytest.fixture(scope="module")
def lab():
    return _render(LAB_CAPTURES)


@pytest.fixture(scope="module")
def shared(shared_dir):
    return _render([shared_dir / "captures" / name for name in SHARED_CAPTURES.values()])


@pytest.fixture(params=["lab", "shared"])
def rendered(request):
    return request.getfixturevalue(request.param)


# --- content -----------------------------------------------------------------------------------

def test_the_lab_captures_are_all_there():
    assert len(LAB_CAPTURES) == 5


def test_every_section_present(rendered):
    reports, html, page = rendered
    assert page.find_all("section", cls="comparison"), "several files get a comparison table first"
    first_trace = html.index('class="trace"')
    assert html.index('class="comparison"') < first_trace
    traces = page.find_all("section", cls="trace")
    assert [trace.attrs["data-file"] for trace in traces] == [report.path for report in reports]
    for report, trace in zip(reports, traces):
        assert trace.find_all("section", cls="trace-header")
        assert trace.find_all("section", cls="slac")
        sessions = trace.find_all("section", cls="session")
        assert len(sessions) == len(report.summary["sessions"])
        for section in sessions:
            for name in SESSION_SECTIONS:
                assert section.find_all("section", cls=name), f"{report.path}: no {name} section"
        if not sessions:
            assert trace.find_all("section", cls="phases") and trace.find_all("section", cls="verdicts")


def test_comparison_rows_equal_the_summary(rendered):
    reports, html, page = rendered
    rows = page.find("section", cls="comparison").find("tbody").find_all("tr")
    expected = [(report, entry) for report in reports for entry in (report.summary["sessions"] or [None])]
    assert len(rows) == len(expected)
    for row, (report, entry) in zip(rows, expected):
        cells = row.find_all("td")
        assert cells[0].text() == Path(report.path).name
        if entry is None:
            assert cells[4].text() == "no V2G session"
            continue
        assert cells[4].text() == (entry["protocol"] or "")
        for cell, value in ((cells[6], entry["phases"].get("cable check")), (cells[7], entry["phases"].get("pre-charge")),
                            (cells[8], None if entry["power"] is None else entry["power"]["max"] / 1000)):
            if value is None:
                assert "data-value" not in cell.attrs
            else:
                assert float(cell.attrs["data-value"]) == pytest.approx(value, abs=1e-9)
        limited = entry["limited_by"]
        assert cells[9].text() == (max(limited, key=limited.get) if limited else "")
        outcome = entry.get("outcome")
        assert cells[5].text() == (outcome["result"] if isinstance(outcome, dict) else "not stated by the decoder")


def test_session_numbers_equal_the_summary(rendered):
    reports, html, page = rendered
    for report, trace in zip(reports, page.find_all("section", cls="trace")):
        summary = report.summary
        for entry, section in zip(summary["sessions"], trace.find_all("section", cls="session")):
            assert int(section.attrs["data-connection"]) == entry["connection"]
            header = section.find("section", cls="header")
            for key in ("EVCCID", "EVSEID", "SessionID", "energy_transfer_mode", "payment_option", "end"):
                assert fact(header, key) == ("–" if entry.get(key) is None else str(entry[key])), key
            assert fact(header, "protocol").startswith(entry["protocol"] or "unknown")
            assert fact(header, "messages") == str(entry["messages"])
            outcome = entry.get("outcome")
            if isinstance(outcome, dict):  # the decoder's outcome, once it states one
                assert fact(header, "outcome.result") == outcome["result"]
                assert fact(header, "outcome.cause") == (outcome["cause"] or "–")
            for key in ("evse_vendor", "ev_vendor"):
                assert fact(header, key) == (summary.get(key) or "–")
            # phases: every phase the summary names has the same duration on the page
            phase_rows = {row.attrs["data-phase"]: row for row in section.find("table", cls="phase-table")
                          .find_all("tr") if "data-phase" in row.attrs}
            for phase, seconds in {**summary["phases"], **entry["phases"]}.items():
                if phase in phase_rows:
                    assert cell_values(phase_rows[phase])[1] == pytest.approx(seconds, abs=1e-9), phase
            for phase, (first, last) in (entry.get("phase_frames") or {}).items():
                assert phase_rows[phase].find_all("td")[-1].text() == f"{first}–{last}", phase
            assert set(entry["phases"]) <= set(phase_rows), "every phase of the summary is on the page"
            # who limited the power: seconds and shares
            limited = entry["limited_by"]
            limiter_rows = section.find("section", cls="values").find_all("tr", cls=None)
            limiter_rows = {row.attrs["data-limiter"]: row for row in limiter_rows if "data-limiter" in row.attrs}
            assert set(limiter_rows) == set(limited)
            total = sum(limited.values())
            values_svg = section.find("section", cls="values")
            bands = [node for node in values_svg.walk() if re.match(r"f\d+-data-band-", node.attrs.get("id", ""))]
            assert bool(bands) == any(seconds > 0 for seconds in limited.values())  # the shaded limiting side
            for who, seconds in limited.items():
                shown_seconds, shown_share = cell_values(limiter_rows[who])
                assert shown_seconds == pytest.approx(seconds, abs=1e-9)
                assert shown_share == pytest.approx(100 * seconds / total)
            # measured ranges: every one the summary has, none it has not
            measured = {key: value for key, value in entry.items()
                        if isinstance(value, dict) and {"min", "max", "last"} <= set(value)}
            assert {"voltage", "current", "power", "soc"} & set(entry)
            rows = {row.attrs["data-key"]: row for row in section.find("section", cls="values").find_all("tr")
                    if "data-key" in row.attrs}
            assert set(rows) == set(measured)
            for key, value in measured.items():
                assert cell_values(rows[key]) == pytest.approx([value["min"], value["max"], value["last"]])


def test_page_has_no_nan_and_needs_no_network(rendered):
    reports, html, page = rendered
    without_script = re.sub(r"<script>.*?</script>", "", html, flags=re.S)
    assert not re.search(r"\b(nan|NaN|inf|Infinity|None)\b", without_script)
    for node in page.walk():
        for attribute in ("data-value",):
            if attribute in node.attrs:
                assert math.isfinite(float(node.attrs[attribute]))
    # nothing to fetch: no external scripts, styles, images or fonts
    assert not re.search(r"<(script|img|link|iframe)[^>]+(src|href)=", html)
    assert not re.search(r"url\((https?:)?//", html)
    assert "@import" not in html


def test_every_plot_has_data(rendered):
    reports, html, page = rendered
    figures = re.findall(r'<figure class="plot" data-plot="([^"]+)">(<svg.*?</svg>)', html, flags=re.S)
    assert len(figures) >= len(reports)
    names = {name for name, _ in figures}
    if any(report.sessions for report in reports):
        assert {"phases", "values", "response_times"} <= names
    for name, svg in figures:
        ids = re.findall(r' id="([^"]+)"', svg)
        assert len(ids) == len(set(ids)), f"{name}: ids repeat"
        groups = re.findall(r'<g id="f\d+-data-[^"]*">(.*?)</g>', svg, flags=re.S)
        drawn = [group for group in groups if re.search(r'<path d="M [-\d.]+ [-\d.]+\s+(L|z)', group)
                 or "<use " in group]
        assert drawn, f"{name}: an SVG without data paths"
        assert not re.search(r"\bnan\b", svg, flags=re.I)


def test_failed_and_slac_failure_captures_say_so(shared):
    reports, html, page = shared
    traces = page.find_all("section", cls="trace")
    slac_failure = traces[list(SHARED_CAPTURES).index("SLAC failure")]
    assert not slac_failure.find_all("section", cls="session")
    slac_fact = fact(slac_failure.find("section", cls="trace-header"), "slac")
    assert "no CM_SLAC_MATCH.CNF" in slac_fact or "fail" in slac_fact
    failed_index = list(SHARED_CAPTURES).index("failed session")
    failed = traces[failed_index].find_all("section", cls="session")
    assert failed
    entry = reports[failed_index].summary["sessions"][0]
    assert fact(failed[0].find("section", cls="header"), "end") == entry["end"]
    assert "reset" in entry["end"] or "RST" in entry["end"]  # the charger reset the connection mid-loop
    if isinstance(entry.get("outcome"), dict):
        assert fact(failed[0].find("section", cls="header"), "outcome.result") == entry["outcome"]["result"] == "failed"
    # Every sequence violation the decoder counted is listed with its frame, the first one as first cause.
    verdicts = failed[0].find("section", cls="verdicts")
    listed = [int(node.attrs["data-frame"]) for node in verdicts.find_all("span", cls="frame")]
    summary_verdicts = entry["verdicts"]
    assert entry["sequence_violations"] >= 1
    # the decoder's own verdicts, under the first cause it states
    assert set(listed) == {verdict["frame"] for verdict in summary_verdicts} | {entry["outcome"]["frame"]}
    assert listed[0] == entry["outcome"]["frame"]
    assert "first cause" in verdicts.find("li", cls="cause").text()
    # The late responses the decoder found are the ones the response-time section counts.
    late = failed[0].find("section", cls="response-times").find("span", data_key="late_responses")
    assert int(late.text()) >= 1 and "over" in late.classes


def test_cross_coupling_shows_every_evse():
    """Several EVSEs answering CM_SLAC_PARAM.REQ: one attenuation profile each, side by side."""
    from ccssniff.report.analyse import assemble
    from ccssniff.report.collect import TraceCollector
    from ccssniff.capture.reader import read_packets
    from ccssniff.decode.trace import decode_trace

    path = REPO / "captures" / "din_dc.pcapng"
    collector = TraceCollector(str(path))
    trace = decode_trace(read_packets(path), on_event=collector.on_event, on_packet=collector.on_packet)
    slac = collector.data.slac
    (mac, groups), = slac.attenuation.items()
    # A second charger on the same cable answers too (the lab has one; real car parks have more).
    other = "02:cc:ee:00:00:99"
    slac.responders.append(other)
    slac.attenuation[other] = [value + 20 for value in groups]
    report = assemble(str(path), trace.to_dict(), collector.data)
    html, plots = render_page([report])
    assert "2 EVSEs answered" in html
    attenuation = re.search(r'<figure class="plot" data-plot="slac_attenuation">(.*?)</figure>', html, re.S).group(1)
    assert mac in attenuation and other in attenuation
    assert len(set(re.findall(r'id="f\d+-data-atten-(\d+)-\d+"', attenuation))) == 2


def test_decoder_outcome_vendors_and_verdicts_are_shown():
    """The summary fields the decoder adds (outcome, vendors, verdicts with first causes) reach the page."""
    from ccssniff.capture.reader import read_packets
    from ccssniff.decode.trace import decode_trace
    from ccssniff.report.analyse import assemble
    from ccssniff.report.collect import TraceCollector

    path = REPO / "captures" / "din_dc.pcapng"
    collector = TraceCollector(str(path))
    summary = decode_trace(read_packets(path), on_event=collector.on_event, on_packet=collector.on_packet).to_dict()
    if "outcome" not in summary["sessions"][0]:  # until the decoder states them, as its contract says it will
        summary["sessions"][0]["outcome"] = {"result": "failed", "cause": "the EVSE stopped in the charge loop",
                                             "frame": 400}
        summary.update(evse_vendor="Qualcomm Atheros", ev_vendor="Vertexcom")
        summary["verdicts"] = [
            {"kind": "timing", "name": "response_timeout", "frame": 400, "text": "CurrentDemandRes late",
             "caused_by": None},
            {"kind": "sequence", "name": "unexpected_message", "frame": 402, "text": "PowerDeliveryReq early",
             "caused_by": 400},
            {"kind": "sequence", "name": "missing_response", "frame": 613, "text": "SessionStopReq unanswered",
             "caused_by": 400},
            {"kind": "slac", "name": "slow_match", "frame": 20, "text": "a SLAC verdict, before the session",
             "caused_by": None},
        ]
    html, plots = render_page([assemble(str(path), summary, collector.data)])
    page = parse(html)
    header = page.find("section", cls="session").find("section", cls="header")
    outcome = summary["sessions"][0]["outcome"]
    assert fact(header, "outcome.result") == outcome["result"]
    assert fact(header, "outcome.cause") == (outcome["cause"] or "–")
    assert fact(header, "evse_vendor") == (summary.get("evse_vendor") or "–")
    first, last = (int(number) for number in fact(header, "frames").split(" to "))
    verdicts = [verdict for verdict in summary.get("verdicts") or [] if first <= verdict["frame"] <= last]
    causes = page.find("section", cls="session").find("section", cls="verdicts").find_all("li", cls="cause")
    assert len(causes) == sum(1 for verdict in verdicts if verdict.get("caused_by") is None)
    listed = [int(span.attrs["data-frame"]) for cause in causes for span in cause.find_all("span", cls="frame")]
    assert sorted(listed) == sorted(verdict["frame"] for verdict in verdicts)  # each listed once, under a cause
    # Verdicts outside every session (SLAC, SDP) are listed once, for the trace.
    outside = sorted(verdict["frame"] for verdict in summary.get("verdicts") or []
                     if not first <= verdict["frame"] <= last)
    trace = page.find("section", cls="trace")
    trace_level = [section for section in trace.children if section.tag == "section" and "verdicts" in section.classes]
    assert sorted(int(span.attrs["data-frame"]) for section in trace_level
                  for span in section.find_all("span", cls="frame")) == outside
    assert not page.find_all("section", cls="comparison")  # one trace with one session: no comparison table


def test_series_keeps_extremes_within_capacity():
    series = Series("V", capacity=500)
    for index in range(100_000):
        value = math.sin(index / 300) * 10
        if index == 73_123:
            value = 999.0
        if index == 12_345:
            value = -555.0
        series.add(index * 0.1, value)
    assert len(series) < 500
    assert series.maximum == 999.0 and series.minimum == -555.0
    assert series.times == sorted(series.times)
    assert series.seen == 100_000


def test_series_thins_every_stretch_alike():
    """A long ramp keeps points all along: early stretches are not thinned more than late ones."""
    series = Series("W", capacity=400)
    for index in range(50_000):
        series.add(float(index), float(index))
    times = series.times
    assert times[0] == 0.0 and times[-1] == 49_999.0
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    assert max(gaps) <= 50_000 / 100  # at least a hundred points spread over the whole range
    assert 100 < len(series) <= 400


# --- the command -------------------------------------------------------------------------------

def test_command_writes_page_pdf_png_and_csv(tmp_path):
    capture = REPO / "captures" / "iso20_dc.pcapng"
    output = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", str(capture), "-o", str(output), "--pdf", str(tmp_path / "r.pdf"),
                                      "--png", str(tmp_path / "png"), "--csv", str(tmp_path / "csv")])
    assert result.exit_code == 0, result.output
    html = output.read_text()
    assert "iso20_dc.pcapng" in html and "ISO 15118-20" in html
    assert (tmp_path / "r.pdf").read_bytes()[:5] == b"%PDF-"
    pngs = sorted(path.name for path in (tmp_path / "png").iterdir())
    assert {"01_iso20_dc_session1_phases.png", "01_iso20_dc_session1_values.png",
            "01_iso20_dc_session1_response_times.png", "01_iso20_dc_slac_attenuation.png"} <= set(pngs)
    for name in pngs:
        assert (tmp_path / "png" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    phases = (tmp_path / "csv" / "phases.csv").read_text().splitlines()
    assert phases[0] == "file,session,phase,start_s,duration_s,limit_s,first_frame,last_frame"
    cable = next(line for line in phases if ",cable check," in line).split(",")
    assert cable[6] and float(cable[4]) == pytest.approx(analyse_file(capture).summary["sessions"][0]["phases"]["cable check"])
    values = (tmp_path / "csv" / "values.csv").read_text().splitlines()
    assert any(",EVSEPresentVoltage,V," in line for line in values)


def test_unusable_input_is_one_line_and_status_2(tmp_path):
    bad = tmp_path / "not_a_capture.pcapng"
    bad.write_bytes(b"this is not a capture file at all")
    result = CliRunner().invoke(cli, ["report", str(bad), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("error:")
    assert not (tmp_path / "r.html").exists()


def test_one_unreadable_file_among_several_still_gives_the_page(tmp_path):
    bad = tmp_path / "broken.pcap"
    bad.write_bytes(b"\xd4\xc3\xb2\xa1 cut")
    output = tmp_path / "r.html"
    result = CliRunner().invoke(cli, ["report", str(bad), str(REPO / "captures" / "iso2_ac.pcapng"), "-o", str(output)])
    assert result.exit_code == 2
    assert "broken.pcap" in result.output and "error:" in result.output
    html = output.read_text()
    assert "iso2_ac.pcapng" in html and "broken.pcap" not in html


# --- a real browser ----------------------------------------------------------------------------

def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("chromium is not installed (Debian package chromium, installed by scripts/test.sh)")
    return path


def _browse(page: Path, screenshot: Path, profile: Path, height: int = 2400) -> str:
    """Open ``page`` in headless Chromium, save a screenshot; return the console messages it logged."""
    profile.mkdir()
    command = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size=1280,{height}",
               f"--screenshot={screenshot}", page.as_uri()]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        _, stderr = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert screenshot.exists(), stderr[-2000:]
    return "\n".join(line for line in stderr.splitlines() if ":CONSOLE" in line)


def _ink(screenshot: Path) -> float:
    """Share of the screenshot's pixels in colour: plot lines, bars and bands (text is grey or black)."""
    from PIL import Image

    image = Image.open(screenshot).convert("RGB")
    red, green, blue = (band.load() for band in image.split())
    coloured = 0
    for y in range(0, image.height, 2):
        for x in range(0, image.width, 2):
            r, g, b = red[x, y], green[x, y], blue[x, y]
            if max(r, g, b) - min(r, g, b) > 40:
                coloured += 1
    return coloured / (((image.width + 1) // 2) * ((image.height + 1) // 2))


def test_console_check_sees_errors(tmp_path):
    """The check below can fail: a page with a script error shows up in Chromium's console log."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><p>x</p><script>console.error('report-check');"
                    "notDefined();</script></body></html>")
    console = _browse(page, tmp_path / "broken.png", tmp_path / "profile", height=400)
    assert "report-check" in console and "notDefined" in console


def test_browser_opens_report_without_console_errors(rendered, tmp_path):
    reports, html, page = rendered
    report = tmp_path / "report.html"
    report.write_text(html)
    screenshot = tmp_path / "report.png"  # kept under pytest's tmp dir as the test's artefact
    assert _browse(report, screenshot, tmp_path / "profile") == ""
    # The same page with the data taken out of its figures (same layout): the difference is the plots.
    no_data = tmp_path / "no_data.html"
    no_data.write_text(re.sub(r'<g id="f\d+-data-[^"]*">.*?</g>', "", html, flags=re.S))
    bare = tmp_path / "no_data.png"
    _browse(no_data, bare, tmp_path / "profile2")
    with_plots, without_plots = _ink(screenshot), _ink(bare)
    print(f"coloured share of the screenshot: {with_plots:.2%} with the plots' data, {without_plots:.2%} without")
    assert with_plots > 0.03, f"only {with_plots:.1%} of the screenshot shows plot colours"
    assert with_plots > without_plots + 0.01
