"""Interoperability with an independent stack: the PyPI package ``iso15118`` (SECC and EVCC).

Each test runs one full DC session over kernel IPv6/TCP between two network namespaces: our EVSE
against iso15118's EVCC, or our PEV against iso15118's SECC, for DIN SPEC 70121, ISO 15118-2 and
ISO 15118-20. The verdict comes from the recorded wire traffic, decoded by our pipeline: SDP,
the handshake choosing the protocol, every response OK, the charge loop reached, SessionStop
answered, nothing undecodable, no sequence violation by either side. Our side runs with
``--relaxed-timing`` (interop/session.py): iso15118's codec is slow, and waiting longer for it keeps
the verdict about the protocol. A combination that fails for a cause we have traced is marked
xfail with that cause (see README "Interoperability"); any other failure fails.
"""
from __future__ import annotations

import importlib.util
import re
import shutil

import pytest

from ccssniff.decode import events as ev
from ccssniff.decode.body import content_of
from ccssniff.emulate.netns import unavailable_reason
from interop.session import RELAXED_TIMING, Outcome, run_session

PROTOCOLS = ("din", "iso2", "iso20")
LOOP_REQUEST = {"din": "CurrentDemandReq", "iso2": "CurrentDemandReq", "iso20": "DC_ChargeLoopReq"}
# The handshake names the protocol as the decoder spells it.
PROTOCOL_NAME = {"din": "DIN SPEC 70121", "iso2": "ISO 15118-2", "iso20": "ISO 15118-20"}
# Timing rules that bind the peer, not us: the SECC answers within V2G_EVCC_Msg_Timeout; the EV
# sends its next request within the sequence timeout and ends its loops in time.
PEER_TIMING = {"evse": {"sequence_timeout", "loop_timeout"}, "pev": {"response_timeout"}}
MIN_LOOP_ROUNDS = 2


def _requirements() -> str | None:
    reason = unavailable_reason()
    if reason:
        return reason
    if shutil.which("java") is None:
        return "no Java runtime (Debian package default-jre-headless): iso15118's EXI codec runs on it"
    return None


pytestmark = pytest.mark.skipif(_requirements() is not None, reason=str(_requirements()))


@pytest.fixture(scope="module", autouse=True)
def iso15118_installed():
    assert importlib.util.find_spec("iso15118") is not None, \
        "the PyPI package iso15118 is missing: pip install -e '.[test]'"


def session_problems(outcome: Outcome, our_side: str, protocol: str) -> list[str]:
    """What keeps the recorded session from being a complete, clean DC session (empty: none)."""
    problems = []
    if outcome.returncode != 0:
        problems.append(f"our {our_side} exited with status {outcome.returncode}")
    events = outcome.events
    for event in events:
        if event.kind == ev.ERROR:
            problems.append(f"undecodable: {event.name} {event.fields}")
        elif event.kind == ev.SEQUENCE and event.name not in PEER_TIMING[our_side]:
            problems.append(f"sequence: {event.name} {event.fields.get('detail')}")
    if not any(event.kind == ev.SDP and event.name == "SDP response" for event in events):
        problems.append("no SDP response on the wire")
    handshakes = [event.fields for event in events if event.kind == ev.SCHEMA and event.name == "handshake"]
    if not handshakes or not str(handshakes[0]["ResponseCode"]).startswith("OK") \
            or handshakes[0]["protocol"] != PROTOCOL_NAME[protocol]:
        problems.append(f"handshake did not choose {PROTOCOL_NAME[protocol]}: {handshakes}")
    messages = [event for event in events if event.kind == ev.V2G]
    names = [event.name for event in messages]
    for event in messages:
        code = content_of(event.message).get("ResponseCode")
        if event.name.endswith("Res") and not str(code).startswith("OK"):
            problems.append(f"{event.name} answered {code}")
    loop_request = LOOP_REQUEST[protocol]
    loop_response = loop_request[:-3] + "Res"
    if names.count(loop_response) < MIN_LOOP_ROUNDS:
        problems.append(f"the charge loop did not run: {names.count(loop_request)} {loop_request}, "
                        f"{names.count(loop_response)} {loop_response}")
    if names[-2:] != ["SessionStopReq", "SessionStopRes"]:
        problems.append(f"the session did not end with SessionStop: last messages {names[-4:]}")
    return problems


def rejected_in_state(peer_log: str) -> str | None:
    """The state in which iso15118 refused our message by its own validation (it logs no detail)."""
    found = re.search(r"V2GMessageValidationError occurred while processing message\s+in state (\w+)", peer_log)
    return found.group(1) if found else None


def sent(outcome: Outcome, name: str) -> list:
    return [content_of(event.message) for event in outcome.events if event.kind == ev.V2G and event.name == name]


def start_without_power_profile(outcome: Outcome) -> bool:
    return any(request.get("ChargeProgress") == "Start" and "EVPowerProfile" not in request
               for request in sent(outcome, "PowerDeliveryReq"))


def known_cause(outcome: Outcome) -> str | None:
    """The traced reason of a failed combination, when the logs and the capture show it."""
    peer = outcome.peer_log
    if "does not match the mandatory" in peer:
        return ("ours: our EVSE announced in SDP a TCP port from the kernel's ephemeral range, outside "
                "49152-65535 ([V2G2-642]), and iso15118's EVCC drops the SDP response "
                "(ccssniff/emulate/driver.py, run_evse)")
    rejected = rejected_in_state(peer)
    if rejected == "PowerDelivery" and start_without_power_profile(outcome):
        return ("ours: our PEV sends PowerDeliveryReq (Start) without EVPowerProfile; optional in the XSD, "
                "but iso15118's SECC requires it, citing ISO 15118-20 8.3.4.3.8.2 "
                "(ccssniff/emulate/v2g_iso20.py)")
    if rejected:
        return None  # refused for a reason not traced yet: a plain failure
    late = [event.fields.get("detail") for event in outcome.events
            if event.kind == ev.SEQUENCE and event.name in ("response_timeout", "missing_response")]
    if "V2G_EVCC_Msg_Timeout" in outcome.our_output and late:
        return (f"theirs (timing): iso15118's SECC answered too late even for V2G_EVCC_Msg_Timeout x "
                f"{RELAXED_TIMING} (--relaxed-timing; {late[-1]}); its EXI codec runs in a JVM through "
                "py4j, slow on a loaded machine")
    return None


def check(outcome: Outcome, our_side: str, protocol: str) -> None:
    problems = session_problems(outcome, our_side, protocol)
    if problems:
        cause = known_cause(outcome)
        if cause:
            pytest.xfail(cause)
    assert not problems, (
        "\n".join(problems) + f"\n--- ours ---\n{outcome.our_output[-2000:]}"
        f"\n--- iso15118 ---\n{outcome.peer_log[-4000:]}\ncapture: {outcome.capture}")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_our_evse_with_iso15118_evcc(protocol, tmp_path):
    outcome = run_session("evse", protocol, tmp_path)
    check(outcome, "evse", protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_our_pev_with_iso15118_secc(protocol, tmp_path):
    outcome = run_session("pev", protocol, tmp_path)
    check(outcome, "pev", protocol)
