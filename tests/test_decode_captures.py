"""The decoder on the real and independent-stack captures of ../shared/captures."""
from __future__ import annotations

import collections
import json
import re
import subprocess
import warnings

import pytest

from ccssniff.capture.reader import read_packets
from ccssniff.decode import events as ev
from ccssniff.decode.pipeline import Pipeline
from ccssniff.decode.schema import decoder_available
from ccssniff.decode.session import TraceSession

needs_exi = pytest.mark.skipif(not decoder_available(), reason="openv2gx (the EXI decoder) is not importable")


def decode(path, **options):
    pipeline, trace, events = Pipeline(**options), TraceSession(), []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some everest dumps are cut off mid-packet
        for packet in read_packets(path):
            events += pipeline.feed(packet)
    events += pipeline.finish()
    for event in events:
        trace.add(event)
    trace.frames = pipeline.frames
    return events, trace


def readme_table(shared_dir):
    """file (relative to captures/) -> V2GTP/TCP frame count as the README lists it."""
    counts, folder = {}, None
    for line in (shared_dir / "captures" / "README.md").read_text().splitlines():
        heading = re.match(r"## (\S+)/", line)
        if heading:
            folder = heading.group(1)
        cells = [c.strip() for c in line.strip("|").split("|")]
        if folder and len(cells) == 6 and cells[4].split(" ")[0].isdigit():
            counts[f"{folder}/{cells[0]}"] = int(cells[4].split(" ")[0])
    return counts


def all_captures(shared_dir):
    return sorted(readme_table(shared_dir))


CHECKED = [  # every pyPLC capture with V2G, the independent stacks, and a spread of EVerest cars
    *[f"pyplc/{name}" for name in (
        "2022-11-25_v0.2_ABB_until_ChargeParamDiscovery.pcapng", "2022-12-13_compleo_powerdelivery230_no_load.pcapng",
        "2022-12-20_alpi_currentDemandSequenceErrorShutdown.pcapng",
        "2023-04-16_at_home_Ioniq_in_currentDemandLoop.pcapng",
        "2023-04-19_compleo_pyPlc_lightbulb_failedBadRegulation.pcapng",
        "2023-04-19_westparkAlpi_pyPlc_lightbulb_1fail_1ok.pcapng",
        "2023-04-24_atHome_Ioniq_without_and_with_60W_bulbs.pcapng",
        "2023-05-24_pyPlc_with_Ioniq93prcSoc.pcapng", "2024-06-11_Griffigroen_polestar2_stop_in_precharge.pcapng",
        "2025-01-21_listenMode_02_mac_spoofing_some_frames_visible.pcapng",
        "2026-02-03_pyPLC_FoccciCape_with_Ioniq_runs_10_minutes.pcap")],
    "josev/din.pcapng", "josev/iso2.pcapng", "josev/iso20.pcapng",
    "dsv2gshark/DIN_DC_DS5366_Josev.pcapng", "dsv2gshark/ISO-20_BPT_AC_DS5366_Josev.pcapng",
    "dsv2gshark/ISO-2_DC_DS5366.pcapng", "dsv2gshark/ISO-2_DC_multi_EVSE_SLAC_DS5366_Josev.pcapng",
    "tux-evse/abb-normal-din.pcap", "ccs32/2023-04-05_wt32_alpi_first_charge.pcapng",
    "everest/Audi/Q4/ac_iso2-1.dump", "everest/Opel/Ampera-E/2023-01-13-din_spec_70121/session/ampera_dc_din_1.dump",
    "everest/BYD/Atto3/2023-04-18T15-31-50.525Z-2_config-dc-iso2/ethernet-traffic.dump",
]


def tshark_v2gtp_frames(tshark, path):
    """(all frames whose TCP payload starts with a V2GTP header, those TCP did not retransmit)."""
    out = subprocess.run(
        [tshark, "-r", str(path), "-Y", "tcp.len >= 8 && tcp.payload[0:2] == 01:fe", "-T", "fields",
         "-e", "frame.number", "-e", "tcp.analysis.retransmission", "-e", "tcp.analysis.spurious_retransmission"],
        capture_output=True, text=True).stdout.splitlines()  # exit status 2 on a file cut off mid-packet
    fresh = [line for line in out if line.split("\t")[1:] in ([], ["", ""])]
    return len(out), len(fresh)


