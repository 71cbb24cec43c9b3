"""SLAC (ISO 15118-3 matching of an EV to its charger over HomePlug Green PHY), sans-IO, both sides.

Whole Ethernet frames and the current time go in; frames to send and events come out::

    pev = SlacPev(mac, rng=random.Random(1))
    outputs = pev.start(now)                     # [SendFrame(...)]
    outputs = pev.receive_frame(frame, now)      # frames in, [SendFrame | SlacMatched | ...] out
    outputs = pev.on_timer(now)                  # call when now >= pev.next_deadline()

No sockets, clocks or hidden randomness inside: the RunID, the NMK and the sound payloads come
from the injected ``rng`` (a ``random.Random``; ``random.SystemRandom()`` when omitted).

Matching (ISO 15118-3 clause 9 and Annex A):

    PEV                                   EVSE
    CM_SLAC_PARAM.REQ (broadcast)  ->                 retried C_EV_match_retry times, TT_match_response
                                   <-     CM_SLAC_PARAM.CNF
    3 x CM_START_ATTEN_CHAR.IND    ->                 spaced TP_EV_batch_msg_interval
    10 x CM_MNBC_SOUND.IND         ->                 (the EVSE's modem adds CM_ATTEN_PROFILE.IND)
                                   <-     CM_ATTEN_CHAR.IND   after TT_EVSE_match_MNBC or all sounds
    CM_ATTEN_CHAR.RSP              ->
    CM_SLAC_MATCH.REQ (to the EVSE with the lowest average attenuation)
                                   <-     CM_SLAC_MATCH.CNF   NID and a fresh NMK
    CM_SET_KEY.REQ to the own modem       CM_SET_KEY.REQ to the own modem
    -> SlacMatched                        -> SlacMatched

CM_VALIDATE (the optional BCB-toggle validation) is skipped: it needs control-pilot toggles that
only a lab driver with a real pilot can produce, and ISO 15118-3 lets the EV go straight to
CM_SLAC_MATCH when the EVSE reports it is not required. TT_match_join (link up after the match)
belongs to the driver, which sees the link; the machines end at CM_SET_KEY.CNF.

A failed attempt (a timeout after its retries) gives ``SlacAttemptFailed``; the PEV then restarts
the whole sequence with a new RunID after TT_matching_rate, at most C_sequ_retry times and within
TT_matching_repetition, and the EVSE waits for a new CM_SLAC_PARAM.REQ. When no restart is left,
``SlacFailed`` ends the machine.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import ClassVar

from ccssniff.homeplug import (
    BROADCAST,
    CmAttenCharInd,
    CmAttenCharRsp,
    CmAttenProfileInd,
    CmMnbcSoundInd,
    CmSetKeyCnf,
    CmSetKeyReq,
    CmSlacMatchCnf,
    CmSlacMatchReq,
    CmSlacParamCnf,
    CmSlacParamReq,
    CmStartAttenCharInd,
    MacAddress,
    Mme,
    MmeError,
    nid_from_nmk,
    parse_frame,
)
from ccssniff.standards import slac as std

# Qualcomm modems answer their own host at this address whatever their real MAC is.
LOCAL_MODEM = MacAddress("00:b0:52:00:00:01")
# ISO 15118-3 sets no timer for the local modem's CM_SET_KEY.CNF; a QCA7420 answers in tens of ms.
TT_SET_KEY_RESPONSE = 1.0
RESP_TYPE_OTHER_STATION = 0x01  # CM_SLAC_PARAM.CNF / CM_START_ATTEN_CHAR.IND, ISO 15118-3 Table A.3

# states both sides share
IDLE = "idle"
WAIT_SET_KEY_CNF = "wait_set_key_cnf"
MATCHED = "matched"
FAILED = "failed"

# why an attempt or the whole matching failed (SlacAttemptFailed.code / SlacFailed.code)
NO_PARAM_CNF = "no_param_cnf"
NO_ATTEN_CHAR = "no_atten_char"
NO_MATCH_CNF = "no_match_cnf"
NO_SET_KEY_CNF = "no_set_key_cnf"
NO_PARAM_REQ = "no_param_req"
NO_START_ATTEN_CHAR = "no_start_atten_char"
NO_SOUNDS = "no_sounds"
NO_ATTEN_CHAR_RSP = "no_atten_char_rsp"
NO_MATCH_REQ = "no_match_req"
MATCHING_TIME_EXCEEDED = "matching_time_exceeded"


# --- what the machines emit ------------------------------------------------------------------

@dataclass(frozen=True)
class SendFrame:
    frame: bytes  # a whole Ethernet frame, padded to 60 bytes


@dataclass(frozen=True)
class SlacMatched:
    nid: bytes
    nmk: bytes = field(repr=False)  # secret: logs show it through render_key, masked unless asked
    peer_mac: MacAddress  # the other side's host: the EVSE for the PEV, the PEV for the EVSE
    run_id: bytes


@dataclass(frozen=True)
class SlacAttemptFailed:
    """One matching attempt ended; the machine restarts (PEV) or waits for a new one (EVSE)."""

    code: str
    detail: str


@dataclass(frozen=True)
class SlacFailed:
    """The matching failed for good; the machine is finished."""

    code: str
    detail: str


Output = SendFrame | SlacMatched | SlacAttemptFailed | SlacFailed


def attenuation_groups(mean_db: float, rng: random.Random, groups: int = std.NUM_GROUPS) -> list[int]:
    """A plausible CM_ATTEN_PROFILE / CM_ATTEN_CHAR attenuation profile (dB per carrier group).

    Powerline attenuation grows with frequency (the groups run from about 2 to 28 MHz), with a
    few dB of ripple from cable resonances; ``mean_db`` is the average over the groups.
    """
    tilt = 12.0  # dB between the lowest and the highest group
    values = []
    for group in range(groups):
        slope = tilt * (group / max(groups - 1, 1) - 0.5)
        values.append(min(max(round(mean_db + slope + rng.uniform(-2.0, 2.0)), 1), 90))
    return values


def _padded(message: Mme) -> SendFrame:
    return SendFrame(message.build_frame(pad=True))


def _parse(frame: bytes) -> Mme | None:
    try:
        return parse_frame(frame)
    except (MmeError, ValueError):
        return None  # not HomePlug, or malformed: nothing a SLAC machine reacts to


class _Machine:
    """What both sides share: addressing, the deadline, the modem's CM_SET_KEY exchange."""

    def __init__(self, mac: bytes, rng: random.Random | None, modem_mac: bytes | None) -> None:
        self.mac = MacAddress(mac)
        self.rng = rng if rng is not None else random.SystemRandom()
        # None: no local modem (plain Ethernet, e.g. a veth pair): the match ends without CM_SET_KEY
        self.modem_mac = MacAddress(modem_mac) if modem_mac is not None else None
        self.state = IDLE
        self._deadline: float | None = None
        self._set_key_requests = 0
        self._set_key_request: SendFrame | None = None

    def next_deadline(self) -> float | None:
        return self._deadline

    def _for_me(self, message: Mme) -> bool:
        return message.dst in (self.mac, BROADCAST)

    def _request_set_key(self, nid: bytes, nmk: bytes, now: float) -> list[Output]:
        # CM_SET_KEY.REQ field values of ISO 15118-3 Table A.8
        self._set_key_request = _padded(CmSetKeyReq(
            dst=self.modem_mac, src=self.mac, key_type=0x01, my_nonce=0, your_nonce=0, pid=0x04,
            prn=0, pmn=0, cco_capability=0, nid=nid, new_eks=0x01, new_key=nmk))
        self._set_key_requests = 1
        self.state = WAIT_SET_KEY_CNF
        self._deadline = now + TT_SET_KEY_RESPONSE
        return [self._set_key_request]

    def _retry_set_key(self, now: float) -> list[Output] | None:
        """The CM_SET_KEY.REQ again, or None once its retries are spent."""
        if self._set_key_requests > std.C_EV_MATCH_RETRY:
            return None
        self._set_key_requests += 1
        self._deadline = now + TT_SET_KEY_RESPONSE
        assert self._set_key_request is not None
        return [self._set_key_request]

    def _finish_failed(self, code: str, detail: str) -> list[Output]:
        self.state = FAILED
        self._deadline = None
        return [SlacFailed(code, detail)]


