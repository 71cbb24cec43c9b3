"""The batch row builders read the session model's newer keys (outcome, SLAC runs, vendors, verdicts)
when a summary has them, and leave the columns empty when it does not."""
from __future__ import annotations

from ccssniff.batch.rows import SESSION_COLUMNS, FileRows, find_elements, physical_columns

_SESSION = {
    "connection": 3, "protocol": "ISO 15118-2", "protocol_assumed": False, "EVCCID": "0a0b0c0d0e0f",
    "EVSEID": "DE*ABC*E1", "SessionID": "00112233", "energy_transfer_mode": "DC_extended",
    "payment_option": "ExternalPayment", "phases": {"cable check": 2.5, "charge loop": 10.0},
    "voltage": {"min": 0, "max": 400.0, "last": 390.0, "unit": "V"},
    "current": {"min": 0, "max": 120.0, "last": 0.0, "unit": "A"},
    "power": {"min": 0, "max": 48000.0, "last": 0.0, "unit": "W"},
    "soc": {"min": 20.0, "max": 31.0, "last": 31.0, "unit": "%"},
    "limited_by": {"EV request (below the EVSE's offer)": 2.0, "EVSE current limit": 6.0},
    "messages": 80, "errors": 1, "sequence_violations": 2, "tls": {"version": "TLS 1.2"}, "end": "TCP connection closed",
}
_NEWER = {
    "outcome": {"result": "failed", "cause": "isolation fault in cable check", "frame": 812},
    "first_frame": 40, "last_frame": 900, "start_time": 1_767_225_601.5,
}


def _summary(**extra):
    return {"frames": 1000, "homeplug_messages": 30, "phases": {"SLAC": 1.25, "SDP": 0.1},
            "sdp_security_requested": ["none"], "errors": 0, "sessions": [dict(_SESSION)], **extra}


def test_todays_summary_leaves_the_newer_columns_empty():
    rows = FileRows("a.pcapng", "h").session_rows(_summary())
    assert [r["kind"] for r in rows] == ["slac", "v2g"]
    slac, v2g = rows
    assert set(v2g) == set(SESSION_COLUMNS)
    assert slac["slac_s"] == 1.25 and slac["outcome"] is None
    assert (v2g["outcome"], v2g["cause"], v2g["start_time"], v2g["evse_vendor"]) == (None, None, None, None)
    assert v2g["cable_check_s"] == 2.5 and v2g["pre_charge_s"] is None and v2g["sdp_s"] == 0.1
    assert v2g["limited_by_evse_current_share"] == 0.75 and v2g["limited_by_evse_share"] == 0.75
    assert v2g["limited_by_ev_share"] == 0.25 and v2g["limited_by_evse_power_share"] == 0.0
    assert (v2g["tls"], v2g["tls_version"], v2g["power_peak_w"], v2g["soc_end"]) == (True, "TLS 1.2", 48000.0, 31.0)


def test_newer_summary_keys_fill_the_columns():
    session = {**_SESSION, **_NEWER}
    slac = {"outcome": {"result": "completed", "cause": None, "frame": None}, "evse_mac": "00:b0:52:00:00:02",
            "ev_mac": "00:01:87:00:00:01", "duration": 1.3,
            "runs": 2, "run_list": [{"duration": 0.9, "start_time": 1.0, "outcome": {"result": "failed", "cause": "timeout"}},
                     {"duration": 1.3, "start_time": 5.0}]}
    summary = _summary(sessions=[session], slac=slac, evse_vendor="Qualcomm Atheros", ev_vendor="Vertexcom",
                       verdicts=[{"kind": "sequence", "name": "response_timeout", "frame": 812, "text": "late",
                                  "caused_by": "isolation fault"}])
    rows = FileRows("a.pcapng", "h")
    slac_rows = [r for r in rows.session_rows(summary) if r["kind"] == "slac"]
    v2g = next(r for r in rows.session_rows(summary) if r["kind"] == "v2g")
    assert [(r["session"], r["slac_s"], r["outcome"], r["cause"]) for r in slac_rows] == \
        [(1, 0.9, "failed", "timeout"), (2, 1.3, "completed", None)]
    assert slac_rows[0]["evse_mac"] == "00:b0:52:00:00:02" and slac_rows[0]["evse_vendor"] == "Qualcomm Atheros"
    assert (v2g["outcome"], v2g["cause"], v2g["cause_frame"]) == ("failed", "isolation fault in cable check", 812)
    assert (v2g["first_frame"], v2g["last_frame"], v2g["start_time"]) == (40, 900, 1_767_225_601.5)
    assert (v2g["ev_vendor"], v2g["evse_vendor"]) == ("Vertexcom", "Qualcomm Atheros")
    [verdict] = rows.verdict_rows(summary)
    assert (verdict["kind"], verdict["name"], verdict["frame"], verdict["caused_by"]) == \
        ("verdict", "response_timeout", 812, "isolation fault")


def test_no_slac_seen_no_slac_row():
    summary = _summary(slac={"outcome": {"result": "incomplete"}, "runs": 0})
    summary["phases"] = {}
    assert [r["kind"] for r in FileRows("a", "h").session_rows(summary)] == ["v2g"]


def test_typed_columns_take_din_and_iso20_names():
    din = {"DC_EVStatus": {"EVRESSSOC": 55}, "EVTargetVoltage": {"Multiplier": 0, "Unit": "V", "Value": 400},
           "EVTargetCurrent": {"Multiplier": -1, "Unit": "A", "Value": 1255},
           "EVMaximumVoltageLimit": {"Multiplier": 1, "Unit": "V", "Value": 45}}
    iso20 = {"DisplayParameters": {"PresentSOC": 60},
             "Scheduled_DC_CLReqControlMode": {"EVTargetCurrent": {"Exponent": 0, "Value": 80},
                                               "EVMaximumChargePower": {"Exponent": 3, "Value": 50}}}
    columns = physical_columns(find_elements(din))
    assert (columns["ev_target_voltage"], columns["ev_target_current"], columns["ev_maximum_voltage"]) == \
        (400.0, 125.5, 450.0)
    assert find_elements(din)["EVRESSSOC"] == 55
    columns = physical_columns(find_elements(iso20))
    assert (columns["ev_target_current"], columns["ev_maximum_power"], columns["ev_target_voltage"]) == \
        (80.0, 50000.0, None)


def test_missing_extra_names_the_pip_command(monkeypatch, tmp_path):
    import importlib.util

    from click.testing import CliRunner

    from ccssniff.cli import cli

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "pyarrow" else real_find_spec(name, *rest))
    result = CliRunner().invoke(cli, ["batch", str(tmp_path), "-o", str(tmp_path / "out")], prog_name="ccssniff")
    assert result.exit_code == 2
    assert "pip install 'ccssniff[batch]'" in result.stderr and "pyarrow missing" in result.stderr
