"""The HomePlug AV / Green PHY management messages CCS and ccssniff use, one definition each.

Layouts: HomePlug Green PHY 1.1 and ISO 15118-3 Annex A (SLAC family), HomePlug AV 1.1
(CM_SET_KEY, CM_AMP_MAP), Qualcomm Atheros vendor MMEs (OUI 00:B0:52) as their firmware sends them.
"""

from __future__ import annotations

import json
from typing import Any

from .fields import Array, Bytes, Count, Key, Mac, Nibbles, Record, Rest, UInt, record
from .mme import QUALCOMM_OUI, Mme, message
from .notation import BROADCAST, format_hex

APPLICATION_TYPES = {0x00: "PEV-EVSE association"}
SECURITY_TYPES = {0x00: "no security", 0x01: "public key signature"}
RESPONSE_TYPES = {0x00: "other GreenPHY station", 0x01: "host (HLE)"}
ATTEN_CHAR_RESULTS = {0x00: "success"}
SIGNAL_TYPES = {0x00: "PEV S2 toggles"}
VALIDATE_RESULTS = {0x00: "not ready", 0x01: "ready", 0x02: "success", 0x03: "failure", 0x04: "not required"}
KEY_TYPES = {0x00: "DAK", 0x01: "NMK", 0x02: "NEK", 0x03: "TEK", 0x04: "hash key", 0x05: "nonce only"}
PROTOCOL_IDS = {
    0x00: "authentication request by new STA",
    0x01: "provision authenticated STA with NEK by CCo",
    0x02: "provision STA with NMK using DAK",
    0x03: "provision STA with NMK using UKE",
    0x04: "HLE protocol",
}
RESULTS = {0x00: "success", 0x01: "failure"}
CCO_CAPABILITIES = {level: f"level {level}" for level in range(4)}  # 2 bits, upper 6 reserved
STATION_ROLES = {0x00: "STA", 0x01: "proxy coordinator", 0x02: "CCo"}
DEVICE_IDS = {0x01: "INT6000", 0x02: "INT6300", 0x03: "INT6400", 0x04: "AR7400", 0x05: "AR6405", 0x20: "QCA7420"}

RUN_ID = 8
NID = 7
KEY = 16
SLAC_ID = 17  # PEV ID / EVSE ID / source ID / response ID


def _public_key(values: Any) -> bool:
    return values["security_type"] == 0x01


def _groups(msg: Any) -> int:
    return len(msg.aag)


def _attenuation_average(msg: Any) -> float | None:
    return round(sum(msg.aag) / len(msg.aag), 2) if msg.aag else None


# --- SLAC (ISO 15118-3 / HomePlug Green PHY) -------------------------------------------------

@message(0x6064, "CM_SLAC_PARAM.REQ")
class CmSlacParamReq(Mme):
    layout = (
        UInt("application_type", enum=APPLICATION_TYPES),
        UInt("security_type", enum=SECURITY_TYPES),
        Bytes("run_id", RUN_ID),
        Count("cipher_suite_set_size", of="cipher_suites", when=_public_key),
        Array("cipher_suites", UInt("cipher_suite", 2), count="cipher_suite_set_size", when=_public_key),
    )
    summary = ("run_id", "security_type")


@message(0x6065, "CM_SLAC_PARAM.CNF")
class CmSlacParamCnf(Mme):
    layout = (
        Mac("msound_target", default=BROADCAST),
        UInt("num_sounds"),
        UInt("time_out"),  # units of 100 ms
        UInt("resp_type", enum=RESPONSE_TYPES),
        Mac("forwarding_sta"),
        UInt("application_type", enum=APPLICATION_TYPES),
        UInt("security_type", enum=SECURITY_TYPES),
        Bytes("run_id", RUN_ID),
        UInt("cipher_suite", 2, when=_public_key),
    )
    summary = ("run_id", "num_sounds", "time_out")


@message(0x606A, "CM_START_ATTEN_CHAR.IND")
class CmStartAttenCharInd(Mme):
    layout = (
        UInt("application_type", enum=APPLICATION_TYPES),
        UInt("security_type", enum=SECURITY_TYPES),
        UInt("num_sounds"),
        UInt("time_out"),  # units of 100 ms
        UInt("resp_type", enum=RESPONSE_TYPES),
        Mac("forwarding_sta"),
        Bytes("run_id", RUN_ID),
    )
    summary = ("run_id", "num_sounds", "time_out")


