"""ISO 15118-3 SLAC (Signal Level Attenuation Characterization): timers and counts.

Names follow ISO 15118-3 Table A.1 (timers: TT_ = time-out, TP_ = performance time) and
Table A.2 (constants C_). Times in seconds. The message layouts live in ccssniff.homeplug.
"""

from __future__ import annotations

# --- timers -------------------------------------------------------------------------------
TT_EVSE_SLAC_INIT_MIN = 20.0  # EVSE waits this long at least for CM_SLAC_PARM.REQ after state B
TT_EVSE_SLAC_INIT_MAX = 50.0
TT_EVSE_SLAC_INIT = 40.0  # the value the emulated EVSE uses, inside the range
TT_MATCH_RESPONSE = 0.2  # wait for a .CNF to one's own .REQ
TT_MATCH_SEQUENCE = 0.4  # wait for the peer's next request in the sequence
TP_MATCH_RESPONSE = 0.1  # answer a request within this
TP_MATCH_SEQUENCE = 0.1  # EV: from CM_SLAC_PARM.CNF to the first CM_START_ATTEN_CHAR.IND
TP_EV_BATCH_MSG_INTERVAL_MIN = 0.02  # spacing of START_ATTEN_CHAR.IND and MNBC_SOUND.IND
TP_EV_BATCH_MSG_INTERVAL_MAX = 0.05
TP_EV_BATCH_MSG_INTERVAL = 0.04
TT_EV_ATTEN_RESULTS = 1.2  # EV waits for CM_ATTEN_CHAR.IND from its first START_ATTEN_CHAR.IND
TT_EVSE_MATCH_MNBC = 0.6  # EVSE collects sounds this long after START_ATTEN_CHAR.IND
TP_EVSE_AVG_ATTEN_CALC = 0.1
TT_EVSE_MATCH_SESSION = 10.0  # EVSE waits for CM_VALIDATE.REQ or CM_SLAC_MATCH.REQ
TT_MATCH_JOIN = 12.0  # from CM_SLAC_MATCH.CNF until the link is up
TT_MATCHING_REPETITION = 10.0  # the whole matching may be repeated within this
TT_MATCHING_RATE = 0.4  # pause before a new matching attempt
TP_MATCH_LEAVE = 1.0
TP_LINK_READY_NOTIFICATION_MIN = 0.2
TP_LINK_READY_NOTIFICATION_MAX = 1.0
TT_AMP_MAP_EXCHANGE = 0.2
TP_AMP_MAP_EXCHANGE = 0.1
TP_EV_VALD_STATE_DURATION_MIN = 0.2  # validation: duration of one BCB toggle state
TP_EV_VALD_STATE_DURATION_MAX = 0.4
TP_EV_VALD_TOGGLE_MIN = 0.6
TP_EV_VALD_TOGGLE_MAX = 3.5
TT_EVSE_VALD_TOGGLE = 3.5

# --- counts -------------------------------------------------------------------------------
C_EV_MATCH_RETRY = 2  # retransmissions of a .REQ without answer (CM_SLAC_PARM, CM_SLAC_MATCH)
C_EV_START_ATTEN_CHAR_INDS = 3
C_EV_MATCH_MNBC = 10  # CM_MNBC_SOUND.IND per matching
C_SEQU_RETRY = 2  # restarts of the whole SLAC sequence

# --- field values -------------------------------------------------------------------------
APPLICATION_TYPE_PEV_EVSE = 0x00
SECURITY_TYPE_NONE = 0x00
NUM_GROUPS = 58  # attenuation groups (AAG) in CM_ATTEN_CHAR.IND and CM_ATTEN_PROFILE.IND
# CM_START_ATTEN_CHAR.IND / CM_SLAC_PARM.CNF carry TT_EVSE_match_MNBC in units of 100 ms
TIME_OUT_FIELD = round(TT_EVSE_MATCH_MNBC / 0.1)
RUN_ID_LENGTH = 8
NMK_LENGTH = 16
NID_LENGTH = 7