@dataclass
class _Candidate:
    """An EVSE that answered our CM_SLAC_PARAM.REQ."""

    mac: MacAddress
    msound_target: MacAddress
    attenuation: list[int] | None = None
    evse_id: bytes = bytes(17)

    @property
    def average_attenuation(self) -> float:
        assert self.attenuation
        return sum(self.attenuation) / len(self.attenuation)


class _Side:
    """The public surface both sides share, kept by their ``_core``."""

    _core: _Machine

    @property
    def mac(self) -> MacAddress:
        return self._core.mac

    @property
    def state(self) -> str:
        return self._core.state

    def next_deadline(self) -> float | None:
        return self._core.next_deadline()


class SlacPev(_Side):
    """The EV side of SLAC: find the charger on the cable with the strongest signal and join it."""

    WAIT_PARAM_CNF = "wait_param_cnf"
    SOUNDING = "sounding"  # START_ATTEN_CHAR and MNBC_SOUND under way, ATTEN_CHAR.IND collected
    WAIT_ATTEN_CHAR = "wait_atten_char"
    WAIT_MATCH_CNF = "wait_match_cnf"
    PAUSE = "pause"  # TT_matching_rate before a new attempt

    def __init__(self, mac: bytes, *, rng: random.Random | None = None, modem_mac: bytes | None = LOCAL_MODEM,
                 pev_id: bytes = bytes(17), num_sounds: int = std.C_EV_MATCH_MNBC,
                 batch_interval: float = std.TP_EV_BATCH_MSG_INTERVAL,
                 sequence_retries: int = std.C_SEQU_RETRY) -> None:
        self._core = _Machine(mac, rng, modem_mac)
        self.pev_id = bytes(pev_id)
        self.num_sounds = num_sounds
        self.batch_interval = batch_interval
        self.sequence_retries = sequence_retries
        self.attempts = 0
        self.run_id = b""
        self.candidates: dict[MacAddress, _Candidate] = {}
        self.chosen: _Candidate | None = None
        self.nid = self.nmk = b""
        self._first_start: float | None = None
        self._requests_sent = 0
        self._batch: list[SendFrame] = []
        self._atten_results_deadline = 0.0

    def start(self, now: float) -> list[Output]:
        """Begin matching (the EV saw the 5 % PWM of the control pilot)."""
        if self.state != IDLE:
            return []
        self._first_start = now
        return self._new_attempt(now)

    def receive_frame(self, frame: bytes, now: float) -> list[Output]:
        message = _parse(frame)
        if message is None or not self._core._for_me(message):
            return []
        handler = self._handlers.get((self.state, type(message)))
        return handler(self, message, now) if handler else []

    def on_timer(self, now: float) -> list[Output]:
        deadline = self._core._deadline
        if deadline is None or now < deadline:
            return []
        return self._timeouts[self.state](self, now)

    # --- the sequence ---
    def _new_attempt(self, now: float) -> list[Output]:
        core = self._core
        self.attempts += 1
        self.run_id = core.rng.randbytes(std.RUN_ID_LENGTH)
        self.candidates = {}
        self.chosen = None
        self._requests_sent = 0
        core.state = self.WAIT_PARAM_CNF
        return self._send_param_req(now)

    def _send_param_req(self, now: float) -> list[Output]:
        self._requests_sent += 1
        self._core._deadline = now + std.TT_MATCH_RESPONSE
        return [_padded(CmSlacParamReq(dst=BROADCAST, src=self.mac, application_type=0,
                                       security_type=0, run_id=self.run_id))]

    def _on_param_cnf(self, message: CmSlacParamCnf, now: float) -> list[Output]:
        if message.run_id != self.run_id or message.application_type != std.APPLICATION_TYPE_PEV_EVSE:
            return []
        self.candidates.setdefault(message.src, _Candidate(message.src, message.msound_target))
        if self.state != self.WAIT_PARAM_CNF:
            return []  # a second EVSE answering while we sound: it gets the same sounds
        # the first answer starts the sounding after TP_match_sequence at most; we start at once
        core = self._core
        core.state = self.SOUNDING
        self._atten_results_deadline = now + std.TT_EV_ATTEN_RESULTS
        target = message.msound_target if message.msound_target != bytes(6) else BROADCAST
        time_out = std.TIME_OUT_FIELD
        starts = [_padded(CmStartAttenCharInd(
            dst=target, src=self.mac, application_type=0, security_type=0,
            num_sounds=self.num_sounds, time_out=time_out, resp_type=RESP_TYPE_OTHER_STATION,
            forwarding_sta=self.mac, run_id=self.run_id)) for _ in range(std.C_EV_START_ATTEN_CHAR_INDS)]
        sounds = [_padded(CmMnbcSoundInd(
            dst=target, src=self.mac, application_type=0, security_type=0, sender_id=self.pev_id,
            countdown=self.num_sounds - 1 - index, run_id=self.run_id,
            random=core.rng.randbytes(16))) for index in range(self.num_sounds)]
        self._batch = starts + sounds
        return self._send_batch(now)

    def _send_batch(self, now: float) -> list[Output]:
        outputs: list[Output] = [self._batch.pop(0)]
        self._core._deadline = now + self.batch_interval if self._batch else self._atten_results_deadline
        return outputs

    def _on_sounding_timer(self, now: float) -> list[Output]:
        if self._batch:
            return self._send_batch(now)
        return self._decide(now)

    def _on_atten_char(self, message: CmAttenCharInd, now: float) -> list[Output]:
        if message.run_id != self.run_id or message.source_address != self.mac:
            return []
        candidate = self.candidates.setdefault(message.src, _Candidate(message.src, BROADCAST))
        outputs: list[Output] = [_padded(CmAttenCharRsp(
            dst=message.src, src=self.mac, application_type=0, security_type=0,
            source_address=self.mac, run_id=self.run_id, source_id=message.source_id,
            resp_id=message.resp_id, result=0))]
        if message.aag and self.state == self.SOUNDING:
            candidate.attenuation = list(message.aag)
            candidate.evse_id = message.resp_id
            # every EVSE that answered has reported: no need to wait out TT_EV_atten_results
            if not self._batch and all(c.attenuation for c in self.candidates.values()):
                outputs += self._decide(now)
        return outputs

    def _decide(self, now: float) -> list[Output]:
        reported = [c for c in self.candidates.values() if c.attenuation]
        if not reported:
            return self._attempt_failed(NO_ATTEN_CHAR, "no CM_ATTEN_CHAR.IND within TT_EV_atten_results", now)
        # lowest average attenuation = the charger this cable is plugged into
        self.chosen = min(reported, key=lambda c: c.average_attenuation)
        self._core.state = self.WAIT_MATCH_CNF
        self._requests_sent = 0
        return self._send_match_req(now)

    def _send_match_req(self, now: float) -> list[Output]:
        assert self.chosen is not None
        self._requests_sent += 1
        self._core._deadline = now + std.TT_MATCH_RESPONSE
        return [_padded(CmSlacMatchReq(
            dst=self.chosen.mac, src=self.mac, application_type=0, security_type=0,
            pev_id=self.pev_id, pev_mac=self.mac, evse_id=self.chosen.evse_id,
            evse_mac=self.chosen.mac, run_id=self.run_id))]

    def _on_match_cnf(self, message: CmSlacMatchCnf, now: float) -> list[Output]:
        if self.chosen is None or message.run_id != self.run_id or message.src != self.chosen.mac:
            return []
        self.nid, self.nmk = bytes(message.nid), bytes(message.nmk)
        if self._core.modem_mac is None:
            return self._on_set_key_cnf(None, now)
        return self._core._request_set_key(self.nid, self.nmk, now)

    def _on_set_key_cnf(self, message: CmSetKeyCnf | None, now: float) -> list[Output]:
        assert self.chosen is not None
        self._core.state = MATCHED
        self._core._deadline = None
        return [SlacMatched(self.nid, self.nmk, self.chosen.mac, self.run_id)]

    # --- timeouts ---
    def _on_param_timeout(self, now: float) -> list[Output]:
        if self._requests_sent <= std.C_EV_MATCH_RETRY:
            return self._send_param_req(now)
        return self._attempt_failed(NO_PARAM_CNF, f"no CM_SLAC_PARAM.CNF to {self._requests_sent} requests", now)

    def _on_match_timeout(self, now: float) -> list[Output]:
        if self._requests_sent <= std.C_EV_MATCH_RETRY:
            return self._send_match_req(now)
        return self._attempt_failed(NO_MATCH_CNF, f"no CM_SLAC_MATCH.CNF to {self._requests_sent} requests", now)

    def _on_set_key_timeout(self, now: float) -> list[Output]:
        retry = self._core._retry_set_key(now)
        if retry is not None:
            return retry
        return self._core._finish_failed(NO_SET_KEY_CNF, "the local modem did not confirm CM_SET_KEY.REQ")

    def _on_pause_over(self, now: float) -> list[Output]:
        return self._new_attempt(now)

    def _attempt_failed(self, code: str, detail: str, now: float) -> list[Output]:
        assert self._first_start is not None
        outputs: list[Output] = [SlacAttemptFailed(code, detail)]
        restart_at = now + std.TT_MATCHING_RATE
        if self.attempts > self.sequence_retries:
            return outputs + self._core._finish_failed(code, f"{detail} (after {self.attempts} attempts)")
        if restart_at - self._first_start > std.TT_MATCHING_REPETITION:
            return outputs + self._core._finish_failed(
                MATCHING_TIME_EXCEEDED, f"{detail}; no time left within TT_matching_repetition")
        self._core.state = self.PAUSE
        self._core._deadline = restart_at
        return outputs

    _handlers: ClassVar[dict] = {
        (WAIT_PARAM_CNF, CmSlacParamCnf): _on_param_cnf,
        (SOUNDING, CmSlacParamCnf): _on_param_cnf,
        (SOUNDING, CmAttenCharInd): _on_atten_char,
        # a repeated IND (our RSP was lost) gets its RSP again
        (WAIT_MATCH_CNF, CmAttenCharInd): _on_atten_char,
        (WAIT_MATCH_CNF, CmSlacMatchCnf): _on_match_cnf,
        (WAIT_SET_KEY_CNF, CmSetKeyCnf): _on_set_key_cnf,
    }
    _timeouts: ClassVar[dict] = {
        WAIT_PARAM_CNF: _on_param_timeout,
        SOUNDING: _on_sounding_timer,
        WAIT_MATCH_CNF: _on_match_timeout,
        WAIT_SET_KEY_CNF: _on_set_key_timeout,
        PAUSE: _on_pause_over,
    }