@message(0x606E, "CM_ATTEN_CHAR.IND")
class CmAttenCharInd(Mme):
    layout = (
        UInt("application_type", enum=APPLICATION_TYPES),
        UInt("security_type", enum=SECURITY_TYPES),
        Mac("source_address"),
        Bytes("run_id", RUN_ID),
        Bytes("source_id", SLAC_ID),
        Bytes("resp_id", SLAC_ID),
        UInt("num_sounds"),
        Count("num_groups", of="aag"),
        Array("aag", UInt("aag"), count="num_groups"),  # average attenuation per carrier group, dB
    )
    summary = ("run_id", "source_address", "num_sounds", ("num_groups", _groups),
               ("attenuation_avg_db", _attenuation_average))


@message(0x606F, "CM_ATTEN_CHAR.RSP")
class CmAttenCharRsp(Mme):
    layout = (
        UInt("application_type", enum=APPLICATION_TYPES),
        UInt("security_type", enum=SECURITY_TYPES),
        Mac("source_address"),
        Bytes("run_id", RUN_ID),
        Bytes("source_id", SLAC_ID),
        Bytes("resp_id", SLAC_ID),
        UInt("result", enum=ATTEN_CHAR_RESULTS),
    )
    summary = ("run_id", "result")


@message(0x6076, "CM_MNBC_SOUND.IND")
class CmMnbcSoundInd(Mme):
    layout = (
        UInt("application_type", enum=APPLICATION_TYPES),
        UInt("security_type", enum=SECURITY_TYPES),
        Bytes("sender_id", SLAC_ID),
        UInt("countdown"),  # sounds still to come
        Bytes("run_id", RUN_ID),
        Bytes("reserved", 8),
        Bytes("random", 16),
    )
    summary = ("run_id", "countdown")


@message(0x6086, "CM_ATTEN_PROFILE.IND")
class CmAttenProfileInd(Mme):
    layout = (
        Mac("pev_mac"),
        Count("num_groups", of="aag"),
        Bytes("reserved", 1),
        Array("aag", UInt("aag"), count="num_groups"),
    )
    summary = ("pev_mac", ("num_groups", _groups), ("attenuation_avg_db", _attenuation_average))


@message(0x6078, "CM_VALIDATE.REQ")
class CmValidateReq(Mme):
    layout = (
        UInt("signal_type", enum=SIGNAL_TYPES),
        UInt("timer"),  # units of 100 ms
        UInt("result", enum=VALIDATE_RESULTS),
    )
    summary = ("timer", "result")


@message(0x6079, "CM_VALIDATE.CNF")
class CmValidateCnf(Mme):
    layout = (
        UInt("signal_type", enum=SIGNAL_TYPES),
        UInt("toggle_num"),
        UInt("result", enum=VALIDATE_RESULTS),
    )
    summary = ("toggle_num", "result")


_MATCH_REQ_VARIABLE = 2 * SLAC_ID + 2 * 6 + RUN_ID + 8
_MATCH_CNF_VARIABLE = _MATCH_REQ_VARIABLE + NID + 1 + KEY


@message(0x607C, "CM_SLAC_MATCH.REQ")
class CmSlacMatchReq(Mme):
    layout = (
        UInt("application_type", enum=APPLICATION_TYPES),
        UInt("security_type", enum=SECURITY_TYPES),
        UInt("mvf_length", 2, default=_MATCH_REQ_VARIABLE),  # bytes that follow
        Bytes("pev_id", SLAC_ID),
        Mac("pev_mac"),
        Bytes("evse_id", SLAC_ID),
        Mac("evse_mac"),
        Bytes("run_id", RUN_ID),
        Bytes("reserved", 8),
    )
    summary = ("run_id", "pev_mac", "evse_mac")


@message(0x607D, "CM_SLAC_MATCH.CNF")
class CmSlacMatchCnf(Mme):
    layout = (
        UInt("application_type", enum=APPLICATION_TYPES),
        UInt("security_type", enum=SECURITY_TYPES),
        UInt("mvf_length", 2, default=_MATCH_CNF_VARIABLE),  # bytes that follow
        Bytes("pev_id", SLAC_ID),
        Mac("pev_mac"),
        Bytes("evse_id", SLAC_ID),
        Mac("evse_mac"),
        Bytes("run_id", RUN_ID),
        Bytes("reserved", 8),
        Bytes("nid", NID),
        Bytes("reserved2", 1),
        Key("nmk", KEY),
    )
    summary = ("run_id", "pev_mac", "evse_mac", "nid", "nmk")


