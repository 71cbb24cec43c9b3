"""Outcomes and first causes of the session model, on crafted sessions and on ../shared/captures.

The crafted sessions start from a lab capture's events (what our stacks really sent) and change
one thing: a response code, a SessionID, where the capture ends, how the connection ends. The
session model is sans-IO, so events go straight into it.
"""
from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import pytest

from ccssniff.capture.pcapng import PcapngWriter
from ccssniff.capture.reader import read_packets
from ccssniff.decode import events as ev
from ccssniff.decode.body import content_of, header_of
from ccssniff.decode.events import Event
from ccssniff.decode.session import TraceSession
from ccssniff.decode.trace import decode_trace

CAPTURES = Path(__file__).resolve().parent.parent / "captures"


def lab_events(name: str) -> list[Event]:
    events: list[Event] = []
    decode_trace(read_packets(CAPTURES / name), on_event=lambda event, start: events.append(event))
    return events


def summarise(events: list[Event], capture_end: float | None = None) -> dict:
    trace = TraceSession()
    for event in events:
        trace.add(event)
    if capture_end is not None:
        trace.end = capture_end
    return trace.to_dict()


def index_of(events: list[Event], name: str, nth: int = 0) -> int:
    return [i for i, e in enumerate(events) if e.name == name][nth]


def with_content(event: Event, **changes) -> Event:
    """A copy of a V2G event whose message element has ``changes`` applied."""
    message = copy.deepcopy(event.message)
    content_of(message).update(changes)
    clone = copy.copy(event)
    clone.message = message
    return clone


def ended(events: list[Event], how: str, by: str | None = None, after: float = 0.05) -> list[Event]:
    last = events[-1]
    fields = {"by": by} if by else {}
    return events + [Event(ev.CONNECTION, last.time + after, last.frame + 1, how, connection=last.connection,
                           fields=fields)]


def only_v2g(events: list[Event]) -> list[Event]:
    return [e for e in events if e.connection is not None and e.kind != ev.CONNECTION]


@pytest.fixture(scope="module")
def din():
    return lab_events("din_dc.pcapng")


def test_lab_sessions_complete_with_phases_of_their_energy_transfer_mode():
    for name, mode, dc in (("din_dc.pcapng", "DC_extended", True), ("iso2_dc.pcapng", "DC_extended", True),
                           ("iso2_ac.pcapng", "AC_three_phase_core", False), ("iso20_dc.pcapng", "DC", True),
                           ("iso20_ac.pcapng", "AC", False)):
        summary = summarise(lab_events(name))
        assert summary["slac"]["outcome"] == {"result": "completed", "cause": None, "frame": None}
        assert summary["sdp"]["outcome"]["result"] == "completed"
        (session,) = summary["sessions"]
        assert session["outcome"]["result"] == "completed", name
        assert session["energy_transfer_mode"] == mode
        assert session["end"].startswith("SessionStop exchanged")
        phases = session["phases"]
        assert ("cable check" in phases) is dc and ("pre-charge" in phases) is dc, (name, phases)
        assert phases["charge loop"] > 25
        # SLAC ends with the match, not with the last HomePlug frame of the trace
        assert summary["slac"]["duration"] < 2
        if dc:
            assert session["voltage"]["last"] > 300 and session["current"]["last"] >= 0
            assert session["welding_detection"]["voltage_last"] < session["welding_detection"]["voltage_first"]
        else:
            offered = session["evse_max_current"] or session["evse_max_power"]
            wanted = session["ev_max_current"] or session["ev_max_power"]
            assert offered["max"] > 0 and wanted["max"] > 0
            assert session["energy_wh"] > 0


def test_last_voltage_comes_from_the_charge_loop_not_from_welding_detection(din):
    session = summarise(din)["sessions"][0]
    loop_voltages = [content_of(e.message)["EVSEPresentVoltage"] for e in din if e.name == "CurrentDemandRes"]
    last = loop_voltages[-1]
    assert session["voltage"]["last"] == pytest.approx(last["Value"] * 10 ** last["Multiplier"])