class SlacEvse(_Side):
    """The charger side of SLAC: answer the EV, measure its sounds, hand it a fresh network key."""

    WAIT_PARAM_REQ = "wait_param_req"
    WAIT_START_ATTEN = "wait_start_atten_char"
    SOUNDING = "sounding"
    WAIT_ATTEN_RSP = "wait_atten_char_rsp"
    WAIT_MATCH_REQ = "wait_match_req"

    def __init__(self, mac: bytes, *, rng: random.Random | None = None, modem_mac: bytes | None = LOCAL_MODEM,
                 evse_id: bytes = bytes(17), cable_attenuation_db: float = 20.0,
                 init_timeout: float = std.TT_EVSE_SLAC_INIT,
                 sequence_retries: int = std.C_SEQU_RETRY) -> None:
        self._core = _Machine(mac, rng, modem_mac)
        self.evse_id = bytes(evse_id)
        # used only when the modem sends no CM_ATTEN_PROFILE.IND (a plain switch, a veth)
        self.cable_attenuation_db = cable_attenuation_db
        self.init_timeout = init_timeout
        self.sequence_retries = sequence_retries
        self.failed_attempts = 0
        self.pev_mac = MacAddress()
        self.run_id = b""
        self.expected_sounds = 0
        self.nmk = self.nid = b""
        self._sound_countdowns: set[int] = set()
        self._profiles: list[list[int]] = []
        self._atten_char: SendFrame | None = None
        self._match_cnf: SendFrame | None = None
        self._atten_char_sent = 0

    def start(self, now: float) -> list[Output]:
        """Be ready for an EV (control pilot in state B, 5 % PWM on)."""
        if self.state != IDLE:
            return []
        self._wait_for_ev(now)
        return []

    def receive_frame(self, frame: bytes, now: float) -> list[Output]:
        message = _parse(frame)
        if message is None or not self._core._for_me(message):
            return []
        if isinstance(message, CmSlacParamReq):
            return self._on_param_req(message, now)
        handler = self._handlers.get((self.state, type(message)))
        return handler(self, message, now) if handler else []

    def on_timer(self, now: float) -> list[Output]:
        deadline = self._core._deadline
        if deadline is None or now < deadline:
            return []
        return self._timeouts[self.state](self, now)

    def _wait_for_ev(self, now: float) -> None:
        self._core.state = self.WAIT_PARAM_REQ
        self._core._deadline = now + self.init_timeout

    def _on_param_req(self, message: CmSlacParamReq, now: float) -> list[Output]:
        if message.application_type != std.APPLICATION_TYPE_PEV_EVSE or \
                message.security_type != std.SECURITY_TYPE_NONE:
            return []
        if self.state in (IDLE, FAILED, MATCHED, WAIT_SET_KEY_CNF):
            return []
        repeated = message.run_id == self.run_id and message.src == self.pev_mac
        if repeated and self.state not in (self.WAIT_PARAM_REQ, self.WAIT_START_ATTEN):
            return []  # a late copy of the request we are already serving
        if self.state != self.WAIT_PARAM_REQ and message.src != self.pev_mac:
            return []  # another EV while we serve this one: one session at a time
        # our EV restarting its sequence with a new RunID abandons the attempt under way
        self.pev_mac, self.run_id = message.src, message.run_id
        self._core.state = self.WAIT_START_ATTEN
        self._core._deadline = now + std.TT_MATCH_SEQUENCE
        return [_padded(CmSlacParamCnf(
            dst=self.pev_mac, src=self.mac, msound_target=BROADCAST, num_sounds=std.C_EV_MATCH_MNBC,
            time_out=std.TIME_OUT_FIELD, resp_type=RESP_TYPE_OTHER_STATION,
            forwarding_sta=self.pev_mac, application_type=0, security_type=0, run_id=self.run_id))]

    def _on_start_atten(self, message: CmStartAttenCharInd, now: float) -> list[Output]:
        if message.run_id != self.run_id or message.src != self.pev_mac:
            return []
        self._begin_sounding(message.num_sounds, message.time_out * 0.1, now)
        return []

    def _on_early_sound(self, message: CmMnbcSoundInd, now: float) -> list[Output]:
        # all three CM_START_ATTEN_CHAR.IND were lost: the first sound opens the window
        if message.run_id != self.run_id or message.src != self.pev_mac:
            return []
        self._begin_sounding(std.C_EV_MATCH_MNBC, std.TT_EVSE_MATCH_MNBC, now)
        return self._on_sound(message, now)

    def _begin_sounding(self, num_sounds: int, window: float, now: float) -> None:
        self.expected_sounds = num_sounds or std.C_EV_MATCH_MNBC
        self._sound_countdowns = set()
        self._profiles = []
        self._core.state = self.SOUNDING
        self._core._deadline = now + (window or std.TT_EVSE_MATCH_MNBC)

    def _on_sound(self, message: CmMnbcSoundInd, now: float) -> list[Output]:
        if message.run_id != self.run_id or message.src != self.pev_mac:
            return []
        self._sound_countdowns.add(message.countdown)  # a duplicated sound counts once
        return self._maybe_done(now)

    def _on_profile(self, message: CmAttenProfileInd, now: float) -> list[Output]:
        if message.pev_mac != self.pev_mac or not message.aag:
            return []
        self._profiles.append(list(message.aag))
        return self._maybe_done(now)

    def _maybe_done(self, now: float) -> list[Output]:
        # with a modem that reports profiles, wait for the profile of the last sound too
        if len(self._profiles) >= self.expected_sounds or \
                (not self._profiles and len(self._sound_countdowns) >= self.expected_sounds):
            return self._report_attenuation(now)
        return []

    def _on_sounding_over(self, now: float) -> list[Output]:
        if not self._profiles and not self._sound_countdowns:
            return self._attempt_failed(NO_SOUNDS, "no CM_MNBC_SOUND.IND within TT_EVSE_match_MNBC", now)
        return self._report_attenuation(now)

    def _report_attenuation(self, now: float) -> list[Output]:
        if self._profiles:
            groups = min(len(p) for p in self._profiles)
            aag = [round(sum(p[g] for p in self._profiles) / len(self._profiles)) for g in range(groups)]
            sounds = len(self._profiles)
        else:
            aag = attenuation_groups(self.cable_attenuation_db, self._core.rng)
            sounds = len(self._sound_countdowns)
        self._atten_char = _padded(CmAttenCharInd(
            dst=self.pev_mac, src=self.mac, application_type=0, security_type=0,
            source_address=self.pev_mac, run_id=self.run_id, source_id=bytes(17),
            resp_id=self.evse_id, num_sounds=sounds, aag=aag))
        self._atten_char_sent = 0
        self._core.state = self.WAIT_ATTEN_RSP
        return self._send_atten_char(now)

    def _send_atten_char(self, now: float) -> list[Output]:
        assert self._atten_char is not None
        self._atten_char_sent += 1
        self._core._deadline = now + std.TT_MATCH_RESPONSE
        return [self._atten_char]

    def _on_atten_rsp(self, message: CmAttenCharRsp, now: float) -> list[Output]:
        if message.run_id != self.run_id or message.src != self.pev_mac:
            return []
        self._core.state = self.WAIT_MATCH_REQ
        self._core._deadline = now + std.TT_EVSE_MATCH_SESSION
        return []

    def _on_match_req(self, message: CmSlacMatchReq, now: float) -> list[Output]:
        if message.run_id != self.run_id or message.src != self.pev_mac or message.evse_mac != self.mac:
            return []
        if self._match_cnf is not None and self.state in (WAIT_SET_KEY_CNF, MATCHED):
            return [self._match_cnf]  # our CNF was lost: the same key again
        self.nmk = self._core.rng.randbytes(std.NMK_LENGTH)  # a new network for every session
        self.nid = nid_from_nmk(self.nmk)
        self._match_cnf = _padded(CmSlacMatchCnf(
            dst=self.pev_mac, src=self.mac, application_type=0, security_type=0,
            pev_id=message.pev_id, pev_mac=self.pev_mac, evse_id=self.evse_id, evse_mac=self.mac,
            run_id=self.run_id, nid=self.nid, nmk=self.nmk))
        if self._core.modem_mac is None:
            return [self._match_cnf] + self._on_set_key_cnf(None, now)
        return [self._match_cnf] + self._core._request_set_key(self.nid, self.nmk, now)

    def _on_set_key_cnf(self, message: CmSetKeyCnf | None, now: float) -> list[Output]:
        self._core.state = MATCHED
        self._core._deadline = None
        return [SlacMatched(self.nid, self.nmk, self.pev_mac, self.run_id)]

    # --- timeouts ---
    def _on_init_timeout(self, now: float) -> list[Output]:
        return self._core._finish_failed(NO_PARAM_REQ, "no CM_SLAC_PARAM.REQ within TT_EVSE_SLAC_init")

    def _on_start_atten_timeout(self, now: float) -> list[Output]:
        return self._attempt_failed(NO_START_ATTEN_CHAR, "no CM_START_ATTEN_CHAR.IND within TT_match_sequence", now)

    def _on_atten_rsp_timeout(self, now: float) -> list[Output]:
        if self._atten_char_sent <= std.C_EV_MATCH_RETRY:
            return self._send_atten_char(now)
        return self._attempt_failed(NO_ATTEN_CHAR_RSP, f"no CM_ATTEN_CHAR.RSP to {self._atten_char_sent} indications", now)

    def _on_match_req_timeout(self, now: float) -> list[Output]:
        return self._attempt_failed(NO_MATCH_REQ, "no CM_SLAC_MATCH.REQ within TT_EVSE_match_session", now)

    def _on_set_key_timeout(self, now: float) -> list[Output]:
        retry = self._core._retry_set_key(now)
        if retry is not None:
            return retry
        return self._core._finish_failed(NO_SET_KEY_CNF, "the local modem did not confirm CM_SET_KEY.REQ")

    def _attempt_failed(self, code: str, detail: str, now: float) -> list[Output]:
        self.failed_attempts += 1
        if self.failed_attempts > self.sequence_retries:
            return [SlacAttemptFailed(code, detail)] + self._core._finish_failed(
                code, f"{detail} (after {self.failed_attempts} attempts)")
        self.run_id = b""
        self._match_cnf = None
        self._wait_for_ev(now)  # the EV restarts with a new CM_SLAC_PARAM.REQ
        return [SlacAttemptFailed(code, detail)]

    _handlers: ClassVar[dict] = {
        (WAIT_START_ATTEN, CmStartAttenCharInd): _on_start_atten,
        (WAIT_START_ATTEN, CmMnbcSoundInd): _on_early_sound,
        (SOUNDING, CmMnbcSoundInd): _on_sound,
        (SOUNDING, CmAttenProfileInd): _on_profile,
        (WAIT_ATTEN_RSP, CmAttenCharRsp): _on_atten_rsp,
        # the EV may go on to CM_SLAC_MATCH.REQ when only our indication's RSP was lost
        (WAIT_ATTEN_RSP, CmSlacMatchReq): _on_match_req,
        (WAIT_MATCH_REQ, CmSlacMatchReq): _on_match_req,
        (WAIT_SET_KEY_CNF, CmSlacMatchReq): _on_match_req,
        (MATCHED, CmSlacMatchReq): _on_match_req,
        (WAIT_SET_KEY_CNF, CmSetKeyCnf): _on_set_key_cnf,
    }
    _timeouts: ClassVar[dict] = {
        WAIT_PARAM_REQ: _on_init_timeout,
        WAIT_START_ATTEN: _on_start_atten_timeout,
        SOUNDING: _on_sounding_over,
        WAIT_ATTEN_RSP: _on_atten_rsp_timeout,
        WAIT_MATCH_REQ: _on_match_req_timeout,
        WAIT_SET_KEY_CNF: _on_set_key_timeout,
    }