# --- Keys and amplitude map (HomePlug AV 1.1) ---------------------------------------------------

@message(0x6008, "CM_SET_KEY.REQ")
class CmSetKeyReq(Mme):
    layout = (
        UInt("key_type", enum=KEY_TYPES, default=0x01),
        UInt("my_nonce", 4),
        UInt("your_nonce", 4),
        UInt("pid", enum=PROTOCOL_IDS, default=0x04),
        UInt("prn", 2),
        UInt("pmn"),
        UInt("cco_capability", enum=CCO_CAPABILITIES),
        Bytes("nid", NID),
        UInt("new_eks", default=0x01),
        Key("new_key", KEY),
    )
    summary = ("key_type", "nid", "new_key")


@message(0x6009, "CM_SET_KEY.CNF")
class CmSetKeyCnf(Mme):
    layout = (
        UInt("result", enum=RESULTS),
        UInt("my_nonce", 4),
        UInt("your_nonce", 4),
        UInt("pid", enum=PROTOCOL_IDS, default=0x04),
        UInt("prn", 2),
        UInt("pmn"),
        UInt("cco_capability", enum=CCO_CAPABILITIES),
    )
    summary = ("result",)


@message(0x601C, "CM_AMP_MAP.REQ")
class CmAmpMapReq(Mme):
    layout = (
        Count("amlen", 2, of="amplitudes"),
        Nibbles("amplitudes", count="amlen"),  # one 4-bit transmit amplitude step per carrier
    )
    summary = (("carriers", lambda msg: len(msg.amplitudes)),)


@message(0x601D, "CM_AMP_MAP.CNF")
class CmAmpMapCnf(Mme):
    layout = (UInt("res_type", enum=RESULTS),)
    summary = ("res_type",)


# --- Qualcomm Atheros vendor-specific (OUI 00:B0:52) --------------------------------------------

@message(0xA000, "VS_SW_VER.REQ", oui=QUALCOMM_OUI, default_mmv=0)
class VsSwVerReq(Mme):
    layout = ()


@message(0xA001, "VS_SW_VER.CNF", oui=QUALCOMM_OUI, default_mmv=0)
class VsSwVerCnf(Mme):
    layout = (
        UInt("status", enum=RESULTS),
        UInt("device_id", enum=DEVICE_IDS),
        UInt("version_length"),  # bytes of version text, its NUL included
        Bytes("version", 254),  # NUL-terminated text in a fixed field
        Rest("extension"),  # firmware-dependent trailer (20 bytes on QCA7420)
    )
    summary = ("device_id", ("version", lambda msg: msg.version_text))

    @property
    def version_text(self) -> str:
        return self.version.split(b"\0", 1)[0].decode("ascii", "replace")


@message(0xA01C, "VS_RS_DEV.REQ", oui=QUALCOMM_OUI, default_mmv=0)
class VsRsDevReq(Mme):
    layout = ()


@message(0xA01D, "VS_RS_DEV.CNF", oui=QUALCOMM_OUI, default_mmv=0)
class VsRsDevCnf(Mme):
    layout = (UInt("status", enum=RESULTS),)
    summary = ("status",)


@message(0xA038, "VS_NW_INFO.REQ", oui=QUALCOMM_OUI)
class VsNwInfoReq(Mme):
    layout = ()


@record
class StationInfo(Record):
    """A station of the modem's AVLN, MMV 1 (HomePlug AV 1.1) layout."""

    layout = (
        Mac("address"),
        UInt("tei"),
        Bytes("reserved", 3),
        Mac("bridged_address"),
        UInt("tx_rate", 2),  # average PHY rate, Mbit/s
        UInt("coupling"),
        Bytes("reserved2", 1),
        UInt("rx_rate", 2),
        Bytes("reserved3", 2),
    )


@record
class NetworkInfo(Record):
    """An AVLN the modem belongs to, MMV 1 (HomePlug AV 1.1) layout."""

    layout = (
        Bytes("nid", NID),
        Bytes("reserved", 2),
        UInt("snid"),
        UInt("tei"),
        Bytes("reserved2", 4),
        UInt("station_role", enum=STATION_ROLES),
        Mac("cco_address"),
        UInt("cco_tei"),
        Bytes("reserved3", 3),
        Count("num_stations", of="stations"),
        Bytes("reserved4", 5),
        Array("stations", StationInfo, count="num_stations"),
    )