@pytest.mark.parametrize("code", ["FAILED", "FAILED_WrongChargeParameter", "FAILED_SequenceError",
                                  "FAILED_UnknownSession", "FAILED_PowerDeliveryNotApplied"])
def test_a_failed_response_code_is_the_first_cause(din, code):
    at = index_of(din, "ChargeParameterDiscoveryRes")
    events = only_v2g(din[:at]) + [with_content(din[at], ResponseCode=code)]
    session = summarise(ended(events, "TCP connection reset", "EVSE"))["sessions"][0]
    assert session["outcome"] == {"result": "failed", "frame": din[at].frame,
                                  "cause": f"EVSE answered ChargeParameterDiscoveryRes {code} at frame {din[at].frame}"}
    assert session["end"] == "RST from EVSE"


def test_a_foreign_session_id_is_the_cause_of_the_evses_refusal(din):
    at = index_of(din, "ServiceDiscoveryReq")
    request = copy.copy(din[at])
    request.message = copy.deepcopy(request.message)
    assigned = header_of(din[at].message)["SessionID"]
    header_of(request.message)["SessionID"] = bytes.fromhex("deadbeefdeadbeef")
    response = with_content(din[at + 1], ResponseCode="FAILED_UnknownSession")
    events = ended(only_v2g(din[:at]) + [request, response], "TCP connection reset", "EVSE")
    session = summarise(events)["sessions"][0]
    assert session["outcome"]["result"] == "failed"
    assert session["outcome"]["frame"] == request.frame
    assert session["outcome"]["cause"].startswith(
        f"EV used SessionID deadbeefdeadbeef, EVSE had assigned {assigned.hex()} at frame {request.frame}")
    assert "FAILED_UnknownSession" in session["outcome"]["cause"]


def test_follow_on_violations_are_grouped_under_the_first_cause(din):
    at = index_of(din, "CableCheckRes")
    events = only_v2g(din)
    cut = events.index(din[at])
    events[cut] = with_content(din[at], ResponseCode="FAILED")
    # The sequence check was run by the pipeline on the original; add the follow-ons a real
    # checker reports when the EV carries on after a FAILED response.
    follow = [Event(ev.SEQUENCE, e.time, e.frame, "after_end", connection=e.connection,
                    fields={"detail": f"{e.name} after the session failed"})
              for e in events[cut + 1:] if e.name.endswith("Req")]
    session = summarise(ended(events[:cut + 1] + follow, "TCP connection closed", "EV"))["sessions"][0]
    assert session["outcome"]["frame"] == din[at].frame
    assert session["follow_on_verdicts"] == len(follow)
    assert all(v["caused_by"] == din[at].frame for v in session["verdicts"] if v["kind"] == "sequence")


def test_a_capture_cut_mid_loop_is_incomplete_without_missing_response(tmp_path):
    packets = list(read_packets(CAPTURES / "din_dc.pcapng"))
    loop = [p.index for p in packets if p.index > 200][:1][0]
    cut = tmp_path / "cut.pcapng"
    with open(cut, "wb") as stream:
        writer = PcapngWriter(stream)
        for packet in packets[:loop]:
            writer.write(packet.data, packet.timestamp)
    events: list[Event] = []
    trace = decode_trace(read_packets(cut), on_event=lambda event, start: events.append(event))
    session = trace.to_dict()["sessions"][0]
    assert session["outcome"]["result"] == "incomplete"
    assert session["outcome"]["cause"].startswith("capture ended mid-session")
    assert session["end"] == "capture ended mid-session"
    assert not [e for e in events if e.kind == ev.SEQUENCE and e.name == "missing_response"]


