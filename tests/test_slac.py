"""SLAC state machines (ccssniff.emulate.slac) driven against each other in memory, simulated clock.

The PEV and EVSE machines talk through the software modems of ccssniff.emulate.modem (which
answer CM_SET_KEY and add CM_ATTEN_PROFILE.IND); a fault function decides, per frame a station
receives, whether it arrives, when, and how often.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import defaultdict
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccssniff.emulate import slac
from ccssniff.emulate.modem import Delivery, Modem, Powerline
from ccssniff.emulate.slac import (
    SendFrame,
    SlacAttemptFailed,
    SlacEvse,
    SlacFailed,
    SlacMatched,
    SlacPev,
)
from ccssniff.homeplug import (
    CmAttenCharInd,
    CmMnbcSoundInd,
    CmSlacMatchCnf,
    CmSlacParamReq,
    CmStartAttenCharInd,
    MacAddress,
    nid_from_nmk,
    parse_frame,
)
from ccssniff.standards import slac as std

PEV_MAC = MacAddress("02:00:00:00:ee:01")
EVSE_MAC = MacAddress("02:00:00:00:cc:01")
EVSE2_MAC = MacAddress("02:00:00:00:cc:02")
LATENCY = 0.002

# fault(delivery, now) -> arrival delays after LATENCY: [] loses it, [0, 0] duplicates it
Fault = Callable[[Delivery, float], list]


def name_of(frame: bytes) -> str:
    try:
        return parse_frame(frame).name
    except ValueError:
        return "other"


class Simulation:
    """Stations (SLAC machines) behind modems on one powerline; events in time order."""

    def __init__(self, fault: Fault | None = None) -> None:
        self.line = Powerline()
        self.machines: dict[str, object] = {}
        self.events: dict[str, list] = defaultdict(list)
        self.received: dict[str, list[bytes]] = defaultdict(list)
        self.sent: list[tuple[float, str, bytes]] = []
        self.fault = fault or (lambda delivery, now: [0.0])
        self.now = 0.0
        self._queue: list = []
        self._order = 0

    def add(self, station: str, machine, *, modem_mac: str, attenuation_db: float = 5.0,
            **modem_options) -> None:
        self.line.attach(station, Modem(modem_mac, rng=random.Random(station), **modem_options),
                         attenuation_db)
        if machine is not None:
            self.machines[station] = machine

    def start(self, *stations: str) -> None:
        for station in stations or self.machines:
            self._handle(station, self.machines[station].start(self.now))

    def run(self, until: float = 60.0) -> None:
        while self.step(until):
            pass

    def step(self, until: float = 60.0) -> bool:
        """Handle the next frame arrival or timer up to ``until``; False when there is none."""
        deadlines = [(m.next_deadline(), s) for s, m in self.machines.items() if m.next_deadline() is not None]
        next_timer = min(deadlines, default=(None, None))
        next_frame = self._queue[0][0] if self._queue else None
        candidates = [t for t in (next_timer[0], next_frame) if t is not None]
        if not candidates or min(candidates) > until:
            return False
        if next_frame is not None and (next_timer[0] is None or next_frame <= next_timer[0]):
            self.now, _, station, frame = heapq.heappop(self._queue)
            self.received[station].append(frame)
            if station in self.machines:
                self._handle(station, self.machines[station].receive_frame(frame, self.now))
        else:
            self.now, station = next_timer
            self._handle(station, self.machines[station].on_timer(self.now))
        return True

    def _handle(self, station: str, outputs: list) -> None:
        for output in outputs:
            if isinstance(output, SendFrame):
                self.sent.append((self.now, station, output.frame))
                for delivery in self.line.from_host(station, output.frame):
                    for delay in self.fault(delivery, self.now):
                        self._order += 1
                        heapq.heappush(self._queue, (self.now + LATENCY + delay, self._order,
                                                     delivery.station, delivery.frame))
            else:
                self.events[station].append(output)

    def sent_names(self, station: str) -> list[str]:
        return [name_of(frame) for _, s, frame in self.sent if s == station]

    def final(self, station: str):
        terminal = [e for e in self.events[station] if isinstance(e, (SlacMatched, SlacFailed))]
        assert len(terminal) <= 1, terminal
        return terminal[0] if terminal else None


def pair(fault: Fault | None = None, seed: int = 1, **evse_options) -> Simulation:
    sim = Simulation(fault)
    sim.add("pev", SlacPev(PEV_MAC, rng=random.Random(seed)), modem_mac="00:b0:52:00:0e:01")
    sim.add("evse", SlacEvse(EVSE_MAC, rng=random.Random(seed + 1000), **evse_options),
            modem_mac="00:b0:52:00:0c:01")
    return sim


def test_pev_and_evse_match_with_the_same_key():
    sim = pair()
    sim.start()
    sim.run()
    pev, evse = sim.final("pev"), sim.final("evse")
    assert isinstance(pev, SlacMatched) and isinstance(evse, SlacMatched)
    assert pev.nmk == evse.nmk and pev.nid == evse.nid == nid_from_nmk(evse.nmk)
    assert pev.peer_mac == EVSE_MAC and evse.peer_mac == PEV_MAC
    assert pev.run_id == evse.run_id and len(pev.run_id) == 8
    # both modems now form one network
    assert sorted(sim.line.members(pev.nmk)) == ["evse", "pev"]
    names = sim.sent_names("pev")
    assert names == (["CM_SLAC_PARAM.REQ"] + ["CM_START_ATTEN_CHAR.IND"] * 3 + ["CM_MNBC_SOUND.IND"] * 10
                     + ["CM_ATTEN_CHAR.RSP", "CM_SLAC_MATCH.REQ", "CM_SET_KEY.REQ"])
    assert sim.sent_names("evse") == ["CM_SLAC_PARAM.CNF", "CM_ATTEN_CHAR.IND", "CM_SLAC_MATCH.CNF",
                                      "CM_SET_KEY.REQ"]
    assert all(len(frame) >= 60 for _, _, frame in sim.sent)


def test_sounds_are_spaced_by_the_batch_interval_and_counted_down():
    sim = pair()
    sim.start()
    sim.run()
    batch = [(t, parse_frame(f)) for t, s, f in sim.sent
             if s == "pev" and name_of(f) in ("CM_START_ATTEN_CHAR.IND", "CM_MNBC_SOUND.IND")]
    gaps = {round(b[0] - a[0], 6) for a, b in itertools.pairwise(batch)}
    assert gaps == {std.TP_EV_BATCH_MSG_INTERVAL}
    assert [m.countdown for _, m in batch if isinstance(m, CmMnbcSoundInd)] == list(range(9, -1, -1))
    start = next(m for _, m in batch if isinstance(m, CmStartAttenCharInd))
    assert start.num_sounds == std.C_EV_MATCH_MNBC and start.time_out == 6


def test_attenuation_report_comes_from_the_modem_profiles():
    sim = pair()
    sim.start()
    sim.run()
    report = next(parse_frame(f) for _, s, f in sim.sent if s == "evse" and name_of(f) == "CM_ATTEN_CHAR.IND")
    assert isinstance(report, CmAttenCharInd)
    assert report.num_sounds == 10 and len(report.aag) == std.NUM_GROUPS
    # the modems' coupling losses add up to 10 dB; the profile tilts and ripples around it
    assert all(value > 0 for value in report.aag)
    assert 7 <= sum(report.aag) / len(report.aag) <= 13
    assert report.aag[-1] > report.aag[0]


def test_without_modem_profiles_the_evse_reports_its_simulated_cable():
    sim = Simulation()
    sim.add("pev", SlacPev(PEV_MAC, rng=random.Random(3)), modem_mac="00:b0:52:00:0e:01")
    sim.add("evse", SlacEvse(EVSE_MAC, rng=random.Random(4), cable_attenuation_db=33),
            modem_mac="00:b0:52:00:0c:01", attenuation_profiles=False)
    sim.start()
    sim.run()
    report = next(parse_frame(f) for _, s, f in sim.sent if s == "evse" and name_of(f) == "CM_ATTEN_CHAR.IND")
    assert report.num_sounds == 10 and len(report.aag) == 58 and min(report.aag) > 0
    assert 30 <= sum(report.aag) / 58 <= 36
    assert isinstance(sim.final("pev"), SlacMatched)


def test_the_same_seeds_give_the_same_session_and_other_seeds_another():
    runs = []
    for seed in (7, 7, 8):
        sim = pair(seed=seed)
        sim.start()
        sim.run()
        runs.append(sim.final("pev"))
    assert runs[0] == runs[1]
    assert runs[0].nmk != runs[2].nmk and runs[0].run_id != runs[2].run_id


def drop(name: str, times: int = 1 << 30, to: str | None = None) -> Fault:
    """Lose the first ``times`` frames named ``name`` (towards ``to`` when given)."""
    left = [times]

    def fault(delivery: Delivery, now: float) -> list:
        if name_of(delivery.frame) == name and (to is None or delivery.station == to) and left[0] > 0:
            left[0] -= 1
            return []
        return [0.0]
    return fault


def test_a_lost_param_request_is_repeated():
    sim = pair(drop("CM_SLAC_PARAM.REQ", times=1, to="evse"))
    sim.start()
    sim.run()
    assert sim.sent_names("pev").count("CM_SLAC_PARAM.REQ") == 2
    assert isinstance(sim.final("pev"), SlacMatched) and isinstance(sim.final("evse"), SlacMatched)


def test_a_lost_match_confirmation_is_answered_again_with_the_same_key():
    sim = pair(drop("CM_SLAC_MATCH.CNF", times=1, to="pev"))
    sim.start()
    sim.run()
    assert sim.sent_names("pev").count("CM_SLAC_MATCH.REQ") == 2
    cnfs = [parse_frame(f) for _, s, f in sim.sent if s == "evse" and name_of(f) == "CM_SLAC_MATCH.CNF"]
    assert len(cnfs) == 2 and cnfs[0].nmk == cnfs[1].nmk
    assert sim.final("pev").nmk == sim.final("evse").nmk


def test_duplicated_frames_change_nothing():
    sim = pair(lambda delivery, now: [0.0, 0.001])
    sim.start()
    sim.run()
    pev, evse = sim.final("pev"), sim.final("evse")
    assert isinstance(pev, SlacMatched) and pev.nmk == evse.nmk
    report = next(parse_frame(f) for _, s, f in sim.sent if s == "evse" and name_of(f) == "CM_ATTEN_CHAR.IND")
    assert report.num_sounds >= 10
    assert len({parse_frame(f).nmk for _, s, f in sim.sent if name_of(f) == "CM_SLAC_MATCH.CNF"}) == 1


OUTCOME_CODES = {slac.NO_PARAM_CNF, slac.NO_ATTEN_CHAR, slac.NO_MATCH_CNF, slac.NO_SET_KEY_CNF,
                 slac.NO_PARAM_REQ, slac.NO_START_ATTEN_CHAR, slac.NO_SOUNDS, slac.NO_ATTEN_CHAR_RSP,
                 slac.NO_MATCH_REQ, slac.MATCHING_TIME_EXCEEDED}


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), loss=st.floats(0.0, 0.4), jitter=st.floats(0.0, 0.03),
       duplicate=st.floats(0.0, 0.3))
def test_lossy_reordering_wire_ends_in_a_match_with_one_key_or_a_clean_failure(seed, loss, jitter, duplicate):
    wire = random.Random(seed)

    def fault(delivery: Delivery, now: float) -> list:
        if wire.random() < loss:
            return []
        copies = 2 if wire.random() < duplicate else 1
        return [wire.uniform(0, jitter) for _ in range(copies)]  # jitter reorders frames

    sim = pair(fault, seed=seed % 1000)
    sim.start()
    sim.run(until=120.0)
    pev, evse = sim.final("pev"), sim.final("evse")
    assert pev is not None, "the PEV must end, matched or failed"
    assert isinstance(pev, (SlacMatched, SlacFailed))
    if isinstance(pev, SlacMatched):
        assert pev.nmk == sim.machines["evse"].nmk and pev.nid == nid_from_nmk(pev.nmk)
        assert pev.peer_mac == EVSE_MAC
    else:
        assert pev.code in OUTCOME_CODES
    if isinstance(evse, SlacMatched) and isinstance(pev, SlacMatched):
        assert evse.nmk == pev.nmk
    for event in sim.events["pev"] + sim.events["evse"]:
        if isinstance(event, (SlacAttemptFailed, SlacFailed)):
            assert event.code in OUTCOME_CODES


def test_no_evse_answers_three_attempts_of_three_requests_then_fails():
    sim = Simulation()
    sim.add("pev", SlacPev(PEV_MAC, rng=random.Random(1)), modem_mac="00:b0:52:00:0e:01")
    sim.start()
    sim.run()
    final = sim.final("pev")
    assert isinstance(final, SlacFailed) and final.code == slac.NO_PARAM_CNF
    attempts = [e for e in sim.events["pev"] if isinstance(e, SlacAttemptFailed)]
    assert [a.code for a in attempts] == [slac.NO_PARAM_CNF] * (1 + std.C_SEQU_RETRY)
    requests = [parse_frame(f) for _, _, f in sim.sent]
    assert len(requests) == (1 + std.C_SEQU_RETRY) * (1 + std.C_EV_MATCH_RETRY)
    assert all(isinstance(r, CmSlacParamReq) for r in requests)
    assert len({r.run_id for r in requests}) == 1 + std.C_SEQU_RETRY  # a new RunID per attempt
    times = [t for t, _, _ in sim.sent]
    assert round(times[1] - times[0], 6) == std.TT_MATCH_RESPONSE
    assert round(times[3] - times[2], 6) == round(std.TT_MATCH_RESPONSE + std.TT_MATCHING_RATE, 6)
    assert sim.machines["pev"].next_deadline() is None and sim.machines["pev"].state == slac.FAILED


def test_an_evse_that_never_reports_attenuation():
    sim = pair(drop("CM_ATTEN_CHAR.IND", to="pev"))
    sim.start()
    sim.run()
    pev, evse = sim.final("pev"), sim.final("evse")
    assert isinstance(pev, SlacFailed) and pev.code == slac.NO_ATTEN_CHAR
    assert isinstance(evse, SlacFailed) and evse.code == slac.NO_ATTEN_CHAR_RSP
    # the EVSE repeats its report C_EV_match_retry times per attempt
    assert sim.sent_names("evse").count("CM_ATTEN_CHAR.IND") == 3 * (1 + std.C_EV_MATCH_RETRY)


def test_an_evse_that_stops_after_the_attenuation_report():
    sim = pair(drop("CM_SLAC_MATCH.REQ", to="evse"))
    sim.start()
    sim.run()
    pev, evse = sim.final("pev"), sim.final("evse")
    assert isinstance(pev, SlacFailed) and pev.code == slac.NO_MATCH_CNF
    assert sim.sent_names("pev").count("CM_SLAC_MATCH.REQ") == 3 * (1 + std.C_EV_MATCH_RETRY)
    # the EVSE followed each new attempt of the EV (a new CM_SLAC_PARAM.REQ restarts it) ...
    assert sim.sent_names("evse").count("CM_SLAC_PARAM.CNF") == 3
    # ... then waited TT_EVSE_match_session for a match, and TT_EVSE_SLAC_init for a new EV
    assert [e.code for e in sim.events["evse"] if isinstance(e, SlacAttemptFailed)] == [slac.NO_MATCH_REQ]
    assert isinstance(evse, SlacFailed) and evse.code == slac.NO_PARAM_REQ


def test_an_ev_that_leaves_after_the_parameter_exchange():
    sim = pair(drop("CM_SLAC_PARAM.CNF", to="pev"), init_timeout=5.0)
    sim.start()
    sim.run()
    evse = sim.final("evse")
    attempts = [e.code for e in sim.events["evse"] if isinstance(e, SlacAttemptFailed)]
    assert attempts[0] == slac.NO_START_ATTEN_CHAR
    assert isinstance(evse, SlacFailed) and evse.code in (slac.NO_START_ATTEN_CHAR, slac.NO_PARAM_REQ)
    assert isinstance(sim.final("pev"), SlacFailed) and sim.final("pev").code == slac.NO_PARAM_CNF


def test_an_evse_without_an_ev_times_out_after_tt_evse_slac_init():
    sim = Simulation()
    sim.add("evse", SlacEvse(EVSE_MAC, rng=random.Random(1)), modem_mac="00:b0:52:00:0c:01")
    sim.start()
    sim.run(until=1000)
    final = sim.final("evse")
    assert isinstance(final, SlacFailed) and final.code == slac.NO_PARAM_REQ
    assert sim.now == std.TT_EVSE_SLAC_INIT and not sim.sent


def test_a_modem_that_never_confirms_the_key():
    sim = pair(drop("CM_SET_KEY.CNF"))
    sim.start()
    sim.run()
    for side in ("pev", "evse"):
        final = sim.final(side)
        assert isinstance(final, SlacFailed) and final.code == slac.NO_SET_KEY_CNF
        assert sim.sent_names(side).count("CM_SET_KEY.REQ") == 1 + std.C_EV_MATCH_RETRY


@pytest.mark.parametrize("near, far", [("evse", "evse2"), ("evse2", "evse")])
def test_two_evses_answer_and_the_lower_attenuation_wins(near, far):
    sim = Simulation()
    sim.add("pev", SlacPev(PEV_MAC, rng=random.Random(5)), modem_mac="00:b0:52:00:0e:01", attenuation_db=3)
    macs = {"evse": EVSE_MAC, "evse2": EVSE2_MAC}
    loss = {near: 6, far: 30}  # the neighbour's charger hears the car through crosstalk only
    # the far one is added first so that its answers are not simply first
    for station in (far, near):
        sim.add(station, SlacEvse(macs[station], rng=random.Random(station)),
                modem_mac=f"00:b0:52:00:0c:{len(sim.line.modems):02x}", attenuation_db=loss[station])
    sim.start()
    sim.run()
    pev = sim.final("pev")
    assert isinstance(pev, SlacMatched) and pev.peer_mac == macs[near]
    assert pev.nmk == sim.final(near).nmk
    assert sorted(sim.line.members(pev.nmk)) == sorted(["pev", near])
    reports = [parse_frame(f) for _, s, f in sim.sent if name_of(f) == "CM_ATTEN_CHAR.IND"]
    assert {r.src for r in reports} == {EVSE_MAC, EVSE2_MAC}
    match = [parse_frame(f) for _, s, f in sim.sent if s == "pev" and name_of(f) == "CM_SLAC_MATCH.REQ"]
    assert [m.dst for m in match] == [macs[near]]
    # the other charger hears no match and gives the attempt up after TT_EVSE_match_session
    assert [e.code for e in sim.events[far] if isinstance(e, SlacAttemptFailed)] == [slac.NO_MATCH_REQ]


@settings(max_examples=200, deadline=None)
@given(frame=st.binary(max_size=120), state_steps=st.integers(0, 20))
def test_garbage_frames_never_break_either_machine(frame, state_steps):
    sim = pair()
    sim.start()
    for _ in range(state_steps):
        sim.step()
    for machine in sim.machines.values():
        outputs = machine.receive_frame(frame, sim.now)
        assert all(isinstance(o, (SendFrame, SlacMatched, SlacAttemptFailed, SlacFailed)) for o in outputs)
    sim.run()
    assert isinstance(sim.final("pev"), (SlacMatched, SlacFailed))


def test_a_match_confirmation_for_another_run_is_ignored():
    sim = pair()
    sim.start()
    pev = sim.machines["pev"]
    while pev.state != SlacPev.WAIT_MATCH_CNF:
        assert sim.step()
    forged = CmSlacMatchCnf(dst=PEV_MAC, src=EVSE_MAC, run_id=bytes(8), nid=bytes(7), nmk=bytes(16))
    assert pev.receive_frame(forged.build_frame(pad=True), sim.now) == []
    sim.run()
    assert sim.final("pev").nmk != bytes(16)