@record
class StationInfoV0(Record):
    """A station of the modem's AVLN, MMV 0 (HomePlug AV 1.0) layout."""

    layout = (
        Mac("address"),
        UInt("tei"),
        Mac("bridged_address"),
        UInt("tx_rate"),  # average PHY rate, Mbit/s
        UInt("rx_rate"),
    )


@record
class NetworkInfoV0(Record):
    """An AVLN the modem belongs to, MMV 0 (HomePlug AV 1.0) layout."""

    layout = (
        Bytes("nid", NID),
        UInt("snid"),
        UInt("tei"),
        UInt("station_role", enum=STATION_ROLES),
        Mac("cco_address"),
        UInt("cco_tei"),
        Count("num_stations", of="stations"),
        Array("stations", StationInfoV0, count="num_stations"),
    )


def _nids(msg: Any) -> list[str]:
    return [format_hex(network.nid) for network in msg.networks]


def _stations(msg: Any) -> int:
    return sum(len(network.stations) for network in msg.networks)


@message(0xA039, "VS_NW_INFO.CNF", oui=QUALCOMM_OUI)
class VsNwInfoCnf(Mme):
    layout = (
        UInt("sub_version"),
        Bytes("reserved", 1),
        UInt("data_length", 2),  # bytes after this field
        Bytes("reserved2", 1),
        Count("num_networks", of="networks"),
        Array("networks", NetworkInfo, count="num_networks"),
    )
    summary = (("nids", _nids), ("stations", _stations))


@message(0xA039, "VS_NW_INFO.CNF", oui=QUALCOMM_OUI, mmv_only=0)
class VsNwInfoCnfV0(Mme):
    layout = (
        Count("num_networks", of="networks"),
        Array("networks", NetworkInfoV0, count="num_networks"),
    )
    summary = (("nids", _nids), ("stations", _stations))


# --- Test-system diagnostics ------------------------------------------------------------------

ST_IOTECHA_OUI = bytes.fromhex("0080E1")
DSPACE_OUI = bytes.fromhex("644D70")
# IEC 61851-1 control pilot states as the ST/IoTecha firmware reports them (odd codes are the
# states, even codes the bands between two of them).
CP_STATES = {0x00: "invalid", 0x01: "A", 0x02: "A-B", 0x03: "B", 0x04: "B-C", 0x05: "C", 0x06: "C-D",
             0x07: "D", 0x08: "D-E", 0x09: "E", 0x0A: "F"}


@message(0xA22E, "STP_CPSTATE.IND", oui=ST_IOTECHA_OUI)
class StpCpStateInd(Mme):
    """Control pilot state change that ST/IoTecha based test systems (e.g. dSPACE DS5366) send."""

    layout = (
        UInt("mme_version"),
        Bytes("reserved", 3),
        UInt("message_version"),
        UInt("cp_state", enum=CP_STATES),
        UInt("pwm_duty"),  # %
        UInt("pwm_frequency", 2),  # Hz, 0 without PWM
        UInt("cp_voltage", 2),  # mV
        UInt("adc_channels"),  # bit mask of the channels below that carry a reading
        UInt("adc_channel_1", 2),  # mV
        UInt("adc_channel_2", 2),  # mV
        UInt("adc_channel_3", 2),  # mV
        Rest("extension"),
    )
    summary = ("cp_state", "pwm_duty", "pwm_frequency", ("cp_voltage_v", lambda msg: msg.cp_voltage / 1000))


def _diagnostic_parts(msg: Any) -> list[str]:
    return msg.text.rstrip(b"\0").decode("utf-8", "replace").split("|", 4)


def _diagnostic_values(msg: Any) -> Any:
    parts = _diagnostic_parts(msg)
    if len(parts) < 5:
        return None
    try:
        return json.loads(parts[4])
    except ValueError:
        return parts[4]


@message(0x8002, "DSPACE_SCS_DIAG.IND", oui=DSPACE_OUI)
class DspaceScsDiagInd(Mme):
    """Diagnostics a dSPACE test system broadcasts: ``source|tool|version|title|{JSON values}``
    (plug, pilot and power stage readings), self-describing text."""

    layout = (Rest("text"),)
    summary = (("source", lambda msg: _diagnostic_parts(msg)[0]), ("values", _diagnostic_values))