@pytest.mark.parametrize("name", CHECKED)
def test_v2gtp_messages_match_tshark_and_readme(shared_dir, tshark, name):
    path = shared_dir / "captures" / name
    frames, fresh = tshark_v2gtp_frames(tshark, path)
    assert frames == readme_table(shared_dir)[name]  # the README counts frames, retransmissions included
    events, _ = decode(path, decode_exi=False)
    assert sum(e.kind == ev.V2G for e in events) == fresh
    assert [e for e in events if e.kind == ev.ERROR] == []


def test_tls_sessions_are_detected_not_decoded(shared_dir):
    events, trace = decode(shared_dir / "captures/dsv2gshark/ISO-20_TLS13_DC_DS5366_Josev.pcapng")
    assert not [e for e in events if e.kind in (ev.V2G, ev.ERROR)]
    [session] = trace.to_dict()["sessions"]
    assert session["tls"]["version"] == "TLS 1.3"
    assert session["tls"]["handshake_ev"][0] == "ClientHello"
    assert session["tls"]["handshake_evse"][0] == "ServerHello"
    assert session["tls"]["record_count"] == 123  # the README's TLS frame count: one record each
    assert trace.sdp.requested_security == ["TLS"]


def josev_records(shared_dir, protocol):
    records = [json.loads(line) for line in (shared_dir / "vectors" / "sessions.jsonl").open()]
    return [r for r in records if r["protocol"] == protocol and r["transport"] == "TCP"]


def xml_text(record, element):
    match = re.search(rf"<(?:\w+:)?{element}>([^<]*)</", record["xml"])
    return match.group(1) if match else None


@needs_exi
@pytest.mark.parametrize("protocol, expected_name", [
    ("din", "DIN SPEC 70121"), ("iso2", "ISO 15118-2"), ("iso20", "ISO 15118-20")])
def test_josev_sessions_decode_message_for_message(shared_dir, protocol, expected_name):
    events, trace = decode(shared_dir / "captures" / "josev" / f"{protocol}.pcapng")
    records = josev_records(shared_dir, protocol)
    messages = [e for e in events if e.kind == ev.V2G]
    assert [e.name for e in messages] == [r["message"] for r in records]
    assert [e.payload.hex() for e in messages] == [r["payload_hex"] for r in records]
    # The EV sends every request, the EVSE every response (the vectors' own direction labels are
    # not usable: they call the first request SECC->EV).
    assert [e.direction for e in messages] == [
        ev.EV_TO_EVSE if r["message"].endswith("Req") else ev.EVSE_TO_EV for r in records]
    assert [f"{e.payload_type:#06x}" for e in messages] == [r["payload_type"] for r in records]
    assert not [e for e in events if e.is_problem]
    [session] = trace.to_dict()["sessions"]
    assert session["protocol"] == expected_name and not session["protocol_assumed"]
    setup_req = next(r for r in records if r["message"] == "SessionSetupReq")
    setup_res = next(r for r in records if r["message"] == "SessionSetupRes")
    assert session["EVCCID"].lower() == xml_text(setup_req, "EVCCID").lower()
    assert session["EVSEID"].lower() == xml_text(setup_res, "EVSEID").lower()
    assert session["SessionID"].lower() == xml_text(setup_res, "SessionID").lower()
    assert set(session["phases"]) == {"handshake", "setup", "authorization", "parameter discovery", "cable check",
                                      "pre-charge", "charge loop", "stop", "welding detection"}
    assert session["outcome"] == {"result": "completed", "cause": None, "frame": None}