def test_silence_longer_than_the_standard_allows_is_a_timeout(din):
    at = index_of(din, "CurrentDemandReq", 5)
    events = only_v2g(din[:at + 1])
    session = summarise(events, capture_end=din[at].time + 30)["sessions"][0]
    assert session["outcome"]["result"] == "failed"
    assert session["outcome"]["cause"].startswith("timeout: no CurrentDemandRes for 30.0 s after CurrentDemandReq")
    assert session["end"].startswith("timeout")
    # the same cut a moment after the request is only a capture that ended
    session = summarise(events, capture_end=din[at].time + 0.04)["sessions"][0]
    assert session["outcome"]["result"] == "incomplete"


def test_fin_without_session_stop_says_who_closed(din):
    at = index_of(din, "PreChargeRes", 2)
    session = summarise(ended(only_v2g(din[:at + 1]), "TCP connection closed", "EV"))["sessions"][0]
    assert session["outcome"]["result"] == "failed"
    assert session["outcome"]["cause"].startswith("EV closed the TCP connection (FIN)")
    assert session["end"] == "FIN from EV"


def _slac(name, frame, time, run_id, src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff"):
    return Event(ev.HOMEPLUG, time, frame, name, fields={"src": src, "dst": dst, "run_id": run_id})


def test_slac_without_confirmation_fails_with_the_number_of_requests():
    events = [_slac("CM_SLAC_PARAM.REQ", i + 1, i * 0.25, "aa:bb:cc:dd:ee:ff:00:11") for i in range(25)]
    slac = summarise(events, capture_end=10.0)["slac"]
    assert slac["outcome"] == {"result": "failed", "cause": "SLAC did not match: 25 CM_SLAC_PARAM.REQ, no CNF",
                               "frame": 1}


def test_slac_confirmation_with_a_foreign_run_id_fails():
    events = [_slac("CM_SLAC_PARAM.REQ", 1, 0.0, "11:11:11:11:11:11:11:11"),
              _slac("CM_SLAC_PARAM.CNF", 2, 0.05, "22:22:22:22:22:22:22:22", src="02:00:00:00:00:02",
                    dst="02:00:00:00:00:01")]
    slac = summarise(events, capture_end=5.0)["slac"]
    assert slac["outcome"]["result"] == "failed"
    assert slac["outcome"]["frame"] == 2
    assert "RunID 22:22:22:22:22:22:22:22" in slac["outcome"]["cause"]
    assert "11:11:11:11:11:11:11:11" in slac["outcome"]["cause"]


def test_tls_offered_to_an_ev_that_asked_for_none_is_the_cause(din):
    sdp_request = Event(ev.SDP, 0.0, 1, "SDP request", fields={"security": "none", "transport": "TCP"})
    sdp_response = Event(ev.SDP, 0.01, 2, "SDP response", fields={"security": "TLS", "transport": "TCP",
                                                                   "port": 15118})
    first = only_v2g(din)[:1]
    summary = summarise(ended([sdp_request, sdp_response] + first, "TCP connection reset", "EVSE"))
    assert summary["sdp"]["outcome"]["result"] == "failed"
    assert summary["sdp"]["outcome"]["frame"] == 2
    session = summary["sessions"][0]
    assert session["outcome"]["frame"] == 2
    assert session["outcome"]["cause"].startswith("EVSE offered TLS in its SDP response at frame 2")


# --- the same classes in the real captures of ../shared ----------------------------------------------


def decode_shared(shared_dir, name):
    path = shared_dir / "captures" / name
    if not path.exists():
        pytest.skip(f"{name} is not in ../shared/captures")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return decode_trace(read_packets(path)).to_dict()


def test_shared_sequence_error_shutdown_names_the_request(shared_dir):
    summary = decode_shared(shared_dir, "pyplc/2022-12-20_alpi_currentDemandSequenceErrorShutdown.pcapng")
    outcome = summary["sessions"][0]["outcome"]
    assert outcome["result"] == "failed"
    assert outcome["cause"].startswith("CurrentDemandReq is not allowed in state")
    assert "FAILED_SequenceError" in outcome["cause"]


def test_shared_unknown_session_names_both_session_ids(shared_dir):
    summary = decode_shared(shared_dir, "ccs32/2023-04-05_wt32_alpi_first_charge.pcapng")
    causes = [s["outcome"]["cause"] or "" for s in summary["sessions"]]
    assert any(c.startswith("EV used SessionID") and "EVSE had assigned" in c and "FAILED_UnknownSession" in c
               for c in causes), causes


def test_shared_cable_check_failed(shared_dir):
    summary = decode_shared(shared_dir, "pyplc/2023-04-19_westparkAlpi_pyPlc_lightbulb_1fail_1ok.pcapng")
    first = summary["sessions"][0]["outcome"]
    assert first["result"] == "failed" and first["cause"].startswith("EVSE answered CableCheckRes FAILED")


def test_shared_slac_run_id_mismatch(shared_dir):
    summary = decode_shared(shared_dir, "pyplc/2023-05-03_TaycanLeftside_slacFail.pcapng")
    assert summary["slac"]["outcome"]["result"] == "failed"
    assert "carries RunID" in summary["slac"]["outcome"]["cause"]
    assert summary["sessions"] == []


def test_shared_tls_offered_to_a_plain_ev(shared_dir):
    summary = decode_shared(shared_dir, "tux-evse/2024-03-28_iso15118-20_ac3ph_6_tls1.3.pcapng")
    assert summary["sdp"]["outcome"]["cause"].startswith("EVSE offered TLS")
    assert any((s["outcome"]["cause"] or "").startswith("EVSE offered TLS") for s in summary["sessions"])


def test_shared_sdp_without_response(shared_dir):
    summary = decode_shared(shared_dir, "pyplc/2022-11-17_Dehner_Alpitronic_until_SdpRequest.pcapng")
    assert summary["slac"]["outcome"]["result"] == "completed"
    assert summary["sdp"]["outcome"]["result"] in ("failed", "incomplete")


def test_shared_slac_duration_is_the_answered_attempt(shared_dir):
    summary = decode_shared(shared_dir, "ccs32/2023-04-05_wt32_alpi_first_charge.pcapng")
    run = summary["slac"]["run_list"][0]
    assert run["param_requests"] > 20  # the EV asked for a minute before the charger answered
    assert summary["slac"]["duration"] < 5


def test_summary_json_carries_outcome_objects(tmp_path):
    from click.testing import CliRunner

    from ccssniff.cli import cli
    result = CliRunner().invoke(cli, ["decode", str(CAPTURES / "iso2_dc.pcapng"), "--summary", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.splitlines()[-1])
    assert summary["slac"]["outcome"]["result"] == "completed"
    assert set(summary["sessions"][0]["outcome"]) == {"result", "cause", "frame"}


def test_shared_plug_and_charge_session_completes_with_its_signature_verified(shared_dir):
    summary = decode_shared(shared_dir, "dsv2gshark/ISO-2_DC_PnC_TLS_Contract_DS5366_RiseV2G.pcapng")
    (session,) = summary["sessions"]
    assert session["outcome"]["result"] == "completed" and session["protocol"] == "ISO 15118-2"
    assert session["signatures"] == {"valid": 1}
    assert not [v for v in session["verdicts"] if v["kind"] == "signature"]


def test_the_timeline_ends_with_each_outcome(shared_dir):
    from click.testing import CliRunner

    from ccssniff.cli import cli
    path = shared_dir / "captures" / "pyplc/2023-05-03_TaycanLeftside_slacFail.pcapng"
    result = CliRunner().invoke(cli, ["decode", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith("SLAC: failed - CM_SLAC_PARAM.CNF at frame 4 carries RunID")
    result = CliRunner().invoke(cli, ["decode", str(CAPTURES / "din_dc.pcapng")])
    assert result.output.splitlines()[-3:] == ["SLAC: completed", "SDP: completed", "V2G connection 1: completed"]