def expected_protocol(name):
    """The protocol the README states for a capture (None where it does not say)."""
    folder, _, file = name.partition("/")
    if folder == "pyplc":
        return "DIN SPEC 70121"  # "DIN 70121 only"
    if folder == "josev":
        return {"din.pcapng": "DIN SPEC 70121", "iso2.pcapng": "ISO 15118-2", "iso20.pcapng": "ISO 15118-20"}[file]
    if folder == "dsv2gshark":
        for prefix, protocol in (("DIN_", "DIN SPEC 70121"), ("ISO-20_", "ISO 15118-20"), ("ISO-2_", "ISO 15118-2")):
            if file.startswith(prefix):
                return protocol
    return None  # EVerest folder names tell the charger's configuration, not what was negotiated


@needs_exi
def test_every_v2g_message_of_every_capture_decodes(shared_dir):
    names = collections.Counter()
    for name in all_captures(shared_dir):
        events, trace = decode(shared_dir / "captures" / name)
        errors = [(e.frame, e.fields) for e in events if e.kind == ev.ERROR]
        assert errors == [], name
        names.update(e.name for e in events if e.kind == ev.V2G)
        sessions = [s for s in trace.to_dict()["sessions"] if s["messages"]]
        protocol = expected_protocol(name)
        for session in sessions:
            # protocol None: the README does not say, or the EVSE refused every protocol offered
            if protocol is not None and session["protocol"] is not None:
                assert session["protocol"] == protocol, name
    # Every DIN / ISO 15118-2 DC session message family appears, and the charge loop dominates.
    for message in ("supportedAppProtocolReq", "supportedAppProtocolRes", "SessionSetupReq", "SessionSetupRes",
                    "CableCheckReq", "PreChargeReq", "PowerDeliveryReq", "CurrentDemandReq", "CurrentDemandRes",
                    "WeldingDetectionReq", "SessionStopReq", "ChargingStatusReq", "DC_ChargeLoopReq",
                    "AC_ChargeLoopReq"):
        assert names[message] > 0, message
    assert names["CurrentDemandReq"] > 0.3 * sum(names.values())


@needs_exi
def test_current_demand_sequence_error_is_reported(shared_dir):
    events, _ = decode(shared_dir / "captures/pyplc/2022-12-20_alpi_currentDemandSequenceErrorShutdown.pcapng")
    violations = [(e.name, e.fields["message"]) for e in events if e.kind == ev.SEQUENCE]
    assert ("unexpected_request", "CurrentDemandReq") in violations


@needs_exi
def test_summary_of_a_real_charge_says_who_limited_the_power(shared_dir):
    _, trace = decode(shared_dir / "captures/pyplc/2023-04-24_atHome_Ioniq_without_and_with_60W_bulbs.pcapng")
    sessions = [s for s in trace.to_dict()["sessions"] if s["phases"].get("charge loop", 0) > 60]
    assert sessions
    for session in sessions:
        assert session["protocol"] == "DIN SPEC 70121"
        loop = session["phases"]["charge loop"]
        assert sum(session["limited_by"].values()) == pytest.approx(loop, rel=0.05)
        assert session["voltage"]["max"] >= session["voltage"]["last"] >= session["voltage"]["min"]


@needs_exi
def test_forced_schema_is_used(shared_dir):
    events, _ = decode(shared_dir / "captures/josev/din.pcapng", schema="iso2")
    decoded = [e for e in events if e.kind in (ev.V2G, ev.ERROR) and e.connection]
    # DIN bytes through the ISO 15118-2 grammar: whatever comes out is labelled with the forced grammar.
    assert all(e.fields.get("grammar") in ("iso2", "appHandshake") for e in decoded)


@needs_exi
def test_mid_session_trace_assumes_a_schema(shared_dir):
    path = shared_dir / "captures/josev/iso2.pcapng"
    pipeline, events = Pipeline(), []
    for packet in read_packets(path):
        if packet.index > 20:  # drop the SYN, the handshake and the first messages
            events += pipeline.feed(packet)
    events += pipeline.finish()
    [note] = [e for e in events if e.kind == ev.SCHEMA]
    assert note.name == "schema assumed" and note.fields["protocol"] == "ISO 15118-2"
    assert [e for e in events if e.kind == ev.ERROR] == []
    assert sum(e.kind == ev.V2G for e in events) > 40
